r"""Hard and differentiable ranks.

Two operators, both ranking rows of a tensor along the last dimension in ascending order
(the smallest value gets rank 1):

- :func:`rank`, hard ranks with ties given their average rank (as ``scipy.stats.rankdata``);
- :func:`soft_rank`, the differentiable rank of Blondel, Teboul, Berthet & Djolonga,
  *Fast Differentiable Sorting and Ranking* (ICML 2020), with L2 regularisation.

The soft rank of a row :math:`\theta \in \mathbb{R}^m` with strength :math:`\varepsilon > 0` is the
Euclidean projection of :math:`\theta / \varepsilon` onto the permutahedron of
:math:`\rho = (m, m-1, \dots, 1)`, the convex hull of all permutations of :math:`\rho`:

.. math::

    r_\varepsilon(\theta) = \arg\min_{\mu \in \mathcal{P}(\rho)} \tfrac12 \|\mu - \theta/\varepsilon\|^2 .

With :math:`s` the values :math:`\theta / \varepsilon` sorted in decreasing order (permutation
:math:`\sigma`), the projection is :math:`s - v` put back in the original order, where :math:`v` is
the decreasing isotonic regression of :math:`s - \rho`, solved exactly by pool-adjacent-violators
(PAV) in :math:`O(m)` after the :math:`O(m \log m)` sort. Inside each pooled block :math:`v` is the
block mean, so the Jacobian of the projection is :math:`(I - B)/\varepsilon` in sorted order, with
:math:`B` the block-averaging matrix: the backward pass subtracts block means from the incoming
gradient, which is exact and costs :math:`O(m)`.

Limits: :math:`\varepsilon \to 0` gives the hard ranks (when values are distinct), and
:math:`\varepsilon \to \infty` sends every rank to the mean rank :math:`(m + 1) / 2`. Soft ranks
keep the order of the input and sum to :math:`m (m + 1) / 2`.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["rank", "soft_rank"]

try:  # numba ships with umap-learn; without it the pure-Python kernel below is used (slow).
    import numba

    _njit = numba.njit(cache=True, nogil=True)
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

    def _njit(fn):
        return fn


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


def _check_2d_finite(values, name: str, min_columns: int = 1) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, m), got shape {tuple(values.shape)}")
    if values.shape[-1] < min_columns:
        raise ValueError(f"{name} must have at least {min_columns} column(s), got shape {tuple(values.shape)}")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {values.dtype}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} contains NaN or Inf values")


def soft_rank(values: torch.Tensor, regularization_strength: float = 1.0) -> torch.Tensor:
    r"""Differentiable ascending ranks of each row (Blondel et al. 2020, L2 regularisation).

    .. math::

        \mathrm{soft\_rank}_\varepsilon(\theta) = P_{\mathcal{P}(\rho)}(\theta / \varepsilon),
        \qquad \rho = (m, \dots, 1)

    Parameters
    ----------
    values : torch.Tensor, shape (rows, m)
        Floating-point values (float32 or float64, CPU or CUDA). Each row is ranked on its own.
    regularization_strength : float, default 1.0
        :math:`\varepsilon > 0`. Small values approach the hard ranks (gaps between values larger
        than :math:`\varepsilon` are ranked exactly); large values pull all ranks towards the
        mean rank :math:`(m + 1) / 2`.

    Returns
    -------
    torch.Tensor, shape (rows, m)
        Soft ranks, in the same order as ``values``, same dtype and device. Each row sums to
        :math:`m (m + 1) / 2`; the order of the values is preserved.

    Notes
    -----
    Forward cost :math:`O(m \log m)` per row (the sort), plus an :math:`O(m)` PAV pass compiled
    with numba; the backward pass is exact and :math:`O(m)`. On CUDA the PAV pass runs on the
    CPU (the sort, gathers and the backward stay on the GPU).
    """
    _check_2d_finite(values, "values")
    if isinstance(regularization_strength, bool) or not isinstance(regularization_strength, (int, float)):
        raise TypeError(
            f"regularization_strength must be a positive float, got {type(regularization_strength).__name__}"
        )
    if not (regularization_strength > 0 and np.isfinite(regularization_strength)):
        raise ValueError(f"regularization_strength must be a positive finite float, got {regularization_strength}")
    return _SoftRank.apply(values, float(regularization_strength))


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
