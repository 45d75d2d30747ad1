"""Tests for pcoh.data, on real files written in each data set's official format.

No torchvision class is mocked: MNIST-family files are written as big-endian IDX
files, CIFAR as pickled batches, image folders as PNGs, and read back through
``pcoh.data.load``.
"""
from __future__ import annotations

import os
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
    for ts in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="test_size"):
            load("digits", test_size=ts)
    for ts in ("0.2", True):
        with pytest.raises(TypeError, match="test_size"):
            load("digits", test_size=ts)
    for seed in (-1, 2**32):
        with pytest.raises(ValueError, match="seed"):
            load("digits", seed=seed)
    for seed in (1.5, "a"):
        with pytest.raises(TypeError, match="seed"):
            load("digits", seed=seed)
    with pytest.raises(TypeError, match="normalize"):
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


def _snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_image_folder_reports_folders_that_are_not_classes(tmp_path):
    from PIL import Image

    _write_image_folder(tmp_path)
    (tmp_path / "runs" / "teacher-abc").mkdir(parents=True)  # what an older pcoh left among the classes
    (tmp_path / "runs" / "teacher-abc" / "final.pt").write_bytes(b"weights")
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "evaluations" / "e.json").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / ".ipynb_checkpoints" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "loose.png")
    (tmp_path / "sky" / "._0.png").write_bytes(b"resource fork, not an image")  # hidden: not read
    with pytest.warns(data.ImageFolderWarning) as record:
        s = load("image_folder", root=tmp_path, image_size=8, test_size=0.4)
    message = " ".join(str(w.message) for w in record)
    for part in (".ipynb_checkpoints (hidden)", "evaluations (no image files)", "runs (no image files)",
                 "1 image file(s) directly in the folder"):
        assert part in message
    assert s.class_names == ["apple", "leaf", "sky"] and len(s.train) + len(s.test) == 15


def test_image_folder_with_train_and_test_folders(tmp_path):
    from PIL import Image

    _write_image_folder(tmp_path / "train", per_class=4)
    _write_image_folder(tmp_path / "test", per_class=2)
    s = load("image_folder", root=tmp_path, image_size=8, normalize=False)
    assert s.class_names == ["apple", "leaf", "sky"] and (len(s.train), len(s.test)) == (12, 6)
    _, y = s.tensors("test")
    assert np.bincount(y.numpy()).tolist() == [2, 2, 2]
    (tmp_path / "test" / "moon").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "test" / "moon" / "0.png")
    with pytest.raises(ValueError, match="moon"):
        load("image_folder", root=tmp_path, image_size=8)


def test_image_folder_reads_every_mode_as_rgb(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    Image.new("L", (5, 7), 100).save(tmp_path / "a" / "grey.png")
    Image.fromarray(np.full((6, 6), 51400, dtype=np.uint16)).save(tmp_path / "a" / "deep.png")  # 16-bit grey
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(tmp_path / "a" / "alpha.png")
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 250, 5, 5] + [0] * 762)
    palette.save(tmp_path / "b" / "palette.png", transparency=0)
    Image.new("CMYK", (4, 4), (0, 255, 0, 0)).save(tmp_path / "b" / "cmyk.tiff")
    rotated = Image.new("RGB", (8, 4), (255, 0, 0))
    rotated.paste((0, 0, 255), (4, 0, 8, 4))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: show rotated by 90 degrees clockwise, the left half on top
    rotated.save(tmp_path / "b" / "rotated.png", exif=exif)
    s = load("image_folder", root=tmp_path, image_size=4, normalize=False, in_memory=False, test_size=0.5)
    expected = {"grey": (100, 100, 100), "deep": (200, 200, 200), "alpha": (10, 20, 30), "palette": (250, 5, 5),
                "cmyk": (255, 0, 255)}
    files = s.train.dataset
    for i, (path, _) in enumerate(files.samples):
        x, _ = files[i]
        assert x.shape == (3, 4, 4)
        name = Path(path).stem
        if name == "rotated":
            torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
            torch.testing.assert_close(x[:, 3, 0], torch.tensor([0.0, 0.0, 1.0]))
        else:
            torch.testing.assert_close(x.mean(dim=(1, 2)), torch.tensor(expected[name]) / 255.0, atol=1e-6, rtol=0)
    assert len(files.samples) == 6


def test_image_folder_in_memory_equals_item_by_item(tmp_path):
    _write_image_folder(tmp_path, per_class=6)
    a = load("image_folder", root=tmp_path, image_size=8, in_memory=True)
    b = load("image_folder", root=tmp_path, image_size=8, in_memory=False)
    assert isinstance(a.train, TensorDataset) and isinstance(b.train, Subset)
    for split in ("train", "test"):
        Xa, ya = a.tensors(split)
        Xb, yb = b.tensors(split)
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    assert (a.mean, a.std, a.source) == (b.mean, b.std, b.source)
    raw, _ = load("image_folder", root=tmp_path, image_size=8, normalize=False).tensors("train")
    torch.testing.assert_close(torch.tensor(a.mean), raw.double().mean(dim=(0, 2, 3)).float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(a.std), raw.double().std(dim=(0, 2, 3), correction=0).float(),
                               atol=1e-6, rtol=0)


