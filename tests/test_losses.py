"""Tests for the perception-coherence loss, ``off_diagonal`` and the loss registry of pcoh.losses.

The baselines that share the module are tested elsewhere (tests/test_baselines.py).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from scipy.stats import rankdata
from sklearn.isotonic import isotonic_regression

from pcoh import coherence
from pcoh.dissimilarity import pairwise
from pcoh.losses import LOSSES, PerceptionCoherenceLoss, TransferLoss, arguments, available, get, off_diagonal

NAMES = ["cosine", "euclidean", "sqeuclidean"]
DTYPES = [torch.float32, torch.float64]
from _devices import DEVICES


# ----------------------------------------------------------------------------- reference
def _soft_rank_reference(theta: np.ndarray, eps: float) -> np.ndarray:
    """Projection of theta/eps onto the permutahedron, via scikit-learn's isotonic regression."""
    z = theta / eps
    order = np.argsort(-z, kind="stable")
    s = z[order]
    fit = isotonic_regression(s - np.arange(z.size, 0, -1, dtype=np.float64), increasing=False)
    out = np.empty_like(z)
    out[order] = s - fit
    return out


def pc_loss_reference(student, teacher, student_metric, teacher_metric, eps) -> float:
    """The loss of docs/method.md §3 written out with numpy/scipy/sklearn, one reference at a time."""
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    ds, dt = cdist(s, s, student_metric), cdist(t, t, teacher_metric)
    n = len(s)
    terms = []
    for i in range(n):
        keep = np.arange(n) != i
        row = ds[i, keep]
        m = row.size
        z = (row - row.mean()) / row.std() * np.sqrt((m * m - 1) / 12.0)  # scaled to the ranks' spread
        soft = _soft_rank_reference(z, eps)
        hard = rankdata(dt[i, keep])
        terms.append(1.0 - np.corrcoef(soft, hard)[0, 1])
    return float(np.mean(terms))


def _pair(seed, n=12, d_s=4, d_t=9, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, d_s, generator=g, dtype=torch.float64)
    t = torch.randn(n, d_t, generator=g, dtype=torch.float64)
    return s.to(dtype=dtype, device=device), t.to(dtype=dtype, device=device)


# ----------------------------------------------------------------------------- off_diagonal
@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_off_diagonal_matches_mask_reference(n, dtype):
    m = torch.arange(n * n).view(n, n).to(dtype) * 3 - 5
    out = off_diagonal(m)
    mask = ~np.eye(n, dtype=bool)
    expected = m.numpy()[mask].reshape(n, n - 1)
    assert out.shape == (n, n - 1) and out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), expected)
    # row i holds matrix[i, j] for j != i in increasing j
    for i in range(n):
        np.testing.assert_array_equal(out[i].numpy(), np.delete(m[i].numpy(), i))


def test_off_diagonal_non_contiguous_and_gradient():
    m = torch.randn(6, 6, dtype=torch.float64)
    mt = m.T
    assert not mt.is_contiguous()
    np.testing.assert_array_equal(off_diagonal(mt).numpy(), mt.numpy()[~np.eye(6, dtype=bool)].reshape(6, 5))
    x = m.clone().requires_grad_()
    w = torch.randn(6, 5, dtype=torch.float64)
    (off_diagonal(x) * w).sum().backward()
    expected = torch.zeros(6, 6, dtype=torch.float64)
    expected[~torch.eye(6, dtype=torch.bool)] = w.flatten()
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (2, 5)])
def test_off_diagonal_rejects_non_square(shape):
    # Not validated explicitly: the view cannot be formed for a non-square matrix.
    with pytest.raises((RuntimeError, ValueError)):
        off_diagonal(torch.zeros(shape))


# ----------------------------------------------------------------------------- registry
def test_available_and_get_pc():
    names = available()
    assert names == sorted(names) and "pc" in names and names == sorted(LOSSES)
    loss = get("pc")
    assert type(loss) is PerceptionCoherenceLoss and isinstance(loss, TransferLoss)
    assert loss.teacher_metric == "cosine" and loss.student_metric == "cosine"
    assert loss.regularization_strength == 1.0  # the default chosen by benchmarks/study_strength.py
    assert loss.queue_size == 0  # no queue by default (benchmarks/study_queue.py)
    assert loss.uses == "features" and loss.min_samples == 3


def test_get_passes_kwargs_and_drops_width_arguments():
    loss = get("pc", teacher_metric="euclidean", student_metric="sqeuclidean", regularization_strength=0.5,
               student_dim=4, teacher_dim=9)
    assert (loss.teacher_metric, loss.student_metric, loss.regularization_strength) == ("euclidean", "sqeuclidean", 0.5)
    s, t = _pair(0)
    direct = PerceptionCoherenceLoss("euclidean", "sqeuclidean", 0.5)
    assert float(loss(s, t)) == float(direct(s, t))


def test_get_returns_instances_as_given():
    loss = PerceptionCoherenceLoss(regularization_strength=0.3)
    assert get(loss) is loss


def test_get_unknown_name_lists_registered_names():
    with pytest.raises(ValueError, match="unknown loss 'p_c'") as info:
        get("p_c")
    assert "'pc'" in str(info.value)
    assert str(available()) in str(info.value)


def test_arguments_are_the_constructor_defaults():
    import inspect

    pc = arguments("pc")
    assert pc["regularization_strength"] == PerceptionCoherenceLoss().regularization_strength
    assert pc["focus"] == 0.0 and pc["queue_size"] == 0 and "self" not in pc
    fitnet = arguments("fitnet")
    assert list(fitnet) == ["student_dim", "teacher_dim"]
    assert fitnet["student_dim"] is inspect.Parameter.empty
    assert arguments("crd")["num_negatives"] == 16384
    with pytest.raises(ValueError, match="unknown loss 'p_c'"):
        arguments("p_c")
    with pytest.raises(TypeError, match="name must be a loss name"):
        arguments(3)


