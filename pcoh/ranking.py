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

import types

import numpy as np
import torch

__all__ = ["rank", "soft_rank"]

import numba  # a declared dependency: the CPU kernels below are compiled with it

_njit = numba.njit(cache=True, nogil=True)
_njit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
_prange = numba.prange


@_njit
def _radix_argsort(keys, bits):
    """``(sorted copy of keys, permutation)`` of one row of unsigned integer keys of ``bits`` bits.

    A stable least-significant-digit radix sort on 11-bit digits (3 passes for 32-bit keys, 6
    for 64-bit): linear in the row length, several times faster than a comparison sort.
    """
    m = keys.shape[0]
    a = keys.copy()
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
            q = count[d]
            count[d] = q + 1
            b[q] = a[j]
            ib[q] = ia[j]
        a, b = b, a
        ia, ib = ib, ia
    return a, ia


@numba.njit(nogil=True, inline="always")  # inlined into both kernels
def pav_pool(y, starts, sums, counts):
    """Pool-adjacent-violators for the decreasing isotonic fit of ``y`` (float64, length m).

    Fills the blocks' first positions, sums and sizes (``starts``, ``sums``, ``counts``, each of
    length m) and returns the index of the last block; block ``b`` ends where ``b + 1`` starts
    (the last one at m).
    """
    top = -1
    for i in range(y.shape[0]):
        top += 1
        starts[top] = i
        sums[top] = y[i]
        counts[top] = 1.0
        # A decreasing fit is violated when a block's mean is not below its predecessor's.
        while top > 0 and sums[top - 1] * counts[top] <= sums[top] * counts[top - 1]:
            sums[top - 1] += sums[top]
            counts[top - 1] += counts[top]
            top -= 1
    return top


def _pav_rows(sorted_vals, primal, block_start, block_end):
    """Projection onto the permutahedron from each row's values sorted in decreasing order.

    ``sorted_vals`` is (rows, m), float32 or float64, each row decreasing. Runs the decreasing
    isotonic regression ``v`` of ``s - rho`` (``rho = (m, ..., 1)``) by pool-adjacent-violators in
    float64 whatever the input dtype (float32 pooling drifts on long rows), and writes
    ``primal = s - v`` (computed in float64, stored in the input dtype) and, for each sorted
    position, the first and one-past-last position of its pooled block (used by the backward
    pass). Compiled twice below: rows in parallel (``prange``) and one after the other.
    """
    rows, m = sorted_vals.shape
    for r in _prange(rows):
        y = np.empty(m, np.float64)
        for i in range(m):
            y[i] = np.float64(sorted_vals[r, i]) - (m - i)
        starts = np.empty(m, np.int64)
        sums = np.empty(m, np.float64)
        counts = np.empty(m, np.float64)
        top = pav_pool(y, starts, sums, counts)
        for b in range(top + 1):
            mean = sums[b] / counts[b]
            lo = starts[b]
            hi = starts[b + 1] if b < top else m
            for i in range(lo, hi):
                primal[r, i] = sorted_vals[r, i] - mean
                block_start[r, i] = lo
                block_end[r, i] = hi


def _sort_pav_scatter_rows(scaled, keys, bits, out, perm, block_end):
    """The whole CPU forward of each row in one sweep: radix argsort, PAV, un-permutation.

    ``keys`` are unsigned integers ordered as the values ``scaled`` (see :func:`_order_keys`), of
    ``bits`` bits. Per row: a stable least-significant-digit radix argsort on 11-bit digits
    (linear in the row length, several times faster than a comparison sort), read backwards for
    the decreasing order (ties come out reversed, which changes nothing: tied values always pool
    into one block), then the PAV pass of :func:`_pav_rows`, writing straight to the original positions. Writes the soft ranks
    ``out``, the decreasing order ``perm`` and each sorted position's block end.
    """
    rows, m = scaled.shape
    for r in _prange(rows):
        a, ia = _radix_argsort(keys[r], bits)
        y = np.empty(m, np.float64)
        for i in range(m):
            p = ia[m - 1 - i]
            perm[r, i] = p
            y[i] = np.float64(scaled[r, p]) - (m - i)
        starts = np.empty(m, np.int64)
        sums = np.empty(m, np.float64)
        counts = np.empty(m, np.float64)
        top = pav_pool(y, starts, sums, counts)
        for blk in range(top + 1):
            mean = sums[blk] / counts[blk]
            lo = starts[blk]
            hi = starts[blk + 1] if blk < top else m
            for i in range(lo, hi):
                p = perm[r, i]
                out[r, p] = scaled[r, p] - mean
                block_end[r, i] = hi


