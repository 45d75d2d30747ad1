"""Data held in memory: the digits bundled with scikit-learn, and arrays the caller already holds."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .. import _checks
from .split import SPLIT_SEEDS, DataSplit, _as_inputs, _as_labels, _check_test_size, _stratified_indices

__all__ = ["from_arrays"]


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
        seed = _checks.check_seed(seed, optional=False, maximum=SPLIT_SEEDS - 1)
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
        num_classes = _checks.check_int(num_classes, "num_classes", minimum=2)
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
