"""Data sets for pcoh: one entry point, :func:`load`, with deterministic splits.

Every loader returns a :class:`DataSplit` holding a train and a test
:class:`torch.utils.data.Dataset` whose items are ``(image, label)`` pairs, with
``image`` a float32 tensor of shape ``(C, H, W)`` and ``label`` an int.

Data sets
---------
``digits`` (default; bundled, works offline)
    :func:`sklearn.datasets.load_digits`: 1,797 real 8x8 grey-scale images of
    hand-written digits, 10 classes. Images ``(n, 1, 8, 8)`` float32, scaled to
    [0, 1] (divided by 16), then by default standardised with the *train* split's
    mean and std. Stratified train/test split with
    ``sklearn.model_selection.train_test_split(..., stratify=y, random_state=seed)``.
    In-memory :class:`~torch.utils.data.TensorDataset`.
``mnist``
    :class:`torchvision.datasets.MNIST`: 60,000 train / 10,000 test 28x28
    grey-scale digits, 10 classes. Images ``(1, 28, 28)``, normalised with
    mean 0.1307, std 0.3081. Files in ``<root>/MNIST/raw/``.
``fashion_mnist``
    :class:`torchvision.datasets.FashionMNIST`: 60,000 / 10,000 28x28 grey-scale
    clothing images, 10 classes. Images ``(1, 28, 28)``, mean 0.2860, std 0.3530.
    Files in ``<root>/FashionMNIST/raw/``.
``cifar10``
    :class:`torchvision.datasets.CIFAR10`: 50,000 / 10,000 32x32 colour images,
    10 classes. Images ``(3, 32, 32)``, mean (0.4914, 0.4822, 0.4465),
    std (0.2470, 0.2435, 0.2616). Files in ``<root>/cifar-10-batches-py/``.
``cifar100``
    :class:`torchvision.datasets.CIFAR100`: 50,000 / 10,000 32x32 colour images,
    100 (fine) classes. Images ``(3, 32, 32)``, mean (0.5071, 0.4865, 0.4409),
    std (0.2673, 0.2564, 0.2762). Files in ``<root>/cifar-100-python/``.
``image_folder``
    A user's folder of images, read and never written: ``root/<class name>/<image files>``
    split by a deterministic stratified ``test_size`` fraction, or ``root/train/<class
    name>/...`` and ``root/test/<class name>/...`` (or ``val/``) used as the two splits.
    Hidden sub-folders and sub-folders without image files are not classes (an
    :class:`ImageFolderWarning` names them). Images of any size and mode (grey, palette,
    16-bit, RGBA, EXIF-rotated) are converted to RGB ``(3, image_size, image_size)`` and
    standardised with the train split's channel statistics (or given ones, e.g. a
    teacher's published preprocessing). Small folders are decoded once and held in
    memory as :class:`~torch.utils.data.TensorDataset`; larger ones are read item by item
    (:class:`ImageFiles`, in :class:`~torch.utils.data.Subset` objects for a fraction
    split). :func:`write_image_folder` writes arrays as such a folder.

Arrays you already hold go through :func:`from_arrays` (images ``(n, C, H, W)``,
``(n, H, W)``, or flat features ``(n, d)``).

The torchvision data sets (``mnist``, ``fashion_mnist``, ``cifar10``,
``cifar100``) use their own official train/test split, so ``test_size`` and
``seed`` are validated but otherwise ignored for them. They are never downloaded
unless ``download=True``; with the files missing :func:`load` raises
:class:`DatasetNotFoundError` (a :class:`FileNotFoundError`) naming the folder it
looked in.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

__all__ = [
    "DataSplit",
    "DatasetNotFoundError",
    "DatasetIntegrityError",
    "available",
    "IMAGE_EXTENSIONS",
    "IN_MEMORY_BYTES",
    "ImageFiles",
    "ImageFolderWarning",
    "dataset_folder",
    "from_arrays",
    "load",
    "write_image_folder",
]

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- errors
class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are not where :func:`load` looked for them.

    Attributes
    ----------
    path : str
        The folder that was searched (the exact folder torchvision checks).
    missing : list of str
        File names expected in ``path`` and not found there.
    """

    def __init__(self, message: str, path: PathLike, missing: Sequence[str] = ()):
        super().__init__(message)
        self.path = os.fspath(path)
        self.missing = list(missing)

    def __str__(self) -> str:  # FileNotFoundError's str would drop the message otherwise
        return str(self.args[0])


class DatasetIntegrityError(RuntimeError):
    """The files of a data set exist but fail torchvision's md5 check.

    Attributes
    ----------
    path : str
        The folder that holds the files.
    corrupted : list of str
        File names whose md5 sum is not the official one.
    """

    def __init__(self, message: str, path: PathLike, corrupted: Sequence[str] = ()):
        super().__init__(message)
        self.path = os.fspath(path)
        self.corrupted = list(corrupted)


