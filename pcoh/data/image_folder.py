"""A user's folder of images: reading, channel statistics, and writing arrays as such a folder."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .. import _checks
from .. import files as _files
from .errors import DatasetNotFoundError
from .._checks import as_path, check_bool
from .split import DataSplit, PathLike, _as_labels, _stratified_indices, _to_numpy

__all__ = ["IMAGE_EXTENSIONS", "IN_MEMORY_BYTES", "ImageFiles", "ImageFolderWarning", "default_num_workers", "write_image_folder"]

#: File endings read as images (torchvision's ``IMG_EXTENSIONS``), compared in lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: An image folder without augmentation whose decoded float32 images take at most this many bytes
#: is held in memory (``in_memory=None``): decoded once, no reader processes, the teacher's outputs
#: computed once per student run.
IN_MEMORY_BYTES = 1 << 30
#: The largest ``image_size`` and ``resize`` (pixels per side): a 4096 x 4096 RGB image is 200 MB
#: of float32, already more than any model here reads; larger ends in a memory error per image.
MAX_SIDE = 4096


def default_num_workers() -> int:
    """Worker processes for data read item by item: one per core but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class ImageFolderWarning(UserWarning):
    """Sub-folders or files of an image folder that are not read (hidden, no images, loose files)."""


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


class _Scan:
    """What one reading of an image folder has seen: the folders and files already read (by device
    and inode, links followed), and every entry it skipped, with the reason."""

    def __init__(self):
        self.folders: set = set()
        self.files: dict = {}  # (device, inode) -> the path it was first read under
        self.skipped: dict = {}  # reason -> [paths]

    def skip(self, path: str, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(path)

    def report(self, folder: Path) -> None:
        if not self.skipped:
            return
        import warnings

        count = sum(map(len, self.skipped.values()))
        parts = [f"{len(paths)} {why}: {', '.join(_shown(p) for p in paths)}" for why, paths in self.skipped.items()]
        warnings.warn(f"image folder {folder}: {count} file(s) or folder(s) not read; " + "; ".join(parts),
                      ImageFolderWarning, stacklevel=4)


def _shown(path: str) -> str:
    """A path as text that prints whatever bytes its name holds (undecodable ones as ``\\x..``)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _walk(folder: PathLike, scan: Optional[_Scan] = None):
    """Image files below ``folder`` in a fixed order, each file and folder once (links followed:
    a folder or file reached a second time, by a link or a loop, is skipped); hidden entries,
    files of other types and broken links are skipped and recorded in ``scan``."""
    scan = _Scan() if scan is None else scan
    stack = [os.fspath(folder)]
    while stack:
        here = stack.pop()
        try:
            st = os.stat(here)
        except OSError:
            scan.skip(here, "folder(s) that cannot be opened")
            continue
        if (st.st_dev, st.st_ino) in scan.folders:
            scan.skip(here, "folder(s) already read through another path (a link)")
            continue
        scan.folders.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            scan.skip(here, "folder(s) that cannot be opened")
            continue
        subfolders = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # links followed
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                if entry.name.startswith("."):
                    scan.skip(entry.path, "hidden folder(s)")
                else:
                    subfolders.append(entry.path)
                continue
            if not is_file:
                reason = "broken link(s)" if entry.is_symlink() else "entries that are not files"
                scan.skip(entry.path, reason)
            elif entry.name.startswith("."):
                scan.skip(entry.path, "hidden file(s)")
            elif not _is_image(entry.name):
                scan.skip(entry.path, f"file(s) not of an image type ({', '.join(IMAGE_EXTENSIONS)})")
            else:
                fst = os.stat(entry.path)
                first = scan.files.setdefault((fst.st_dev, fst.st_ino), entry.path)
                if first != entry.path:
                    scan.skip(entry.path, f"file(s) already read under another name (as {_shown(first)})")
                else:
                    yield entry.path
        stack.extend(reversed(subfolders))  # depth first, in name order


def _class_folders(folder: Path, scan: Optional[_Scan] = None) -> tuple:
    """``(classes, skipped, loose)``: sub-folders holding images, the others with the reason, and the
    number of image files lying directly in ``folder``."""
    classes, skipped, loose = [], {}, 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name.startswith("."):
                skipped[_shown(entry.name)] = "hidden"
            elif next(_walk(entry.path), None) is None:
                skipped[_shown(entry.name)] = "no image files"
            else:
                classes.append(entry.name)
        elif _is_image(entry.name):
            loose += 1
        elif scan is not None and entry.name not in ("train", "test", "val"):
            scan.skip(entry.path, f"file(s) not of an image type ({', '.join(IMAGE_EXTENSIONS)})"
                      if entry.is_file() else "entries that are not files or folders")
    return classes, skipped, loose


def _report(folder: Path, skipped: dict, loose: int) -> None:
    parts = [f"{name} ({why})" for name, why in skipped.items()]
    if loose:
        parts.append(f"{loose} image file(s) directly in the folder, outside any class folder")
    if parts:
        import warnings

        warnings.warn(f"image folder {folder}: not counted as classes: {'; '.join(parts)}", ImageFolderWarning,
                      stacklevel=4)


def _split_folders(folder: Path) -> Optional[tuple]:
    """``(train, test)`` sub-folders when ``folder`` holds ``train/`` and ``test/`` (or ``val/``)."""
    train = folder / "train"
    for name in ("test", "val"):
        if train.is_dir() and (folder / name).is_dir() and _class_folders(train)[0]:
            return train, folder / name
    return None


def _read_image(path: str):
    """An image file as an RGB PIL image: EXIF orientation applied, 16- and 32-bit grey scaled to 8 bits
    by a fixed rule (below), palettes with transparency and alpha dropped, any other mode converted.

    The rule is one for every image, never set by an image's own values: integer grey (``I;16``,
    ``I``: 16- and 32-bit) is read in the 16-bit range, 0 to 65535, divided by 257; float grey
    (``F``) in the range 0 to 1, times 255; values outside the range are clipped."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                a = np.asarray(img, dtype=np.float64)
                a = a * 255 if img.mode == "F" else a / 257  # fixed ranges: [0, 1] and [0, 65535]
                img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
            elif img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise OSError(f"cannot read image {path}: {err}") from None


