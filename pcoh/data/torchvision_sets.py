"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 through torchvision: layout, checks of the files, diagnostics."""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import DatasetIntegrityError, DatasetNotFoundError
from .._checks import check_bool
from .split import DataSplit, PathLike

__all__: list = []


@dataclass(frozen=True)
class _TVSpec:
    """How one torchvision data set is laid out and normalised."""

    cls_name: str
    folder: str  # relative to root: the folder torchvision checks
    files: tuple  # file names torchvision needs in that folder
    in_channels: int
    image_size: int
    mean: tuple
    std: tuple
    cli_name: str


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_TV_SPECS = {
    "mnist": _TVSpec("MNIST", os.path.join("MNIST", "raw"), _MNIST_FILES, 1, 28, (0.1307,), (0.3081,), "mnist"),
    "fashion_mnist": _TVSpec(
        "FashionMNIST", os.path.join("FashionMNIST", "raw"), _MNIST_FILES, 1, 28, (0.2860,), (0.3530,), "fashion_mnist"
    ),
    "cifar10": _TVSpec(
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        3,
        32,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "cifar10",
    ),
    "cifar100": _TVSpec(
        "CIFAR100",
        "cifar-100-python",
        ("train", "test", "meta"),
        3,
        32,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "cifar100",
    ),
}


# ------------------------------------------------------------------- torchvision sets
@functools.lru_cache(maxsize=None)
def _unverified(cls: type) -> type:
    """``cls`` (a torchvision CIFAR class) with its file md5 sums set to ``None``.

    torchvision's ``check_integrity(path, md5=None)`` only checks that the file
    exists, so the subclass reads the same files with the same code and skips
    only the checksum comparison. The tarball md5 used by ``download`` is kept.
    """
    return type(
        f"{cls.__name__}Unverified",
        (cls,),
        {
            "train_list": [[f, None] for f, _ in cls.train_list],
            "test_list": [[f, None] for f, _ in cls.test_list],
            "meta": {**cls.meta, "md5": None},
            "__doc__": f"{cls.__name__} reading its files without the md5 check (pcoh.data, verify=False).",
            "__module__": __name__,
        },
    )


_TARBALLS = {"CIFAR10": "cifar-10-python.tar.gz", "CIFAR100": "cifar-100-python.tar.gz"}


def _how_to_get(spec: _TVSpec, folder: Path, downloading: bool = False) -> str:
    if spec.cls_name in _TARBALLS:
        extra = f" (what extracting the official {_TARBALLS[spec.cls_name]} into root gives)"
    else:
        extra = " (uncompressed: gunzip the official .gz files)"
    put = f"put the files {', '.join(spec.files)}{extra} in {folder}"
    if downloading:
        return f"Without network access, {put}."
    return (
        f"To get them: call load({spec.cli_name!r}, root=..., download=True), or run "
        f"`python -m pcoh --dataset {spec.cli_name} --download`, or {put}."
    )


def _not_found(spec: _TVSpec, folder: Path) -> DatasetNotFoundError:
    missing = [f for f in spec.files if not (folder / f).is_file()]
    return DatasetNotFoundError(
        f"{spec.cls_name} files not found in {folder} (missing: {', '.join(missing) or 'none'}). "
        + _how_to_get(spec, folder),
        folder,
        missing,
    )