# ------------------------------------------------------------------------ DataSplit
@dataclass(frozen=True, eq=False, repr=False)
class DataSplit:
    """A train/test pair of data sets and what a model needs to know about them.

    Parameters
    ----------
    train, test : torch.utils.data.Dataset
        Items are ``(x, y)`` with ``x`` a float32 tensor of shape ``(C, H, W)``
        (or ``(d,)`` for flat features) and ``y`` an int label in
        ``[0, num_classes)``. In-memory data sets are
        :class:`~torch.utils.data.TensorDataset` of ``(X, y)`` with ``X`` float32
        ``(n, C, H, W)`` (or ``(n, d)``) and ``y`` int64 ``(n,)``.
    num_classes : int
        Number of classes.
    in_channels : int or None
        ``C``; ``None`` for flat features.
    image_size : int or None
        ``H`` (images are square for every built-in data set); ``None`` for flat
        features.
    name : str
        Data-set name, e.g. ``"digits"``.
    class_names : list of str
        ``class_names[k]`` is the name of label ``k``; length ``num_classes``.
    mean, std : tuple of float or None
        Per-channel statistics that were subtracted / divided out of the images
        (``None`` when the images were not normalised). ``x * std + mean`` undoes
        the normalisation channel-wise.
    source : str or None
        For data read from a user's files (``image_folder``): a digest of the files
        (names, labels, sizes, modification times) and of how they were read, which
        :mod:`pcoh.train` adds to the cache keys of runs on them. ``None`` for the
        built-in data sets, whose content their name fixes.
    """

    train: Dataset
    test: Dataset
    num_classes: int
    in_channels: Optional[int]
    image_size: Optional[int]
    name: str
    class_names: list = field(default_factory=list)
    mean: Optional[tuple] = None
    std: Optional[tuple] = None
    source: Optional[str] = None

    @property
    def input_shape(self) -> tuple:
        """Shape of one input: ``(C, H, W)`` for images, ``(d,)`` for flat features."""
        x, _ = self.train[0]
        return tuple(torch.as_tensor(x).shape)

    def tensors(self, split: str = "train", batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """Materialise one split as tensors.

        Parameters
        ----------
        split : {"train", "test"}
            Which split.
        batch_size : int, default 512
            Batch size used to iterate data sets that are not in memory.

        Returns
        -------
        X : torch.Tensor, float32, shape (n, C, H, W) or (n, d)
            The inputs, in the split's order.
        y : torch.Tensor, int64, shape (n,)
            The labels.

        Raises
        ------
        ValueError
            If ``split`` is not ``"train"`` or ``"test"``.

        Notes
        -----
        For a :class:`~torch.utils.data.TensorDataset` the stored tensors are
        returned as they are (no copy). Other data sets are read through a
        :class:`~torch.utils.data.DataLoader` in order (no shuffling); a train
        split built with ``augment=True`` then yields one augmented draw.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        ds = self.train if split == "train" else self.test
        if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
            X, y = ds.tensors
            return X, y
        if len(ds) == 0:
            raise ValueError(f"the {split} split is empty")
        xs, ys = [], []
        for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0):
            xs.append(torch.as_tensor(xb, dtype=torch.float32))
            ys.append(torch.as_tensor(yb, dtype=torch.int64))
        return torch.cat(xs), torch.cat(ys)

    def __repr__(self) -> str:
        shape = (
            f"in_channels={self.in_channels}, image_size={self.image_size}"
            if self.in_channels is not None
            else "flat features"
        )
        return (
            f"DataSplit(name={self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"num_classes={self.num_classes}, {shape})"
        )


# ----------------------------------------------------------------------- validation
def _check_test_size(test_size: Any) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.floating)):
        raise ValueError(f"test_size must be a float in the open interval (0, 1), got {test_size!r}")
    test_size = float(test_size)
    if not (0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be a float in the open interval (0, 1), got {test_size!r}")
    return test_size


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if not (0 <= int(seed) < 2**32):
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return int(seed)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_kwargs(name: str, kwargs: dict, allowed: dict) -> dict:
    """Merge ``kwargs`` into the defaults ``allowed``; unknown keys raise TypeError."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise TypeError(f"load({name!r}) got unexpected keyword argument(s) {unknown}; accepted: {accepted}")
    return {**allowed, **kwargs}


def _stratified_indices(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of ``arange(len(y))`` (sorted index arrays)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        tr, te = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    except ValueError as e:
        raise ValueError(
            f"cannot make a stratified split of {len(y)} samples in {len(np.unique(y))} classes "
            f"with test_size={test_size}: {e}"
        ) from e
    return np.sort(tr), np.sort(te)


# ------------------------------------------------------------------------ registry
_NAMES = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder")


def available() -> list[str]:
    """Names accepted by :func:`load`.

    Returns
    -------
    list of str
        ``["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder"]``.
    """
    return list(_NAMES)


def _canonical(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"data-set name must be a string, one of {available()}; got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _NAMES:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(available())}")
    return key


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


def dataset_folder(name: str, root: PathLike = "data") -> Path:
    """Folder in which :func:`load` looks for a data set's files.

    Parameters
    ----------
    name : str
        A name from :func:`available`.
    root : str or path-like, default "data"
        The ``root`` passed to :func:`load`.

    Returns
    -------
    pathlib.Path
        ``<root>/MNIST/raw``, ``<root>/FashionMNIST/raw``,
        ``<root>/cifar-10-batches-py``, ``<root>/cifar-100-python``, ``root``
        itself for ``image_folder``; for ``digits`` (bundled with scikit-learn)
        the scikit-learn data folder.
    """
    key = _canonical(name)
    if key == "digits":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    if key == "image_folder":
        return Path(root)
    return Path(root) / _TV_SPECS[key].folder


# --------------------------------------------------------------------------- public
def load(
    name: str = "digits",
    root: PathLike = "data",
    download: bool = False,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    **kwargs: Any,
) -> DataSplit:
    """Load a data set as a deterministic train/test :class:`DataSplit`.

    Parameters
    ----------
    name : str, default "digits"
        One of :func:`available` (case-insensitive; ``-`` may stand for ``_``).
    root : str or path-like, default "data"
        Where the files are (or are downloaded to). For ``image_folder`` the
        folder holding one sub-folder per class. Ignored for ``digits``.
    download : bool, default False
        Let torchvision download missing files (``mnist``, ``fashion_mnist``,
        ``cifar10``, ``cifar100``). No effect for ``digits`` (bundled) and
        ``image_folder`` (local only).
    test_size : float in (0, 1), default 0.2
        Fraction of samples in the test split (``digits``, ``image_folder``).
        The torchvision data sets keep their official split and ignore it.
    seed : int, default 0
        ``random_state`` of the stratified split (``digits``, ``image_folder``);
        ignored by the torchvision data sets.
    **kwargs
        Per data set options:

        ``digits``
            ``normalize=True``: standardise with the train split's pixel mean
            and std (one scalar each, population std; stored as ``mean``/``std``
            on the result). ``False`` leaves values in [0, 1].
        ``mnist``, ``fashion_mnist``
            ``normalize=True`` (standard mean/std, see module docstring);
            ``augment=False`` (``True``: random crop 28 with padding 2 on the
            train split); ``verify`` is accepted and has no effect (torchvision
            checks only that the uncompressed files exist).
        ``cifar10``, ``cifar100``
            ``normalize=True`` (the usual CIFAR mean/std); ``augment=False``
            (``True``: random crop 32 with padding 4 and random horizontal flip
            on the train split); ``verify=True``: torchvision's md5 check of the
            files. ``verify=False`` reads the same files through torchvision's
            own class with the md5 sums set to ``None``, so only their presence
            is checked (for re-packed or locally generated files in the official
            pickle format). A downloaded archive is always md5-checked.
        ``image_folder``
            ``image_size=32`` (side of the square RGB output);
            ``resize=None`` (an int: resize the shorter side to ``resize``, then
            take the centre ``image_size`` square, as published preprocessing
            does; ``None``: resize the whole image to ``image_size`` squared);
            ``interpolation="bilinear"`` (or ``"bicubic"``, ``"nearest"``, ...);
            ``normalize=True`` (standardise channel-wise with ``mean`` and
            ``std`` when given, e.g. a teacher's published statistics, else with
            the train split's, computed by one pass over it; ``False``: values in
            [0, 1]); ``augment=False`` (``True``: random crop with padding
            ``image_size // 8`` and horizontal flip on the train split);
            ``in_memory=None`` (``True``: decode every image once and hold the
            splits as tensors; ``False``: read files item by item; ``None``:
            in memory when not augmented and at most :data:`IN_MEMORY_BYTES` of
            float32); ``cache=None`` (a folder, e.g. the run cache: the train
            split's statistics are kept in ``<cache>/statistics/`` for data read
            item by item, keyed by the files and the preprocessing). The folder
            is only read, never written.

    Returns
    -------
    DataSplit
        Train and test data sets with ``num_classes``, ``in_channels``,
        ``image_size``, ``name``, ``class_names``, ``mean`` and ``std``.

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the known ones) or a bad argument
        value (e.g. ``test_size`` outside (0, 1)).
    TypeError
        A keyword argument the data set does not accept.
    DatasetNotFoundError
        (a :class:`FileNotFoundError`) ``download=False`` and the files are not
        in :func:`dataset_folder`; the message names that folder.
    DatasetIntegrityError
        CIFAR files present but failing the md5 check (``verify=True``).

    Examples
    --------
    >>> split = load("digits", test_size=0.25, seed=1)
    >>> X, y = split.tensors("train")
    >>> X.shape[1:]
    torch.Size([1, 8, 8])
    """
    key = _canonical(name)
    test_size = _check_test_size(test_size)
    seed = _check_seed(seed)
    download = _check_bool("download", download)
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a path (str or os.PathLike), got {root!r}")
    if key == "digits":
        opts = _check_kwargs(key, kwargs, {"normalize": True})
        return _load_digits(test_size, seed, normalize=_check_bool("normalize", opts["normalize"]))
    if key == "image_folder":
        opts = _check_kwargs(key, kwargs, {"image_size": 32, "resize": None, "interpolation": "bilinear",
                                           "normalize": True, "mean": None, "std": None, "augment": False,
                                           "in_memory": None, "cache": None})
        return _load_image_folder(root, test_size, seed, **opts)
    opts = _check_kwargs(key, kwargs, {"normalize": True, "augment": False, "verify": True})
    return _load_torchvision(key, root, download, **opts)


def from_arrays(
    x_train: Any,
    y_train: Any,
    x_test: Any = None,
    y_test: Any = None,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    num_classes: Optional[int] = None,
    name: str = "arrays",
    class_names: Optional[Sequence[str]] = None,
) -> DataSplit:
    """Wrap arrays or tensors in a :class:`DataSplit`.

    Parameters
    ----------
    x_train : array-like or torch.Tensor, shape (n, C, H, W), (n, H, W) or (n, d)
        Inputs, any real numeric dtype (converted to float32 as they are, no
        scaling or normalisation). ``(n, H, W)`` gets a channel axis:
        ``(n, 1, H, W)``. Values must be finite.
    y_train : array-like or torch.Tensor of int, shape (n,)
        Labels, an integer dtype, values in ``[0, num_classes)``.
    x_test, y_test : optional
        A given test split (same per-sample shape as ``x_train``). When omitted,
        ``x_train``/``y_train`` are split with
        ``train_test_split(..., test_size=test_size, stratify=y, random_state=seed)``.
        Give both or neither.
    test_size : float in (0, 1), default 0.2
        Used only when no test split is given.
    seed : int, default 0
        Used only when no test split is given.
    num_classes : int, optional
        Defaults to ``max(label) + 1`` over both splits.
    name : str, default "arrays"
        Stored on the result.
    class_names : sequence of str, optional
        Defaults to ``["0", "1", ...]``.

    Returns
    -------
    DataSplit
        :class:`~torch.utils.data.TensorDataset` splits of float32 ``X`` and
        int64 ``y``. For images ``in_channels = C`` and ``image_size = H``; for
        flat features ``(n, d)`` both are ``None`` and the stored ``X`` keeps
        shape ``(n, d)``. ``mean`` and ``std`` are ``None``.

    Raises
    ------
    ValueError
        Mismatched lengths, non-integer or negative labels, non-finite inputs,
        fewer than 2 classes, a bad shape, or a bad ``num_classes``,
        ``test_size`` or ``seed``.
    """
    if (x_test is None) != (y_test is None):
        raise ValueError("give both x_test and y_test, or neither")
    Xtr = _as_inputs("x_train", x_train)
    ytr = _as_labels("y_train", y_train)
    if len(Xtr) != len(ytr):
        raise ValueError(f"x_train and y_train must have the same length, got {len(Xtr)} and {len(ytr)}")
    if x_test is None:
        test_size = _check_test_size(test_size)
        seed = _check_seed(seed)
        if len(np.unique(ytr)) < 2:
            raise ValueError(f"need at least 2 classes, y_train has {len(np.unique(ytr))}: {np.unique(ytr).tolist()}")
        tr, te = _stratified_indices(ytr, test_size, seed)
        Xtr, Xte, ytr, yte = Xtr[tr], Xtr[te], ytr[tr], ytr[te]
    else:
        Xte = _as_inputs("x_test", x_test)
        yte = _as_labels("y_test", y_test)
        if len(Xte) != len(yte):
            raise ValueError(f"x_test and y_test must have the same length, got {len(Xte)} and {len(yte)}")
        if Xte.shape[1:] != Xtr.shape[1:]:
            raise ValueError(
                f"x_test samples must have the shape of x_train samples, got {Xte.shape[1:]} and {Xtr.shape[1:]}"
            )
    n_distinct = len(np.unique(ytr))
    if n_distinct < 2:
        raise ValueError(f"need at least 2 classes in the training labels, got {n_distinct}: {np.unique(ytr).tolist()}")
    top = int(max(ytr.max(), yte.max() if len(yte) else 0)) + 1
    if num_classes is None:
        num_classes = top
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        num_classes = int(num_classes)
        if top > num_classes:
            raise ValueError(f"num_classes={num_classes} but labels go up to {top - 1}")
    if class_names is None:
        class_names = [str(k) for k in range(num_classes)]
    else:
        class_names = [str(c) for c in class_names]
        if len(class_names) != num_classes:
            raise ValueError(f"class_names must have num_classes={num_classes} entries, got {len(class_names)}")
    image = Xtr.ndim == 4
    return DataSplit(
        train=TensorDataset(torch.from_numpy(np.ascontiguousarray(Xtr)), torch.from_numpy(ytr)),
        test=TensorDataset(torch.from_numpy(np.ascontiguousarray(Xte)), torch.from_numpy(yte)),
        num_classes=num_classes,
        in_channels=int(Xtr.shape[1]) if image else None,
        image_size=int(Xtr.shape[2]) if image else None,
        name=str(name),
        class_names=class_names,
    )


# -------------------------------------------------------------------- array helpers
def _to_numpy(name: str, a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # ragged lists etc.
        raise ValueError(f"{name} cannot be converted to an array: {e}") from e


def _as_inputs(name: str, x: Any) -> np.ndarray:
    a = _to_numpy(name, x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim not in (2, 4):
        raise ValueError(f"{name} must have shape (n, C, H, W), (n, H, W) or (n, d), got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf): {int((~np.isfinite(a)).sum())} of them")
    return a


def _as_labels(name: str, y: Any) -> np.ndarray:
    a = _to_numpy(name, y)
    if not np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        raise ValueError(
            f"{name} must have an integer dtype, got {a.dtype}; "
            "cast whole-number labels with .astype(int) / .long()"
        )
    if a.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {a.shape}")
    if len(a) and a.min() < 0:
        raise ValueError(f"{name} must be >= 0, got minimum {int(a.min())}")
    return a.astype(np.int64)


# ------------------------------------------------------------------------- digits
def _load_digits(test_size: float, seed: int, normalize: bool) -> DataSplit:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    tr, te = _stratified_indices(y, test_size, seed)
    Xtr, Xte = X[tr], X[te]
    mean = std = None
    if normalize:
        m = float(Xtr.mean(dtype=np.float64))
        s = float(Xtr.std(dtype=np.float64))
        Xtr = ((Xtr - m) / s).astype(np.float32)
        Xte = ((Xte - m) / s).astype(np.float32)
        mean, std = (m,), (s,)
    return DataSplit(
        train=TensorDataset(torch.from_numpy(np.ascontiguousarray(Xtr)), torch.from_numpy(y[tr])),
        test=TensorDataset(torch.from_numpy(np.ascontiguousarray(Xte)), torch.from_numpy(y[te])),
        num_classes=10,
        in_channels=1,
        image_size=8,
        name="digits",
        class_names=[str(k) for k in range(10)],
        mean=mean,
        std=std,
    )


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

    normalize = _check_bool("normalize", normalize)
    augment = _check_bool("augment", augment)
    verify = _check_bool("verify", verify)
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


# -------------------------------------------------------------------- image folder
#: File endings read as images (torchvision's ``IMG_EXTENSIONS``), compared in lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: An image folder without augmentation whose decoded float32 images take at most this many bytes
#: is held in memory (``in_memory=None``): decoded once, no reader processes, the teacher's outputs
#: computed once per student run.
IN_MEMORY_BYTES = 1 << 30


class ImageFolderWarning(UserWarning):
    """Sub-folders or files of an image folder that are not read (hidden, no images, loose files)."""


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _walk(folder: PathLike):
    """Image files below ``folder`` in a fixed order; hidden folders and files are skipped."""
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if _is_image(f):
                yield os.path.join(here, f)


def _class_folders(folder: Path) -> tuple:
    """``(classes, skipped, loose)``: sub-folders holding images, the others with the reason, and the
    number of image files lying directly in ``folder``."""
    classes, skipped, loose = [], {}, 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name.startswith("."):
                skipped[entry.name] = "hidden"
            elif next(_walk(entry.path), None) is None:
                skipped[entry.name] = "no image files"
            else:
                classes.append(entry.name)
        elif _is_image(entry.name):
            loose += 1
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
    """An image file as an RGB PIL image: EXIF orientation applied, 16-bit and float grey scaled to 8 bits,
    palettes with transparency and alpha dropped, any other mode converted."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                a = np.asarray(img, dtype=np.float64)
                if img.mode == "F":
                    a = a * 255 if a.size and a.max() <= 1 else a
                elif img.mode.startswith("I;16") or (a.size and a.max() > 255):
                    a = a / 257  # 16-bit range
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
        self.samples = [(str(p), int(y)) for p, y in samples]
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


def _samples(folder: Path, classes: Sequence[str], class_to_idx: dict) -> list:
    return [(p, class_to_idx[c]) for c in classes for p in _walk(folder / c)]


def _listing(samples: Sequence, base: Path) -> str:
    """SHA-256 of the files' paths (relative to ``base``), labels, sizes and modification times."""
    h = hashlib.sha256()
    for path, label in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, base)}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
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
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{name} must be 3 numbers (one per RGB channel), got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
        out.append(float(v))
    if name == "std" and min(out) <= 0:
        raise ValueError(f"std must be positive, got {value!r}")
    return tuple(out)


def _cached_stats(cache: Optional[PathLike], key: str, compute: Callable) -> tuple:
    """``compute() -> (mean, std)``, read from ``<cache>/statistics/image_folder-<key>.json`` when there."""
    if cache is None:
        return compute()
    from . import runs as _runs

    path = Path(cache) / "statistics" / f"image_folder-{key[:16]}.json"
    if path.exists():
        try:
            stored = _runs.read_json(path)
            mean, std = _check_stats(stored["mean"], "mean"), _check_stats(stored["std"], "std")
            if stored.get("key") == key and mean is not None and std is not None:
                return mean, std
        except (_runs.CorruptFileError, KeyError, TypeError, ValueError) as err:
            _runs.quarantine(path, str(err))
    mean, std = compute()
    _runs.write_json({"key": key, "mean": list(mean), "std": list(std)}, path)
    return mean, std


def _load_image_folder(
    root: PathLike, test_size: float, seed: int, *, image_size: Any, resize: Any, normalize: Any, mean: Any,
    std: Any, interpolation: Any, augment: Any, in_memory: Any, cache: Any,
) -> DataSplit:
    from torchvision import transforms as T

    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    image_size = int(image_size)
    if resize is not None:
        if isinstance(resize, bool) or not isinstance(resize, (int, np.integer)) or resize < image_size:
            raise ValueError(f"resize must be an int >= image_size ({image_size}) or None, got {resize!r}")
        resize = int(resize)
    normalize = _check_bool("normalize", normalize)
    augment = _check_bool("augment", augment)
    mean, std = _check_stats(mean, "mean"), _check_stats(std, "std")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is not None and not normalize:
        raise ValueError("mean and std are given but normalize=False")
    modes = [m.value for m in T.InterpolationMode]
    if interpolation not in modes:
        raise ValueError(f"interpolation must be one of {modes}, got {interpolation!r}")
    if in_memory is not None:
        in_memory = _check_bool("in_memory", in_memory)
        if in_memory and augment:
            raise ValueError("in_memory=True holds decoded images, which cannot be augmented; use augment=False")
    if cache is not None and not isinstance(cache, (str, os.PathLike)):
        raise ValueError(f"cache must be a folder (a path) or None, got {cache!r}")
    folder = Path(root)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"image folder {folder} does not exist. Put one sub-folder per class in it "
            f"({folder}/<class name>/<image files>, or train/ and test/ each holding such class folders); "
            "image_folder data cannot be downloaded.",
            folder,
        )

    split = _split_folders(folder)
    class_root = split[0] if split else folder
    classes, skipped, loose = _class_folders(class_root)
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
        test_classes, test_skipped, test_loose = _class_folders(split[1])
        _report(split[1], test_skipped, test_loose)
        extra = sorted(set(test_classes) - set(classes))
        if extra:
            raise ValueError(f"the test folder {split[1]} has classes that {split[0]} does not have: {extra}")
        train_samples = _samples(split[0], classes, class_to_idx)
        test_samples = _samples(split[1], test_classes, class_to_idx)
        if not test_samples:
            raise DatasetNotFoundError(f"no images in the test folder {split[1]}", split[1])
        listing = _listing(train_samples, folder) + _listing(test_samples, folder)
        tr = te = None
    else:
        samples = _samples(folder, classes, class_to_idx)
        tr, te = _stratified_indices(np.asarray([y for _, y in samples], dtype=np.int64), test_size, seed)
        train_samples = [samples[i] for i in tr]
        test_samples = [samples[i] for i in te]
        listing = _listing(samples, folder)

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
            key = hashlib.sha256(f"{_listing(train_samples, folder)}\0{geometry!r}".encode()).hexdigest()
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
    writing the same images again leaves the folder as it was, and the run cache, which keys image
    folders by their files' names, sizes and times, still finds its runs.

    Raises
    ------
    ValueError
        Bad shapes, labels, values or class names.
    """
    import io

    from PIL import Image

    x = _to_numpy("images", images)
    y = _as_labels("labels", labels)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (n, H, W), (n, 1, H, W) or (n, 3, H, W), got {x.shape}")
    if len(x) != len(y):
        raise ValueError(f"images and labels must have the same length, got {len(x)} and {len(y)}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ValueError(f"images must hold real numbers, got dtype {x.dtype}")
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
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1):
        raise ValueError(f"size must be a positive int, got {size!r}")
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


# ------------------------------------------------------------------ batch sources
@dataclass(frozen=True, eq=False)
class InMemory:
    """A training set held as tensors, with what turns stored pixels into model inputs.

    Attributes
    ----------
    images : torch.Tensor, (n, C, H, W) or (n, d)
        uint8 raw pixels (torchvision sets) or float32 inputs (tensor data sets).
    labels : torch.Tensor, int64, (n,)
    mean, std : tuple of float or None
        Applied after scaling uint8 pixels to [0, 1], as ``ToTensor`` + ``Normalize`` do.
    augment : pcoh.augment.CropFlip
        Applied to the stored pixels, before scaling, as torchvision applies it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    mean: Optional[tuple] = None
    std: Optional[tuple] = None
    augment: Any = None
    padded: Optional[torch.Tensor] = None  # images with the crop's zero padding, made by ``to``

    def to(self, device) -> "InMemory":
        """A copy on ``device``, with the padded images the crop reads from when augmenting."""
        images = self.images.to(device)
        padded = None
        if self.augment is not None and self.augment.active:
            padded = torch.nn.functional.pad(images, (self.augment.padding,) * 4).contiguous()
        return InMemory(images, self.labels.to(device), self.mean, self.std, self.augment, padded)

    def batch(self, idx: torch.Tensor, generator: Optional[torch.Generator] = None, augment: bool = True) -> torch.Tensor:
        """Model inputs of the samples ``idx`` (float32, on the images' device)."""
        if augment and self.augment is not None and self.augment.active:
            from .augment import draw, gather_crop_flip

            padded = self.padded if self.padded is not None else self.to(self.images.device).padded
            rows, cols, flips = draw(len(idx), self.augment.padding, self.augment.flip, generator=generator,
                                     device=self.images.device)
            x = gather_crop_flip(padded, idx, rows, cols, flips, tuple(self.images.shape[-2:]))
        else:
            x = self.images[idx]
        if x.dtype == torch.uint8:
            # The same operations as ToTensor and Normalize, so that the values are identical.
            x = x.to(torch.float32).div(255)
            if self.mean is not None:
                mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
                x = x.sub(mean).div(std)
        return x


def _transform_plan(transform, image_size: int):
    """``(augment, mean, std)`` for a Compose of [RandomCrop] [RandomHorizontalFlip] ToTensor
    [Normalize] that the in-memory path reproduces exactly, or None for any other transform."""
    from torchvision import transforms as T

    from .augment import CropFlip

    steps = list(transform.transforms) if isinstance(transform, T.Compose) else [transform]
    padding, flip, mean, std = 0, 0.0, None, None
    pos = 0
    if pos < len(steps) and type(steps[pos]) is T.RandomCrop:
        crop = steps[pos]
        pad = crop.padding
        pads = [pad] if isinstance(pad, int) else list(pad or [0])
        if (tuple(crop.size) != (image_size, image_size) or crop.pad_if_needed or crop.fill != 0
                or crop.padding_mode != "constant" or len(set(pads)) != 1 or not isinstance(pads[0], int)):
            return None
        padding, pos = pads[0], pos + 1
    if pos < len(steps) and type(steps[pos]) is T.RandomHorizontalFlip:
        flip, pos = float(steps[pos].p), pos + 1
    if pos >= len(steps) or type(steps[pos]) is not T.ToTensor:
        return None
    pos += 1
    if pos < len(steps) and type(steps[pos]) is T.Normalize:
        mean, std = tuple(float(v) for v in steps[pos].mean), tuple(float(v) for v in steps[pos].std)
        pos += 1
    if pos != len(steps):
        return None
    return CropFlip(padding, flip), mean, std


_IN_MEMORY: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def in_memory(dataset: Dataset) -> Optional[InMemory]:
    """The tensors of a data set that fits in memory, or None when it must be read item by item.

    Recognised: a :class:`~torch.utils.data.TensorDataset` of ``(X, y)`` (returned as stored),
    and torchvision's MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (uint8 pixels) whose transform
    is the one :func:`load` builds (random crop with zero padding, horizontal flip, ``ToTensor``,
    ``Normalize``; each optional but ``ToTensor``). Anything else (image folders, other
    transforms, a target transform) returns None. The result is remembered per data set object
    (and its transform), so the teacher and every student share one conversion.
    """
    try:
        transform, memory = _IN_MEMORY[dataset]
        if transform is getattr(dataset, "transform", None):
            return memory
    except (KeyError, TypeError):
        pass
    memory = _in_memory(dataset)
    try:
        _IN_MEMORY[dataset] = (getattr(dataset, "transform", None), memory)
    except TypeError:  # not weakly referenceable
        pass
    return memory


def _in_memory(dataset: Dataset) -> Optional[InMemory]:
    if isinstance(dataset, TensorDataset):
        if len(dataset.tensors) != 2:
            return None
        x, y = dataset.tensors
        return InMemory(x, y)
    try:
        import torchvision.datasets as tvd
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(dataset, (tvd.MNIST, tvd.CIFAR10)) or dataset.target_transform is not None:
        return None
    if isinstance(dataset, tvd.CIFAR10):  # CIFAR100 subclasses CIFAR10
        images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).contiguous()
    else:  # MNIST, FashionMNIST
        images = torch.as_tensor(dataset.data)[:, None].contiguous()
    if images.dtype != torch.uint8 or images.shape[-1] != images.shape[-2]:
        return None
    plan = _transform_plan(dataset.transform, int(images.shape[-1])) if dataset.transform is not None else None
    if plan is None:
        return None
    augment, mean, std = plan
    return InMemory(images, torch.as_tensor(dataset.targets, dtype=torch.int64), mean, std, augment)


