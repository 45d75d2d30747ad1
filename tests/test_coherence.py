"""Tests for pcoh.coherence against scipy (spearmanr, kendalltau, cdist) and brute-force numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist
from scipy.stats import kendalltau, rankdata, spearmanr

from pcoh import coherence as C
from pcoh.dissimilarity import Euclidean

from _devices import DEVICES
METRIC_PAIRS = [("cosine", "cosine"), ("euclidean", "cosine"), ("sqeuclidean", "euclidean")]


# ----------------------------------------------------------------------------- data, references
def continuous(seed=0, n=25, d_s=3, d_t=6):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, d_t))
    s = t[:, :d_s] + 0.7 * rng.normal(size=(n, d_s))  # partly coherent with the teacher
    return s, t


def integer_valued(seed=0, n=22, d_s=2, d_t=3):
    """Integer features: many exactly tied (squared) Euclidean distances."""
    rng = np.random.default_rng(seed)
    return rng.integers(-2, 3, size=(n, d_s)).astype(float), rng.integers(-2, 3, size=(n, d_t)).astype(float)


def rows_without_self(d):
    n = d.shape[0]
    return [d[i, np.arange(n) != i] for i in range(n)]


def ref_spearman(s, t, sm, tm):
    return np.array([spearmanr(a, b).statistic for a, b in zip(rows_without_self(cdist(s, s, sm)),
                                                                rows_without_self(cdist(t, t, tm)))])


def ref_kendall(s, t, sm, tm):
    return np.array([kendalltau(a, b).statistic for a, b in zip(rows_without_self(cdist(s, s, sm)),
                                                                 rows_without_self(cdist(t, t, tm)))])


def ref_concordance(s, t, sm, tm):
    out = []
    for a, b in zip(rows_without_self(cdist(s, s, sm)), rows_without_self(cdist(t, t, tm))):
        j, k = np.triu_indices(len(a), 1)
        out.append(np.mean((a[j] - a[k]) * (b[j] - b[k]) > 0))
    return np.array(out)


def ref_neighbors(s, t, sm, tm, k):
    out = []
    ds, dt = cdist(s, s, sm), cdist(t, t, tm)
    np.fill_diagonal(ds, np.inf)
    np.fill_diagonal(dt, np.inf)
    for i in range(len(s)):
        a = set(np.argsort(ds[i], kind="stable")[:k])
        b = set(np.argsort(dt[i], kind="stable")[:k])
        out.append(len(a & b) / k)
    return np.array(out)


# ----------------------------------------------------------------------------- Spearman
@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
def test_per_reference_spearman_matches_scipy(sm, tm):
    s, t = continuous(1)
    got = C.per_reference_spearman(s, t, student_metric=sm, teacher_metric=tm)
    assert got.shape == (25,) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref_spearman(s, t, sm, tm), atol=1e-12)
    assert C.perception_coherence(s, t, student_metric=sm, teacher_metric=tm) == pytest.approx(got.mean(), abs=1e-15)


@pytest.mark.parametrize("sm,tm", [("euclidean", "euclidean"), ("sqeuclidean", "euclidean")])
def test_per_reference_spearman_with_ties_matches_scipy(sm, tm):
    s, t = integer_valued(2)
    ref = ref_spearman(s, t, sm, tm)
    assert np.isfinite(ref).all()  # the data has ties but no constant row
    got = C.per_reference_spearman(s, t, student_metric=sm, teacher_metric=tm)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_spearman_perfect_and_reversed_and_constant():
    s, t = continuous(3)
    # the same features with an increasing transform of the metric: coherent everywhere
    np.testing.assert_allclose(
        C.per_reference_spearman(t, t, student_metric="sqeuclidean", teacher_metric="euclidean"), 1.0, atol=1e-12
    )
    # 1-D points, student dissimilarity reversed with a callable: -1 everywhere
    x = np.random.default_rng(0).uniform(size=(12, 1))
    rev = C.per_reference_spearman(x, x, student_metric=lambda v: 5.0 - torch.cdist(v, v), teacher_metric="euclidean")
    np.testing.assert_allclose(rev, -1.0, atol=1e-12)
    # a collapsed student has no defined correlation: 0, not NaN
    flat = C.per_reference_spearman(np.ones((8, 3)), t[:8], student_metric="euclidean")
    np.testing.assert_array_equal(flat, np.zeros(8))


def test_spearman_values_in_range_and_float32_close_to_float64():
    s, t = continuous(4, n=40)
    a = C.per_reference_spearman(s, t)
    b = C.per_reference_spearman(s.astype(np.float32), t.astype(np.float32))
    assert np.all(np.abs(a) <= 1 + 1e-12)
    np.testing.assert_allclose(b, a, atol=1e-3)


# ----------------------------------------------------------------------------- Kendall, concordance
@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
def test_exact_kendall_matches_scipy(sm, tm):
    s, t = continuous(5)
    got = C.per_reference_kendall(s, t, student_metric=sm, teacher_metric=tm, n_pairs=None)
    np.testing.assert_allclose(got, ref_kendall(s, t, sm, tm), atol=1e-12)
    # "auto" is exact at this size
    np.testing.assert_array_equal(C.per_reference_kendall(s, t, student_metric=sm, teacher_metric=tm), got)


def test_exact_kendall_with_ties_matches_scipy_tau_b():
    s, t = integer_valued(6)
    got = C.per_reference_kendall(s, t, student_metric="euclidean", teacher_metric="sqeuclidean", n_pairs=None)
    np.testing.assert_allclose(got, ref_kendall(s, t, "euclidean", "sqeuclidean"), atol=1e-12)


def test_sampled_kendall_close_to_exact():
    s, t = continuous(7, n=40)
    exact = C.per_reference_kendall(s, t, n_pairs=None)
    sampled = C.per_reference_kendall(s, t, n_pairs=20000, seed=3)
    # standard error <= 1/sqrt(20000) ~ 0.007 per reference
    np.testing.assert_allclose(sampled, exact, atol=0.03)
    assert abs(sampled.mean() - exact.mean()) < 0.01
    assert not np.array_equal(sampled, exact)  # it is an estimate, not the exact computation


def test_sampled_kendall_is_deterministic_with_a_seed():
    s, t = continuous(8, n=30)
    a = C.per_reference_kendall(s, t, n_pairs=500, seed=11)
    np.testing.assert_array_equal(a, C.per_reference_kendall(s, t, n_pairs=500, seed=11))
    assert not np.array_equal(a, C.per_reference_kendall(s, t, n_pairs=500, seed=12))


@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
def test_concordance_equals_half_one_plus_tau_without_ties(sm, tm):
    s, t = continuous(9)
    tau = C.per_reference_kendall(s, t, student_metric=sm, teacher_metric=tm, n_pairs=None)
    kappa = C.concordance_probability(s, t, student_metric=sm, teacher_metric=tm, n_pairs=None)
    np.testing.assert_allclose(kappa, (1 + tau) / 2, atol=1e-12)
    np.testing.assert_allclose(kappa, ref_concordance(s, t, sm, tm), atol=1e-12)
    assert np.all((kappa >= 0) & (kappa <= 1))


def test_concordance_with_ties_counts_tied_pairs_as_not_concordant():
    s, t = integer_valued(10)
    kappa = C.concordance_probability(s, t, student_metric="euclidean", teacher_metric="euclidean", n_pairs=None)
    np.testing.assert_allclose(kappa, ref_concordance(s, t, "euclidean", "euclidean"), atol=1e-12)
    assert np.all((kappa >= 0) & (kappa <= 1))
    # with ties, concordant + discordant < all pairs, so kappa < (1 + tau_b) / 2 is possible
    tau = C.per_reference_kendall(s, t, student_metric="euclidean", teacher_metric="euclidean", n_pairs=None)
    assert np.any(kappa < (1 + tau) / 2 - 1e-3)


def test_sampled_concordance_close_to_exact():
    s, t = continuous(11, n=30)
    exact = C.concordance_probability(s, t, n_pairs=None)
    sampled = C.concordance_probability(s, t, n_pairs=20000)
    np.testing.assert_allclose(sampled, exact, atol=0.02)
    assert np.all((sampled >= 0) & (sampled <= 1))


# ----------------------------------------------------------------------------- global Spearman
@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
def test_global_spearman_exact_matches_scipy(sm, tm):
    s, t = continuous(12, n=30)
    ref = spearmanr(pdist(s, sm), pdist(t, tm)).statistic
    assert C.global_spearman(s, t, student_metric=sm, teacher_metric=tm, n_pairs=None) == pytest.approx(ref, abs=1e-12)
    assert C.global_spearman(s, t, student_metric=sm, teacher_metric=tm) == pytest.approx(ref, abs=1e-12)  # auto


def test_global_spearman_with_ties_matches_scipy():
    s, t = integer_valued(13)
    ref = spearmanr(pdist(s, "euclidean"), pdist(t, "sqeuclidean")).statistic
    got = C.global_spearman(s, t, student_metric="euclidean", teacher_metric="sqeuclidean", n_pairs=None)
    assert got == pytest.approx(ref, abs=1e-12)


def test_global_spearman_sampled_close_to_exact():
    s, t = continuous(14, n=60)
    exact = C.global_spearman(s, t, n_pairs=None)
    sampled = C.global_spearman(s, t, n_pairs=200_000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.01)
    assert sampled != exact
    assert C.global_spearman(s, t, n_pairs=200_000, seed=1) == sampled


def test_global_spearman_is_symmetric_and_in_range():
    s, t = continuous(15, n=20)
    g = C.global_spearman(s, t, student_metric="euclidean", teacher_metric="cosine")
    assert g == pytest.approx(C.global_spearman(t, s, student_metric="cosine", teacher_metric="euclidean"), abs=1e-12)
    assert -1 <= g <= 1
    # a collapsed student: no defined correlation, 0 rather than NaN
    assert C.global_spearman(np.ones((20, 2)), t, student_metric="euclidean") == 0.0


# ----------------------------------------------------------------------------- probabilistic ranks
def test_probabilistic_ranks_shape_range_and_grid_without_ties():
    s, _ = continuous(16, n=21)
    u = C.probabilistic_ranks(s, metric="euclidean")
    m = 20
    assert u.shape == (21, m)
    assert np.all((u > 0) & (u < 1))
    grid = (np.arange(1, m + 1) - 0.5) / m
    for row in u:
        np.testing.assert_allclose(np.sort(row), grid, atol=1e-15)
    # row i, column order: every j != i in increasing j, ranked by the dissimilarity
    d = rows_without_self(cdist(s, s, "euclidean"))
    np.testing.assert_allclose(u, (np.stack([rankdata(r) for r in d]) - 0.5) / m, atol=1e-15)


def test_probabilistic_ranks_with_ties_and_subset_of_references():
    s, _ = integer_valued(17)
    n = s.shape[0]
    full = C.probabilistic_ranks(s, metric="sqeuclidean")
    d = rows_without_self(cdist(s, s, "sqeuclidean"))
    np.testing.assert_allclose(full, (np.stack([rankdata(r) for r in d]) - 0.5) / (n - 1), atol=1e-15)
    refs = [5, 0, 5, n - 1]
    sub = C.probabilistic_ranks(s, metric="sqeuclidean", references=refs)
    assert sub.shape == (4, n - 1)
    np.testing.assert_array_equal(sub, full[refs])
    np.testing.assert_array_equal(
        C.probabilistic_ranks(s, metric="sqeuclidean", references=np.array(refs), chunk_size=1), full[refs]
    )
    assert C.probabilistic_ranks(s, references=np.array([], dtype=np.int64)).shape == (0, n - 1)


def test_spearman_identity_with_probabilistic_ranks():
    """rho_i = 1 - 6 mean((u_S - u_T)^2) m^2 / (m^2 - 1), m = N - 1, for continuous data."""
    s, t = continuous(18, n=31)
    m = 30
    u_s = C.probabilistic_ranks(s, metric="cosine")
    u_t = C.probabilistic_ranks(t, metric="euclidean")
    rho = 1 - 6 * np.mean((u_s - u_t) ** 2, axis=1) * m**2 / (m**2 - 1)
    np.testing.assert_allclose(
        rho, C.per_reference_spearman(s, t, student_metric="cosine", teacher_metric="euclidean"), atol=1e-12
    )


# ----------------------------------------------------------------------------- neighbours
@pytest.mark.parametrize("k", [1, 3, 10, 24])
@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
def test_neighbor_overlap_matches_brute_force(sm, tm, k):
    s, t = continuous(19)
    got = C.neighbor_overlap(s, t, k=k, student_metric=sm, teacher_metric=tm)
    np.testing.assert_array_equal(got, ref_neighbors(s, t, sm, tm, k))
    assert np.all((got >= 0) & (got <= 1))
    if k == 24:  # every other point: full overlap
        np.testing.assert_array_equal(got, 1.0)


@pytest.mark.parametrize("k", [2, 5])
def test_neighbor_overlap_with_ties_breaks_them_by_index(k):
    s, t = integer_valued(20)
    got = C.neighbor_overlap(s, t, k=k, student_metric="sqeuclidean", teacher_metric="euclidean")
    np.testing.assert_array_equal(got, ref_neighbors(s, t, "sqeuclidean", "euclidean", k))


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_contains_estimate_and_matches_normal_theory():
    v = np.random.default_rng(21).normal(0.3, 1.0, size=400)
    est, lo, hi = C.bootstrap_ci(v, n_boot=4000, seed=0)
    assert est == pytest.approx(v.mean(), abs=1e-15)
    assert lo < est < hi
    half = 1.96 * v.std() / np.sqrt(v.size)
    assert hi - lo == pytest.approx(2 * half, rel=0.1)
    assert (lo + hi) / 2 == pytest.approx(est, abs=0.2 * half)


def test_bootstrap_ci_narrows_as_n_grows():
    rng = np.random.default_rng(22)
    widths = []
    for n in (25, 250, 2500):
        est, lo, hi = C.bootstrap_ci(rng.uniform(-1, 1, size=n), n_boot=1000, seed=1)
        assert lo <= est <= hi
        widths.append(hi - lo)
    assert widths[0] > 2 * widths[1] > 4 * widths[2]


def test_bootstrap_ci_is_deterministic_with_a_seed_and_confidence_orders_intervals():
    v = np.random.default_rng(23).normal(size=100)
    a = C.bootstrap_ci(v, seed=5)
    assert a == C.bootstrap_ci(v, seed=5)
    assert a != C.bootstrap_ci(v, seed=6)
    _, lo90, hi90 = C.bootstrap_ci(v, seed=5, confidence=0.9)
    _, lo99, hi99 = C.bootstrap_ci(v, seed=5, confidence=0.99)
    assert lo99 < lo90 < hi90 < hi99


def test_bootstrap_ci_statistic_with_and_without_axis_agree():
    v = np.random.default_rng(24).exponential(size=60)
    with_axis = C.bootstrap_ci(v, statistic=np.median, n_boot=300, seed=2)
    without_axis = C.bootstrap_ci(v, statistic=lambda a: float(np.median(a)), n_boot=300, seed=2)
    assert with_axis == pytest.approx(without_axis, abs=1e-15)
    assert with_axis[0] == pytest.approx(np.median(v))


def test_bootstrap_ci_accepts_lists_and_coherence_output():
    s, t = continuous(25)
    values = C.per_reference_spearman(s, t)
    est, lo, hi = C.bootstrap_ci(list(values), n_boot=200)
    assert est == pytest.approx(C.perception_coherence(s, t)) and lo <= est <= hi


# ----------------------------------------------------------------------------- invariances
@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (C.per_reference_spearman, {}),
        (C.per_reference_kendall, {"n_pairs": None}),
        (C.concordance_probability, {"n_pairs": None}),
        (C.neighbor_overlap, {"k": 4}),
    ],
)
def test_chunk_size_does_not_change_results(fn, kwargs):
    s, t = continuous(26, n=23)
    base = fn(s, t, chunk_size=None, **kwargs)
    for chunk in (1, 7, 23, 1000):
        np.testing.assert_array_equal(fn(s, t, chunk_size=chunk, **kwargs), base)


@pytest.mark.parametrize("fn", [C.per_reference_kendall, C.concordance_probability])
def test_chunk_size_does_not_change_sampled_kendall(fn):
    # chunk_size is a memory knob: with a fixed seed the estimate must not depend on it
    s, t = continuous(27, n=23)
    base = fn(s, t, n_pairs=300, seed=4, chunk_size=None)
    for chunk in (1, 7):
        np.testing.assert_array_equal(fn(s, t, n_pairs=300, seed=4, chunk_size=chunk), base)


def test_chunk_size_does_not_change_probabilistic_ranks():
    s, _ = continuous(28, n=19)
    base = C.probabilistic_ranks(s)
    for chunk in (1, 7):
        np.testing.assert_array_equal(C.probabilistic_ranks(s, chunk_size=chunk), base)


@pytest.mark.parametrize("device", DEVICES)
def test_numpy_and_torch_inputs_agree(device):
    s, t = continuous(29)
    ts, tt = torch.tensor(s, device=device), torch.tensor(t, device=device)
    for fn, kw in (
        (C.per_reference_spearman, {}),
        (C.per_reference_kendall, {"n_pairs": None}),
        (C.per_reference_kendall, {"n_pairs": 200}),
        (C.concordance_probability, {"n_pairs": None}),
        (C.neighbor_overlap, {"k": 5}),
    ):
        np.testing.assert_allclose(fn(ts, tt, **kw), fn(s, t, **kw), atol=1e-12)
    assert C.global_spearman(ts, tt) == pytest.approx(C.global_spearman(s, t), abs=1e-12)
    assert C.perception_coherence(ts, tt) == pytest.approx(C.perception_coherence(s, t), abs=1e-12)
    np.testing.assert_allclose(C.probabilistic_ranks(ts), C.probabilistic_ranks(s), atol=1e-15)


def test_inputs_requiring_grad_and_mixed_dtypes_are_accepted():
    s, t = continuous(30)
    ts = torch.tensor(s, requires_grad=True)
    got = C.per_reference_spearman(ts, t.astype(np.float32))
    np.testing.assert_allclose(got, C.per_reference_spearman(s, t), atol=1e-4)
    # integer arrays are accepted as numbers
    si, ti = integer_valued(31)
    np.testing.assert_allclose(
        C.per_reference_spearman(si.astype(np.int64), ti.astype(np.int32), student_metric="euclidean",
                                 teacher_metric="euclidean"),
        ref_spearman(si, ti, "euclidean", "euclidean"),
        atol=1e-6,
    )


def test_callable_and_dissimilarity_metrics_work():
    s, t = continuous(32)
    l1 = lambda v: torch.cdist(v, v, p=1)  # noqa: E731
    np.testing.assert_allclose(
        C.per_reference_spearman(s, t, student_metric=l1, teacher_metric=Euclidean()),
        ref_spearman(s, t, "cityblock", "euclidean"),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        C.per_reference_kendall(s, t, student_metric=l1, teacher_metric="euclidean", n_pairs=None),
        ref_kendall(s, t, "cityblock", "euclidean"),
        atol=1e-12,
    )
    assert C.global_spearman(s, t, student_metric=l1, teacher_metric=Euclidean(), n_pairs=None) == pytest.approx(
        spearmanr(pdist(s, "cityblock"), pdist(t, "euclidean")).statistic, abs=1e-12
    )
    np.testing.assert_array_equal(
        C.neighbor_overlap(s, t, k=4, student_metric=l1, teacher_metric="euclidean"),
        ref_neighbors(s, t, "cityblock", "euclidean", 4),
    )
    d = rows_without_self(cdist(s, s, "cityblock"))
    np.testing.assert_allclose(C.probabilistic_ranks(s, metric=l1),
                               (np.stack([rankdata(r) for r in d]) - 0.5) / 24, atol=1e-15)


def test_coherence_invariant_to_permuting_the_set():
    s, t = continuous(33)
    p = np.random.default_rng(0).permutation(25)
    np.testing.assert_allclose(C.per_reference_spearman(s[p], t[p]), C.per_reference_spearman(s, t)[p], atol=1e-12)
    np.testing.assert_allclose(
        C.per_reference_kendall(s[p], t[p], n_pairs=None), C.per_reference_kendall(s, t, n_pairs=None)[p], atol=1e-12
    )
    assert C.global_spearman(s[p], t[p]) == pytest.approx(C.global_spearman(s, t), abs=1e-12)


# ----------------------------------------------------------------------------- bad input
PAIR_FUNCS = [
    C.per_reference_spearman,
    C.perception_coherence,
    C.per_reference_kendall,
    C.concordance_probability,
    C.global_spearman,
    C.neighbor_overlap,
]
CHUNKED = [C.per_reference_spearman, C.perception_coherence, C.per_reference_kendall, C.concordance_probability,
           C.neighbor_overlap]
SAMPLED = [C.per_reference_kendall, C.concordance_probability, C.global_spearman]
_ids = lambda f: f.__name__  # noqa: E731


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
@pytest.mark.parametrize("side", ["student", "teacher"])
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_rejects_nan_and_inf(fn, side, bad_value):
    s, t = continuous(40, n=8)
    (s if side == "student" else t)[2, 0] = bad_value
    with pytest.raises(ValueError, match=f"{side} contains NaN or Inf"):
        fn(s, t)
    with pytest.raises(ValueError, match=f"{side} contains NaN or Inf"):
        fn(torch.tensor(s), torch.tensor(t))


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
@pytest.mark.parametrize("n", [0, 1, 2])
def test_rejects_fewer_than_three_samples(fn, n):
    s, t = continuous(41, n=8)
    with pytest.raises(ValueError, match="at least 3 samples"):
        fn(s[:n], t[:n])


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
def test_rejects_mismatched_sample_counts(fn):
    s, t = continuous(42, n=8)
    with pytest.raises(ValueError, match="same number of samples"):
        fn(s, t[:7])


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
@pytest.mark.parametrize("side", ["student", "teacher"])
@pytest.mark.parametrize("shape", [(8,), (8, 2, 2), ()])
def test_rejects_non_2d(fn, side, shape):
    s, t = continuous(43, n=8)
    bad = np.ones(shape)
    with pytest.raises(ValueError, match=f"{side} must be 2-D"):
        fn(bad, t) if side == "student" else fn(s, bad)


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
@pytest.mark.parametrize("side", ["student", "teacher"])
def test_rejects_wrong_types(fn, side):
    s, t = continuous(44, n=8)
    for bad, msg in (
        (s.tolist(), f"{side} must be a torch.Tensor or numpy array"),
        ("features", f"{side} must be a torch.Tensor or numpy array"),
        (np.array([["a", "b"]] * 8), f"{side} must hold numbers"),
        (np.ones((8, 2), dtype=bool), f"{side} must hold numbers"),
    ):
        with pytest.raises(TypeError, match=msg):
            fn(bad, t) if side == "student" else fn(s, bad)


@pytest.mark.parametrize("fn", PAIR_FUNCS, ids=_ids)
@pytest.mark.parametrize("argument", ["student_metric", "teacher_metric"])
def test_rejects_unknown_metric(fn, argument):
    s, t = continuous(45, n=12)  # N - 1 >= 10, neighbor_overlap's default k
    with pytest.raises(ValueError, match=f"{argument} must be one of") as info:
        fn(s, t, **{argument: "l1"})
    assert "sqeuclidean" in str(info.value)
    with pytest.raises(TypeError, match=argument):
        fn(s, t, **{argument: 7})


@pytest.mark.parametrize("fn", CHUNKED, ids=_ids)
@pytest.mark.parametrize("bad,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError),
                                       ("4", TypeError)])
def test_rejects_bad_chunk_size(fn, bad, error):
    s, t = continuous(46, n=12)
    with pytest.raises(error, match="chunk_size"):
        fn(s, t, chunk_size=bad)


@pytest.mark.parametrize("fn", SAMPLED, ids=_ids)
@pytest.mark.parametrize("bad,error", [(0, ValueError), (-1, ValueError), ("all", ValueError),
                                       (1.5, TypeError), (True, TypeError)])
def test_rejects_bad_n_pairs(fn, bad, error):
    s, t = continuous(47, n=8)
    with pytest.raises(error, match="n_pairs"):
        fn(s, t, n_pairs=bad)


@pytest.mark.parametrize("fn", SAMPLED, ids=_ids)
@pytest.mark.parametrize("bad", ["0", 1.0, True, [0]])
def test_rejects_bad_seed(fn, bad):
    s, t = continuous(48, n=8)
    with pytest.raises(TypeError, match="seed"):
        fn(s, t, n_pairs=50, seed=bad)


@pytest.mark.parametrize("fn", [C.per_reference_kendall, C.concordance_probability], ids=_ids)
def test_sampled_kendall_needs_four_samples(fn):
    s, t = continuous(49, n=3)
    with pytest.raises(ValueError, match="at least 4 samples"):
        fn(s, t, n_pairs=10)
    assert fn(s, t, n_pairs=None).shape == (3,)


@pytest.mark.parametrize("bad,error", [(0, ValueError), (8, ValueError), (9, ValueError), (-1, ValueError),
                                       (True, TypeError), (2.0, TypeError), (None, TypeError)])
def test_neighbor_overlap_rejects_bad_k(bad, error):
    s, t = continuous(50, n=8)
    with pytest.raises(error, match=r"k must be an integer"):
        C.neighbor_overlap(s, t, k=bad)
    assert C.neighbor_overlap(s, t, k=np.int64(7)).shape == (8,)


def test_probabilistic_ranks_rejects_bad_input():
    s, _ = continuous(51, n=8)
    bad = s.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="features contains NaN or Inf"):
        C.probabilistic_ranks(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="features contains NaN or Inf"):
        C.probabilistic_ranks(bad)
    with pytest.raises(ValueError, match="features must hold at least 3 samples"):
        C.probabilistic_ranks(s[:2])
    with pytest.raises(ValueError, match="features must be 2-D"):
        C.probabilistic_ranks(s[0])
    with pytest.raises(TypeError, match="features must be a torch.Tensor or numpy array"):
        C.probabilistic_ranks(s.tolist())
    with pytest.raises(ValueError, match="metric must be one of"):
        C.probabilistic_ranks(s, metric="l2")
    with pytest.raises(ValueError, match="chunk_size"):
        C.probabilistic_ranks(s, chunk_size=0)
    for refs in ([0, 8], [-1], [[0, 1]]):
        with pytest.raises(ValueError, match="references must"):
            C.probabilistic_ranks(s, references=refs)
    for refs in ([0.5], [True, False], ["a"]):
        with pytest.raises(TypeError, match="references must be a sequence of integers"):
            C.probabilistic_ranks(s, references=refs)


def test_bootstrap_ci_rejects_bad_input():
    v = np.random.default_rng(52).normal(size=20)
    for bad in (np.ones((4, 5)), 3.0):
        with pytest.raises(ValueError, match="values must be 1-D"):
            C.bootstrap_ci(bad)
    for bad in ([1.0], []):
        with pytest.raises(ValueError, match="values must hold at least 2 entries"):
            C.bootstrap_ci(bad)
    with pytest.raises(TypeError, match="values must hold numbers"):
        C.bootstrap_ci(["a", "b", "c"])
    for bad_value in (np.nan, np.inf):
        w = v.copy()
        w[3] = bad_value
        with pytest.raises(ValueError, match="values contains NaN or Inf"):
            C.bootstrap_ci(w)
    for bad in (0, -5):
        with pytest.raises(ValueError, match="n_boot"):
            C.bootstrap_ci(v, n_boot=bad)
    for bad in (2.5, True, "100"):
        with pytest.raises(TypeError, match="n_boot"):
            C.bootstrap_ci(v, n_boot=bad)
    for bad in (0, 1, 1.5, -0.2, float("nan")):
        with pytest.raises(ValueError, match="confidence"):
            C.bootstrap_ci(v, confidence=bad)
    for bad in ("0.9", None, True):
        with pytest.raises(TypeError, match="confidence"):
            C.bootstrap_ci(v, confidence=bad)
    with pytest.raises(TypeError, match="seed"):
        C.bootstrap_ci(v, seed="1")


def test_kendall_and_concordance_is_the_two_functions_in_one_pass():
    from pcoh.coherence import concordance_probability, kendall_and_concordance, per_reference_kendall

    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(40, 5)), rng.normal(size=(40, 7))
    for n_pairs in (None, 50):
        tau, conc = kendall_and_concordance(s, t, n_pairs=n_pairs, seed=4)
        np.testing.assert_array_equal(tau, per_reference_kendall(s, t, n_pairs=n_pairs, seed=4))
        np.testing.assert_array_equal(conc, concordance_probability(s, t, n_pairs=n_pairs, seed=4))