def test_image_folder_statistics_are_cached_outside_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    _write_image_folder(folder)
    before = _snapshot(folder)
    first = load("image_folder", root=folder, image_size=8, in_memory=False, cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "statistics").glob("image_folder-*.json"))) == 1

    def no_pass(*args, **kwargs):
        raise AssertionError("the statistics were computed again")

    monkeypatch.setattr(data.image_folder, "_channel_stats", no_pass)
    again = load("image_folder", root=folder, image_size=8, in_memory=False, cache=tmp_path / "cache")
    assert (again.mean, again.std) == (first.mean, first.std)
    assert _snapshot(folder) == before  # the user's folder is only read


def test_image_folder_source_follows_files_and_preprocessing(tmp_path):
    from PIL import Image

    _write_image_folder(tmp_path)
    a = load("image_folder", root=tmp_path, image_size=8, test_size=0.4)
    assert a.source == load("image_folder", root=tmp_path, image_size=8, test_size=0.4).source
    assert a.source != load("image_folder", root=tmp_path, image_size=16, test_size=0.4).source
    Image.new("RGB", (9, 9), (1, 2, 3)).save(tmp_path / "sky" / "new.png")
    assert a.source != load("image_folder", root=tmp_path, image_size=8, test_size=0.4).source
    assert load("digits").source is None


def test_image_folder_source_follows_bytes_not_names_or_times(tmp_path):
    """Files swapped between classes with their names, sizes and times kept (cp -p, rsync -a): another source."""
    from PIL import Image

    for cls, value in (("a", 10), ("b", 200)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (6, 6), value + i).save(tmp_path / cls / f"{i}.png")
    before = load("image_folder", root=tmp_path, image_size=4, test_size=0.34, cache=tmp_path.parent / "c").source
    a, b = tmp_path / "a" / "0.png", tmp_path / "b" / "0.png"
    da, db = a.read_bytes(), b.read_bytes()
    assert len(da) == len(db)
    sa, sb = a.stat(), b.stat()
    a.write_bytes(db), b.write_bytes(da)  # in place, as cp -p does: same inode, same size
    os.utime(a, ns=(sa.st_atime_ns, sa.st_mtime_ns)), os.utime(b, ns=(sb.st_atime_ns, sb.st_mtime_ns))
    assert (a.stat().st_size, a.stat().st_mtime_ns, a.stat().st_ino) == (sa.st_size, sa.st_mtime_ns, sa.st_ino)
    after = load("image_folder", root=tmp_path, image_size=4, test_size=0.34, cache=tmp_path.parent / "c").source
    assert after != before


def test_image_folder_reads_each_file_once_and_names_every_skipped_one(tmp_path):
    from PIL import Image

    for cls, value in (("a", 10), ("b", 200)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("L", (6, 6), value).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "scan.heic").write_bytes(b"an image type we do not read")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")  # a link back: would be read forever
    os.symlink(tmp_path / "a" / "0.png", tmp_path / "b" / "same.png")  # one file under two names
    os.symlink(tmp_path / "gone.png", tmp_path / "b" / "broken.png")
    odd = os.fsdecode(b"caf\xe9-\n.png")  # not UTF-8, with a newline: a name POSIX allows
    Image.new("L", (6, 6), 200).save(os.path.join(tmp_path / "b", odd))
    with pytest.warns(data.ImageFolderWarning) as record:
        s = load("image_folder", root=tmp_path, image_size=4, test_size=0.5, normalize=False, in_memory=False)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    message = messages[0]
    assert message.count("not read") == 1 and "5 file(s) or folder(s) not read" in message
    for part in ("notes.txt", "scan.heic", "loop", "same.png", "broken.png"):
        assert part in message, part
    files_read = sorted(Path(p).name for p, _ in s.train.dataset.samples)
    assert files_read == sorted(["0.png", "1.png", "0.png", "1.png", odd])
    assert len(s.train) + len(s.test) == 5


def test_image_folder_scales_32_bit_grey_by_one_rule_for_every_image(tmp_path):
    """250 and 260 in two 32-bit TIFFs: neighbours before, neighbours after (not 250 and 1)."""
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    for i, value in enumerate((250, 260, 65535)):
        Image.fromarray(np.full((4, 4), value, dtype=np.int32)).save(tmp_path / "a" / f"{i}.tif")
        assert Image.open(tmp_path / "a" / f"{i}.tif").mode == "I"
    for i, value in enumerate((0.25, 0.5, 1.0)):
        Image.fromarray(np.full((4, 4), value, dtype=np.float32)).save(tmp_path / "b" / f"{i}.tif")
    s = load("image_folder", root=tmp_path, image_size=4, normalize=False, in_memory=False, test_size=0.5)
    got = {(Path(p).parent.name, Path(p).stem): float(s.train.dataset[i][0].mean()) * 255
           for i, (p, _) in enumerate(s.train.dataset.samples)}
    expected = {("a", "0"): round(250 / 257), ("a", "1"): round(260 / 257), ("a", "2"): 255,
                ("b", "0"): round(0.25 * 255), ("b", "1"): round(0.5 * 255), ("b", "2"): 255}
    assert got == pytest.approx(expected, abs=1e-4)