@pytest.mark.parametrize("bad", [None, 3, PerceptionCoherenceLoss, ["pc"]])
def test_get_rejects_wrong_types(bad):
    with pytest.raises(TypeError, match="name must be a loss name"):
        get(bad)


# ----------------------------------------------------------------------------- PC loss values
@pytest.mark.parametrize("eps", [0.05, 0.1, 1.0])
@pytest.mark.parametrize("s_metric,t_metric", [("cosine", "cosine"), ("euclidean", "cosine"), ("sqeuclidean", "euclidean")])
def test_pc_loss_matches_independent_reference(s_metric, t_metric, eps):
    s, t = _pair(1, n=14, d_s=3, d_t=11)
    got = float(PerceptionCoherenceLoss(t_metric, s_metric, eps)(s, t))
    assert got == pytest.approx(pc_loss_reference(s, t, s_metric, t_metric, eps), rel=1e-9, abs=1e-10)


def test_pc_loss_hard_rank_limit_is_one_minus_pc_n():
    """With a tiny strength the soft ranks are hard ranks, so L = 1 - PC_N (coherence module)."""
    s, t = _pair(2, n=30, d_s=5, d_t=8)
    loss = float(PerceptionCoherenceLoss("euclidean", "cosine", 1e-6)(s, t))
    pc = coherence.perception_coherence(s, t, student_metric="cosine", teacher_metric="euclidean")
    assert loss == pytest.approx(1.0 - pc, abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "s_metric,t_metric", [("sqeuclidean", "euclidean"), ("euclidean", "euclidean"), ("cosine", "cosine")]
)
def test_pc_loss_near_zero_for_increasing_transform(s_metric, t_metric, dtype):
    # student = teacher features; sqeuclidean is a strictly increasing function of euclidean.
    # With eps = 1e-4 every gap larger than 1e-4 between standardised dissimilarities is ranked
    # exactly, so only near-ties leave a residual (measured ~2e-6 at n = 20): 1e-3 is safe.
    _, t = _pair(3, n=20, d_t=6, dtype=dtype)
    loss = PerceptionCoherenceLoss(t_metric, s_metric, 1e-4)(t.clone(), t)
    assert -1e-6 <= float(loss) < 1e-3  # float32 rounding can put corr a hair above 1


def test_pc_loss_near_two_for_reversed_order():
    # 1-D points on a line: the student's dissimilarity C - |a - b| reverses the teacher's
    # order seen from every reference (self-pairs, where C - 0 = C, are excluded).
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.uniform(0, 10, size=(15, 1)))
    reverse = lambda v: 100.0 - torch.cdist(v, v)  # noqa: E731
    loss = PerceptionCoherenceLoss("euclidean", reverse, 1e-4)(x, x)
    assert float(loss) > 1.9
    assert float(loss) <= 2.0 + 1e-9
    # the same reversal at the default strength still scores far above a random student
    assert float(PerceptionCoherenceLoss("euclidean", reverse)(x, x)) > 1.5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", NAMES)
def test_pc_loss_invariant_to_rescaling_student(metric, dtype, device):
    s, t = _pair(5, n=16, d_s=5, d_t=7, dtype=dtype, device=device)
    loss = PerceptionCoherenceLoss("cosine", metric)
    base, scaled = float(loss(s, t)), float(loss(s * 7.3, t))
    # z-standardisation removes the scale; only rounding of the rescaled dissimilarities remains
    # (relative 1e-16 / 1e-7), and the soft rank is 1/eps-Lipschitz.
    assert scaled == pytest.approx(base, rel=1e-6)