class _Seeded(Dataset):
    """Items ``(x, y, i)`` whose random transforms are seeded by ``(epoch seed, i)``.

    The sampler hands ``(i, seed)``; seeding each item makes the augmentation independent of the
    number of worker processes and of which worker reads which item, so an interrupted run that
    resumes at an epoch draws the same images as an uninterrupted one.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        i, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((seed * 1_000_003 + i) % (2**63))
            x, y = self.dataset[i]
        return torch.as_tensor(x), torch.as_tensor(y), i


class _EpochSampler(torch.utils.data.Sampler):
    """Yields ``(i, seed)`` in the order set by :meth:`set_epoch` (read in the main process)."""

    def __init__(self, n: int):
        self.n = n
        self.order: list = list(range(n))
        self.seed = 0

    def set_epoch(self, order: torch.Tensor, seed: int) -> None:
        self.order, self.seed = order.tolist(), seed

    def __iter__(self):
        return iter([(i, self.seed) for i in self.order])

    def __len__(self):
        return self.n


def default_num_workers() -> int:
    """Worker processes for data read item by item: one per core but one, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class BatchSource:
    """Mini-batches ``(x, y, idx)`` of a data set on a device, the same for a given seed and epoch.

    Data that fit in memory (:func:`in_memory`) are moved to ``device`` once, as stored (uint8
    pixels stay uint8); each batch is gathered, augmented (:mod:`pcoh.augment`) and normalised
    there. Other data go through a :class:`~torch.utils.data.DataLoader` with ``num_workers``
    persistent worker processes and pinned memory.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Items ``(x, y)``.
    batch_size : int
    device : torch.device
    shuffle : bool, default False
    drop_last : bool, default False
        Drop the last incomplete batch (static shapes for a captured training step).
    seed : int, default 0
        Each epoch's order and augmentation come from a generator seeded with
        ``seed * 100003 + epoch`` (on ``device`` for in-memory data).
    num_workers : int, optional
        Worker processes of the DataLoader path; default :func:`default_num_workers`.
    augment : bool, default True
        False: serve in-memory data without their random crop and flip.

    Yields (from :meth:`epoch`)
    ---------------------------
    x : torch.Tensor, float32, (b, C, H, W) or (b, d)
    y : torch.Tensor, int64, (b,)
    idx : torch.Tensor, int64, (b,)
        Positions of the samples in ``dataset``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, device, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, num_workers: Optional[int] = None, augment: bool = True):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer))
                                        or num_workers < 0):
            raise ValueError(f"num_workers must be an int >= 0 or None, got {num_workers!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.shuffle, self.drop_last, self.seed, self.augment = shuffle, drop_last, seed, augment
        self.num_workers = default_num_workers() if num_workers is None else int(num_workers)
        self.n = len(dataset)
        memory = in_memory(dataset)
        self.memory = memory.to(self.device) if memory is not None else None
        self._loader = None
        self._sampler = None

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last and full) else full + (rest > 0)

    @property
    def augmented(self) -> bool:
        """True when the same sample gives different inputs in different epochs."""
        if self.memory is not None:
            return self.augment and self.memory.augment is not None and self.memory.augment.active
        return True  # an item-by-item data set may hold any random transform

    def _generator(self, epoch: int) -> torch.Generator:
        dev = self.device if self.memory is not None else torch.device("cpu")
        return torch.Generator(device=dev).manual_seed(self.seed * 100_003 + epoch)

    def _stops(self) -> range:
        stop = self.n - self.n % self.batch_size if (self.drop_last and self.n >= self.batch_size) else self.n
        return range(0, stop, self.batch_size)

    def epoch(self, epoch: int = 0):
        """Iterate the batches of one epoch (see the class docstring)."""
        gen = self._generator(epoch)
        if self.shuffle:
            order = torch.randperm(self.n, generator=gen, device=gen.device)
        else:
            order = torch.arange(self.n, device=gen.device)
        if self.memory is not None:
            for lo in self._stops():
                idx = order[lo:lo + self.batch_size]
                yield self.memory.batch(idx, gen, self.augment), self.memory.labels[idx], idx
            return
        if self._loader is None:
            self._sampler = _EpochSampler(self.n)
            workers = self.num_workers
            self._loader = DataLoader(
                _Seeded(self.dataset), batch_size=self.batch_size, sampler=self._sampler, drop_last=self.drop_last,
                num_workers=workers, pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            )
        self._sampler.set_epoch(order, int(torch.randint(0, 2**62, (1,), generator=gen)))
        blocking = self.device.type != "cuda"
        for x, y, idx in self._loader:
            yield (torch.as_tensor(x).to(self.device, non_blocking=not blocking),
                   torch.as_tensor(y).to(self.device, non_blocking=not blocking),
                   idx.to(self.device, non_blocking=not blocking))
