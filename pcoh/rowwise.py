"""Row-wise helpers the coherence measures (:mod:`pcoh.coherence`) and the diagnostics
(:mod:`pcoh.diagnostics`) share.

Reference ``i`` of N samples compares the other N - 1: these give a dissimilarity matrix a chunk
of rows (references) at a time (:class:`Rows`), remove each row's own column (:func:`drop_self`),
and correlate matching rows (:func:`row_pearson`; Spearman's correlation once both are ranks).
They also hold the checks of the features and chunk sizes the measures take.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ._checks import as_features, check_int, check_seed
from .dissimilarity import Dissimilarity, MetricLike, get_metric, pairwise

__all__ = ["CHUNK_ELEMENTS", "check_pair", "check_chunk", "Rows", "drop_self", "chunks", "generator", "row_pearson"]

# Dissimilarities held per chunk (rows x N); about 64 MiB per float32 matrix.
CHUNK_ELEMENTS = 1 << 24




def check_pair(student, teacher, min_samples: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher features as (N, d) tensors of one dtype (float64 if either is)."""
    min_samples = check_int(min_samples, "min_samples", minimum=1)
    s = as_features(student, "student")
    t = as_features(teacher, "teacher")
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"student and teacher must have the same number of samples, got {s.shape[0]} and {t.shape[0]}")
    if s.shape[0] < min_samples:
        raise ValueError(f"student and teacher must hold at least {min_samples} samples, got {s.shape[0]}")
    dtype = torch.float64 if torch.float64 in (s.dtype, t.dtype) else torch.float32
    return s.to(dtype), t.to(dtype)


def check_chunk(chunk_size, n: int) -> int:
    """References per chunk: ``chunk_size``, or as many rows of N as fit in :data:`CHUNK_ELEMENTS`."""
    if chunk_size is None:
        return max(1, min(n, CHUNK_ELEMENTS // max(n, 1)))
    return check_int(chunk_size, "chunk_size", minimum=1)


class Rows:
    """Rows of a dissimilarity matrix, computed a chunk of references at a time.

    A built-in metric (a :class:`Dissimilarity`) computes only the rows asked for; a plain callable
    ``fn(x) -> (N, N)`` can only give the whole matrix, which is then computed once and sliced
    (O(N^2) memory, documented in the public functions).
    """

    def __init__(self, x: torch.Tensor, metric: MetricLike, argument: str):
        _check_matrix(x, "x")
        self.x = x
        self.fn = get_metric(metric, argument)
        self.full = None if isinstance(self.fn, Dissimilarity) else pairwise(x, self.fn).to(x.dtype)

    def __call__(self, lo: int, hi: int) -> torch.Tensor:
        return self.at(torch.arange(lo, hi))

    def at(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the matrix, (len(idx), N), with d(x_i, x_i) exactly 0."""
        rows = self.full[idx].clone() if self.full is not None else self.fn(self.x[idx], self.x)
        # d(x_i, x_i) is 0 by definition; the matrix formula may leave rounding there.
        rows[torch.arange(len(idx)), idx] = 0.0
        return rows


def drop_self(rows: torch.Tensor, lo) -> torch.Tensor:
    """Remove column ``idx[r]`` from row ``r``: (c, N) -> (c, N - 1), other columns in order.

    ``lo`` is either the first index of a contiguous chunk or a tensor of row indices.
    A gather with index ``j + (j >= idx[r])`` is several times faster than a boolean mask.
    """
    _check_matrix(rows, "rows")
    c, n = rows.shape
    if isinstance(lo, torch.Tensor):
        if lo.shape != (c,):
            raise ValueError(f"lo must be an int or a ({c},) tensor of row indices, got shape {tuple(lo.shape)}")
        idx = lo
    else:
        idx = torch.arange(check_int(lo, "lo", minimum=0), lo + c)
    cols = torch.arange(n - 1).expand(c, n - 1)
    return rows.gather(1, cols + (cols >= idx[:, None]))


def _check_matrix(x, name: str) -> None:
    """``x`` is a 2-D tensor (no look at its values: that would wait for an accelerator)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(x.shape)}")


def chunks(n: int, chunk: int) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` bounds of consecutive chunks of ``chunk`` rows covering ``range(n)``."""
    n, chunk = check_int(n, "n", minimum=0), check_int(chunk, "chunk", minimum=1)
    return ((lo, min(n, lo + chunk)) for lo in range(0, n, chunk))


def generator(seed) -> np.random.Generator:
    """A numpy generator seeded with ``seed`` (checked: None or an integer)."""
    return np.random.default_rng(check_seed(seed))


def row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of matching rows of ``a`` and ``b`` (n, m); 0 for a constant row.

    Spearman's correlation once both are ranks. The clamped norms keep values and gradients free
    of NaN on constant rows (ranks are either constant or have norms far above the clamp).
    """
    _check_matrix(a, "a")
    _check_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    tiny = torch.finfo(a.dtype).eps
    norm = a.norm(dim=1).clamp_min(tiny) * b.norm(dim=1).clamp_min(tiny)
    return (a * b).sum(dim=1) / norm