def test_pc_loss_depends_on_teacher_only_through_ranks():
    s, t = _pair(6)
    a = float(PerceptionCoherenceLoss("euclidean", "cosine")(s, t))
    b = float(PerceptionCoherenceLoss("sqeuclidean", "cosine")(s, t))
    c = float(PerceptionCoherenceLoss("euclidean", "cosine")(s, 3.0 * t + 1.0))
    assert a == b == pytest.approx(c, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pc_loss_dtype_device_and_bounds(dtype, device):
    for seed in range(5):
        s, t = _pair(seed, n=10, dtype=dtype, device=device)
        loss = PerceptionCoherenceLoss()(s, t)
        assert loss.shape == () and loss.dtype == dtype and loss.device.type == device
        assert -1e-6 <= float(loss) <= 2.0 + 1e-6


def test_pc_loss_float32_matches_float64():
    s, t = _pair(7, n=12)
    a = float(PerceptionCoherenceLoss("euclidean", "euclidean")(s, t))
    b = float(PerceptionCoherenceLoss("euclidean", "euclidean")(s.float(), t.float()))
    assert b == pytest.approx(a, abs=1e-4)


def test_pc_loss_mixed_dtypes_follow_the_student():
    s, t = _pair(8)
    loss = PerceptionCoherenceLoss()(s.float(), t)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(float(PerceptionCoherenceLoss()(s, t)), abs=1e-4)


@pytest.mark.parametrize("d_s,d_t", [(1, 50), (3, 3), (64, 2)])
def test_pc_loss_with_different_widths(d_s, d_t):
    s, t = _pair(9, n=9, d_s=d_s, d_t=d_t)
    metric = "euclidean" if d_s == 1 else "cosine"  # cosine of 1-D features is degenerate (+-1)
    loss = PerceptionCoherenceLoss("cosine", metric, 0.2)
    assert float(loss(s, t)) == pytest.approx(pc_loss_reference(s, t, metric, "cosine", 0.2), rel=1e-9)


def test_pc_loss_accepts_model_outputs_and_uses_features():
    s, t = _pair(10)
    out_s = SimpleNamespace(features=s, logits=torch.randn(12, 3))
    out_t = SimpleNamespace(features=t, logits=torch.randn(12, 3))
    loss = PerceptionCoherenceLoss()
    assert float(loss(out_s, out_t)) == float(loss(s, t))
    assert float(loss(out_s, t)) == float(loss(s, out_t))


# ----------------------------------------------------------------------------- PC loss gradients
@pytest.mark.parametrize("metric", NAMES)
def test_pc_loss_gradcheck_student(metric):
    s, t = _pair(11, n=6, d_s=3, d_t=4)
    s.requires_grad_()
    loss = PerceptionCoherenceLoss("euclidean", metric, 1.0)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (s,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pc_loss_teacher_gets_no_gradient(dtype, device):
    s, t = _pair(12, dtype=dtype, device=device)
    s.requires_grad_()
    t.requires_grad_()
    PerceptionCoherenceLoss()(s, t).backward()
    assert t.grad is None
    assert s.grad is not None and bool(torch.isfinite(s.grad).all()) and float(s.grad.abs().sum()) > 0


def test_pc_loss_gradient_descent_improves_coherence():
    s, t = _pair(13, n=24, d_s=3, d_t=10)
    s.requires_grad_()
    loss = PerceptionCoherenceLoss("cosine", "euclidean", 0.1)
    opt = torch.optim.SGD([s], lr=5.0)
    first = loss(s, t).item()
    for _ in range(10):
        opt.zero_grad()
        loss(s, t).backward()
        opt.step()
    assert loss(s, t).item() < first - 0.2  # measured: 1.06 -> 0.70


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", NAMES)
@pytest.mark.parametrize(
    "case", ["all_rows_equal", "all_rows_zero", "equidistant_rows"]
)
def test_pc_loss_collapsed_student_is_finite(case, metric, dtype):
    """A collapsed student (all rows equal, or every reference seeing equal dissimilarities) must
    give a finite loss and finite gradients; where the student's dissimilarities from a reference
    are exactly equal, that reference contributes 1 (correlation 0)."""
    n = 6
    if case == "all_rows_equal":
        s = torch.tensor([0.3, -1.2, 2.0, 0.7], dtype=dtype).repeat(n, 1)
    elif case == "all_rows_zero":
        s = torch.zeros(n, 4, dtype=dtype)
    else:  # the vertices of a regular simplex: every pair at the same distance, exactly
        s = torch.eye(n, dtype=dtype)
    s.requires_grad_()
    _, t = _pair(14, n=n, dtype=dtype)
    loss = PerceptionCoherenceLoss("euclidean", metric)(s, t)
    loss.backward()
    value = loss.item()
    assert np.isfinite(value) and 0.0 <= value <= 2.0
    assert bool(torch.isfinite(s.grad).all()), f"non-finite gradient: {s.grad}"
    d = off_diagonal(pairwise(s.detach(), metric))
    if bool((d == d[:, :1]).all()):
        assert value == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- PC loss properties
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 1e3),
    metric=st.sampled_from(NAMES),
    n=st.integers(3, 10),
)
def test_pc_loss_property_invariant_to_student_scale(seed, scale, metric, n):
    s, t = _pair(seed, n=n, d_s=3, d_t=5)
    loss = PerceptionCoherenceLoss("cosine", metric, 0.1)
    assert float(loss(s * scale, t)) == pytest.approx(float(loss(s, t)), rel=1e-6, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 10), metric=st.sampled_from(NAMES), data=st.data())
def test_pc_loss_property_invariant_to_batch_permutation(seed, n, metric, data):
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    s, t = _pair(seed, n=n, d_s=4, d_t=3)
    loss = PerceptionCoherenceLoss(metric, metric, 0.1)
    assert float(loss(s[perm], t[perm])) == pytest.approx(float(loss(s, t)), rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- PC loss bad input
@pytest.mark.parametrize("bad", [0, 0.0, -1, -1.0, float("inf"), float("nan")])
def test_pc_loss_rejects_non_positive_strength(bad):
    with pytest.raises(ValueError, match="regularization_strength"):
        PerceptionCoherenceLoss(regularization_strength=bad)


@pytest.mark.parametrize("bad", ["0.1", None, True, [0.1]])
def test_pc_loss_rejects_strength_of_wrong_type(bad):
    with pytest.raises(TypeError, match="regularization_strength"):
        PerceptionCoherenceLoss(regularization_strength=bad)


@pytest.mark.parametrize("argument", ["teacher_metric", "student_metric"])
def test_pc_loss_rejects_unknown_metric_at_construction(argument):
    with pytest.raises(ValueError, match=f"{argument} must be one of") as info:
        PerceptionCoherenceLoss(**{argument: "manhatan"})
    assert "cosine" in str(info.value) and "sqeuclidean" in str(info.value)
    with pytest.raises(TypeError, match=argument):
        PerceptionCoherenceLoss(**{argument: 42})
    with pytest.raises(ValueError, match=argument):
        get("pc", **{argument: "manhatan"})


@pytest.mark.parametrize("side", ["student", "teacher"])
@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), -float("inf")])
def test_pc_loss_rejects_nan_and_inf(side, bad_value):
    s, t = _pair(15)
    (s if side == "student" else t)[3, 1] = bad_value
    with pytest.raises(ValueError, match=f"{side} contains NaN or Inf"):
        PerceptionCoherenceLoss()(s, t)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_pc_loss_rejects_fewer_than_three_samples(n):
    s, t = _pair(16)
    with pytest.raises(ValueError, match="student must hold at least 3 samples"):
        PerceptionCoherenceLoss()(s[:n], t[:n])