def test_image_folder_with_published_preprocessing_is_the_weights_transforms(tmp_path):
    import torchvision.models as tvm
    from PIL import Image

    from pcoh import models

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (260 + 7 * i, 300, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    options = models.published_preprocessing("tv:resnet18", "IMAGENET1K_V1")
    s = load("image_folder", root=tmp_path, in_memory=False, test_size=0.34, **options)
    transform = tvm.ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert s.image_size == 224 and s.mean == tuple(transform.mean) and s.std == tuple(transform.std)
    for i in s.test.indices:
        path, _ = s.test.dataset.samples[i]
        x, _ = s.test.dataset[i]
        torch.testing.assert_close(x, transform(Image.open(path).convert("RGB")), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"resize": 4}, "resize must be an int >= image_size"),
    ({"mean": (0.5, 0.5)}, "mean must be 3 numbers"),
    ({"mean": (0.5,) * 3}, "give both mean and std"),
    ({"mean": (0.5,) * 3, "std": (0.0, 1.0, 1.0)}, "std must be positive"),
    ({"mean": (0.5,) * 3, "std": (1.0,) * 3, "normalize": False}, "normalize=False"),
    ({"interpolation": "cubic"}, "interpolation"),
    ({"in_memory": True, "augment": True}, "cannot be augmented"),
])
def test_image_folder_bad_options(tmp_path, kwargs, match):
    _write_image_folder(tmp_path)
    with pytest.raises(ValueError, match=match):
        load("image_folder", root=tmp_path, image_size=8, **kwargs)


def test_write_image_folder_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    grey = rng.random((12, 8, 8))
    labels = np.arange(12) % 3
    data.write_image_folder(tmp_path / "grey", grey, labels, class_names=["a", "b", "c"])
    assert sorted(p.name for p in (tmp_path / "grey" / "b").iterdir()) == ["01.png", "04.png", "07.png", "10.png"]
    s = load("image_folder", root=tmp_path / "grey", image_size=8, normalize=False, in_memory=False)
    for i, (path, label) in enumerate(s.train.dataset.samples):
        k = int(Path(path).stem)
        x, _ = s.train.dataset[i]
        assert label == labels[k]
        expected = torch.from_numpy(np.rint(grey[k] * 255) / 255).float()
        for channel in x:
            torch.testing.assert_close(channel, expected, atol=1e-6, rtol=0)
    rgb = rng.integers(0, 256, (4, 3, 5, 5), dtype=np.uint8)
    data.write_image_folder(tmp_path / "rgb", rgb, [0, 1, 0, 1], size=10)
    from PIL import Image

    with Image.open(tmp_path / "rgb" / "1" / "3.png") as img:
        assert img.size == (10, 10) and img.mode == "RGB"


def test_write_image_folder_twice_leaves_the_folder_as_it_was(tmp_path):
    images = np.random.default_rng(2).random((6, 4, 4))
    data.write_image_folder(tmp_path, images, [0, 1, 2, 0, 1, 2])
    before = _snapshot(tmp_path)
    data.write_image_folder(tmp_path, images, [0, 1, 2, 0, 1, 2])
    assert _snapshot(tmp_path) == before
    images[0, 0, 0] = 1 - images[0, 0, 0]
    data.write_image_folder(tmp_path, images, [0, 1, 2, 0, 1, 2])
    changed = [p for p, v in _snapshot(tmp_path).items() if before[p] != v]
    assert changed == [tmp_path / "0" / "0.png"]


@pytest.mark.parametrize("images, labels, kwargs, match", [
    (np.zeros((2, 2, 4, 4)), [0, 1], {}, "shape"),
    (np.zeros((2, 4, 4)), [0], {}, "same length"),
    (np.zeros((2, 4, 4)), [0, 1], {"class_names": ["a"]}, "labels go up to 1"),
    (np.zeros((2, 4, 4)), [0, 1], {"class_names": [".a", "b"]}, "plain folder names"),
    (np.full((2, 4, 4), np.nan), [0, 1], {}, "non-finite"),
    (np.zeros((2, 4, 4)), [0, 1], {"size": 0}, "size"),
])
def test_write_image_folder_bad_input(tmp_path, images, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.write_image_folder(tmp_path, images, labels, **kwargs)


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
    with pytest.raises(TypeError, match="integer"):
        from_arrays(x, y.astype(float))
    with pytest.raises(TypeError, match="integer"):
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