def _diagnose(spec: _TVSpec, folder: Path, cls: type, err: Exception) -> Exception:
    """Turn torchvision's 'not found or corrupted' RuntimeError into ours."""
    if any(not (folder / f).is_file() for f in spec.files):
        return _not_found(spec, folder)
    sums = {f: md5 for f, md5 in getattr(cls, "train_list", []) + getattr(cls, "test_list", [])}
    meta = getattr(cls, "meta", None)
    if meta:
        sums[meta["filename"]] = meta["md5"]
    bad = []
    for f, md5 in sums.items():
        if md5 is None:
            continue
        h = hashlib.md5(usedforsecurity=False)
        with open(folder / f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != md5:
            bad.append(f)
    if not bad:  # not a checksum problem: keep torchvision's error
        return err
    return DatasetIntegrityError(
        f"{spec.cls_name} files in {folder} fail torchvision's md5 check: {', '.join(bad)}. "
        "Re-download them (delete them and use download=True), or pass verify=False to read "
        "files in the official format whose checksums differ (e.g. re-packed or generated ones).",
        folder,
        bad,
    )


#: Magic numbers of the MNIST idx format: unsigned bytes, 1 dimension (labels) or 3 (images).
_IDX_MAGIC = {1: 0x0801, 3: 0x0803}


def _check_idx_files(spec: _TVSpec, folder: Path) -> None:
    """Check MNIST-format files before torchvision reads them (its errors name no file).

    Each present file must have the idx header of its kind (labels: 1 dimension, images: 3 of
    ``count x 28 x 28``), the length the header announces, and labels and images of one split
    must agree on the count. Missing files are left to the not-found message.
    """
    counts = {}
    for name in spec.files:
        path = folder / name
        if not path.is_file():
            continue
        dims = 3 if "images" in name else 1
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                header = f.read(4 + 4 * dims)
        except OSError as err:
            raise DatasetIntegrityError(f"{path} cannot be read ({err.strerror})", folder, [name]) from None
        what = "images" if dims == 3 else "labels"
        if len(header) < 4 + 4 * dims:
            raise DatasetIntegrityError(f"{path} is empty or truncated ({size} bytes): not an idx file of "
                                        f"{what}. " + _how_to_get(spec, folder), folder, [name])
        values = [int.from_bytes(header[i:i + 4], "big") for i in range(0, len(header), 4)]
        if values[0] != _IDX_MAGIC[dims]:
            raise DatasetIntegrityError(f"{path} is not an idx file of {what} (magic number {values[0]:#x}, "
                                        f"expected {_IDX_MAGIC[dims]:#x}). " + _how_to_get(spec, folder),
                                        folder, [name])
        shape = values[1:]
        if dims == 3 and shape[1:] != [spec.image_size, spec.image_size]:
            raise DatasetIntegrityError(f"{path} holds {shape[1]}x{shape[2]} images, expected "
                                        f"{spec.image_size}x{spec.image_size}", folder, [name])
        expected = 4 + 4 * dims + int(np.prod(shape))
        if size != expected:
            raise DatasetIntegrityError(f"{path} has {size} bytes, its header announces {expected} "
                                        f"({' x '.join(map(str, shape))}): the file is damaged. "
                                        + _how_to_get(spec, folder), folder, [name])
        counts[name] = shape[0]
    for prefix in ("train", "t10k"):
        pair = [counts.get(f"{prefix}-images-idx3-ubyte"), counts.get(f"{prefix}-labels-idx1-ubyte")]
        if None not in pair and pair[0] != pair[1]:
            raise DatasetIntegrityError(f"{folder}: {prefix}-images holds {pair[0]} images but {prefix}-labels "
                                        f"{pair[1]} labels", folder, [f"{prefix}-images-idx3-ubyte"])


def _load_torchvision(key: str, root: PathLike, download: bool, *, normalize: Any, augment: Any, verify: Any) -> DataSplit:
    import torchvision
    from torchvision import transforms as T

    normalize = check_bool(normalize, "normalize")
    augment = check_bool(augment, "augment")
    verify = check_bool(verify, "verify")
    spec = _TV_SPECS[key]
    cls = getattr(torchvision.datasets, spec.cls_name)
    if not verify and spec.in_channels == 3:
        cls = _unverified(cls)
    root = os.fspath(root)
    folder = Path(root) / spec.folder

    tail: list[Callable] = [T.ToTensor()]
    if normalize:
        tail.append(T.Normalize(spec.mean, spec.std))
    aug: list[Callable] = []
    if augment:
        if spec.in_channels == 3:
            aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
        else:
            aug = [T.RandomCrop(28, padding=2)]
    train_tf = T.Compose(aug + tail)
    test_tf = T.Compose(tail)

    def make(train: bool, tf: Callable):
        if spec.in_channels == 1:
            _check_idx_files(spec, folder)
        try:
            return cls(root, train=train, download=download and train, transform=tf)
        except (RuntimeError, OSError) as e:
            # torchvision: "Dataset not found. ...", "Dataset not found or corrupted. ...",
            # "Dataset metadata file not found or corrupted. ..."
            msg = str(e)
            if isinstance(e, RuntimeError) and msg.startswith("Dataset") and "not found" in msg:
                raise _diagnose(spec, folder, cls, e) from e
            if download and train:
                raise DatasetNotFoundError(
                    f"downloading {spec.cls_name} into {folder} failed ({' '.join(str(e).split())[:160]}); "
                    "is there a network connection? " + _how_to_get(spec, folder, downloading=True),
                    folder,
                    [f for f in spec.files if not (folder / f).is_file()],
                ) from None
            raise

    train = make(True, train_tf)
    test = make(False, test_tf)
    class_names = [str(c) for c in train.classes]
    return DataSplit(
        train=train,
        test=test,
        num_classes=len(class_names),
        in_channels=spec.in_channels,
        image_size=spec.image_size,
        name=key,
        class_names=class_names,
        mean=tuple(spec.mean) if normalize else None,
        std=tuple(spec.std) if normalize else None,
    )