class ImageFiles(Dataset):
    """Image files and their labels; items ``(transform(image), label)``.

    Parameters
    ----------
    samples : list of (str, int)
        Paths and labels.
    classes : list of str
        ``classes[k]`` is the name of label ``k``.
    transform : callable, optional
        Applied to the RGB PIL image (see :func:`load`, ``image_folder``).

    Attributes
    ----------
    samples, targets, classes, class_to_idx, transform
        As torchvision's ``ImageFolder`` has them.
    """

    def __init__(self, samples: Sequence, classes: Sequence[str], transform: Optional[Callable] = None):
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) \
                or not all(isinstance(c, str) for c in classes):
            raise TypeError(f"classes must be a sequence of class names (strings), got {classes!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be a callable or None, got {type(transform).__name__}")
        if not isinstance(samples, Sequence) or not all(isinstance(s, (tuple, list)) and len(s) == 2 for s in samples):
            raise TypeError(f"samples must be a sequence of (path, label) pairs, got {type(samples).__name__}")
        self.samples = []
        for path, label in samples:
            as_path(path, "samples' paths")
            self.samples.append((os.fspath(path), _checks.check_int(label, "samples' labels")))
        bad = [y for _, y in self.samples if not 0 <= y < len(classes)]
        if bad:
            raise ValueError(f"samples' labels must be in [0, {len(classes)}) (one per class), got {bad[:5]}")
        self.targets = [y for _, y in self.samples]
        self.classes = list(classes)
        self.class_to_idx = {c: k for k, c in enumerate(self.classes)}
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        image = _read_image(path)
        return (self.transform(image) if self.transform is not None else image), label


def _samples(folder: Path, classes: Sequence[str], class_to_idx: dict, scan: _Scan) -> list:
    return [(p, class_to_idx[c]) for c in classes for p in _walk(folder / c, scan)]


def _listing(samples: Sequence, cache=None) -> str:
    """SHA-256 of the files' contents and labels, in order (:mod:`pcoh.digests`: each file is read
    once per version of it; with ``cache``, across processes too). Not their names or times: files
    swapped between classes with their names, sizes and times kept give another listing."""
    from ..digests import files_sha256

    h = hashlib.sha256()
    for (path, label), digest in zip(samples, files_sha256([p for p, _ in samples], cache, name="image_folder")):
        h.update(f"{label}\0{digest}\n".encode())
    return h.hexdigest()