def test_pc_loss_rejects_mismatched_sample_counts():
    s, t = _pair(17)
    with pytest.raises(ValueError, match="same number of samples"):
        PerceptionCoherenceLoss()(s, t[:-1])


@pytest.mark.parametrize("side", ["student", "teacher"])
@pytest.mark.parametrize("shape", [(12,), (12, 3, 2)])
def test_pc_loss_rejects_non_2d(side, shape):
    s, t = _pair(18)
    bad = torch.randn(shape, dtype=torch.float64)
    args = (bad, t) if side == "student" else (s, bad)
    with pytest.raises(ValueError, match=f"{side} must be 2-D"):
        PerceptionCoherenceLoss()(*args)


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_pc_loss_rejects_wrong_types(side):
    s, t = _pair(19)
    for bad, exc, msg in (
        (s.numpy() if side == "student" else t.numpy(), TypeError, "must be a tensor or a model output"),
        ([[1.0, 2.0]] * 12, TypeError, "must be a tensor or a model output"),
        (SimpleNamespace(logits=s), TypeError, "with a 'features' attribute"),
        (torch.ones(12, 3, dtype=torch.int64), TypeError, "must be a floating-point tensor"),
    ):
        args = (bad, t) if side == "student" else (s, bad)
        with pytest.raises(exc, match=f"{side} {msg}" if "floating" in msg else msg):
            PerceptionCoherenceLoss()(*args)


# ----------------------------------------------------------------------------- base class: indices
def test_losses_without_indices_ignore_them_and_pc_without_queue_too():
    from pcoh.losses import PKTLoss

    s, t = _pair(20)
    idx = torch.arange(12)
    assert float(PKTLoss()(s, t, indices=idx)) == float(PKTLoss()(s, t))
    loss = PerceptionCoherenceLoss()
    assert float(loss(s, t, indices=idx)) == float(loss(s, t))
    assert loss.state_dict() == {} and not PerceptionCoherenceLoss.needs_indices


# ----------------------------------------------------------------------------- strength scale
def test_pc_loss_strength_is_relative_to_the_spread_of_ranks():
    """eps on the rank scale: the loss at (n, eps) equals the unscaled formula at eps / s_m."""
    for n in (8, 40):
        s, t = _pair(21, n=n, d_s=3, d_t=5)
        m = n - 1
        spread = np.sqrt((m * m - 1) / 12.0)
        d = off_diagonal(pairwise(s, "cosine"))
        z = (d - d.mean(1, keepdim=True)) / d.std(1, correction=0, keepdim=True)
        hard = torch.tensor(rankdata(off_diagonal(pairwise(t, "cosine")).numpy(), axis=1))
        from pcoh.ranking import soft_rank

        soft = soft_rank(z, 0.5 / spread)
        expected = float((1 - torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(soft, hard)])).mean())
        assert float(PerceptionCoherenceLoss(regularization_strength=0.5)(s, t)) == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- feature queue
def pc_queue_reference(s, t, q_s, q_t, q_idx, idx, eps, metric="cosine"):
    """Batch + queue PC loss with numpy/scipy/sklearn: reference i is compared with the batch
    without i and with the queued samples whose index is not in the batch (all when idx is None)."""
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    q_s, q_t = np.asarray(q_s, np.float64).reshape(-1, s.shape[1]), np.asarray(q_t, np.float64).reshape(-1, t.shape[1])
    keep = np.ones(len(q_s), bool) if idx is None else ~np.isin(np.asarray(q_idx), np.asarray(idx))
    all_s, all_t = np.vstack([s, q_s[keep]]), np.vstack([t, q_t[keep]])
    terms = []
    for i in range(len(s)):
        cols = np.arange(len(all_s)) != i
        row = cdist(s[i:i + 1], all_s, metric)[0, cols]
        m = row.size
        z = (row - row.mean()) / row.std() * np.sqrt((m * m - 1) / 12.0)
        hard = rankdata(cdist(t[i:i + 1], all_t, metric)[0, cols])
        terms.append(1.0 - np.corrcoef(_soft_rank_reference(z, eps), hard)[0, 1])
    return float(np.mean(terms))


def _stream(seed, steps, n, d_s=3, d_t=5, num=40, dtype=torch.float64):
    """Batches (student, teacher, indices) drawn from a fixed 'training set' of num samples."""
    g = torch.Generator().manual_seed(seed)
    data_s = torch.randn(num, d_s, generator=g, dtype=torch.float64).to(dtype)
    data_t = torch.randn(num, d_t, generator=g, dtype=torch.float64).to(dtype)
    out = []
    for _ in range(steps):
        idx = torch.randperm(num, generator=g)[:n]
        # Student features drift between steps (a stale queue); teacher ones move a little too
        # (augmentation), so that two queued copies of a sample are not exact teacher ties, which
        # matrix products may break differently from scipy's cdist.
        noise_s = 0.1 * torch.randn(n, d_s, generator=g, dtype=torch.float64).to(dtype)
        noise_t = 1e-3 * torch.randn(n, d_t, generator=g, dtype=torch.float64).to(dtype)
        out.append((data_s[idx] + noise_s, data_t[idx] + noise_t, idx))
    return out


