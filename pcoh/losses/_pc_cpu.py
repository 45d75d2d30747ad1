r"""The plain perception-coherence correlation on the CPU in one compiled sweep per row.

:func:`pc_correlations_cpu` computes, for each reference row of the student's dissimilarities,
what :func:`pcoh.losses.pc._pc_correlations` computes with tensor operations for ``focus = 0``:
the row without its self-pair, standardised and stretched to the spread of the ranks, its soft
rank (sort, pool-adjacent-violators, un-permutation), and the Pearson correlation with the
teacher's centred hard ranks. The backward pass is analytic: the correlation's gradient, the
soft rank's exact Jacobian (block means subtracted in sorted order) and the standardisation's,
scattered back to the row's columns. Rows run in parallel for large batches.

One sweep per row replaces some twenty tensor operations and their autograd nodes: on small
batches (64 to 256, what CPU users train with) those operations' dispatch, allocations and
passes over memory cost more than the arithmetic.
"""
from __future__ import annotations

import math
import types

import numba
import numpy as np
import torch

from ..radix import INDEX_MASK, argsort_keys, argsort_packed32, average_ranks, packed_average_ranks, sortable_keys
from ..ranking import pav_pool

_njit = numba.njit(cache=True, nogil=True)
_njit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
_prange = numba.prange

# Rows in parallel only when there is enough work to share out (waking the pool costs more than
# a small batch's whole pass, more still on a busy machine).
PARALLEL_MIN_ELEMENTS = 1 << 17


@numba.njit(nogil=True, cache=True)
def _column(k, i, offset, n, has_self):
    """Column of the full (n, M) row ``i`` that position ``k`` of its compacted row reads.

    The compacted layout is the one of ``pcoh.losses.pc._exclude_self``: the references' block
    without the self-pair first, then the columns before the block, then those after it.
    """
    if not has_self:
        return k
    if k < n - 1:
        return offset + k + (1 if k >= i else 0)
    if k < n - 1 + offset:
        return k - (n - 1)
    return k + 1


