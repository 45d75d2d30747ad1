"""Batched crop and flip on the device, and the batch sources of the training loop."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import Dataset, TensorDataset
from torchvision import transforms as T

from pcoh import batches as B
from pcoh import data as D
from pcoh.augment import CropFlip, crop_flip, draw

from _devices import DEVICES


def _reference(images, rows, cols, flips, padding):
    """Per sample: pad with zeros, slice the window, mirror the columns when flipped."""
    out = []
    h, w = images.shape[-2:]
    for img, r, c, f in zip(images, rows.tolist(), cols.tolist(), flips.tolist()):
        p = torch.nn.functional.pad(img, (padding,) * 4)
        crop = p[:, r:r + h, c:c + w]
        out.append(crop.flip(-1) if f else crop)
    return torch.stack(out)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_fixed_seed_gives_the_reference_images(device, dtype):
    x = torch.randint(1, 256, (64, 3, 32, 32), generator=torch.Generator().manual_seed(0)).to(device, dtype)
    aug = CropFlip(padding=4, flip=0.5)
    got = aug(x, torch.Generator(device=device).manual_seed(7))
    rows, cols, flips = draw(64, 4, 0.5, generator=torch.Generator(device=device).manual_seed(7))
    assert flips.any() and (~flips).any() and (rows != rows[0]).any()
    assert got.dtype == dtype and got.device.type == device
    assert torch.equal(got, _reference(x, rows, cols, flips, 4))
    again = aug(x, torch.Generator(device=device).manual_seed(7))
    assert torch.equal(got, again)


def test_non_square_images_and_extreme_offsets():
    x = torch.arange(2 * 1 * 3 * 5).reshape(2, 1, 3, 5) + 1
    rows, cols, flips = torch.tensor([0, 4]), torch.tensor([4, 0]), torch.tensor([True, False])
    assert torch.equal(crop_flip(x, rows, cols, flips, 2), _reference(x, rows, cols, flips, 2))
    assert torch.equal(crop_flip(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long),
                                 torch.zeros(2, dtype=torch.bool), 0), x)


def _decode(outputs, image, padding):
    """(row, col, flip) cell of each output, by matching every candidate crop of ``image``."""
    n = 2 * padding + 1
    cand = []
    for r in range(n):
        for c in range(n):
            for f in (0, 1):
                ref = _reference(image[None], torch.tensor([r]), torch.tensor([c]), torch.tensor([bool(f)]), padding)[0]
                cand.append(ref.flatten())
    cand = torch.stack(cand).float()  # (cells, pixels), all distinct: the image's pixels are distinct and nonzero
    d = torch.cdist(outputs.flatten(1).float(), cand)
    best = d.argmin(dim=1)
    assert torch.all(d.gather(1, best[:, None]) == 0)
    return torch.bincount(best, minlength=len(cand)).numpy()


def test_offsets_and_flips_are_uniform_and_match_torchvision():
    padding, m = 2, 12_000
    image = (torch.arange(1, 3 * 4 * 4 + 1, dtype=torch.uint8)).reshape(3, 4, 4)
    ours = CropFlip(padding, 0.5)(image.expand(m, 3, 4, 4), torch.Generator().manual_seed(1))
    counts = _decode(ours, image, padding)
    cells = len(counts)  # 5 * 5 * 2
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over offsets x flips
    torch.manual_seed(2)
    tv = T.Compose([T.RandomCrop(4, padding=padding), T.RandomHorizontalFlip()])
    theirs = torch.stack([tv(image) for _ in range(m)])
    tv_counts = _decode(theirs, image, padding)
    assert stats.chisquare(tv_counts).pvalue > 1e-3
    # Same distribution as torchvision's: a homogeneity test of the two tables of counts.
    assert stats.chi2_contingency(np.stack([counts, tv_counts])).pvalue > 1e-3
    assert counts.sum() == m and (counts > 0).all() and cells == 50


def test_the_chi_square_check_can_fail():
    # A biased draw (offset 0 twice as often) is rejected by the same test.
    rows = torch.cat([torch.randint(0, 5, (8000,), generator=torch.Generator().manual_seed(0)), torch.zeros(2000, dtype=torch.long)])
    counts = torch.bincount(rows, minlength=5).numpy()
    assert stats.chisquare(counts).pvalue < 1e-6


def test_flip_probability_and_identity():
    _, _, flips = draw(20_000, 0, 0.25, generator=torch.Generator().manual_seed(3))
    assert stats.binomtest(int(flips.sum()), 20_000, 0.25).pvalue > 1e-3
    x = torch.rand(4, 3, 5, 5)
    assert CropFlip()(x) is x and not CropFlip().active


@pytest.mark.parametrize("kwargs, match, error", [
    (dict(padding=-1), "padding", ValueError), (dict(padding=1.5), "padding", TypeError),
    (dict(flip=1.5), "flip", ValueError), (dict(flip=True), "flip", TypeError)])
def test_bad_crop_flip(kwargs, match, error):
    with pytest.raises(error, match=match):
        CropFlip(**kwargs)


def test_crop_flip_needs_4d():
    with pytest.raises(ValueError, match="4-D"):
        crop_flip(torch.zeros(3, 4, 4), torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                  torch.zeros(3, dtype=torch.bool), 1)


# ------------------------------------------------------------------ batch sources
def _write_cifar100(root: Path, n_train=40, n_test=8, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        with open(folder / split, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), "fine_labels": fine,
                         "coarse_labels": [v // 5 for v in fine], "filenames": [f"{j}.png" for j in range(n)],
                         "batch_label": split}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"f{k}" for k in range(100)],
                     "coarse_label_names": [f"c{k}" for k in range(20)]}, f)


def test_cifar_is_held_as_uint8_and_batches_equal_torchvision(tmp_path):
    _write_cifar100(tmp_path)
    split = D.load("cifar100", root=tmp_path, verify=False)
    memory = B.in_memory(split.train)
    assert memory is not None and memory.images.dtype == torch.uint8 and memory.images.shape == (40, 3, 32, 32)
    assert not memory.augment.active
    source = B.BatchSource(split.train, 16, device="cpu")
    x, y, idx = next(iter(source.epoch(0)))
    expected = torch.stack([split.train[i][0] for i in idx.tolist()])
    assert torch.equal(x, expected)  # ToTensor + Normalize reproduced bit for bit
    assert y.tolist() == [split.train[i][1] for i in idx.tolist()]


def test_cifar_augmented_batches_are_crops_and_flips_of_the_stored_images(tmp_path):
    _write_cifar100(tmp_path)
    split = D.load("cifar100", root=tmp_path, verify=False, augment=True, normalize=False)
    source = B.BatchSource(split.train, 40, device="cpu", shuffle=True, seed=3)
    assert source.augmented and source.memory.augment == CropFlip(4, 0.5)
    x, _, idx = next(iter(source.epoch(5)))
    gen = torch.Generator().manual_seed(3 * 100_003 + 5)
    order = torch.randperm(40, generator=gen)
    assert torch.equal(order, idx)
    rows, cols, flips = draw(40, 4, 0.5, generator=gen)
    stored = source.memory.images[idx]
    assert torch.equal(x, _reference(stored, rows, cols, flips, 4).float().div(255))
    x2, _, _ = next(iter(source.epoch(5)))
    x3, _, _ = next(iter(source.epoch(6)))
    assert torch.equal(x, x2) and not torch.equal(x, x3)


def test_unknown_transforms_fall_back_to_a_loader(tmp_path):
    _write_cifar100(tmp_path)
    split = D.load("cifar100", root=tmp_path, verify=False)
    split.train.transform = T.Compose([T.ColorJitter(0.5), T.ToTensor()])
    assert B.in_memory(split.train) is None
    assert B.in_memory(TensorDataset(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3))) is None


class _Noisy(Dataset):
    """Items whose value is random (as an augmentation is), drawn from torch's global generator."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.rand(2) + i, i % 3


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_path_is_seeded_per_epoch_whatever_the_workers(workers):
    base = B.BatchSource(_Noisy(), 4, device="cpu", shuffle=True, seed=1, num_workers=0)
    other = B.BatchSource(_Noisy(), 4, device="cpu", shuffle=True, seed=1, num_workers=workers)
    assert base.memory is None and len(base) == 3
    for epoch in (0, 1):
        a, b = list(base.epoch(epoch)), list(other.epoch(epoch))
        assert len(a) == 3 and sorted(torch.cat([t[2] for t in a]).tolist()) == list(range(10))
        for (xa, ya, ia), (xb, yb, ib) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ia, ib) and torch.equal(ya, ib % 3)
            assert torch.equal(xa.floor(), ia[:, None].float().expand(-1, 2))
    assert not torch.equal(list(base.epoch(0))[0][0], list(base.epoch(1))[0][0])


def test_drop_last_and_bad_arguments():
    ds = TensorDataset(torch.arange(10.0)[:, None], torch.zeros(10, dtype=torch.long))
    assert len(B.BatchSource(ds, 4, device="cpu", drop_last=True)) == 2
    assert [len(b[0]) for b in B.BatchSource(ds, 4, device="cpu").epoch()] == [4, 4, 2]
    with pytest.raises(ValueError, match="num_workers"):
        B.BatchSource(ds, 4, device="cpu", num_workers=-1)
    with pytest.raises(ValueError, match="batch_size"):
        B.BatchSource(ds, 0, device="cpu")
    with pytest.raises(TypeError, match="batch_size"):
        B.BatchSource(ds, 4.0, device="cpu")
