"""Tests for pcoh.data, on real files written in each data set's official format.

No torchvision class is mocked: MNIST-family files are written as big-endian IDX
files, CIFAR as pickled batches, image folders as PNGs, and read back through
``pcoh.data.load``.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from pcoh import data
from pcoh.data import DataSplit, DatasetIntegrityError, DatasetNotFoundError, available, from_arrays, load


# ----------------------------------------------------------------------- writers
def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes())


def _write_mnist(root: Path, folder: str, rng: np.random.Generator, n_train=12, n_test=6):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", imgs)
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[prefix] = (imgs, labels)
    return out


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _write_cifar10(root: Path, rng: np.random.Generator, per_batch=4, n_test=5):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        _pickle(folder / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5", "data": x, "labels": y,
                                             "filenames": [f"img{i}_{j}.png" for j in range(per_batch)]})
        train_x.append(x)
        train_y += y
    tx = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    ty = [int(v) for v in rng.integers(0, 10, size=n_test)]
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": tx, "labels": ty,
                                    "filenames": [f"t{j}.png" for j in range(n_test)]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072})
    return np.vstack(train_x), np.array(train_y), tx, np.array(ty), names


def _write_cifar100(root: Path, rng: np.random.Generator, n_train=8, n_test=4):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        _pickle(folder / split, {"data": x, "fine_labels": fine, "coarse_labels": [f // 5 for f in fine],
                                 "filenames": [f"{split}{j}.png" for j in range(n)], "batch_label": split})
        out[split] = (x, np.array(fine))
    fine_names = [f"fine_{k}" for k in range(100)]
    _pickle(folder / "meta", {"fine_label_names": fine_names, "coarse_label_names": [f"c{k}" for k in range(20)]})
    return out, fine_names


# ------------------------------------------------------------------------ digits
def test_available_and_unknown_name():
    names = available()
    assert names == ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder"]
    with pytest.raises(ValueError) as ei:
        load("imagenet")
    for n in names:
        assert n in str(ei.value)


def test_digits_sizes_shapes_dtypes():
    s = load()
    assert isinstance(s, DataSplit) and s.name == "digits"
    assert isinstance(s.train, TensorDataset)
    assert len(s.train) + len(s.test) == 1797
    assert len(s.test) == 360  # ceil(0.2 * 1797)
    Xtr, ytr = s.tensors("train")
    Xte, yte = s.tensors("test")
    assert Xtr.shape == (len(s.train), 1, 8, 8) and Xte.shape == (len(s.test), 1, 8, 8)
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert (s.num_classes, s.in_channels, s.image_size) == (10, 1, 8)
    assert s.class_names == [str(k) for k in range(10)]
    assert s.input_shape == (1, 8, 8)
    x0, y0 = s.train[0]
    assert x0.shape == (1, 8, 8) and 0 <= int(y0) < 10


def test_digits_stratified():
    s = load("digits", test_size=0.3, seed=3)
    ytr = s.tensors("train")[1].numpy()
    yte = s.tensors("test")[1].numpy()
    total = np.bincount(np.concatenate([ytr, yte]), minlength=10)
    test_counts = np.bincount(yte, minlength=10)
    assert np.all(np.abs(test_counts - 0.3 * total) <= 1.0)


def test_digits_deterministic_and_seed_dependent():
    a, b, c = load(seed=0), load(seed=0), load(seed=1)
    assert torch.equal(a.tensors("test")[0], b.tensors("test")[0])
    assert torch.equal(a.tensors("train")[1], b.tensors("train")[1])
    assert not torch.equal(a.tensors("test")[0], c.tensors("test")[0])


def test_digits_normalisation_uses_train_statistics():
    raw = load(normalize=False)
    assert raw.mean is None and raw.std is None
    Rtr, _ = raw.tensors("train")
    Rte, _ = raw.tensors("test")
    assert Rtr.min() >= 0 and Rtr.max() <= 1 and Rtr.max() == 1  # divided by 16
    norm = load()  # default normalize=True
    m, sd = Rtr.double().mean().item(), Rtr.double().std(unbiased=False).item()
    assert norm.mean == pytest.approx((m,)) and norm.std == pytest.approx((sd,))
    Ntr, _ = norm.tensors("train")
    Nte, _ = norm.tensors("test")
    assert Ntr.double().mean().item() == pytest.approx(0, abs=1e-5)
    assert Ntr.double().std(unbiased=False).item() == pytest.approx(1, abs=1e-5)
    torch.testing.assert_close(Nte, ((Rte - m) / sd).float(), atol=1e-5, rtol=0)
    # the test split is NOT standardised with its own statistics
    assert abs(Nte.double().mean().item()) > 1e-4


def test_bad_arguments():
    for ts in (0, 1, 1.5, -0.1, "0.2", True):
        with pytest.raises(ValueError, match="test_size"):
            load("digits", test_size=ts)
    for seed in (-1, 1.5, "a"):
        with pytest.raises(ValueError, match="seed"):
            load("digits", seed=seed)
    with pytest.raises(ValueError, match="normalize"):
        load("digits", normalize="yes")
    with pytest.raises(TypeError, match="augment"):
        load("digits", augment=True)
    s = load("digits")
    with pytest.raises(ValueError, match="split"):
        s.tensors("validation")


# ------------------------------------------------------------------- MNIST family
@pytest.mark.parametrize(
    "name, folder, mean, std",
    [("mnist", "MNIST", 0.1307, 0.3081), ("fashion_mnist", "FashionMNIST", 0.2860, 0.3530)],
)
def test_mnist_family_from_idx_files(tmp_path, name, folder, mean, std):
    written = _write_mnist(tmp_path, folder, np.random.default_rng(0))
    s = load(name, root=tmp_path)
    assert (len(s.train), len(s.test)) == (12, 6)
    assert (s.num_classes, s.in_channels, s.image_size, s.name) == (10, 1, 28, name)
    assert len(s.class_names) == 10
    assert s.mean == (mean,) and s.std == (std,)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        X, y = s.tensors(split)
        imgs, labels = written[prefix]
        assert X.shape == (len(labels), 1, 28, 28) and X.dtype == torch.float32
        assert y.tolist() == labels.tolist()
        pixels = X * std + mean  # undo the normalisation
        torch.testing.assert_close(pixels[:, 0], torch.from_numpy(imgs).float() / 255, atol=1e-5, rtol=0)
    # and without normalisation the exact ToTensor values come back
    raw = load(name, root=tmp_path, normalize=False)
    x3, y3 = raw.train[3]
    assert y3 == int(written["train"][1][3])
    torch.testing.assert_close(x3[0], torch.from_numpy(written["train"][0][3]).float() / 255)
    assert raw.mean is None


def test_mnist_augment_keeps_shape(tmp_path):
    _write_mnist(tmp_path, "MNIST", np.random.default_rng(1))
    s = load("mnist", root=tmp_path, augment=True)
    assert s.train[0][0].shape == (1, 28, 28)
    assert len(load("mnist", root=tmp_path, verify=False).train) == 12  # accepted, no effect for MNIST


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", Path("MNIST") / "raw"),
        ("fashion_mnist", Path("FashionMNIST") / "raw"),
        ("cifar10", Path("cifar-10-batches-py")),
        ("cifar100", Path("cifar-100-python")),
    ],
)
def test_missing_files_raise_file_not_found_with_path(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError) as ei:
        load(name, root=tmp_path, download=False)
    msg = str(ei.value)
    assert str(tmp_path / expected) in msg
    assert "download=True" in msg and f"--dataset {name} --download" in msg
    assert isinstance(ei.value, DatasetNotFoundError)
    assert ei.value.path == str(tmp_path / expected)
    assert data.dataset_folder(name, tmp_path) == tmp_path / expected


def test_mnist_partial_files_lists_missing(tmp_path):
    _write_mnist(tmp_path, "MNIST", np.random.default_rng(0))
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError) as ei:
        load("mnist", root=tmp_path)
    assert ei.value.missing == ["t10k-labels-idx1-ubyte"]
    assert "t10k-labels-idx1-ubyte" in str(ei.value)


# ------------------------------------------------------------------------- CIFAR
def test_cifar10_verified_rejects_non_official_files(tmp_path):
    _write_cifar10(tmp_path, np.random.default_rng(0))
    with pytest.raises(DatasetIntegrityError) as ei:
        load("cifar10", root=tmp_path)  # verify=True: torchvision's md5 check
    assert "verify=False" in str(ei.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(ei.value)
    assert "data_batch_1" in ei.value.corrupted


def test_cifar10_unverified_reads_official_format(tmp_path):
    tr_x, tr_y, te_x, te_y, names = _write_cifar10(tmp_path, np.random.default_rng(0))
    s = load("cifar10", root=tmp_path, verify=False, normalize=False)
    assert (len(s.train), len(s.test)) == (20, 5)
    assert (s.num_classes, s.in_channels, s.image_size) == (10, 3, 32)
    assert s.class_names == names
    X, y = s.tensors("train")
    assert X.shape == (20, 3, 32, 32) and y.tolist() == tr_y.tolist()
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    torch.testing.assert_close(X, torch.from_numpy(tr_x.reshape(-1, 3, 32, 32)).float() / 255)
    Xt, yt = s.tensors("test")
    assert yt.tolist() == te_y.tolist()
    torch.testing.assert_close(Xt, torch.from_numpy(te_x.reshape(-1, 3, 32, 32)).float() / 255)

    n = load("cifar10", root=tmp_path, verify=False)  # standard normalisation
    mean = torch.tensor(n.mean).view(1, 3, 1, 1)
    std = torch.tensor(n.std).view(1, 3, 1, 1)
    assert n.mean == pytest.approx((0.4914, 0.4822, 0.4465)) and n.std == pytest.approx((0.2470, 0.2435, 0.2616))
    torch.testing.assert_close(n.tensors("test")[0] * std + mean, Xt, atol=1e-5, rtol=0)

    a = load("cifar10", root=tmp_path, verify=False, augment=True)
    assert a.train[0][0].shape == (3, 32, 32)
    assert torch.equal(a.tensors("test")[0], n.tensors("test")[0])  # test split never augmented


def test_cifar100_unverified_reads_official_format(tmp_path):
    out, fine_names = _write_cifar100(tmp_path, np.random.default_rng(2))
    s = load("cifar100", root=tmp_path, verify=False, normalize=False)
    assert (len(s.train), len(s.test), s.num_classes) == (8, 4, 100)
    assert s.class_names == fine_names
    for split in ("train", "test"):
        X, y = s.tensors(split)
        x_raw, fine = out[split]
        assert y.tolist() == fine.tolist()
        torch.testing.assert_close(X, torch.from_numpy(x_raw.reshape(-1, 3, 32, 32)).float() / 255)


def test_cifar100_missing_meta_is_not_found(tmp_path):
    _write_cifar100(tmp_path, np.random.default_rng(2))
    (tmp_path / "cifar-100-python" / "meta").unlink()
    with pytest.raises(DatasetNotFoundError) as ei:
        load("cifar100", root=tmp_path, verify=False)
    assert ei.value.missing == ["meta"]


# ------------------------------------------------------------------ image folder
def _write_image_folder(root: Path, per_class=5):
    from PIL import Image

    colours = {"apple": (255, 0, 0), "leaf": (0, 255, 0), "sky": (0, 0, 255)}
    for k, (cls, rgb) in enumerate(colours.items()):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            size = (10 + i, 12)  # various sizes: all get resized
            if cls == "sky" and i == 0:  # a grey-scale file: converted to RGB
                Image.new("L", size, 128).save(root / cls / f"{i}.png")
            else:
                Image.new("RGB", size, rgb).save(root / cls / f"{i}.png")
    return colours


def test_image_folder(tmp_path):
    colours = _write_image_folder(tmp_path)
    # Item by item, without normalisation: the files' own values, in Subsets of the folder's samples.
    s = load("image_folder", root=tmp_path, image_size=8, test_size=0.4, seed=0, normalize=False, in_memory=False)
    assert s.class_names == ["apple", "leaf", "sky"]
    assert (s.num_classes, s.in_channels, s.image_size) == (3, 3, 8)
    assert isinstance(s.train, Subset) and isinstance(s.test, Subset)
    assert (len(s.train), len(s.test)) == (9, 6)
    assert set(s.train.indices).isdisjoint(s.test.indices)
    assert sorted(s.train.indices + s.test.indices) == list(range(15))
    X, y = s.tensors("test")
    assert X.shape == (6, 3, 8, 8) and X.dtype == torch.float32
    assert np.bincount(y.numpy(), minlength=3).tolist() == [2, 2, 2]  # stratified
    for path_idx, (x, label) in zip(s.test.indices, zip(X, y)):
        path, target = s.test.dataset.samples[path_idx]
        assert target == int(label)
        if Path(path).name == "0.png" and s.class_names[target] == "sky":
            expected = torch.full((3,), 128 / 255)
        else:
            expected = torch.tensor(colours[s.class_names[target]], dtype=torch.float32) / 255
        torch.testing.assert_close(x.mean(dim=(1, 2)), expected, atol=1e-6, rtol=0)
    again = load("image_folder", root=tmp_path, image_size=8, test_size=0.4, seed=0, in_memory=False)
    assert again.test.indices == s.test.indices
    other = [load("image_folder", root=tmp_path, image_size=8, test_size=0.4, seed=k, in_memory=False).test.indices
             for k in (1, 2)]
    assert any(o != s.test.indices for o in other)


def test_image_folder_normalize_and_augment(tmp_path):
    _write_image_folder(tmp_path)
    s = load("image_folder", root=tmp_path, image_size=8, normalize=True, augment=True)
    assert len(s.mean) == 3 and len(s.std) == 3
    plain = load("image_folder", root=tmp_path, image_size=8, normalize=False)
    Xp, _ = plain.tensors("train")
    torch.testing.assert_close(torch.tensor(s.mean), Xp.double().mean(dim=(0, 2, 3)).float(), atol=1e-5, rtol=0)
    Xt, _ = s.tensors("test")
    assert Xt.shape[1:] == (3, 8, 8)
    assert s.train[0][0].shape == (3, 8, 8)


def test_image_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        load("image_folder", root=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="class folder"):
        load("image_folder", root=tmp_path)  # exists, but empty
    with pytest.raises(ValueError, match="image_size"):
        load("image_folder", root=tmp_path, image_size=0)


# -------------------------------------------------------------------- from_arrays
def test_from_arrays_split_numpy_images():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 5, 5))
    y = np.repeat(np.arange(4), 10)
    s = from_arrays(x, y, test_size=0.25, seed=1)
    assert (len(s.train), len(s.test)) == (30, 10)
    assert (s.num_classes, s.in_channels, s.image_size) == (4, 2, 5)
    X, yy = s.tensors("test")
    assert X.dtype == torch.float32 and yy.dtype == torch.int64
    assert sorted(np.bincount(yy.numpy(), minlength=4).tolist()) == [2, 2, 3, 3]  # stratified
    # every returned sample is one of the inputs, with its label
    Xtr, ytr = s.tensors("train")
    allx = np.concatenate([Xtr.numpy(), X.numpy()])
    ally = np.concatenate([ytr.numpy(), yy.numpy()])
    order = np.lexsort(allx.reshape(40, -1).T)
    ref = np.lexsort(x.astype(np.float32).reshape(40, -1).T)
    np.testing.assert_array_equal(allx[order], x.astype(np.float32)[ref])
    np.testing.assert_array_equal(ally[order], y[ref])
    assert torch.equal(from_arrays(x, y, test_size=0.25, seed=1).tensors("test")[0], X)


def test_from_arrays_given_test_tensors_and_flat_features():
    xtr, ytr = torch.randn(10, 7), torch.tensor([0, 1] * 5)
    xte, yte = torch.randn(4, 7), torch.tensor([0, 1, 2, 1])
    s = from_arrays(xtr, ytr, xte, yte, class_names=["a", "b", "c"])
    assert s.num_classes == 3 and s.class_names == ["a", "b", "c"]
    assert s.in_channels is None and s.image_size is None
    assert s.tensors("train")[0].shape == (10, 7) and s.input_shape == (7,)
    assert torch.equal(s.tensors("test")[1], yte)
    s3 = from_arrays(np.zeros((6, 4, 4)), [0, 1, 0, 1, 0, 1], test_size=1 / 3)
    assert s3.in_channels == 1 and s3.image_size == 4  # (n, H, W) gains a channel axis
    assert from_arrays(xtr, ytr, xte, yte, num_classes=5).num_classes == 5


def test_from_arrays_bad_inputs():
    x, y = np.zeros((10, 3)), np.array([0, 1] * 5)
    with pytest.raises(ValueError, match="same length"):
        from_arrays(x, y[:9])
    with pytest.raises(ValueError, match="same length"):
        from_arrays(x, y, x[:3], y[:2])
    with pytest.raises(ValueError, match="integer"):
        from_arrays(x, y.astype(float))
    with pytest.raises(ValueError, match="integer"):
        from_arrays(x, np.array([0.5, 1.2] * 5))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        from_arrays(bad, y)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        from_arrays(x, y, bad, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_arrays(x, np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_arrays(x, np.zeros(10, dtype=int), x, y)
    with pytest.raises(ValueError, match=">= 0"):
        from_arrays(x, y - 1)
    with pytest.raises(ValueError, match="num_classes"):
        from_arrays(x, y, num_classes=1)
    with pytest.raises(ValueError, match="num_classes"):
        from_arrays(x, y + 2, num_classes=3)
    with pytest.raises(ValueError, match="both"):
        from_arrays(x, y, x)
    with pytest.raises(ValueError, match="shape"):
        from_arrays(np.zeros((10, 2, 3, 4, 5)), y)
    with pytest.raises(ValueError, match="test_size"):
        from_arrays(x, y, test_size=2.0)