def _forward_rows(ds, dt, offset, has_self, inv_eps, tiny, spread, target, a, perm, bend, stats, corr, bad, blocks):
    """Forward of every row ``r``: writes the teacher's centred hard ranks ``target[r]`` (ties
    averaged), the centred soft ranks ``a[r]``, the decreasing order ``perm[r]``, each sorted
    position's block end ``bend[r]``, ``stats[r] = (mean, scale, ok, ||a||, ||b||)`` and
    ``corr[r]``; ``bad[r]`` 1 (student) or 2 (teacher) when the row holds a NaN or an infinity."""
    n = ds.shape[0]
    m = target.shape[1]
    half = 0.5 * (m + 1)
    nbytes = ds.itemsize
    # Rows in ``blocks`` blocks (one per thread), each with its scratch arrays, made once.
    blocks = max(1, min(n, blocks))
    for blk_ in _prange(blocks):
        keys = np.empty(m, np.int64)
        order = np.empty(m, np.int64)
        tmp_keys = np.empty(m, np.int64)
        tmp_order = np.empty(m, np.int64)
        hist = np.empty((8, 256), np.int64)
        xt = np.empty(m, dt.dtype)
        x = np.empty(m, np.float64)
        zs = np.empty(m, ds.dtype)
        starts = np.empty(m, np.int64)
        sums = np.empty(m, np.float64)
        counts = np.empty(m, np.float64)
        y = np.empty(m, np.float64)
        for r in range(blk_ * n // blocks, (blk_ + 1) * n // blocks):
            # The teacher's hard ranks of the row, average ranks for ties, centred.
            ttotal = 0.0
            for k in range(m):
                v = dt[r, _column(k, r, offset, n, has_self)] + 0.0  # + 0.0: -0.0 ties with +0.0
                xt[k] = v
                ttotal += v
            if not np.isfinite(ttotal):
                bad[r] = 2
                continue
            if xt.itemsize == 4:  # key and position in one word (keys and order as its two buffers)
                packed_average_ranks(argsort_packed32(xt, keys, order, hist), target[r], half)  # centred
            else:
                argsort_keys(keys, sortable_keys(xt, keys), order, tmp_keys, tmp_order, hist)
                average_ranks(xt, order, target[r], half)  # centred
            total = 0.0
            for k in range(m):
                v = np.float64(ds[r, _column(k, r, offset, n, has_self)])
                x[k] = v
                total += v
            if not np.isfinite(total):
                bad[r] = 1
                continue
            mean = total / m
            var = 0.0
            for k in range(m):
                d = x[k] - mean
                var += d * d
            var /= m
            bnorm = 0.0
            for k in range(m):
                bnorm += np.float64(target[r, k]) ** 2
            bnorm = max(math.sqrt(bnorm), tiny)
            stats[r, 4] = bnorm
            if not var > tiny * tiny:  # all dissimilarities equal: correlation 0, no gradient
                stats[r, 0] = mean
                stats[r, 1] = 0.0
                stats[r, 2] = 0.0
                corr[r] = 0.0
                continue
            scale = spread / math.sqrt(var)
            # The scaled row in the features' dtype (the values the soft rank ranks and pools).
            for k in range(m):
                zs[k] = (x[k] - mean) * scale * inv_eps + 0.0  # + 0.0: -0.0 ties with +0.0
            packed = zs.itemsize == 4
            if packed:  # the sorted words in keys or order; their low 32 bits are the positions
                words = argsort_packed32(zs, keys, order, hist)
            else:
                sortable_keys(zs, keys)
                argsort_keys(keys, nbytes, order, tmp_keys, tmp_order, hist)
                words = order
            # Pool-adjacent-violators of y_i = s_i - (m - i), s decreasing, in float64.
            for i in range(m):
                p = words[m - 1 - i] & INDEX_MASK if packed else order[m - 1 - i]
                perm[r, i] = p
                y[i] = np.float64(zs[p]) - (m - i)
            top = pav_pool(y, starts, sums, counts)
            anorm = 0.0
            dot = 0.0
            for blk in range(top + 1):
                bmean = sums[blk] / counts[blk]
                lo = starts[blk]
                hi = starts[blk + 1] if blk < top else m
                for i in range(lo, hi):
                    p = perm[r, i]
                    v = np.float64(zs[p]) - bmean - half
                    a[r, p] = v
                    anorm += v * v
                    dot += v * np.float64(target[r, p])
                    bend[r, i] = hi
            anorm = math.sqrt(anorm)
            stats[r, 0] = mean
            stats[r, 1] = scale
            stats[r, 2] = 1.0
            stats[r, 3] = anorm
            corr[r] = dot / (max(anorm, tiny) * bnorm)


def _backward_rows(grad, ds, target, offset, has_self, inv_eps, tiny, spread, a, perm, bend, stats, corr, out, blocks):
    """Gradient ``out`` (n, M, zero-filled) of ``sum_r grad[r] * corr[r]`` with respect to ``ds``."""
    n = ds.shape[0]
    m = target.shape[1]
    spread2 = spread * spread
    # Rows in ``blocks`` blocks (one per thread), each with its scratch arrays, made once.
    blocks = max(1, min(n, blocks))
    for blk_ in _prange(blocks):
        ga = np.empty(m, np.float64)
        gz = np.empty(m, np.float64)
        z = np.empty(m, np.float64)
        for r in range(blk_ * n // blocks, (blk_ + 1) * n // blocks):
            g = grad[r]
            if stats[r, 2] == 0.0 or g == 0.0:
                continue
            anorm, bnorm = stats[r, 3], stats[r, 4]
            # d corr / d a: the cosine's gradient (the clamped norm has none below tiny).
            if anorm > tiny:
                ca = g / (anorm * bnorm)
                cc = g * corr[r] / (anorm * anorm)
            else:
                ca = g / (tiny * bnorm)
                cc = 0.0
            for k in range(m):
                ga[k] = ca * np.float64(target[r, k]) - cc * a[r, k]
            # Soft rank: (g - block mean of g) / eps in sorted order.
            i = 0
            while i < m:
                hi = bend[r, i]
                acc = 0.0
                for q in range(i, hi):
                    acc += ga[perm[r, q]]
                bm = acc / (hi - i)
                for q in range(i, hi):
                    p = perm[r, q]
                    gz[p] = (ga[p] - bm) * inv_eps
                i = hi
            # Standardisation z = (x - mean) * scale, scale = spread / std(x).
            mean, scale = stats[r, 0], stats[r, 1]
            gsum = 0.0
            gdot = 0.0
            for k in range(m):
                zk = (np.float64(ds[r, _column(k, r, offset, n, has_self)]) - mean) * scale
                z[k] = zk
                gsum += gz[k]
                gdot += gz[k] * zk
            gmean = gsum / m
            proj = gdot / (m * spread2)
            for k in range(m):
                out[r, _column(k, r, offset, n, has_self)] = scale * (gz[k] - gmean - z[k] * proj)


def _renamed(fn, suffix: str):
    """A copy of ``fn`` under another name (numba's disk cache is keyed by the name)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    return copy


_forward_serial = _njit(_forward_rows)
_forward_parallel = _njit_parallel(_renamed(_forward_rows, "_parallel"))
_backward_serial = _njit(_backward_rows)
_backward_parallel = _njit_parallel(_renamed(_backward_rows, "_parallel"))


def supported(d_s: torch.Tensor, d_t: torch.Tensor) -> bool:
    """Whether :func:`pc_correlations_cpu` handles these dissimilarities (both on the CPU, the
    student's in float32 or float64)."""
    return d_s.device.type == "cpu" and d_t.device.type == "cpu" and d_s.dtype in (torch.float32, torch.float64)


class _PCCorrelations(torch.autograd.Function):
    @staticmethod
    def forward(ctx, d_s, d_t, offset, strength):
        ds = d_s.detach().contiguous()
        dt = d_t.detach().contiguous()
        if dt.dtype not in (torch.float32, torch.float64):
            dt = dt.double()
        n, big_m = ds.shape
        has_self = offset is not None
        m = big_m - 1 if has_self else big_m
        off = int(offset) if has_self else 0
        inv_eps = 1.0 / strength
        tiny = float(torch.finfo(ds.dtype).eps)
        spread = math.sqrt((m * m - 1) / 12.0)
        # The centred ranks are multiples of 1/2 below m/2 in size: float32 holds them exactly
        # (below 2**23), with half the memory (every read widens them to float64).
        tn = np.empty((n, m), np.float32 if m < 1 << 23 else np.float64)
        a = np.empty((n, m), np.float64)  # written in full for every row the backward reads
        perm = np.empty((n, m), np.int32)
        bend = np.empty((n, m), np.int32)
        stats = np.zeros((n, 5), np.float64)
        corr = np.zeros(n, np.float64)
        bad = np.zeros(n, np.uint8)
        parallel = n * m >= PARALLEL_MIN_ELEMENTS
        kernel = _forward_parallel if parallel else _forward_serial
        blocks = numba.get_num_threads() if parallel else 1
        kernel(ds.numpy(), dt.numpy(), off, has_self, inv_eps, tiny, spread, tn, a, perm, bend, stats, corr, bad, blocks)
        if bad.any():
            side = "student" if (bad == 1).any() else "teacher"
            raise ValueError(f"the {side}'s dissimilarities contain NaN or Inf values")
        ctx.args = (tn, off, has_self, inv_eps, tiny, spread, a, perm, bend, stats, corr, parallel, blocks)
        ctx.save_for_backward(ds)
        return torch.from_numpy(corr).to(ds.dtype)

    @staticmethod
    def backward(ctx, grad_corr):
        (ds,) = ctx.saved_tensors
        tn, off, has_self, inv_eps, tiny, spread, a, perm, bend, stats, corr, parallel, blocks = ctx.args
        g = grad_corr.detach().to(torch.float64).contiguous().numpy()
        out = torch.zeros_like(ds)
        kernel = _backward_parallel if parallel else _backward_serial
        kernel(g, ds.numpy(), tn, off, has_self, inv_eps, tiny, spread, a, perm, bend, stats, corr, out.numpy(), blocks)
        return out, None, None, None


def pc_correlations_cpu(d_s: torch.Tensor, d_t: torch.Tensor, offset: int | None, strength: float) -> torch.Tensor:
    """(n,) correlations of the plain PC loss from the student's and the teacher's (n, M)
    dissimilarities ``d_s`` (float32 or float64, CPU; gradients flow through it) and ``d_t``.

    Row ``i`` leaves out column ``offset + i`` (its self-pair) when ``offset`` is an int, none
    when it is None. Returned in the dtype of ``d_s``.
    """
    return _PCCorrelations.apply(d_s, d_t, offset, float(strength))
