"""Tests for pcoh.ranking: soft ranks (projection onto the permutahedron) and hard ranks.

References are independent of the library's PAV kernel: scikit-learn's isotonic regression,
a brute-force quadratic programme over the convex hull of all m! permutations, the variational
inequality that characterises a Euclidean projection, and ``scipy.stats.rankdata``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls
from scipy.stats import rankdata
from sklearn.isotonic import isotonic_regression

from pcoh.ranking import rank, soft_rank

DTYPES = [torch.float32, torch.float64]
from _devices import DEVICES
STRENGTHS = [0.01, 0.1, 1.0, 10.0]


# ----------------------------------------------------------------------------- references
def isotonic_reference(theta: np.ndarray, eps: float) -> np.ndarray:
    """Projection of theta / eps onto the permutahedron of (m, ..., 1), via scikit-learn's PAV."""
    z = np.asarray(theta, dtype=np.float64) / eps
    m = z.size
    order = np.argsort(-z, kind="stable")
    s = z[order]
    rho = np.arange(m, 0, -1, dtype=np.float64)
    fit = isotonic_regression(s - rho, increasing=False)
    out = np.empty(m)
    out[order] = s - fit
    return out


def _permutations(m: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(1, m + 1))), dtype=np.float64)


def qp_reference(theta: np.ndarray, eps: float) -> np.ndarray:
    """argmin ||mu - theta/eps||^2 over convex combinations mu = sum_k w_k p_k of the m! permutations.

    Solved over the weights w >= 0 with the active-set non-negative least squares of Lawson and
    Hanson (``scipy.optimize.nnls``); the equality sum(w) = 1 is a row weighted by 1e7, and the
    solution is checked to satisfy it. (SLSQP on the same problem is far slower and stops at
    ~1e-7 accuracy with "positive directional derivative in line search".)
    """
    z = np.asarray(theta, dtype=np.float64) / eps
    verts = _permutations(z.size)
    k = len(verts)
    big = 1e7
    a = np.vstack([verts.T, np.full((1, k), big)])
    b = np.concatenate([z, [big]])
    w, _ = nnls(a, b, maxiter=50 * k)
    assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-9
    return verts.T @ w


def _distinct_rows(rng: np.random.Generator, rows: int, m: int, scale: float = 3.0) -> np.ndarray:
    """Random rows whose values are pairwise distinct by a comfortable margin."""
    while True:
        x = rng.normal(size=(rows, m)) * scale
        gaps = np.diff(np.sort(x, axis=1), axis=1)
        if m < 2 or gaps.min() > 1e-3:
            return x


# ----------------------------------------------------------------------------- soft_rank values
@pytest.mark.parametrize("eps", STRENGTHS)
@pytest.mark.parametrize("m", [1, 2, 3, 7, 30, 200])
def test_soft_rank_matches_sklearn_isotonic_reference(m, eps):
    rng = np.random.default_rng(m * 100 + int(eps * 1000))
    theta = rng.normal(size=(4, m)) * rng.choice([0.1, 1.0, 10.0, 100.0], size=(4, 1))
    out = soft_rank(torch.tensor(theta), eps).numpy()
    ref = np.stack([isotonic_reference(row, eps) for row in theta])
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-9)


