"""Tests for pcoh.dissimilarity against ``scipy.spatial.distance.cdist`` and on degenerate input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from pcoh.dissimilarity import METRICS, Cosine, Dissimilarity, Euclidean, SqEuclidean, get_metric, pairwise

NAMES = ["cosine", "euclidean", "sqeuclidean"]
DTYPES = [torch.float32, torch.float64]
from _devices import DEVICES


def _tol(dtype, scale=1.0):
    # The matrix formulas (Gram expansion) lose relative precision ~ eps * |x|^2 / d^2.
    return dict(rtol=1e-4, atol=1e-4 * scale) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9 * scale)


def _features(seed, n, d, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * scale + rng.normal(size=(1, d))


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_pairwise_matches_cdist_square(name, dtype, device):
    x = _features(0, 23, 7, scale=2.0)
    out = pairwise(torch.tensor(x, dtype=dtype, device=device), name)
    assert out.shape == (23, 23) and out.dtype == dtype and out.device.type == device
    ref = cdist(x, x, metric=name)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(out.double().cpu().numpy(), ref, **_tol(dtype, scale))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_pairwise_matches_cdist_with_y(name, dtype, device):
    x = _features(1, 11, 5)
    y = _features(2, 17, 5, scale=3.0)
    out = pairwise(torch.tensor(x, dtype=dtype, device=device), name, y=torch.tensor(y, dtype=dtype, device=device))
    assert out.shape == (11, 17)
    ref = cdist(x, y, metric=name)
    np.testing.assert_allclose(out.double().cpu().numpy(), ref, **_tol(dtype, np.abs(ref).max()))


@pytest.mark.parametrize("name", NAMES)
def test_pairwise_without_y_equals_pairwise_with_y_equal_x_off_diagonal(name):
    x = torch.tensor(_features(3, 9, 4))
    a, b = pairwise(x, name), pairwise(x, name, y=x)
    off = ~torch.eye(9, dtype=torch.bool)
    torch.testing.assert_close(a[off], b[off])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_pairwise_square_is_symmetric_with_exact_zero_diagonal(name, dtype):
    x = torch.tensor(_features(4, 15, 6, scale=10.0), dtype=dtype)
    out = pairwise(x, name)
    assert bool((torch.diagonal(out) == 0).all())
    torch.testing.assert_close(out, out.T, **_tol(dtype, float(out.abs().max())))


def test_cosine_is_scale_invariant_and_in_range():
    x = torch.tensor(_features(5, 12, 3), dtype=torch.float64)
    scales = torch.tensor(np.random.default_rng(0).uniform(0.01, 100, size=(12, 1)))
    d = pairwise(x, "cosine")
    torch.testing.assert_close(pairwise(x * scales, "cosine"), d, atol=1e-12, rtol=0)
    # 1 - cos is in [0, 2] up to rounding
    assert float(d.min()) >= -1e-12 and float(d.max()) <= 2 + 1e-12
    # antipodal points are at dissimilarity 2
    assert float(pairwise(torch.stack([x[0], -x[0]]), "cosine")[0, 1]) == pytest.approx(2.0, abs=1e-12)


def test_euclidean_is_square_root_of_sqeuclidean():
    x = torch.tensor(_features(6, 10, 4), dtype=torch.float64)
    torch.testing.assert_close(pairwise(x, "euclidean") ** 2, pairwise(x, "sqeuclidean"), atol=1e-10, rtol=1e-10)


# ----------------------------------------------------------------------------- degenerate input
def _degenerate(dtype, device="cpu"):
    """Two zero rows, two duplicated rows, and ordinary rows."""
    x = torch.tensor(_features(7, 6, 5, scale=3.0), dtype=dtype, device=device)
    return torch.cat([x, x[:2], torch.zeros(2, 5, dtype=dtype, device=device)])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_zero_vectors_and_duplicates_give_no_nan_in_values_or_gradients(name, dtype, device):
    x = _degenerate(dtype, device).requires_grad_()
    for y in (None, _degenerate(dtype, device)[[7, 0, 3, 6]].requires_grad_()):
        out = pairwise(x, name, y=y)
        assert bool(torch.isfinite(out).all())
        grads = torch.autograd.grad(out.sum(), [x] if y is None else [x, y], retain_graph=True)
        for g in grads:
            assert bool(torch.isfinite(g).all())
        # weighted backward too: a random cotangent exercises every entry separately
        w = torch.randn_like(out)
        grads = torch.autograd.grad((out * w).sum(), [x] if y is None else [x, y])
        for g in grads:
            assert bool(torch.isfinite(g).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_duplicated_points_are_at_distance_about_zero(dtype):
    x = _degenerate(dtype)
    ref = cdist(x.double().numpy(), x.double().numpy(), metric="euclidean")
    scale = float(ref.max())
    for name in ("euclidean", "sqeuclidean"):
        d = pairwise(x, name)
        # rows 0 and 6, 1 and 7 coincide; the Gram expansion leaves only rounding there
        assert float(d[0, 6]) == pytest.approx(0.0, abs=(1e-2 if dtype == torch.float32 else 1e-6) * scale)
        assert float(d[1, 7]) == pytest.approx(0.0, abs=(1e-2 if dtype == torch.float32 else 1e-6) * scale)
    assert float(pairwise(x, "cosine")[0, 6]) == pytest.approx(0.0, abs=1e-6)


def test_euclidean_gradient_is_zero_at_exactly_coincident_points():
    a = torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]], dtype=torch.float64, requires_grad=True)
    d = pairwise(a, "euclidean")
    (g,) = torch.autograd.grad(d[0, 1], a)
    torch.testing.assert_close(g, torch.zeros_like(g))
    # and the ordinary gradient elsewhere: d||a0 - a2|| / d a0 = (a0 - a2) / ||a0 - a2||
    (g,) = torch.autograd.grad(pairwise(a, "euclidean")[0, 2], a)
    torch.testing.assert_close(g[0], torch.tensor([-0.6, -0.8], dtype=torch.float64))
    torch.testing.assert_close(g[2], torch.tensor([0.6, 0.8], dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_vectors_follow_the_documented_conventions(dtype):
    x = _degenerate(dtype)
    n = x.shape[0]
    cos = pairwise(x, "cosine")
    # a zero vector has cosine 0 with everything, itself included: dissimilarity 1
    torch.testing.assert_close(cos[-2:], torch.ones(2, n, dtype=dtype))
    torch.testing.assert_close(cos[:, -2:], torch.ones(n, 2, dtype=dtype))
    # non-zero rows keep an exact zero on the diagonal
    assert bool((torch.diagonal(cos)[:-2] == 0).all())
    # with y, the zero row is at 1 from every row of y
    torch.testing.assert_close(pairwise(x[-1:], "cosine", y=x), torch.ones(1, n, dtype=dtype))
    # cosine on non-zero rows matches cdist
    nz = x[:-2].double().numpy()
    np.testing.assert_allclose(cos[:-2, :-2].double().numpy(), cdist(nz, nz, "cosine"), **_tol(dtype, 2.0))
    # the Euclidean distance to the zero vector is the norm
    norms = torch.linalg.vector_norm(x, dim=1)
    torch.testing.assert_close(pairwise(x, "euclidean")[-1], norms, **_tol(dtype, float(norms.max())))
    assert bool((torch.diagonal(pairwise(x, "euclidean")) == 0).all())
    assert bool((torch.diagonal(pairwise(x, "sqeuclidean")) == 0).all())


def test_euclidean_gradient_matches_finite_differences():
    x = torch.tensor(_features(8, 6, 3), dtype=torch.float64, requires_grad=True)
    for name in NAMES:
        assert torch.autograd.gradcheck(lambda v: pairwise(v, name), (x,))
        y = torch.tensor(_features(9, 4, 3), dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: pairwise(a, name, y=b), (x, y))


# ----------------------------------------------------------------------------- callables, registry
def test_callable_metric_is_used_as_given():
    x = torch.tensor(_features(10, 8, 3))
    calls = []

    def manhattan(v):
        calls.append(v.shape)
        return torch.cdist(v, v, p=1)

    out = pairwise(x, manhattan)
    assert calls == [(8, 3)]
    np.testing.assert_allclose(out.numpy(), cdist(x.numpy(), x.numpy(), "cityblock"), rtol=1e-12)
    # callables also go through get_metric unchanged
    assert get_metric(manhattan) is manhattan


def test_dissimilarity_instances_are_accepted_with_and_without_y():
    x = torch.tensor(_features(11, 5, 3))
    y = torch.tensor(_features(12, 4, 3))
    for cls, name in ((Cosine, "cosine"), (Euclidean, "euclidean"), (SqEuclidean, "sqeuclidean")):
        inst = cls()
        assert isinstance(inst, Dissimilarity) and inst.name == name
        torch.testing.assert_close(pairwise(x, inst), pairwise(x, name))
        torch.testing.assert_close(pairwise(x, inst, y=y), torch.tensor(cdist(x.numpy(), y.numpy(), name)))
        torch.testing.assert_close(inst(x, y), pairwise(x, name, y=y))


def test_registry_and_get_metric():
    assert sorted(METRICS) == NAMES
    for name in NAMES:
        assert get_metric(name) is METRICS[name]
        assert METRICS[name].name == name


@pytest.mark.parametrize("argument", ["metric", "student_metric", "teacher_metric"])
def test_unknown_metric_name_raises_value_error_listing_valid_names(argument):
    with pytest.raises(ValueError, match=argument) as info:
        get_metric("manhattan", argument)
    for name in NAMES:
        assert name in str(info.value)
    assert "manhattan" in str(info.value)


def test_pairwise_unknown_metric_name():
    with pytest.raises(ValueError, match=r"metric must be one of \['cosine', 'euclidean', 'sqeuclidean'\]"):
        pairwise(torch.randn(3, 2), "Cosine")


@pytest.mark.parametrize("bad", [3, None, 1.5, ["cosine"]])
def test_non_callable_metric_raises_type_error(bad):
    with pytest.raises(TypeError, match="metric must be a metric name"):
        get_metric(bad)
    with pytest.raises(TypeError, match="metric must be a metric name"):
        pairwise(torch.randn(3, 2), bad)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_pairwise_rejects_nan_and_inf(name, bad_value):
    x = torch.randn(4, 3)
    x[2, 1] = bad_value
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        pairwise(x, name)
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        pairwise(torch.randn(2, 3), name, y=x)


def test_pairwise_callable_rejects_nan_input():
    x = torch.randn(4, 3)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        pairwise(x, lambda v: torch.cdist(v, v))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_pairwise_rejects_non_2d(name, shape):
    with pytest.raises(ValueError, match="x must be 2-D"):
        pairwise(torch.randn(shape), name)
    with pytest.raises(ValueError, match="y must be 2-D"):
        pairwise(torch.randn(3, 2), name, y=torch.randn(shape))


@pytest.mark.parametrize("name", NAMES)
def test_pairwise_rejects_wrong_types(name):
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        pairwise(np.ones((3, 2)), name)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        pairwise([[1.0, 2.0], [3.0, 4.0]], name)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        pairwise(torch.ones(3, 2, dtype=torch.int64), name)
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        pairwise(torch.ones(3, 2), name, y=np.ones((3, 2)))
    with pytest.raises(TypeError, match="y must be a floating-point tensor"):
        pairwise(torch.ones(3, 2), name, y=torch.ones(3, 2, dtype=torch.int32))


@pytest.mark.parametrize("name", NAMES)
def test_pairwise_rejects_mismatched_widths(name):
    with pytest.raises(ValueError, match="x and y must have the same width"):
        pairwise(torch.randn(3, 2), name, y=torch.randn(3, 4))


def test_pairwise_callable_rejects_y_and_bad_outputs():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="y is only supported"):
        pairwise(x, lambda v: torch.cdist(v, v), y=x)
    with pytest.raises(ValueError, match=r"a callable metric must return an \(n, n\)"):
        pairwise(x, lambda v: torch.cdist(v, v)[:, :2])
    with pytest.raises(ValueError, match=r"a callable metric must return an \(n, n\)"):
        pairwise(x, lambda v: torch.cdist(v, v).numpy())
    with pytest.raises(ValueError, match=r"a callable metric must return an \(n, n\)"):
        pairwise(x, lambda v: 1.0)
    with pytest.raises(ValueError, match="the callable metric returned NaN or Inf"):
        pairwise(x, lambda v: torch.full((4, 4), float("nan")))
    with pytest.raises(ValueError, match="the callable metric returned NaN or Inf"):
        pairwise(x, lambda v: torch.full((4, 4), float("inf")))
