"""Frozen copy of the PC loss and soft rank as they were before the Triton kernel (the reference).

``benchmarks/bench_loss.py`` times the package's :class:`pcoh.PerceptionCoherenceLoss` against
:func:`reference_pc_loss`, the same loss in the code of that time, kept here verbatim (cosine
dissimilarities with their checks, self pairs removed, hard teacher ranks by a radix sort,
per-row z-standardisation, the soft rank with its single-threaded float64 numba PAV pass run on
the CPU, Pearson). Nothing here is imported by the package; do not edit it to follow the package.
"""
from __future__ import annotations

import numpy as np
import torch

try:
    import numba

    _njit = numba.njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover
    numba = None

    def _njit(fn):
        return fn

_EPS = 1e-12


def _check_features(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")


def cosine(x: torch.Tensor) -> torch.Tensor:
    """``pcoh.dissimilarity.pairwise(x, "cosine")`` of that time."""
    _check_features(x, "x")
    xn = torch.nn.functional.normalize(x, dim=1, eps=_EPS)
    out = 1.0 - xn @ xn.T
    nonzero = (x != 0).any(dim=1).to(out.dtype)
    return out - torch.diag(torch.diagonal(out).detach() * nonzero)


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    n = matrix.shape[0]
    return matrix.flatten()[1:].view(n - 1, n + 1)[:, :-1].reshape(n, n - 1)


@_njit
def _pav_decreasing(y, solution, block_start, block_end):
    """Decreasing isotonic regression of every row of ``y`` by pool-adjacent-violators.

    ``y`` is (rows, m) float64. Writes the fitted values into ``solution`` and, for each element,
    the first and one-past-last index of the pooled block it belongs to into ``block_start`` and
    ``block_end`` (used by the backward pass).
    """
    rows, m = y.shape
    starts = np.empty(m, np.int64)
    sums = np.empty(m, np.float64)
    counts = np.empty(m, np.float64)
    for r in range(rows):
        top = -1
        for i in range(m):
            top += 1
            starts[top] = i
            sums[top] = y[r, i]
            counts[top] = 1.0
            # A decreasing fit is violated when a block's mean is not below its predecessor's.
            while top > 0 and sums[top - 1] * counts[top] <= sums[top] * counts[top - 1]:
                sums[top - 1] += sums[top]
                counts[top - 1] += counts[top]
                top -= 1
        for b in range(top + 1):
            mean = sums[b] / counts[b]
            lo = starts[b]
            hi = starts[b + 1] if b < top else m
            for i in range(lo, hi):
                solution[r, i] = mean
                block_start[r, i] = lo
                block_end[r, i] = hi


def _block_mean(values: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over each element's pooled block (rows are independent)."""
    csum = torch.nn.functional.pad(values.cumsum(dim=-1), (1, 0))
    return (csum.gather(-1, end) - csum.gather(-1, start)) / (end - start).to(values.dtype)


class _SoftRank(torch.autograd.Function):
    """Projection of ``values / strength`` onto the permutahedron, with an exact backward pass."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, strength: float) -> torch.Tensor:
        m = values.shape[-1]
        scaled = values / strength
        sorted_vals, perm = torch.sort(scaled, dim=-1, descending=True)
        rho = torch.arange(m, 0, -1, device=values.device, dtype=torch.float64)
        # PAV runs on the CPU in float64: float32 pooling drifts on long rows.
        y = (sorted_vals.detach().to(torch.float64) - rho).cpu().numpy()
        fit = np.empty_like(y)
        start = np.empty(y.shape, np.int64)
        end = np.empty(y.shape, np.int64)
        _pav_decreasing(np.ascontiguousarray(y), fit, start, end)
        fit_t = torch.from_numpy(fit).to(device=values.device, dtype=values.dtype)
        primal_sorted = sorted_vals - fit_t
        out = torch.empty_like(primal_sorted).scatter_(-1, perm, primal_sorted)
        ctx.strength = strength
        ctx.save_for_backward(
            perm,
            torch.from_numpy(start).to(values.device),
            torch.from_numpy(end).to(values.device),
        )
        return out

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        perm, start, end = ctx.saved_tensors
        grad_sorted = grad_output.gather(-1, perm)
        grad_sorted = grad_sorted - _block_mean(grad_sorted, start, end)
        grad = torch.empty_like(grad_sorted).scatter_(-1, perm, grad_sorted)
        return grad / ctx.strength, None


def _row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of matching rows of ``a`` and ``b`` (n, m); 0 for a constant row.

    Spearman's correlation once both are ranks. The clamped norms keep values and gradients free
    of NaN on constant rows (ranks are either constant or have norms far above the clamp).
    """
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    tiny = torch.finfo(a.dtype).eps
    norm = a.norm(dim=1).clamp_min(tiny) * b.norm(dim=1).clamp_min(tiny)
    return (a * b).sum(dim=1) / norm


@(numba.njit(cache=True, nogil=True, parallel=True) if numba is not None else _njit)
def _radix_ranks(keys, bits, out):
    """Average ranks of each row of unsigned integer ``keys`` (same order as the values).

    Per row, a stable least-significant-digit radix sort on 11-bit digits (3 passes for 32-bit
    keys, 6 for 64-bit), then one pass that gives each tie group its average position. Linear
    in the row length, and rows run in parallel: several times faster than a comparison sort
    of the same rows.
    """
    rows, m = keys.shape
    for r in numba.prange(rows):
        a = keys[r].copy()
        b = np.empty_like(a)
        ia = np.arange(m)
        ib = np.empty_like(ia)
        count = np.empty(2049, np.int64)
        for shift in range(0, bits, 11):
            count[:] = 0
            for j in range(m):
                count[((a[j] >> shift) & 2047) + 1] += 1
            for k in range(2048):
                count[k + 1] += count[k]
            for j in range(m):
                d = (a[j] >> shift) & 2047
                p = count[d]
                count[d] = p + 1
                b[p] = a[j]
                ib[p] = ia[j]
            a, b = b, a
            ia, ib = ib, ia
        lo = 0
        while lo < m:
            hi = lo + 1
            while hi < m and a[hi] == a[lo]:
                hi += 1
            value = 0.5 * (lo + hi + 1)  # mean of positions lo+1 .. hi
            for j in range(lo, hi):
                out[r, ia[j]] = value
            lo = hi


def _average_ranks_torch(keys: torch.Tensor, perm: torch.Tensor, dtype) -> torch.Tensor:
    """Average ranks from row-sorted ``keys`` and their permutation, with tensor ops (CUDA, or no numba)."""
    rows, m = keys.shape
    position = torch.arange(1, m + 1, device=keys.device, dtype=dtype).expand(rows, m)
    tied = keys[:, 1:] == keys[:, :-1]
    tie_rows = tied.any(dim=1).nonzero().squeeze(1)
    if tie_rows.numel():
        # Only rows with ties pay for the averaging: continuous data rarely has any.
        position = position.clone()
        new_group = torch.ones(tie_rows.numel(), m, dtype=torch.bool, device=keys.device)
        new_group[:, 1:] = ~tied[tie_rows]
        group = new_group.cumsum(dim=-1) - 1
        pos = position[tie_rows]
        total = torch.zeros_like(pos).scatter_add_(-1, group, pos)
        count = torch.zeros_like(pos).scatter_add_(-1, group, torch.ones_like(pos))
        position[tie_rows] = (total / count.clamp_min(1)).gather(-1, group)
    return torch.empty(rows, m, device=keys.device, dtype=dtype).scatter_(-1, perm, position)


def _order_keys(v: torch.Tensor) -> torch.Tensor:
    """Integer keys with the same order as the floats ``v`` (finite values).

    Sorting integers is markedly faster than sorting floats on the CPU. A non-negative IEEE float
    compares like its bit pattern read as a signed integer; flipping the magnitude bits of the
    negative ones makes the map increasing on all finite values. ``+ 0.0`` turns -0.0 into +0.0
    so the two zeros tie, as they do as floats.
    """
    itype = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16}.get(v.dtype)
    if itype is None:
        return v
    bits = (v + 0.0).view(itype)
    width = torch.iinfo(itype).bits
    return bits ^ ((bits >> (width - 1)) & torch.iinfo(itype).max)


def rank(values: torch.Tensor) -> torch.Tensor:
    """Hard ascending ranks along the last dimension, ties given their average rank.

    Equivalent to ``scipy.stats.rankdata(values, method="average", axis=-1)``; no gradient.

    Parameters
    ----------
    values : torch.Tensor, shape (m,) or (rows, m)
        Finite real values, any device.

    Returns
    -------
    torch.Tensor, same shape as ``values``
        Ranks from 1 to m (float, the dtype of ``values`` if floating, else float64).
    """
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"values must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() not in (1, 2):
        raise ValueError(f"values must be 1-D (m,) or 2-D (rows, m), got shape {tuple(values.shape)}")
    if values.shape[-1] < 1:
        raise ValueError(f"values must have at least one column, got shape {tuple(values.shape)}")
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        raise ValueError("values contains NaN or Inf values")
    squeeze = values.dim() == 1
    v = values.detach()
    if squeeze:
        v = v.unsqueeze(0)
    dtype = v.dtype if v.is_floating_point() else torch.float64
    rows, m = v.shape
    keys = _order_keys(v)
    unsigned = {torch.int32: np.uint32, torch.int64: np.uint64}.get(keys.dtype)
    if v.device.type == "cpu" and numba is not None and unsigned is not None:
        # Flipping the sign bit maps signed order onto unsigned order, which radix digits follow.
        flipped = keys.contiguous().numpy().view(unsigned) ^ unsigned(1 << (8 * keys.element_size() - 1))
        out = np.empty((rows, m), dtype=np.float64)
        _radix_ranks(flipped, 8 * keys.element_size(), out)
        ranks = torch.from_numpy(out).to(dtype)
    else:
        sorted_keys, perm = torch.sort(keys, dim=-1)
        ranks = _average_ranks_torch(sorted_keys, perm, dtype)
    return ranks.squeeze(0) if squeeze else ranks


def soft_rank(values: torch.Tensor, regularization_strength: float = 1.0) -> torch.Tensor:
    """The soft rank of that time: validation, then the projection (PAV on the CPU, float64)."""
    if not bool(torch.isfinite(values).all()):
        raise ValueError("values contains NaN or Inf values")
    return _SoftRank.apply(values, float(regularization_strength))


def reference_pc_loss(student: torch.Tensor, teacher: torch.Tensor, regularization_strength: float = 0.03) -> torch.Tensor:
    """``PerceptionCoherenceLoss()(student, teacher)`` (cosine both sides) as it was computed then."""
    for name, x in (("student", student), ("teacher", teacher)):
        _check_features(x, name)
    teacher = teacher.detach()
    d_s = off_diagonal(cosine(student))
    with torch.no_grad():
        target = rank(off_diagonal(cosine(teacher))).to(d_s.dtype)
    centred = d_s - d_s.mean(dim=1, keepdim=True)
    var = centred.pow(2).mean(dim=1, keepdim=True)
    ok = var > torch.finfo(d_s.dtype).eps ** 2
    z = torch.where(ok, centred / torch.where(ok, var, torch.ones_like(var)).sqrt(), torch.zeros_like(centred))
    ranks = soft_rank(z, regularization_strength)
    corr = _row_pearson(ranks, target)
    return (1.0 - corr).mean()