def _decode(dataset: Dataset, what: str) -> torch.Tensor:
    """All images of ``dataset`` as one float32 tensor ``(n, 3, s, s)``."""
    workers = 0 if len(dataset) < 4000 else default_num_workers()
    xs = [xb for xb, _ in DataLoader(dataset, batch_size=256, shuffle=False, num_workers=workers)]
    if not xs:
        raise ValueError(f"the {what} split of the image folder holds no images")
    return torch.cat(xs)


def _channel_stats(batches) -> tuple:
    """Per-channel mean and (population) std over every pixel of the batches ``(b, 3, h, w)``."""
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    count = 0
    for xb in batches:
        xb = xb.double()
        s += xb.sum(dim=(0, 2, 3))
        s2 += (xb**2).sum(dim=(0, 2, 3))
        count += xb.shape[0] * xb.shape[2] * xb.shape[3]
    m = s / count
    sd = (s2 / count - m**2).clamp_min(0).sqrt().clamp_min(1e-8)
    return tuple(float(v) for v in m), tuple(float(v) for v in sd)


def _check_stats(value: Any, name: str) -> Optional[tuple]:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be 3 numbers (one per RGB channel), got {type(value).__name__} {value!r}")
    if len(value) != 3:
        raise ValueError(f"{name} must be 3 numbers (one per RGB channel), got {value!r}")
    out = [_checks.check_float(v, name) for v in value]
    if name == "std" and min(out) <= 0:
        raise ValueError(f"std must be positive, got {value!r}")
    return tuple(out)


def _cached_stats(cache: Optional[PathLike], key: str, compute: Callable) -> tuple:
    """``compute() -> (mean, std)``, read from ``<cache>/statistics/image_folder-<key>.json`` when there."""
    if cache is None:
        return compute()

    path = Path(cache) / "statistics" / f"image_folder-{key[:16]}.json"
    if path.exists():
        try:
            stored = _files.read_json(path)
            mean, std = _check_stats(stored["mean"], "mean"), _check_stats(stored["std"], "std")
            if stored.get("key") == key and mean is not None and std is not None:
                return mean, std
        except (_files.CorruptFileError, KeyError, TypeError, ValueError) as err:
            _files.quarantine(path, str(err))
    mean, std = compute()
    _files.write_json({"key": key, "mean": list(mean), "std": list(std)}, path)
    return mean, std


