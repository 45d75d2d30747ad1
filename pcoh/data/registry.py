"""Data sets by name: :func:`load`, :func:`available` and where each one's files are looked for."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .digits import _load_digits
from .image_folder import _load_image_folder
from .._checks import as_path, check_bool, check_seed
from .split import SPLIT_SEEDS, DataSplit, PathLike, _check_kwargs, _check_test_size
from .torchvision_sets import _TV_SPECS, _load_torchvision

__all__ = ["available", "dataset_folder", "load"]


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
        raise TypeError(f"data-set name must be a string, one of {available()}; got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _NAMES:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(available())}")
    return key



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
    as_path(root, "root")
    if key == "digits":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    if key == "image_folder":
        return Path(root)
    return Path(root) / _TV_SPECS[key].folder



#: Each data set's options of :func:`load` and their defaults (``test_size`` and ``seed`` for all).
_OPTIONS = {
    "digits": {"normalize": True},
    "image_folder": {"image_size": 32, "resize": None, "interpolation": "bilinear", "normalize": True, "mean": None,
                     "std": None, "augment": False, "in_memory": None, "cache": None},
    "torchvision": {"normalize": True, "augment": False, "verify": True},
}


def load_defaults(name: str) -> dict:
    """The options :func:`load` takes for data set ``name`` and their default values
    (``test_size``, ``seed`` and the data set's own), so that an option given at its default can be
    told from one that changes the data."""
    key = _canonical(name)
    return {"test_size": 0.2, "seed": 0, **_OPTIONS[key if key in _OPTIONS else "torchvision"]}


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
    seed = check_seed(seed, optional=False, maximum=SPLIT_SEEDS - 1)
    download = check_bool(download, "download")
    as_path(root, "root")
    if key == "digits":
        opts = _check_kwargs(key, kwargs, _OPTIONS["digits"])
        return _load_digits(test_size, seed, normalize=check_bool(opts["normalize"], "normalize"))
    if key == "image_folder":
        opts = _check_kwargs(key, kwargs, _OPTIONS["image_folder"])
        return _load_image_folder(root, test_size, seed, **opts)
    opts = _check_kwargs(key, kwargs, _OPTIONS["torchvision"])
    return _load_torchvision(key, root, download, **opts)