@pytest.mark.parametrize("eps", [1e-3, 0.5])
@pytest.mark.parametrize("with_indices", [True, False])
def test_pc_queue_matches_brute_force_reference(eps, with_indices):
    k, n = 10, 6
    batches = _stream(22, 4, n)
    loss = PerceptionCoherenceLoss(regularization_strength=eps, queue_size=k)
    seen_s, seen_t, seen_i = [], [], []
    for s, t, idx in batches:
        got = float(loss(s, t, indices=idx if with_indices else None))
        q = slice(max(0, len(seen_s) - k), len(seen_s))  # the last k samples seen, in any order
        q_i = torch.tensor(seen_i[q]) if with_indices else torch.full((len(seen_i[q]),), -1)
        expected = pc_queue_reference(s, t, seen_s[q], seen_t[q], q_i, idx if with_indices else None, eps)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
        seen_s += list(s.numpy())
        seen_t += list(t.numpy())
        seen_i += idx.tolist()
    assert int(loss.queue_count) == k and int(loss.queue_ptr) == (4 * n) % k


def test_pc_queue_hard_rank_limit_is_spearman_over_batch_and_queue():
    """Tiny strength: 1 - mean Spearman (scipy) of each reference over batch + queue."""
    from scipy.stats import spearmanr

    batches = _stream(23, 3, 8, num=30)
    loss = PerceptionCoherenceLoss("euclidean", "euclidean", 1e-6, queue_size=12)
    for s, t, idx in batches[:2]:
        loss(s, t, indices=idx)
    s, t, idx = batches[2]
    q_idx = loss.queue_index
    keep = ~np.isin(q_idx.numpy(), idx.numpy())
    all_s = np.vstack([s.numpy(), loss.queue_student.numpy()[keep]])
    all_t = np.vstack([t.numpy(), loss.queue_teacher.numpy()[keep]])
    rhos = []
    for i in range(len(s)):
        cols = np.arange(len(all_s)) != i
        rhos.append(spearmanr(cdist(s.numpy()[i:i + 1], all_s)[0, cols], cdist(t.numpy()[i:i + 1], all_t)[0, cols])[0])
    assert float(loss(s, t, indices=idx)) == pytest.approx(1.0 - np.mean(rhos), abs=1e-6)


def test_pc_queue_never_compares_a_sample_with_its_own_copy():
    # Queue the batch itself, then rank it again with its indices: every queued entry is a copy
    # of a batch sample and is dropped, so the loss is the batch-only loss.
    s, t = _pair(24, n=10)
    idx = torch.arange(100, 110)
    loss = PerceptionCoherenceLoss(queue_size=32)
    loss(s, t, indices=idx)
    assert int(loss.queue_count) == 10
    assert torch.equal(loss.queue_index[:10], idx)
    plain = float(PerceptionCoherenceLoss()(s, t))
    assert float(loss(s, t, indices=idx)) == pytest.approx(plain, rel=1e-12)
    # Without indices the copies are compared like any other sample (only self-pairs excluded).
    # (Queued copies slightly moved, so that no dissimilarity is an exact tie that matrix
    # products and scipy's cdist could break differently.)
    g = torch.Generator().manual_seed(0)
    s_q = s + 0.05 * torch.randn(s.shape, generator=g, dtype=s.dtype)
    t_q = t + 1e-3 * torch.randn(t.shape, generator=g, dtype=t.dtype)
    fresh = PerceptionCoherenceLoss(queue_size=32)
    fresh(s_q, t_q)
    without = float(fresh(s, t))
    assert without == pytest.approx(pc_queue_reference(s, t, s_q, t_q, -np.ones(10), None, 1.0), rel=1e-9)
    assert without != pytest.approx(plain, rel=1e-6)
    # Only the copies are dropped: other queued samples stay.
    s2, t2 = _pair(25, n=10)
    loss(s2, t2, indices=torch.arange(10))  # queue: 100..109 twice (two calls above), then 0..9
    assert int(loss.queue_count) == 30
    expected = pc_queue_reference(s, t, loss.queue_student[:30], loss.queue_teacher[:30], loss.queue_index[:30], idx, 1.0)
    assert float(loss(s, t, indices=idx)) == pytest.approx(expected, rel=1e-9)
    assert expected != pytest.approx(plain, rel=1e-6)


def test_pc_queue_fifo_eval_mode_and_large_batches():
    loss = PerceptionCoherenceLoss(queue_size=5)
    batches = _stream(26, 3, 3, dtype=torch.float32)
    for s, t, idx in batches:
        loss(s, t, indices=idx)
    # 9 samples through a queue of 5: positions hold samples 5..8 then 4 (written at ptr 4 -> 0..3)
    seen = torch.cat([b[2] for b in batches])
    assert loss.queue_student.dtype == torch.float32 and loss.queue_student.shape == (5, 3)
    assert int(loss.queue_ptr) == 9 % 5 and int(loss.queue_count) == 5
    assert sorted(loss.queue_index.tolist()) == sorted(seen[-5:].tolist())
    assert torch.equal(loss.queue_index[4], seen[4]) and torch.equal(loss.queue_index[:4], seen[5:9])
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.eval()
    loss(*batches[0][:2], indices=batches[0][2])
    assert all(torch.equal(before[k], v) for k, v in loss.state_dict().items())  # eval: no enqueue
    loss.train()
    s, t = _pair(27, n=8, d_s=3, d_t=5)
    loss(s.float(), t.float(), indices=torch.arange(8))  # larger than the queue: its last 5 stay
    assert sorted(loss.queue_index.tolist()) == [3, 4, 5, 6, 7]
    torch.testing.assert_close(loss.queue_student[loss.queue_index.argsort()], s.float()[3:])


def test_pc_queue_gradients_flow_to_the_batch_only():
    batches = _stream(28, 3, 5, num=20)
    loss = PerceptionCoherenceLoss("euclidean", "cosine", 1.0, queue_size=8)
    for s, t, idx in batches[:2]:
        loss(s, t, indices=idx)
    assert not any(b.requires_grad for b in loss.buffers())
    s, t, idx = batches[2]
    loss.eval()  # keep the queue fixed for gradcheck's repeated calls
    x = s.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: loss(a, t, indices=idx), (x,), eps=1e-6, atol=1e-6, rtol=1e-4)
    loss.train()
    x = s.clone().requires_grad_()
    loss(x, t, indices=idx).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().sum()) > 0
    assert not loss.queue_student.requires_grad and loss.queue_student.grad is None