def _pav_backward_rows(grad_out, perm, block_end, strength, grad_in):
    """Exact backward of the soft rank: ``(g - block mean of g) / strength`` in sorted order.

    Block sums are accumulated in float64 straight from the incoming gradient (no cumulative
    sum whose differences would lose digits on long rows).
    """
    rows, m = grad_out.shape
    for r in _prange(rows):
        i = 0
        while i < m:
            hi = block_end[r, i]
            acc = 0.0
            for k in range(i, hi):
                acc += grad_out[r, perm[r, k]]
            mean = acc / (hi - i)
            for k in range(i, hi):
                p = perm[r, k]
                grad_in[r, p] = (grad_out[r, p] - mean) / strength
            i = hi


# Rows in parallel pay off only when there is enough work to share out: waking the thread pool
# costs more than the PAV pass of a small batch (and much more on a busy machine).
_PARALLEL_MIN_ELEMENTS = 1 << 17


def _renamed(fn, suffix: str):
    """A copy of ``fn`` under another name: numba's on-disk cache is keyed by the function's
    name, so the parallel and serial builds of one function need different names."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    return copy


_pav_rows_parallel = _njit_parallel(_renamed(_pav_rows, "_parallel"))
_pav_rows_serial = _njit(_pav_rows)
_sort_pav_parallel = _njit_parallel(_renamed(_sort_pav_scatter_rows, "_parallel"))
_sort_pav_serial = _njit(_sort_pav_scatter_rows)
_pav_backward_parallel = _njit_parallel(_renamed(_pav_backward_rows, "_parallel"))
_pav_backward_serial = _njit(_pav_backward_rows)


def _block_mean(values: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over each element's pooled block (rows are independent), in float64.

    Block sums are differences of a running sum. In float32 those differences lose the digits
    of the running total (on rows of 300 with strength 0.05, gradients that are exactly 0 for
    one-element blocks came out up to 1.7e-4), so the running sum is taken in float64, as the
    CPU kernel sums.
    """
    csum = torch.nn.functional.pad(values.to(torch.float64).cumsum(dim=-1), (1, 0))
    return (csum.gather(-1, end) - csum.gather(-1, start)) / (end - start).to(torch.float64)


def _soft_rank_grad(grad_output: torch.Tensor, perm: torch.Tensor, start: torch.Tensor, end: torch.Tensor, strength: float):
    """Exact backward of the soft rank with tensor ops: ``(g - block mean of g) / strength``.

    ``perm`` is the decreasing order of each row, ``start``/``end`` each sorted position's
    pooled block. Computed in float64 and rounded once, as the CPU kernel does.
    """
    g = grad_output.gather(-1, perm).to(torch.float64)
    grad_sorted = (g - _block_mean(g, start, end)) / strength
    return _unsort(grad_sorted, perm).to(grad_output.dtype)


def _unsort(sorted_vals: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Put each row of ``sorted_vals`` back in the original order (``perm`` from the sort)."""
    return torch.empty_like(sorted_vals).scatter_(-1, perm, sorted_vals)


def _scale(values: torch.Tensor, strength: float) -> torch.Tensor:
    """``values / strength`` as every backend computes it, bit for bit.

    PyTorch's CUDA kernels divide by a scalar as a product with its reciprocal (one bit of
    difference from a true division: 2856 of 19200 float32 values in one test): multiplying by the
    reciprocal on every device gives the GPU and the CPU the same scaled values, hence the same
    pooling decisions and the same blocks.
    """
    return values * (1.0 / strength)


# ----------------------------------------------------------------------------- Triton PAV
# One program per row runs the same pool-adjacent-violators pass as ``_pav_rows``: the stack of
# finished blocks (float64 sums, int32 starts) lives in global scratch memory, the current block
# and the one below it in registers, so a step that pools nothing touches memory only to push.
# One warp per program: every scalar load then reads, in one transaction, what the same warp
# stored before it.
_TRITON_KERNEL = None


def _triton_pav_kernel():
    """The Triton PAV kernel, compiled on first use (``None`` without Triton)."""
    global _TRITON_KERNEL
    if _TRITON_KERNEL is None:
        try:
            import triton
            import triton.language as tl
        except ImportError:
            _TRITON_KERNEL = False
            return None

        @triton.jit
        def _pav_kernel(sorted_ptr, primal_ptr, start_ptr, end_ptr, sums_ptr, bstart_ptr, m, BLOCK: tl.constexpr):
            row = tl.program_id(0).to(tl.int64)
            srow = sorted_ptr + row * m
            prow = primal_ptr + row * m
            strow = start_ptr + row * m
            enrow = end_ptr + row * m
            sums = sums_ptr + row * m
            bstart = bstart_ptr + row * (m + 1)
            lanes = tl.arange(0, BLOCK)

            # Phase 0: clear the block-start flags (kept in the ``start`` output until phase 3).
            for p0 in range(0, m, BLOCK):
                pos = p0 + lanes
                tl.store(strow + pos, tl.zeros([BLOCK], tl.int64), mask=pos < m)

            # Phase 1: PAV on y_i = s_i - (m - i), decreasing fit.
            cur_sum = tl.load(srow).to(tl.float64) - m
            cur_start = tl.full([], 0, tl.int32)
            prev_sum = tl.full([], 0.0, tl.float64)
            prev_start = tl.full([], 0, tl.int32)
            depth = tl.full([], 0, tl.int32)
            for i in range(1, m):
                y = tl.load(srow + i).to(tl.float64) - (m - i)
                tl.store(sums + depth, cur_sum)
                tl.store(bstart + depth, cur_start)
                prev_sum = cur_sum
                prev_start = cur_start
                depth += 1
                cur_sum = y
                cur_start = tl.full([], 0, tl.int32) + i
                # Pool while the block below has a mean not above the current one's.
                pool = prev_sum * (i + 1 - cur_start).to(tl.float64) <= cur_sum * (cur_start - prev_start).to(
                    tl.float64
                )
                while pool:
                    cur_sum = prev_sum + cur_sum
                    cur_start = prev_start
                    depth -= 1
                    below = tl.maximum(depth - 1, 0)
                    prev_sum = tl.load(sums + below)
                    prev_start = tl.load(bstart + below)
                    pool = (depth > 0) & (
                        prev_sum * (i + 1 - cur_start).to(tl.float64)
                        <= cur_sum * (cur_start - prev_start).to(tl.float64)
                    )
            tl.store(sums + depth, cur_sum)
            tl.store(bstart + depth, cur_start)
            depth += 1
            tl.store(bstart + depth, m)
            tl.debug_barrier()

            # Phase 2: block sums -> block means; flag each block's first position.
            for b0 in range(0, depth, BLOCK):
                b = b0 + lanes
                ok = b < depth
                lo = tl.load(bstart + b, mask=ok, other=0)
                hi = tl.load(bstart + b + 1, mask=ok, other=1)
                total = tl.load(sums + b, mask=ok, other=0.0)
                tl.store(sums + b, total / (hi - lo).to(tl.float64), mask=ok)
                tl.store(strow + lo, tl.full([BLOCK], 1, tl.int64), mask=ok)
            tl.debug_barrier()

            # Phase 3: block id of each position = running count of flags - 1; write the outputs.
            carry = tl.full([], 0, tl.int32)
            for p0 in range(0, m, BLOCK):
                pos = p0 + lanes
                ok = pos < m
                flag = tl.load(strow + pos, mask=ok, other=0).to(tl.int32)
                block = tl.cumsum(flag, axis=0) + carry - 1
                carry += tl.sum(flag, axis=0)
                block = tl.where(ok, block, 0)
                lo = tl.load(bstart + block, mask=ok, other=0)
                hi = tl.load(bstart + block + 1, mask=ok, other=0)
                mean = tl.load(sums + block, mask=ok, other=0.0)
                s = tl.load(srow + pos, mask=ok, other=0.0)
                # Subtracted in float64 and rounded once, as the CPU kernel does.
                tl.store(prow + pos, (s.to(tl.float64) - mean).to(s.dtype), mask=ok)
                tl.store(strow + pos, lo.to(tl.int64), mask=ok)
                tl.store(enrow + pos, hi.to(tl.int64), mask=ok)

        _TRITON_KERNEL = _pav_kernel
    return _TRITON_KERNEL or None


def _pav_triton(sorted_vals: torch.Tensor, block: int | None = None):
    """``(primal, block_start, block_end)`` of decreasing rows by the Triton kernel (no host sync).

    ``block`` (a power of two) is the width of the kernel's vector passes; tests shrink it to
    cover several chunks on short rows.
    """
    kernel = _triton_pav_kernel()
    rows, m = sorted_vals.shape
    sorted_vals = sorted_vals.contiguous()
    primal = torch.empty_like(sorted_vals)
    start = torch.empty(rows, m, dtype=torch.int64, device=sorted_vals.device)
    end = torch.empty_like(start)
    if rows == 0:
        return primal, start, end
    sums = torch.empty(rows, m, dtype=torch.float64, device=sorted_vals.device)
    bstart = torch.empty(rows, m + 1, dtype=torch.int32, device=sorted_vals.device)
    if block is None:
        block = 256 if m >= 256 else max(16, 1 << (m - 1).bit_length())
    if sorted_vals.device.type == "cuda":
        # Triton launches on the current device: make it the tensor's (one process, several GPUs).
        with torch.cuda.device(sorted_vals.device):
            kernel[(rows,)](sorted_vals, primal, start, end, sums, bstart, m, BLOCK=block, num_warps=1)
    else:
        kernel[(rows,)](sorted_vals, primal, start, end, sums, bstart, m, BLOCK=block, num_warps=1)
    return primal, start, end


# The soft rank of the Triton path is one custom operator, with its backward registered through
# ``torch.library``: torch.compile sees one opaque node (no tracing into Triton's launcher, the
# outputs' shapes known without running it) and takes the gradient from the registered formula.
# An autograd.Function here is not safe under torch.compile: PyTorch 2.11's Dynamo returned zero
# gradients for an autograd.Function whose forward ends in an in-place op on the returned tensor
# (pytorch/pytorch#180642, fixed in 2.12), as this forward's un-permutation does.
@torch.library.custom_op("pcoh::soft_rank_triton", mutates_args=())
def _soft_rank_triton_op(
    values: torch.Tensor, strength: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(soft ranks, decreasing order, block start, block end)`` of each row, all on the device."""
    sorted_vals, perm = torch.sort(_scale(values.detach(), strength), dim=-1, descending=True)
    primal_sorted, start, end = _pav_triton(sorted_vals)
    return _unsort(primal_sorted, perm), perm.contiguous(), start, end


@_soft_rank_triton_op.register_fake
def _(values, strength):
    index = torch.empty(values.shape, dtype=torch.int64, device=values.device)
    out = torch.empty(values.shape, dtype=values.dtype, device=values.device)
    return out, index, torch.empty_like(index), torch.empty_like(index)


def _soft_rank_triton_setup(ctx, inputs, output):
    _, perm, start, end = output
    ctx.strength = inputs[1]
    ctx.save_for_backward(perm, start, end)


def _soft_rank_triton_backward(ctx, grad_output, *_index_grads):
    perm, start, end = ctx.saved_tensors
    return _soft_rank_grad(grad_output, perm, start, end, ctx.strength), None


_soft_rank_triton_op.register_autograd(_soft_rank_triton_backward, setup_context=_soft_rank_triton_setup)


def _pav_numba(sorted_vals: torch.Tensor):
    """``(primal, block_start, block_end)`` of decreasing CPU rows by the numba kernel."""
    x = sorted_vals.detach().contiguous()
    primal = torch.empty_like(x)
    start = torch.empty(x.shape, dtype=torch.int64)
    end = torch.empty(x.shape, dtype=torch.int64)
    kernel = _pav_rows_parallel if x.numel() >= _PARALLEL_MIN_ELEMENTS else _pav_rows_serial
    if x.dtype in (torch.float32, torch.float64):
        kernel(x.numpy(), primal.numpy(), start.numpy(), end.numpy())
    else:  # half precision: pool in float64, hand back the input dtype
        wide = torch.empty_like(x, dtype=torch.float64)
        kernel(x.double().numpy(), wide.numpy(), start.numpy(), end.numpy())
        primal.copy_(wide)
    return primal, start, end


def _choose_backend(values: torch.Tensor) -> str:
    if values.device.type != "cpu" and _triton_pav_kernel() is not None:
        return "triton"
    return "numba"


class _SoftRank(torch.autograd.Function):
    """Projection of ``values / strength`` onto the permutahedron, with an exact backward pass
    (the numba path; the Triton path is the custom operator ``pcoh::soft_rank_triton``).

    On a float32/float64 CPU tensor one compiled sweep per row does the sort (radix), the PAV
    pass and the un-permutation; the backward is one more sweep. On another device or dtype:
    ``torch.sort`` where the tensor is, the PAV pass on a CPU copy, the backward in torch.
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        ctx.fused = values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64)
        if ctx.fused:  # the CPU path: one numba sweep forward (sort included), one backward
            scaled = _scale(values.detach(), strength).contiguous()
            keys = _order_keys(scaled)
            unsigned = np.uint32 if keys.dtype == torch.int32 else np.uint64
            # Flipping the sign bit maps signed order onto unsigned order, which radix digits follow.
            flipped = keys.numpy().view(unsigned) ^ unsigned(1 << (8 * keys.element_size() - 1))
            out = torch.empty_like(scaled)
            perm = torch.empty(scaled.shape, dtype=torch.int64)
            end = torch.empty(scaled.shape, dtype=torch.int64)
            kernel = _sort_pav_parallel if scaled.numel() >= _PARALLEL_MIN_ELEMENTS else _sort_pav_serial
            kernel(scaled.numpy(), flipped, 8 * keys.element_size(), out.numpy(), perm.numpy(), end.numpy())
            ctx.save_for_backward(perm, end)
            return out
        sorted_vals, perm = torch.sort(_scale(values.detach(), strength), dim=-1, descending=True)
        primal_sorted, start, end = _pav_numba(sorted_vals.cpu())
        primal_sorted, start, end = (t.to(values.device) for t in (primal_sorted, start, end))
        ctx.save_for_backward(perm, start, end)
        return _unsort(primal_sorted, perm)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        if ctx.fused:
            perm, end = ctx.saved_tensors
            g = grad_output.contiguous()
            grad = torch.empty_like(g)
            kernel = _pav_backward_parallel if g.numel() >= _PARALLEL_MIN_ELEMENTS else _pav_backward_serial
            kernel(g.numpy(), perm.numpy(), end.numpy(), ctx.strength, grad.numpy())
            return grad, None
        perm, start, end = ctx.saved_tensors
        return _soft_rank_grad(grad_output, perm, start, end, ctx.strength), None


def _soft_rank(values: torch.Tensor, strength: float, backend: str) -> torch.Tensor:
    """The soft rank by one backend, ``"numba"`` or ``"triton"`` (see :func:`_choose_backend`).

    ``"triton"``: ``torch.sort``, the Triton PAV kernel and the gathers all run where the tensor
    is, with no host synchronisation (CPU tensors reach the kernel only under Triton's
    interpreter, ``TRITON_INTERPRET=1``, which the tests use).
    """
    if backend == "triton":
        return _soft_rank_triton_op(values, strength)[0]
    return _SoftRank.apply(values, strength)


def _check_2d_finite(values, name: str, min_columns: int = 1) -> None:
    if not isinstance(values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(values).__name__}")
    if values.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, m), got shape {tuple(values.shape)}")
    if values.shape[-1] < min_columns:
        raise ValueError(f"{name} must have at least {min_columns} column(s), got shape {tuple(values.shape)}")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {values.dtype}")
    # On an accelerator the check would make the host wait for the device at every call (and
    # forbid CUDA-graph capture); there, non-finite values give non-finite soft ranks instead.
    if values.device.type == "cpu" and not bool(torch.isfinite(values).all()):
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
    Forward cost :math:`O(m \log m)` per row (the sort), plus an :math:`O(m)` PAV pass; the
    backward pass is exact and :math:`O(m)`. On the CPU the PAV pass is compiled with numba and
    runs rows in parallel. On a GPU it is a Triton kernel (one program per row) and nothing
    leaves the device: no copy to the host and no synchronisation, so a training step that uses
    the soft rank can be captured in a CUDA graph. There, ``values`` are not checked for NaN or
    Inf (the check would wait for the device); such values get NaN soft ranks.
    Without Triton, the PAV pass of a GPU tensor runs on the CPU.
    """
    _check_2d_finite(values, "values")
    if isinstance(regularization_strength, bool) or not isinstance(regularization_strength, (int, float)):
        raise TypeError(
            f"regularization_strength must be a positive float, got {type(regularization_strength).__name__}"
        )
    if not (regularization_strength > 0 and np.isfinite(regularization_strength)):
        raise ValueError(f"regularization_strength must be a positive finite float, got {regularization_strength}")
    return _soft_rank(values, float(regularization_strength), _choose_backend(values))


def _radix_ranks(keys, bits, out):
    """Average ranks of each row of unsigned integer ``keys`` (same order as the values).

    Per row, a stable least-significant-digit radix sort on 11-bit digits (3 passes for 32-bit
    keys, 6 for 64-bit), then one pass that gives each tie group its average position. Linear
    in the row length, and rows run in parallel: several times faster than a comparison sort
    of the same rows.
    """
    rows, m = keys.shape
    for r in _prange(rows):
        a, ia = _radix_argsort(keys[r], bits)
        lo = 0
        while lo < m:
            hi = lo + 1
            while hi < m and a[hi] == a[lo]:
                hi += 1
            value = 0.5 * (lo + hi + 1)  # mean of positions lo+1 .. hi
            for j in range(lo, hi):
                out[r, ia[j]] = value
            lo = hi


# Parallel over rows only for large inputs: waking numba's thread pool costs milliseconds, more
# than a whole small batch (64 x 63) takes serially.
_radix_ranks_parallel = _njit_parallel(_renamed(_radix_ranks, "_parallel"))
_radix_ranks_serial = _njit(_radix_ranks)


def _average_ranks_torch(keys: torch.Tensor, perm: torch.Tensor, dtype, all_rows: bool | None = None) -> torch.Tensor:
    """Average ranks from row-sorted ``keys`` and their permutation, with tensor ops (CUDA, or no numba).

    ``all_rows`` (default: on accelerators) averages ties in every row instead of picking the
    rows that have ties first.
    """
    rows, m = keys.shape
    position = torch.arange(1, m + 1, device=keys.device, dtype=dtype).expand(rows, m)
    tied = keys[:, 1:] == keys[:, :-1]
    if all_rows is None:
        all_rows = keys.device.type != "cpu"
    if all_rows:
        # On an accelerator every row is averaged: picking the rows with ties would make the
        # host wait for the device (a data-dependent shape).
        new_group = torch.ones(rows, m, dtype=torch.bool, device=keys.device)
        new_group[:, 1:] = ~tied
        group = new_group.cumsum(dim=-1) - 1
        total = torch.zeros_like(position).scatter_add_(-1, group, position)
        count = torch.zeros_like(position).scatter_add_(-1, group, torch.ones_like(position))
        position = (total / count.clamp_min(1)).gather(-1, group)
        return torch.empty(rows, m, device=keys.device, dtype=dtype).scatter_(-1, perm, position)
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
        Finite real values, any device (on an accelerator they are not checked for NaN or Inf,
        which would make the host wait for the device).

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
    # On an accelerator the check would make the host wait for the device (see soft_rank).
    if values.is_floating_point() and values.device.type == "cpu" and not bool(torch.isfinite(values).all()):
        raise ValueError("values contains NaN or Inf values")
    squeeze = values.dim() == 1
    v = values.detach()
    if squeeze:
        v = v.unsqueeze(0)
    dtype = v.dtype if v.is_floating_point() else torch.float64
    rows, m = v.shape
    keys = _order_keys(v)
    unsigned = {torch.int32: np.uint32, torch.int64: np.uint64}.get(keys.dtype)
    if v.device.type == "cpu" and unsigned is not None:
        # Flipping the sign bit maps signed order onto unsigned order, which radix digits follow.
        flipped = keys.contiguous().numpy().view(unsigned) ^ unsigned(1 << (8 * keys.element_size() - 1))
        out = np.empty((rows, m), dtype=np.float64)
        kernel = _radix_ranks_parallel if keys.numel() >= _PARALLEL_MIN_ELEMENTS else _radix_ranks_serial
        kernel(flipped, 8 * keys.element_size(), out)
        ranks = torch.from_numpy(out).to(dtype)
    else:
        sorted_keys, perm = torch.sort(keys, dim=-1)
        ranks = _average_ranks_torch(sorted_keys, perm, dtype)
    return ranks.squeeze(0) if squeeze else ranks
