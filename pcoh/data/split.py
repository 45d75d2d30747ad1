"""The train/test pair every loader returns, the stratified split, and the checks loaders share."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .. import _checks

__all__ = ["DataSplit"]

PathLike = Union[str, "os.PathLike[str]"]


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
#: A split's seed lies in [0, SPLIT_SEEDS): what scikit-learn's ``random_state`` takes.
SPLIT_SEEDS = 2**32


def _check_test_size(test_size: Any) -> float:
    return _checks.check_float(test_size, "test_size", minimum=0.0, maximum=1.0, strict=True)


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


# -------------------------------------------------------------------- array helpers
def _to_numpy(name: str, a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # ragged lists etc.
        raise TypeError(f"{name} cannot be converted to an array: {e}") from e


def _as_inputs(name: str, x: Any) -> np.ndarray:
    a = _to_numpy(name, x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) \
            or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
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
        raise TypeError(
            f"{name} must have an integer dtype, got {a.dtype}; "
            "cast whole-number labels with .astype(int) / .long()"
        )
    if a.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {a.shape}")
    if len(a) and a.min() < 0:
        raise ValueError(f"{name} must be >= 0, got minimum {int(a.min())}")
    return a.astype(np.int64)