def test_pc_queue_state_dict_round_trip_resumes_identically():
    import io

    batches = _stream(29, 6, 4, num=16, dtype=torch.float32)
    a = PerceptionCoherenceLoss(queue_size=10)
    for s, t, idx in batches[:3]:
        a(s, t, indices=idx)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = PerceptionCoherenceLoss(queue_size=10)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert set(b.state_dict()) == {"queue_student", "queue_teacher", "queue_index", "queue_ptr", "queue_count"}
    for s, t, idx in batches[3:]:
        assert float(a(s, t, indices=idx)) == float(b(s, t, indices=idx))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]) and v.dtype == b.state_dict()[k].dtype
    with pytest.raises(ValueError, match="holds 10 entries, but this loss keeps a queue of 4"):
        PerceptionCoherenceLoss(queue_size=4).load_state_dict(a.state_dict())
    # an empty (never used) queue loads too
    PerceptionCoherenceLoss(queue_size=10).load_state_dict(PerceptionCoherenceLoss(queue_size=10).state_dict())


def test_pc_queue_capped_at_the_training_set_size():
    with pytest.warns(UserWarning, match="queue_size=64 is larger than the training set"):
        loss = get("pc", queue_size=64, num_samples=20, student_dim=3, teacher_dim=5)
    for s, t, idx in _stream(30, 5, 6, num=20):
        loss(s, t, indices=idx)
    assert loss.queue_student.shape == (20, 3) and int(loss.queue_count) == 20
    assert get("pc", num_samples=20).queue_size == 0  # num_samples is accepted without a queue


@pytest.mark.parametrize("bad", [-1, -100])
def test_pc_queue_rejects_negative_size(bad):
    with pytest.raises(ValueError, match="queue_size must be a non-negative int, got -"):
        PerceptionCoherenceLoss(queue_size=bad)


@pytest.mark.parametrize("bad", [2.5, 4.0, "8", True, None])
def test_pc_queue_rejects_non_int_size(bad):
    with pytest.raises(TypeError, match="queue_size must be a non-negative int"):
        PerceptionCoherenceLoss(queue_size=bad)


@pytest.mark.parametrize("bad", [0, -5])
def test_pc_loss_rejects_bad_num_samples(bad):
    with pytest.raises(ValueError, match="num_samples"):
        PerceptionCoherenceLoss(queue_size=4, num_samples=bad)
    with pytest.raises(TypeError, match="num_samples"):
        PerceptionCoherenceLoss(queue_size=4, num_samples=3.0)


def test_pc_queue_rejects_bad_indices_and_width_changes():
    s, t = _pair(31)
    loss = PerceptionCoherenceLoss(queue_size=8)
    with pytest.raises(TypeError, match="indices must be a 1-D integer torch.Tensor"):
        loss(s, t, indices=list(range(12)))
    with pytest.raises(TypeError, match="indices must be an integer tensor, got dtype torch.float32"):
        loss(s, t, indices=torch.arange(12.0))
    with pytest.raises(ValueError, match=r"indices must have shape \(n,\) = \(12,\).*got \(11,\)"):
        loss(s, t, indices=torch.arange(11))
    loss(s, t, indices=torch.arange(12))
    with pytest.raises(ValueError, match="student features have width 2, but the queue holds features of width 4"):
        loss(s[:, :2], t, indices=torch.arange(12))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("name", ["pc", "rkd", "pkt", "sp", "cc"])
def test_cuda_nonfinite_features_make_the_loss_nan_without_a_host_sync(name):
    # On an accelerator the inputs are not checked on the host: a NaN must still reach the value.
    from pcoh import losses as L

    s = torch.randn(32, 8, device="cuda", requires_grad=True)
    t = torch.randn(32, 16, device="cuda")
    loss_fn = L.get(name)
    assert torch.isfinite(loss_fn(s, t))
    bad = t.clone()
    bad[3, 2] = float("nan")
    assert torch.isnan(loss_fn(s, bad))


# ----------------------------------------------------------------------------- neighbourhood emphasis (focus)
FOCUS_SETTINGS = [
    dict(focus=2.0),
    dict(focus=6.0),
    dict(focus=4.0, focus_kind="top", focus_fraction=0.25),
    dict(focus=3.0, focus_symmetric=True),
    dict(focus=9.0, focus_kind="top", focus_fraction=0.1, focus_symmetric=True),
]


def _g_reference(u, focus, kind, fraction):
    return np.exp(-focus * u) if kind == "exp" else np.where(u <= fraction, 1.0 + focus, 1.0)


def pc_focus_reference(student, teacher, s_metric, t_metric, eps, focus, kind="exp", fraction=0.1, symmetric=False):
    """The weighted loss written out with numpy/scipy/sklearn: per reference, weights on the
    probabilistic ranks u = (rank - 1/2) / m, and the weighted correlation from np.cov's aweights."""
    s, t = np.asarray(student, np.float64), np.asarray(teacher, np.float64)
    ds, dt = cdist(s, s, s_metric), cdist(t, t, t_metric)
    terms = []
    for i in range(len(s)):
        keep = np.arange(len(s)) != i
        row = ds[i, keep]
        m = row.size
        z = (row - row.mean()) / row.std() * np.sqrt((m * m - 1) / 12.0)
        soft = _soft_rank_reference(z, eps)
        hard = rankdata(dt[i, keep])
        w = _g_reference((hard - 0.5) / m, focus, kind, fraction)
        if symmetric:
            w = (w + _g_reference((rankdata(row) - 0.5) / m, focus, kind, fraction)) / 2
        c = np.cov(soft, hard, aweights=w / w.sum())
        terms.append(1.0 - c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))
    return float(np.mean(terms))