def _load_image_folder(
    root: PathLike, test_size: float, seed: int, *, image_size: Any, resize: Any, normalize: Any, mean: Any,
    std: Any, interpolation: Any, augment: Any, in_memory: Any, cache: Any,
) -> DataSplit:
    from torchvision import transforms as T

    image_size = _checks.check_int(image_size, "image_size", minimum=1)
    if image_size > MAX_SIDE:
        raise ValueError(f"image_size must be at most {MAX_SIDE} pixels, got {image_size}")
    if resize is not None:
        resize = _checks.check_int(resize, "resize")
        if resize < image_size:
            raise ValueError(f"resize must be an int >= image_size ({image_size}) or None, got {resize!r}")
        if resize > MAX_SIDE:
            # The shorter side resized to `resize` before the crop: 100,000 pixels is tens of GB per image.
            raise ValueError(f"resize must be at most {MAX_SIDE} pixels (the shorter side before the centre crop), "
                             f"got {resize}")
    normalize = check_bool(normalize, "normalize")
    augment = check_bool(augment, "augment")
    mean, std = _check_stats(mean, "mean"), _check_stats(std, "std")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is not None and not normalize:
        raise ValueError("mean and std are given but normalize=False")
    modes = [m.value for m in T.InterpolationMode]
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {modes}, got {interpolation!r}")
    if in_memory is not None:
        in_memory = check_bool(in_memory, "in_memory")
        if in_memory and augment:
            raise ValueError("in_memory=True holds decoded images, which cannot be augmented; use augment=False")
    if cache is not None:
        as_path(cache, "cache")
    folder = Path(root)
    if folder.exists() and not folder.is_dir():
        raise DatasetNotFoundError(
            f"image folder {folder} is a file, not a folder. Give the folder that holds one sub-folder "
            "per class (<folder>/<class name>/<image files>, or train/ and test/ each holding such class "
            "folders).", folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"image folder {folder} does not exist. Put one sub-folder per class in it "
            f"({folder}/<class name>/<image files>, or train/ and test/ each holding such class folders); "
            "image_folder data cannot be downloaded.",
            folder,
        )

    split = _split_folders(folder)
    class_root = split[0] if split else folder
    scan = _Scan()
    classes, skipped, loose = _class_folders(class_root, scan)
    if split:
        others = {e.name: "not a split: the folder holds train/ and test/" for e in os.scandir(folder)
                  if e.is_dir() and e.name not in (split[0].name, split[1].name) and not e.name.startswith(".")}
        _report(folder, others, 0)
    _report(class_root, skipped, loose)
    if not classes:
        raise DatasetNotFoundError(
            f"no class folder with images in {class_root}. Expected {class_root}/<class name>/<image files> "
            f"(image files end in {', '.join(IMAGE_EXTENSIONS)}).", class_root)
    if len(classes) < 2:
        raise ValueError(f"image_folder needs at least 2 class folders in {class_root}, found {classes}")
    class_to_idx = {c: k for k, c in enumerate(classes)}
    if split:
        test_classes, test_skipped, test_loose = _class_folders(split[1], scan)
        _report(split[1], test_skipped, test_loose)
        extra = sorted(set(test_classes) - set(classes))
        if extra:
            raise ValueError(f"the test folder {split[1]} has classes that {split[0]} does not have: {extra}")
        train_samples = _samples(split[0], classes, class_to_idx, scan)
        test_samples = _samples(split[1], test_classes, class_to_idx, scan)
        scan.report(folder)
        if not test_samples:
            raise DatasetNotFoundError(f"no images in the test folder {split[1]}", split[1])
        train_listing = _listing(train_samples, cache)
        listing = train_listing + _listing(test_samples, cache)
        tr = te = None
    else:
        samples = _samples(folder, classes, class_to_idx, scan)
        scan.report(folder)
        tr, te = _stratified_indices(np.asarray([y for _, y in samples], dtype=np.int64), test_size, seed)
        train_samples = [samples[i] for i in tr]
        test_samples = [samples[i] for i in te]
        listing = _listing(samples, cache)
        train_listing = None

    if resize is None:
        geometry = [T.Resize((image_size, image_size), interpolation=T.InterpolationMode(interpolation))]
    else:
        geometry = [T.Resize(resize, interpolation=T.InterpolationMode(interpolation)), T.CenterCrop(image_size)]
    base = geometry + [T.ToTensor()]
    n = len(train_samples) + len(test_samples)
    if in_memory is None:
        in_memory = not augment and n * 3 * image_size * image_size * 4 <= IN_MEMORY_BYTES

    images = None
    if in_memory:
        images = (_decode(ImageFiles(train_samples, classes, T.Compose(base)), "train"),
                  _decode(ImageFiles(test_samples, classes, T.Compose(base)), "test"))
    given = None if mean is None else [mean, std]
    if normalize and mean is None:
        if images is not None:  # in the DataLoader's batches: the same sums in the same order as item by item
            mean, std = _channel_stats(images[0].split(256))
        else:
            train_listing = train_listing or _listing(train_samples, cache)
            key = hashlib.sha256(f"{train_listing}\0{geometry!r}".encode()).hexdigest()
            train_plain = ImageFiles(train_samples, classes, T.Compose(base))
            mean, std = _cached_stats(cache, key, lambda: _channel_stats(
                xb for xb, _ in DataLoader(train_plain, batch_size=256, shuffle=False, num_workers=0)))
    source = hashlib.sha256(json.dumps({
        "image_folder": listing, "layout": "train/test" if split else "fraction", "classes": classes,
        "split": None if split else [test_size, seed], "image_size": image_size, "resize": resize,
        "interpolation": interpolation, "normalize": normalize, "statistics": given, "augment": augment,
    }, sort_keys=True).encode()).hexdigest()[:16]
    common = dict(num_classes=len(classes), in_channels=3, image_size=image_size, name="image_folder",
                  class_names=list(classes), mean=mean, std=std, source=source)
    if images is not None:
        X_train, X_test = images
        if mean is not None:
            m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
            s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
            X_train, X_test = X_train.sub(m).div(s), X_test.sub(m).div(s)  # what T.Normalize computes
        y_train = torch.tensor([y for _, y in train_samples], dtype=torch.int64)
        y_test = torch.tensor([y for _, y in test_samples], dtype=torch.int64)
        return DataSplit(train=TensorDataset(X_train.contiguous(), y_train),
                         test=TensorDataset(X_test.contiguous(), y_test), **common)
    tail: list[Callable] = [T.Normalize(mean, std)] if mean is not None else []
    aug: list[Callable] = []
    if augment:
        aug = [T.RandomCrop(image_size, padding=max(1, image_size // 8)), T.RandomHorizontalFlip()]
    train_tf, test_tf = T.Compose(base[:-1] + aug + base[-1:] + tail), T.Compose(base + tail)
    if split:
        return DataSplit(train=ImageFiles(train_samples, classes, train_tf),
                         test=ImageFiles(test_samples, classes, test_tf), **common)
    return DataSplit(train=Subset(ImageFiles(samples, classes, train_tf), tr.tolist()),
                     test=Subset(ImageFiles(samples, classes, test_tf), te.tolist()), **common)


def write_image_folder(folder: PathLike, images: Any, labels: Any, *, class_names: Optional[Sequence[str]] = None,
                       size: Optional[int] = None) -> Path:
    """Write images as PNG files in an image folder: ``folder/<class name>/<index>.png``.

    What :func:`load` reads as ``image_folder``; the notebooks and tests make image folders with it.

    Parameters
    ----------
    folder : path-like
        Created if missing.
    images : array-like, shape (n, H, W), (n, 1, H, W) or (n, 3, H, W)
        ``uint8`` values as they are, or real values in [0, 1] (clipped to it, scaled by 255 and
        rounded). One channel gives grey PNGs, three give RGB.
    labels : array-like of int, shape (n,)
        In ``[0, len(class_names))``.
    class_names : sequence of str, optional
        Folder names of the classes; default ``"0"``, ``"1"``, ... up to the largest label.
    size : int, optional
        Resize every image to ``size x size`` (bilinear) before writing.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Notes
    -----
    File ``i`` is named ``<i>.png`` with ``i`` zero-padded to the width of ``n - 1``. A file that
    already holds exactly the bytes to be written is left alone (its modification time too), so
    writing the same images again leaves the folder as it was (the run cache keys image folders by
    their files' contents, and does not read a file again whose size and times are unchanged).

    Raises
    ------
    ValueError
        Bad shapes, labels, values or class names.
    """
    import io

    from PIL import Image

    as_path(folder, "folder")
    if size is not None:
        size = _checks.check_int(size, "size", minimum=1)
    x = _to_numpy("images", images)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"images must hold real numbers, got dtype {x.dtype}")
    y = _as_labels("labels", labels)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (n, H, W), (n, 1, H, W) or (n, 3, H, W), got {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"images and labels must have the same length, got {len(x)} and {len(y)}")
    if x.dtype != np.uint8:
        xf = x.astype(np.float64)
        if not np.isfinite(xf).all():
            raise ValueError("images contain non-finite values")
        x = np.rint(np.clip(xf, 0.0, 1.0) * 255).astype(np.uint8)
    top = int(y.max()) + 1 if len(y) else 0
    names = [str(k) for k in range(top)] if class_names is None else [str(c) for c in class_names]
    if top > len(names):
        raise ValueError(f"labels go up to {top - 1} but class_names has {len(names)} entries")
    for c in names:
        if not c or c.startswith(".") or "/" in c or "\\" in c or c in ("..",):
            raise ValueError(f"class names must be plain folder names (not hidden, no slashes), got {c!r}")
    folder = Path(folder)
    width = len(str(max(len(x) - 1, 0)))
    for i, (img, label) in enumerate(zip(x, y)):
        pil = Image.fromarray(img[0], "L") if img.shape[0] == 1 else Image.fromarray(img.transpose(1, 2, 0), "RGB")
        if size is not None and pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        data = buf.getvalue()
        path = folder / names[label] / f"{i:0{width}d}.png"
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder
