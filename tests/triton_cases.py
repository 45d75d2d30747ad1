"""Checks of the Triton PAV kernel against the numba kernel, for one device.

Not collected by a plain ``pytest tests`` run (the name does not start with ``test_``):
``tests/test_ranking.py`` runs this module in a subprocess with ``TRITON_INTERPRET=1`` (Triton's
interpreter runs kernels on CPU tensors, and reads that variable when Triton is imported), and
on a machine with CUDA the same checks run on the GPU (``PCOH_TEST_DEVICE=cuda``).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from pcoh.ranking import _pav_numba, _pav_triton, _scale, _soft_rank, _soft_rank_triton_op, _SoftRank, rank, soft_rank

DEVICE = os.environ.get("PCOH_TEST_DEVICE", "cpu")
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("CPU tensors reach the Triton kernel only under TRITON_INTERPRET=1", allow_module_level=True)
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("CUDA is not available", allow_module_level=True)
pytest.importorskip("triton")

DTYPES = [torch.float32, torch.float64]
ON_GPU = DEVICE != "cpu"
# Rows are short under the interpreter (it runs each kernel step in Python).
M = 300 if ON_GPU else 24
ROWS = 64 if ON_GPU else 3


def _rows(kind: str, rows: int, m: int, dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "random":
        x = torch.randn(rows, m, generator=g, dtype=torch.float64) * 3
    elif kind == "ties":
        x = torch.randint(-2, 3, (rows, m), generator=g).double()
    elif kind == "sorted":
        x = torch.arange(m, dtype=torch.float64).repeat(rows, 1) * 2.0
    elif kind == "reversed":
        x = -torch.arange(m, dtype=torch.float64).repeat(rows, 1) * 2.0
    elif kind == "one_block":  # gaps far below the strength: everything pools into one block
        x = torch.randn(rows, m, generator=g, dtype=torch.float64) * 1e-4
    elif kind == "mixed":  # clusters: long pooled blocks beside singletons
        x = torch.randn(rows, m, generator=g, dtype=torch.float64) * 0.05 + torch.randint(0, 4, (rows, m), generator=g) * 10
    else:
        raise ValueError(kind)
    return x.to(dtype)


def _tol(dtype):
    return dict(atol=1e-9, rtol=0) if dtype == torch.float64 else dict(atol=1e-4, rtol=1e-4)


KINDS = ["random", "ties", "sorted", "reversed", "one_block", "mixed"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
# 16: several chunks per row in the kernel's vector passes (one chunk at the default width here).
@pytest.mark.parametrize("block", [None, 16] if ON_GPU else [16])
def test_kernel_matches_numba(kind, dtype, block):
    x = _rows(kind, ROWS, M, dtype)
    s = torch.sort(x, dim=-1, descending=True).values
    primal, start, end = _pav_triton(s.to(DEVICE), block=block)
    ref_primal, ref_start, ref_end = _pav_numba(s)
    assert primal.dtype == dtype and start.dtype == torch.int64 and primal.device.type == DEVICE
    np.testing.assert_array_equal(start.cpu().numpy(), ref_start.numpy())
    np.testing.assert_array_equal(end.cpu().numpy(), ref_end.numpy())
    torch.testing.assert_close(primal.cpu(), ref_primal, **_tol(dtype))
    if kind == "one_block":
        assert bool((start == 0).all()) and bool((end == M).all())
    if kind in ("sorted", "reversed"):  # gaps of 2 >> strength: no pooling at all
        np.testing.assert_array_equal(end.cpu().numpy() - start.cpu().numpy(), np.ones((ROWS, M)))


@pytest.mark.parametrize("m", [1, 2, 3, 17])
def test_kernel_short_rows(m):
    x = _rows("random", 2, m, torch.float64, seed=m)
    s = torch.sort(x, dim=-1, descending=True).values
    for got, ref in zip(_pav_triton(s.to(DEVICE)), _pav_numba(s)):
        torch.testing.assert_close(got.cpu(), ref, atol=1e-12, rtol=0)


def test_kernel_no_rows():
    primal, start, end = _pav_triton(torch.empty(0, 5, device=DEVICE, dtype=torch.float64))
    assert primal.shape == start.shape == end.shape == (0, 5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "ties", "mixed"])
@pytest.mark.parametrize("eps", [0.05, 1.0])
def test_soft_rank_forward_and_backward_match_cpu(kind, dtype, eps):
    x = _rows(kind, ROWS, M, dtype, seed=3)
    w = _rows("random", ROWS, M, dtype, seed=4)
    xc = x.clone().requires_grad_(True)
    ref = _SoftRank.apply(xc, eps)
    (ref * w).sum().backward()
    xd = x.to(DEVICE).requires_grad_(True)
    out = _soft_rank(xd, eps, "triton")
    (out * w.to(DEVICE)).sum().backward()
    # The gradient is piecewise constant in the pooled blocks: a block decided differently would
    # change it by O(|w| / eps), far beyond any rounding. Both backends scale the values bit for
    # bit alike and pool them in float64 by the same comparisons, so the blocks must be
    # identical, not merely close; the tolerances below then only cover the float64 sums
    # rounded once to the dtype.
    _, _, start, end = _soft_rank_triton_op(xd.detach(), eps)
    sorted_ref = torch.sort(_scale(x, eps), dim=-1, descending=True).values
    _, ref_start, ref_end = _pav_numba(sorted_ref)
    np.testing.assert_array_equal(start.cpu().numpy(), ref_start.numpy())
    np.testing.assert_array_equal(end.cpu().numpy(), ref_end.numpy())
    torch.testing.assert_close(out.detach().cpu(), ref.detach(), **_tol(dtype))
    torch.testing.assert_close(xd.grad.cpu(), xc.grad, **_tol(dtype))


def test_gradcheck_float64():
    x = _rows("mixed", 2, 6, torch.float64, seed=5).to(DEVICE).requires_grad_(True)
    # The Jacobian is piecewise constant: a finite-difference step must not change the blocks.
    assert torch.autograd.gradcheck(lambda v: _soft_rank(v, 0.5, "triton"), (x,), eps=1e-7, atol=1e-6)


@pytest.mark.skipif(not ON_GPU, reason="the default backend picks Triton on GPU tensors only")
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_rank_on_gpu_uses_triton_and_matches_cpu(dtype):
    from pcoh.ranking import _choose_backend

    x = _rows("random", 128, 1023, dtype, seed=6)
    assert _choose_backend(x.to(DEVICE)) == "triton"
    torch.testing.assert_close(soft_rank(x.to(DEVICE), 0.03).cpu(), soft_rank(x, 0.03), **_tol(dtype))


@pytest.mark.skipif(not ON_GPU, reason="host synchronisation exists on GPU tensors only")
def test_soft_rank_and_rank_never_synchronise():
    x = torch.randn(64, 255, device=DEVICE, requires_grad=True)
    w = torch.randn(64, 255, device=DEVICE)
    t = torch.randint(0, 9, (64, 255), device=DEVICE).float()
    soft_rank(x, 0.1)  # warm-up: compile the kernel outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = soft_rank(x, 0.1)
        (out * w).sum().backward()
        r = rank(t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(r.cpu(), rank(t.cpu()))


@pytest.mark.skipif(not ON_GPU, reason="CUDA graphs exist on GPU tensors only")
def test_soft_rank_forward_backward_in_a_cuda_graph():
    x = torch.randn(32, 127, device=DEVICE, requires_grad=True)
    w = torch.randn(32, 127, device=DEVICE)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream, as graph capture requires
        for _ in range(2):
            x.grad = None
            (soft_rank(x, 0.1) * w).sum().backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        out = soft_rank(x, 0.1)
        (out * w).sum().backward()
    with torch.no_grad():
        x.copy_(torch.randn_like(x))
    graph.replay()
    torch.cuda.synchronize()
    xc = x.detach().cpu().requires_grad_(True)
    ref = soft_rank(xc, 0.1)
    (ref * w.cpu()).sum().backward()
    torch.testing.assert_close(out.detach().cpu(), ref.detach(), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(x.grad.cpu(), xc.grad, atol=1e-4, rtol=1e-4)


def test_soft_rank_traces_into_one_graph():
    # The soft rank is a custom operator with a registered backward: torch.compile traces it
    # without a graph break and takes its gradient from the registered formula. (As an
    # autograd.Function it got all-zero gradients here under PyTorch 2.11, pytorch#180642.)
    x = _rows("random", 2, 9, torch.float64, seed=8).to(DEVICE).requires_grad_(True)
    w = _rows("random", 2, 9, torch.float64, seed=9).to(DEVICE)
    fn = torch.compile(lambda v: (_soft_rank(v, 0.5, "triton") * w).sum(), backend="aot_eager", fullgraph=True)
    fn(x).backward()
    xc = x.detach().cpu().requires_grad_(True)
    (_SoftRank.apply(xc, 0.5) * w.cpu()).sum().backward()
    torch.testing.assert_close(x.grad.cpu(), xc.grad, atol=1e-12, rtol=0)


@pytest.mark.skipif(not ON_GPU, reason="the accelerators' tie averaging runs on GPU tensors only here")
@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_on_gpu_matches_rankdata(dtype):
    from scipy.stats import rankdata

    x = torch.randint(-5, 6, (50, 77)).to(dtype)
    x[0] = torch.randn(77).to(dtype)  # a row without ties
    out = rank(x.to(DEVICE))
    assert out.device.type == DEVICE and out.dtype == dtype
    np.testing.assert_array_equal(out.cpu().double().numpy(), rankdata(x.double().numpy(), axis=-1))


def test_custom_operator_passes_opcheck():
    # Real and fake outputs agree in shape, dtype and strides, the schema is honest (no
    # mutation, no aliasing) and the registered backward is used by autograd and AOTAutograd.
    x = _rows("mixed", 3, 7, torch.float64, seed=10).to(DEVICE).requires_grad_(True)
    torch.library.opcheck(_soft_rank_triton_op, (x, 0.5))