@pytest.mark.parametrize("queue", [0, 8])
@pytest.mark.parametrize("extra", [dict(), dict(focus_kind="top", focus_fraction=0.3), dict(focus_symmetric=True)])
def test_pc_focus_zero_is_the_plain_loss_exactly(extra, queue):
    """focus = 0, whatever the other focus arguments: the same values and gradients, bit for bit."""
    batches = _stream(40, 3, 6, num=20)
    plain = PerceptionCoherenceLoss("euclidean", "cosine", 0.5, queue_size=queue)
    zero = PerceptionCoherenceLoss("euclidean", "cosine", 0.5, queue_size=queue, focus=0.0, **extra)
    for s, t, idx in batches:
        xa, xb = s.clone().requires_grad_(), s.clone().requires_grad_()
        a, b = plain(xa, t, indices=idx), zero(xb, t, indices=idx)
        a.backward()
        b.backward()
        assert torch.equal(a, b) and torch.equal(xa.grad, xb.grad)
    if not queue:  # and it is the loss of docs/method.md §3
        s, t, _ = batches[0]
        assert float(zero(s, t)) == pytest.approx(pc_loss_reference(s, t, "cosine", "euclidean", 0.5), rel=1e-9)


@pytest.mark.parametrize("setting", FOCUS_SETTINGS)
@pytest.mark.parametrize("n", [7, 16])
def test_pc_focus_matches_weighted_brute_force(setting, n):
    s, t = _pair(42 + n, n=n, d_s=3, d_t=6)
    got = float(PerceptionCoherenceLoss("cosine", "euclidean", 0.3, **setting)(s, t))
    expected = pc_focus_reference(s, t, "euclidean", "cosine", 0.3, setting["focus"], setting.get("focus_kind", "exp"),
                                  setting.get("focus_fraction", 0.1), setting.get("focus_symmetric", False))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_pc_focus_weighted_correlation_hand_computed():
    """corr_w of (1, 2, 3) and (1, 3, 2) under weights (1/2, 1/4, 1/4), worked by hand:
    means 7/4 and 7/4, deviations (-3/4, 1/4, 5/4) and (-3/4, 5/4, 1/4), covariance
    9/32 + 5/64 + 5/64 = 7/16, variances 11/16 and 11/16, so corr_w = 7/11 (unweighted: 1/2)."""
    from pcoh.losses.pc import _weighted_correlations

    a = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    target = torch.tensor([[1.0, 3.0, 2.0]], dtype=torch.float64) - 2.0  # centred ranks, m = 3
    # With a tiny strength the soft ranks of z = a are a's ranks 1, 2, 3. The teacher's
    # probabilistic ranks are u = (1/6, 5/6, 1/2); "top" with q = 0.2 and focus 1 gives the
    # first point 1 + 1 and the others 1: weights (2, 1, 1) / 4.
    corr = _weighted_correlations(a, a, target, 3, 1e-300, 1e-6, 1.0, "top", 0.2, False)
    assert float(corr) == pytest.approx(7.0 / 11.0, rel=1e-9)


@pytest.mark.parametrize("kind", ["exp", "top"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_pc_focus_uniform_weights_give_the_unweighted_loss(kind, symmetric):
    """A focus so small that the weights are uniform to 1e-13 runs the weighted code path and
    agrees with the plain loss (the top family with q >= every u is uniform at any focus)."""
    s, t = _pair(43, n=14, d_s=4, d_t=5)
    plain = float(PerceptionCoherenceLoss(regularization_strength=0.2)(s, t))
    setting = dict(focus=1e-13) if kind == "exp" else dict(focus=5.0, focus_kind="top", focus_fraction=0.999)
    got = float(PerceptionCoherenceLoss(regularization_strength=0.2, focus_symmetric=symmetric, **setting)(s, t))
    assert got == pytest.approx(plain, rel=1e-11, abs=1e-12)


@pytest.mark.parametrize("setting", FOCUS_SETTINGS)
def test_pc_focus_gradcheck(setting):
    s, t = _pair(44, n=7, d_s=3, d_t=4)
    s.requires_grad_()
    loss = PerceptionCoherenceLoss("euclidean", "euclidean", 1.0, **setting)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (s,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("setting", FOCUS_SETTINGS)
@pytest.mark.parametrize("metric", NAMES)
def test_pc_focus_invariant_to_rescaling_student(setting, metric):
    s, t = _pair(45, n=16, d_s=5, d_t=7)
    loss = PerceptionCoherenceLoss("cosine", metric, **setting)
    value = float(loss(s, t))
    assert 0.0 <= value <= 2.0
    assert float(loss(s * 7.3, t)) == pytest.approx(value, rel=1e-9)
    assert float(loss(s * 1e-3, t)) == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("kind,focus", [("exp", 4.0), ("top", 9.0)])
def test_pc_focus_weights_are_a_function_of_the_probabilistic_rank(kind, focus):
    """The same focus gives the same weight profile on u = (r - 1/2) / m at m = 31 and m = 127:
    m * w(u) (the weight relative to the mean weight) agrees up to the midpoint-rule error of
    the normalising sum, O(focus^2 / m^2); on raw ranks it would not."""
    from pcoh.losses.pc import _focus_weights

    profiles = {}
    for m in (31, 127):
        perm = torch.randperm(m, generator=torch.Generator().manual_seed(m)).to(torch.float64) + 1
        target = (perm - 0.5 * (m + 1)).unsqueeze(0)
        w = _focus_weights(target, target, m, focus, kind, 0.25, False)[0]
        assert float(w.sum()) == pytest.approx(1.0, rel=1e-12)
        u = (perm - 0.5) / m
        profiles[m] = (u.numpy(), (m * w).numpy())
    (u_small, w_small), (u_big, w_big) = profiles[31], profiles[127]
    order = np.argsort(u_big)
    if kind == "exp":
        np.testing.assert_allclose(w_small, np.interp(u_small, u_big[order], w_big[order]), rtol=3e-3)
        np.testing.assert_allclose(w_small, focus * np.exp(-focus * u_small) / (1 - np.exp(-focus)), rtol=3e-3)
    else:  # a step at u = q: equal weight on each side, in the ratio 1 + focus
        for u, w in profiles.values():
            inside, outside = w[u <= 0.25], w[u > 0.25]
            assert np.ptp(inside) < 1e-12 and np.ptp(outside) < 1e-12
            assert inside[0] / outside[0] == pytest.approx(1.0 + focus)
        # the inside weight relative to the mean differs only by how many ranks fall below q
        assert w_small[u_small <= 0.25][0] == pytest.approx(w_big[u_big <= 0.25][0], rel=0.05)


def test_pc_focus_symmetric_weights_carry_no_gradient():
    """The symmetric weights use the student's ranks but are constants of the backward pass:
    the gradient equals that of the same weighted correlation with the weights frozen in."""
    from pcoh.losses import pc as L

    s, t = _pair(46, n=9, d_s=3, d_t=5)
    setting = dict(focus=3.0, focus_symmetric=True)
    x = s.clone().requires_grad_()
    PerceptionCoherenceLoss(**setting)(x, t).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    captured = []
    real = L._focus_weights

    def frozen(*args):
        w = real(*args)
        assert not w.requires_grad
        captured.append(w)
        return w

    try:
        L._focus_weights = frozen
        y = s.clone().requires_grad_()
        PerceptionCoherenceLoss(**setting)(y, t).backward()
    finally:
        L._focus_weights = real
    assert len(captured) == 1 and torch.equal(x.grad, y.grad)
    # The frozen weights, fed back as teacher-side constants through a perturbed student, give a
    # finite-difference slope equal to the analytic gradient along a random direction.
    direction = torch.randn(s.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = 1e-6
    try:
        L._focus_weights = lambda *args: captured[0]
        up = float(PerceptionCoherenceLoss(**setting)(s + h * direction, t))
        down = float(PerceptionCoherenceLoss(**setting)(s - h * direction, t))
    finally:
        L._focus_weights = real
    assert (up - down) / (2 * h) == pytest.approx(float((x.grad * direction).sum()), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("setting", FOCUS_SETTINGS[1:4])
def test_pc_focus_with_queue_and_offset_paths(setting):
    """The queue path matches the batch loss on batch + queue rows, and the torchrun path (each
    process's references against the gathered batch, at an offset) splits the batch loss exactly."""
    from pcoh.losses.pc import _pc_correlations

    s, t = _pair(47, n=12, d_s=4, d_t=6)
    options = dict(student_metric="cosine", teacher_metric="cosine", regularization_strength=0.5,
                   focus=setting["focus"], focus_kind=setting.get("focus_kind", "exp"),
                   focus_fraction=setting.get("focus_fraction", 0.1),
                   focus_symmetric=setting.get("focus_symmetric", False))
    whole = _pc_correlations(s, t, s, t, 0, **options)
    halves = torch.cat([_pc_correlations(s[k:k + 6], t[k:k + 6], s, t, k, **options) for k in (0, 6)])
    torch.testing.assert_close(halves, whole, rtol=1e-12, atol=1e-12)
    # queue: 12 rows, the first 6 enqueued by a first call, then the last 6 as the batch
    loss = PerceptionCoherenceLoss(regularization_strength=0.5, queue_size=6, **setting)
    loss(s[:6], t[:6], indices=torch.arange(6))
    got = float(loss(s[6:], t[6:], indices=torch.arange(6, 12)))
    # the batch rows are the references, compared with the other 11 rows
    assert got == pytest.approx(float((1 - whole[6:]).mean()), rel=1e-12)


@pytest.mark.parametrize("name,bad,error", [
    ("focus", -1.0, ValueError), ("focus", float("nan"), ValueError), ("focus", float("inf"), ValueError),
    ("focus", "2", TypeError), ("focus", True, TypeError), ("focus", None, TypeError),
    ("focus_kind", "gauss", ValueError), ("focus_kind", "EXP", ValueError), ("focus_kind", 1, TypeError),
    ("focus_kind", None, TypeError),
    ("focus_fraction", 0.0, ValueError), ("focus_fraction", 1.0, ValueError), ("focus_fraction", -0.1, ValueError),
    ("focus_fraction", "0.1", TypeError),
    ("focus_symmetric", 1, TypeError), ("focus_symmetric", "yes", TypeError), ("focus_symmetric", None, TypeError),
])
def test_pc_focus_rejects_bad_arguments(name, bad, error):
    with pytest.raises(error, match=name):
        PerceptionCoherenceLoss(**{name: bad})


def test_pc_focus_repr_and_registry():
    loss = get("pc", focus=2.0, focus_kind="top", focus_fraction=0.25, focus_symmetric=True)
    assert (loss.focus, loss.focus_kind, loss.focus_fraction, loss.focus_symmetric) == (2.0, "top", 0.25, True)
    assert "focus=2.0, focus_kind='top', focus_fraction=0.25, focus_symmetric=True" in repr(loss)
    assert "focus" not in repr(PerceptionCoherenceLoss())
