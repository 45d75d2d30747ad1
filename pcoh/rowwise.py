"""Row-wise helpers the coherence measures (:mod:`pcoh.coherence`) and the diagnostics
(:mod:`pcoh.diagnostics`) share.

Reference ``i`` of N samples compares the other N - 1: these give a dissimilarity matrix a chunk
of rows (references) at a time (:class:`Rows`), remove each row's own column (:func:`drop_self`),
and correlate matching rows (:func:`row_pearson`; Spearman's correlation once both are ranks).
They also hold the checks of the features and chunk sizes the measures take.
"""
from __future__ import annotations

import types
from typing import Iterator

import numba
import numpy as np
import torch

from ._checks import as_features, check_int, check_seed
from .dissimilarity import Dissimilarity, MetricLike, get_metric, no_overflow, pairwise, renamed
from .radix import argsort_keys, argsort_packed32, average_ranks, packed_average_ranks, sortable_keys

__all__ = ["CHUNK_ELEMENTS", "check_pair", "check_chunk", "Rows", "drop_self", "chunks", "generator", "row_pearson",
           "spearman_rows"]

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

    def block(self, lo: int, hi: int) -> torch.Tensor:
        """Rows ``lo .. hi - 1`` as computed, the self-pairs left as the formula rounds them
        (for callers that leave them out)."""
        if self.full is not None:
            return self.full[lo:hi]
        return no_overflow(self.fn.matrix(self.x[lo:hi], self.x), self.fn.name, self.x)

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


@numba.njit(nogil=True, cache=True)
def _rank_without(row, skip, x, out, keys, order, tmp_keys, tmp_order, hist):
    """Average ranks (1..m) of ``row`` without its column ``skip`` (-1: none) into ``out``."""
    m = 0
    for j in range(row.shape[0]):
        if j != skip:
            x[m] = row[j] + 0.0  # + 0.0: -0.0 ties with +0.0
            m += 1
    if x.itemsize == 4:  # key and position in one word (keys and order as its two buffers)
        packed_average_ranks(argsort_packed32(x, keys, order, hist), out, 0.0)
        return
    nbytes = sortable_keys(x, keys)
    argsort_keys(keys, nbytes, order, tmp_keys, tmp_order, hist)
    average_ranks(x[:m], order, out, 0.0)


def _spearman_rows(ds, dt, lo, out):
    """The kernel of :func:`spearman_rows` (``lo`` -1: no self-pair); compiled twice below."""
    c, n = ds.shape
    m = n - 1 if lo >= 0 else n
    centre = 0.5 * (m + 1)
    for r in numba.prange(c):
        skip = lo + r if lo >= 0 else -1
        xs = np.empty(m, ds.dtype)
        xt = np.empty(m, dt.dtype)
        ra = np.empty(m, np.float64)
        rb = np.empty(m, np.float64)
        keys = np.empty(m, np.int64)
        order = np.empty(m, np.int64)
        tmp_keys = np.empty(m, np.int64)
        tmp_order = np.empty(m, np.int64)
        hist = np.empty((8, 256), np.int64)
        _rank_without(ds[r], skip, xs, ra, keys, order, tmp_keys, tmp_order, hist)
        _rank_without(dt[r], skip, xt, rb, keys, order, tmp_keys, tmp_order, hist)
        dot = 0.0
        na = 0.0
        nb = 0.0
        for k in range(m):
            a = ra[k] - centre
            b = rb[k] - centre
            dot += a * b
            na += a * a
            nb += b * b
        out[r] = dot / np.sqrt(na * nb) if na > 0.0 and nb > 0.0 else 0.0


# Rows in parallel only when there is enough work to share out: on a small block, waking the
# thread pool (and, on a busy machine, waiting for its slowest thread) costs more than the work.
_PARALLEL_MIN_ELEMENTS = 1 << 17
_spearman_rows_serial = numba.njit(nogil=True, cache=True)(_spearman_rows)
_spearman_rows_parallel = numba.njit(nogil=True, cache=True, parallel=True)(renamed(_spearman_rows, "_parallel"))


def spearman_rows(ds: torch.Tensor, dt: torch.Tensor, lo: int | None) -> np.ndarray:
    """Spearman correlation of matching rows of ``ds`` and ``dt`` (c, N) on the CPU, in float64.

    Row ``r`` leaves out its column ``lo + r`` (the self-pair of reference ``lo + r``) when
    ``lo`` is an int, nothing when it is None. Ties get average ranks (as
    ``scipy.stats.spearmanr``); a row constant on either side gets 0. One compiled sweep per row
    (both radix ranks and the correlation), rows in parallel: no (c, N) rank matrices are made.
    """
    _check_matrix(ds, "ds")
    _check_matrix(dt, "dt")
    if ds.shape != dt.shape:
        raise ValueError(f"ds and dt must have one shape, got {tuple(ds.shape)} and {tuple(dt.shape)}")
    a = ds.detach().cpu().contiguous()
    b = dt.detach().cpu().contiguous()
    if a.dtype not in (torch.float32, torch.float64) or b.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"ds and dt must be float32 or float64, got {a.dtype} and {b.dtype}")
    out = np.empty(a.shape[0], np.float64)
    kernel = _spearman_rows_parallel if a.numel() >= _PARALLEL_MIN_ELEMENTS else _spearman_rows_serial
    kernel(a.numpy(), b.numpy(), -1 if lo is None else check_int(lo, "lo", minimum=0), out)
    return out