def test_soft_rank_isotonic_reference_with_ties_and_constant_rows():
    theta = np.array(
        [
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [0.0, 2.0, 2.0, -1.0, 2.0],
            [5.0, -5.0, 5.0, -5.0, 0.0],
        ]
    )
    for eps in (0.05, 1.0, 4.0):
        out = soft_rank(torch.tensor(theta), eps).numpy()
        ref = np.stack([isotonic_reference(row, eps) for row in theta])
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
        # tied values get the same soft rank (the projection is symmetric in tied coordinates)
        assert np.allclose(out[0], 3.0)
        assert out[1, 1] == pytest.approx(out[1, 2], abs=1e-12) == pytest.approx(out[1, 4], abs=1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
def test_soft_rank_matches_brute_force_qp_over_permutations(m):
    rng = np.random.default_rng(17 + m)
    # from mostly pooled (small theta/eps) to mostly separated (large theta/eps)
    for eps, scale in ((5.0, 0.5), (1.0, 1.0), (0.3, 3.0), (0.01, 1.0), (100.0, 0.1)):
        theta = rng.normal(size=m) * scale
        out = soft_rank(torch.tensor(theta)[None], eps)[0].numpy()
        np.testing.assert_allclose(out, qp_reference(theta, eps), atol=1e-5)


@pytest.mark.parametrize("m", [3, 4, 5, 6])
def test_soft_rank_satisfies_projection_optimality_conditions(m):
    """mu = P(z) iff mu is in the hull and <z - mu, p - mu> <= 0 for every vertex p."""
    rng = np.random.default_rng(m)
    verts = _permutations(m)
    for eps in (0.2, 1.0, 3.0):
        theta = rng.normal(size=m) * 2
        z = theta / eps
        mu = soft_rank(torch.tensor(theta)[None], eps)[0].numpy()
        # Membership in the permutahedron (majorisation by (m, ..., 1)): the sum of the k largest
        # entries is at most that of the k largest of rho, with equality at k = m.
        top = np.cumsum(np.sort(mu)[::-1])
        bound = np.cumsum(np.arange(m, 0, -1, dtype=np.float64))
        assert np.all(top <= bound + 1e-9)
        assert top[-1] == pytest.approx(bound[-1], abs=1e-9)
        assert np.max((verts - mu) @ (z - mu)) <= 1e-8


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", STRENGTHS)
def test_soft_rank_rows_sum_to_triangular_number_and_keep_order(eps, dtype, device):
    rng = np.random.default_rng(3)
    m = 25
    x = torch.tensor(_distinct_rows(rng, 6, m), dtype=dtype, device=device)
    out = soft_rank(x, eps)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    tol = 1e-9 if dtype == torch.float64 else 1e-3
    torch.testing.assert_close(
        out.sum(dim=1).double().cpu(), torch.full((6,), m * (m + 1) / 2, dtype=torch.float64), atol=tol, rtol=0
    )
    # order preserved: sorting by value sorts the soft ranks (non-decreasingly)
    order = torch.argsort(x, dim=1)
    assert bool((torch.diff(out.gather(1, order), dim=1) >= -tol).all())
    # within the range [1, m]
    assert bool((out >= 1 - tol).all()) and bool((out <= m + tol).all())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_rank_float32_matches_float64(dtype, device):
    rng = np.random.default_rng(11)
    x64 = torch.tensor(_distinct_rows(rng, 3, 40))
    ref = soft_rank(x64, 0.5)
    out = soft_rank(x64.to(dtype=dtype, device=device), 0.5)
    torch.testing.assert_close(out.double().cpu(), ref, atol=1e-4 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_rank_small_strength_gives_hard_ranks(dtype, device):
    rng = np.random.default_rng(5)
    x = _distinct_rows(rng, 5, 50)
    out = soft_rank(torch.tensor(x, dtype=dtype, device=device), 1e-6).double().cpu().numpy()
    hard = rankdata(x, axis=1)
    np.testing.assert_allclose(out, hard, atol=1e-6 if dtype == torch.float64 else 1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_rank_large_strength_gives_mean_rank(dtype, device):
    rng = np.random.default_rng(6)
    m = 30
    x = torch.tensor(rng.normal(size=(4, m)) * 5, dtype=dtype, device=device)
    out = soft_rank(x, 1e6)
    torch.testing.assert_close(out.double().cpu(), torch.full((4, m), (m + 1) / 2, dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_soft_rank_gap_larger_than_strength_is_ranked_exactly():
    # Consecutive gaps >= eps: the projection is the hard rank exactly (no pooling).
    x = torch.tensor([[0.0, 3.0, 1.0, 7.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(soft_rank(x, 1.0), torch.tensor([[1.0, 4.0, 2.0, 5.0, 3.0]], dtype=torch.float64))
    # Gaps below eps: pooled towards each other, still ordered, sum unchanged.
    y = soft_rank(torch.tensor([[0.0, 0.5, 10.0]], dtype=torch.float64), 1.0)
    torch.testing.assert_close(y, torch.tensor([[1.25, 1.75, 3.0]], dtype=torch.float64))


# ----------------------------------------------------------------------------- soft_rank gradients
@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0, 5.0])
@pytest.mark.parametrize("m", [2, 5, 12])
def test_soft_rank_gradcheck(eps, m):
    rng = np.random.default_rng(int(eps * 100) + m)
    x = torch.tensor(_distinct_rows(rng, 3, m, scale=2.0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: soft_rank(v, eps), (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_soft_rank_jacobian_matches_block_structure():
    # With eps = 1 and values (0, 0.5, 10): block {0, 1} pooled, block {2} alone.
    x = torch.tensor([[0.0, 0.5, 10.0]], dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda v: soft_rank(v, 2.0), x).reshape(3, 3)
    expected = torch.tensor([[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64) / 2.0
    torch.testing.assert_close(jac, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_rank_backward_runs_on_dtype_and_device(dtype, device):
    x = torch.randn(4, 9, dtype=dtype, device=device, requires_grad=True)
    w = torch.randn(4, 9, dtype=dtype, device=device)
    (soft_rank(x, 0.3) * w).sum().backward()
    assert x.grad is not None and x.grad.dtype == dtype and x.grad.device == x.device
    assert bool(torch.isfinite(x.grad).all())
    # The Jacobian is (I - B)/eps with B block-averaging: gradients sum to 0 over each row.
    torch.testing.assert_close(x.grad.sum(dim=1), torch.zeros(4, dtype=dtype, device=device), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- soft_rank properties
_row_values = st.lists(
    st.floats(-100, 100, allow_nan=False, allow_infinity=False), min_size=1, max_size=12
)


@settings(max_examples=25, deadline=None)
@given(values=_row_values, eps=st.sampled_from([0.01, 0.3, 1.0, 7.0]), data=st.data())
def test_soft_rank_is_permutation_equivariant(values, eps, data):
    m = len(values)
    perm = data.draw(st.permutations(range(m)))
    x = torch.tensor([values], dtype=torch.float64)
    p = torch.tensor(perm)
    torch.testing.assert_close(soft_rank(x[:, p], eps), soft_rank(x, eps)[:, p], atol=1e-9, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(values=_row_values, eps=st.sampled_from([0.01, 0.3, 1.0, 7.0]), shift=st.floats(-50, 50))
def test_soft_rank_is_translation_invariant(values, eps, shift):
    # The permutahedron lies in the hyperplane sum = m(m+1)/2, whose normal is the all-ones
    # vector: projecting theta + c*1 gives the same point as projecting theta.
    x = torch.tensor([values], dtype=torch.float64)
    # rounding of x + shift perturbs the input by ~1e-14; the projection is 1/eps-Lipschitz.
    torch.testing.assert_close(soft_rank(x + shift, eps), soft_rank(x, eps), atol=1e-9, rtol=0)


@settings(max_examples=25, deadline=None)
@given(values=_row_values, eps=st.sampled_from([0.05, 1.0, 20.0]))
def test_soft_rank_property_sum_order_and_reference(values, eps):
    x = np.array(values)
    m = x.size
    out = soft_rank(torch.tensor(x[None]), eps)[0].numpy()
    assert out.sum() == pytest.approx(m * (m + 1) / 2, abs=1e-9)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(out[order]) >= -1e-9)
    np.testing.assert_allclose(out, isotonic_reference(x, eps), atol=1e-9)


# ----------------------------------------------------------------------------- soft_rank bad input
@pytest.mark.parametrize("bad", [0, 0.0, -1, -1.0, float("inf"), float("nan")])
def test_soft_rank_rejects_non_positive_or_non_finite_strength(bad):
    with pytest.raises(ValueError, match="regularization_strength"):
        soft_rank(torch.randn(2, 3), bad)


@pytest.mark.parametrize("bad", ["1.0", None, True, torch.tensor(1.0), [1.0]])
def test_soft_rank_rejects_strength_of_wrong_type(bad):
    with pytest.raises(TypeError, match="regularization_strength"):
        soft_rank(torch.randn(2, 3), bad)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_soft_rank_rejects_nan_and_inf(bad_value):
    x = torch.randn(2, 4)
    x[1, 2] = bad_value
    with pytest.raises(ValueError, match="values contains NaN or Inf"):
        soft_rank(x, 1.0)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_soft_rank_rejects_non_2d(shape):
    with pytest.raises(ValueError, match="values must be 2-D"):
        soft_rank(torch.randn(shape), 1.0)


def test_soft_rank_rejects_empty_rows():
    with pytest.raises(ValueError, match="values must have at least 1 column"):
        soft_rank(torch.empty(3, 0), 1.0)


@pytest.mark.parametrize("bad", [[[1.0, 2.0]], np.array([[1.0, 2.0]])])
def test_soft_rank_rejects_non_tensor(bad):
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        soft_rank(bad, 1.0)


def test_soft_rank_rejects_integer_tensor():
    with pytest.raises(TypeError, match="values must be a floating-point tensor"):
        soft_rank(torch.arange(6).view(2, 3), 1.0)


# ----------------------------------------------------------------------------- hard rank
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32])
def test_rank_matches_rankdata_with_ties_2d(dtype, device):
    rng = np.random.default_rng(0)
    x = rng.integers(-4, 5, size=(20, 15))  # many ties
    x[0] = np.arange(15)  # a row without ties
    x[1] = 3  # a constant row
    out = rank(torch.tensor(x).to(dtype=dtype, device=device))
    expected_dtype = dtype if dtype.is_floating_point else torch.float64
    assert out.dtype == expected_dtype and out.shape == x.shape and out.device.type == device
    np.testing.assert_array_equal(out.cpu().double().numpy(), rankdata(x, method="average", axis=-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_rank_matches_rankdata_1d(dtype):
    rng = np.random.default_rng(1)
    for x in (rng.integers(0, 6, size=40), rng.permutation(17), np.array([7])):
        out = rank(torch.tensor(x).to(dtype))
        assert out.shape == x.shape
        np.testing.assert_array_equal(out.double().numpy(), rankdata(x, method="average"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_continuous_values_with_negative_numbers(dtype):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 64)) * 1e3
    x[2, :10] = x[2, 10:20]  # exact ties among continuous values
    xt = torch.tensor(x, dtype=dtype)
    np.testing.assert_array_equal(rank(xt).double().numpy(), rankdata(xt.double().numpy(), axis=-1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_treats_negative_zero_as_a_tie_with_zero(dtype):
    x = torch.tensor([[0.0, -0.0, -1.0, 1.0, -0.0], [-0.0, 2.0, 0.0, -3.0, 5.0]], dtype=dtype)
    expected = rankdata(x.numpy(), method="average", axis=-1)
    np.testing.assert_array_equal(rank(x).numpy(), expected)
    np.testing.assert_array_equal(rank(x).numpy()[0], [3.0, 3.0, 1.0, 5.0, 3.0])
    np.testing.assert_array_equal(rank(x[0]).numpy(), [3.0, 3.0, 1.0, 5.0, 3.0])


def test_rank_extreme_and_subnormal_values():
    big = torch.finfo(torch.float64).max
    tiny = torch.finfo(torch.float64).tiny
    x = torch.tensor([big, -big, 0.0, tiny / 4, -tiny / 4, tiny, -0.0, 1.0], dtype=torch.float64)
    np.testing.assert_array_equal(rank(x).numpy(), rankdata(x.numpy()))


def test_rank_has_no_gradient_and_ignores_requires_grad():
    x = torch.randn(3, 5, requires_grad=True)
    out = rank(x)
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), rankdata(x.detach().numpy(), axis=-1))


def test_rank_non_contiguous_input():
    x = torch.tensor(np.random.default_rng(3).integers(0, 4, size=(9, 7)), dtype=torch.float32).T
    assert not x.is_contiguous()
    np.testing.assert_array_equal(rank(x).numpy(), rankdata(x.numpy(), axis=-1))


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=1, max_size=4
    ),
    as_float=st.booleans(),
)
def test_rank_property_matches_rankdata(rows, as_float):
    x = np.array(rows)
    t = torch.tensor(x, dtype=torch.float32 if as_float else torch.int64)
    np.testing.assert_array_equal(rank(t).double().numpy(), rankdata(x, axis=-1))
    # each row of ranks sums to m(m+1)/2
    assert np.allclose(rank(t).double().numpy().sum(axis=1), 21.0)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_rank_rejects_nan_and_inf(bad_value):
    x = torch.randn(3, 4)
    x[0, 0] = bad_value
    with pytest.raises(ValueError, match="values contains NaN or Inf"):
        rank(x)


@pytest.mark.parametrize("shape", [(), (2, 3, 4)])
def test_rank_rejects_wrong_dimensions(shape):
    with pytest.raises(ValueError, match="values must be 1-D"):
        rank(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_rank_rejects_empty_rows(shape):
    with pytest.raises(ValueError, match="values must have at least one column"):
        rank(torch.zeros(shape))


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], np.array([1.0, 2.0]), 3.0])
def test_rank_rejects_non_tensor(bad):
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        rank(bad)



@pytest.mark.parametrize("dtype", [torch.float16, torch.int16, torch.float32, torch.float64])
def test_tensor_fallback_matches_scipy(dtype):
    # The path CUDA tensors (and dtypes without a radix kernel) take.
    from pcoh.ranking import _average_ranks_torch, _order_keys

    x = torch.randint(-4, 5, (30, 25)).to(dtype)
    keys, perm = torch.sort(_order_keys(x), dim=-1)
    expected = rankdata(x.double().numpy(), axis=-1)
    np.testing.assert_allclose(_average_ranks_torch(keys, perm, torch.float64).numpy(), expected)
    # The accelerators' variant (every row averaged: no data-dependent shape, no host sync).
    np.testing.assert_allclose(_average_ranks_torch(keys, perm, torch.float64, all_rows=True).numpy(), expected)
    np.testing.assert_allclose(rank(x).double().numpy(), expected)


# ----------------------------------------------------------------------------- Triton PAV kernel
def _run_triton_cases(device: str) -> None:
    """Run ``tests/triton_cases.py`` in a fresh interpreter (Triton reads TRITON_INTERPRET at import)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = dict(os.environ, PCOH_TEST_DEVICE=device, PYTHONPATH=os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")]))
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "triton_cases.py")]
    done = subprocess.run(cmd, env=env, cwd=here.parent, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert " passed" in done.stdout, done.stdout[-2000:]


def test_triton_kernel_through_the_interpreter():
    # Triton's interpreter runs the kernel on CPU tensors: the GPU code path, tested on any machine.
    pytest.importorskip("triton")
    _run_triton_cases("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_triton_kernel_on_cuda():
    _run_triton_cases("cuda")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_pav_parallel_over_rows_matches_serial_and_reference(dtype):
    # Large enough for the parallel kernel; a few rows are checked against scikit-learn too.
    from pcoh.ranking import _PARALLEL_MIN_ELEMENTS, _pav_numba, _pav_rows_serial

    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(300, 450)) * 5, dtype=dtype)
    x[::3] = x[::3].round()  # ties
    assert x.numel() >= _PARALLEL_MIN_ELEMENTS
    s = torch.sort(x, dim=-1, descending=True).values
    primal, start, end = _pav_numba(s)
    p2, s2, e2 = torch.empty_like(s), torch.empty_like(start), torch.empty_like(end)
    _pav_rows_serial(s.numpy(), p2.numpy(), s2.numpy(), e2.numpy())
    assert torch.equal(primal, p2) and torch.equal(start, s2) and torch.equal(end, e2)
    out = soft_rank(x, 1.0)
    for r in (0, 1, 150, 299):
        np.testing.assert_allclose(out[r].double().numpy(), isotonic_reference(x[r].double().numpy(), 1.0),
                                   atol=1e-9 if dtype == torch.float64 else 1e-3, rtol=1e-6)


def test_rank_parallel_and_serial_kernels_agree_with_scipy():
    # 300 x 450 values reach the parallel kernel; its first rows, ranked alone, take the serial one.
    from scipy.stats import rankdata

    from pcoh import ranking as R

    rng = np.random.default_rng(11)
    x = torch.from_numpy(rng.integers(0, 40, size=(300, 450)).astype(np.float64))  # many ties
    assert x.numel() >= R._PARALLEL_MIN_ELEMENTS > x[:5].numel()
    big, small = R.rank(x), R.rank(x[:5])
    np.testing.assert_array_equal(big.numpy(), rankdata(x.numpy(), axis=1))
    np.testing.assert_array_equal(small.numpy(), big[:5].numpy())
