"""Tests for pcoh.coranking against a brute-force co-ranking (scipy distances, numpy stable sorts),
pyDRMetrics, the suite's top-k overlap, and properties of R_NX."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import pcoh
from pcoh import coranking as C
from pcoh.coherence import neighbor_overlap

METRIC_PAIRS = [("cosine", "cosine"), ("euclidean", "cosine"), ("sqeuclidean", "euclidean")]


def continuous(seed=0, n=23, d_s=3, d_t=6):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, d_t))
    s = t[:, :d_s] + 0.7 * rng.normal(size=(n, d_s))  # partly coherent with the teacher
    return s, t


def integer_valued(seed=0, n=21):
    """Integer features: many exactly tied squared Euclidean distances."""
    rng = np.random.default_rng(seed)
    return rng.integers(-2, 3, size=(n, 2)).astype(float), rng.integers(-2, 3, size=(n, 3)).astype(float)


def ranks_brute(d):
    """(N, N-1) ranks 1..N-1 of every other point per row, ties by index (numpy's stable sort)."""
    n = len(d)
    out = np.empty((n, n - 1), dtype=int)
    for i in range(n):
        row = d[i, np.arange(n) != i]
        order = np.argsort(row, kind="stable")
        out[i, order] = np.arange(1, n)
    return out


def coranking_brute(ds, dt):
    n = len(ds)
    q = np.zeros((n - 1, n - 1), dtype=int)
    for a, b in zip(ranks_brute(dt).ravel(), ranks_brute(ds).ravel()):
        q[a - 1, b - 1] += 1
    return q


def curve_brute(q):
    """Q_NX and R_NX from the matrix, K = 1..N-2, by the definitions."""
    n = q.shape[0] + 1
    k = np.arange(1, n - 1)
    q_nx = np.array([q[:kk, :kk].sum() / (kk * n) for kk in k])
    return q_nx, ((n - 1) * q_nx - k) / (n - 1 - k)


def scipy_metric(name):
    return {"cosine": "cosine", "euclidean": "euclidean", "sqeuclidean": "sqeuclidean"}[name]


# ----------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("sm,tm", METRIC_PAIRS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_curve_and_auc_match_brute_force(sm, tm, seed):
    s, t = continuous(seed)
    q_ref = coranking_brute(cdist(s, s, scipy_metric(sm)), cdist(t, t, scipy_metric(tm)))
    q = C.coranking_matrix(s, t, student_metric=sm, teacher_metric=tm)
    assert q.dtype == np.int64 and q.shape == (len(s) - 1,) * 2
    np.testing.assert_array_equal(q, q_ref)
    q_nx, r_nx = curve_brute(q_ref)
    curve = C.rnx_curve(s, t, student_metric=sm, teacher_metric=tm, chunk_size=5)
    np.testing.assert_array_equal(curve.k, np.arange(1, len(s) - 1))
    np.testing.assert_allclose(curve.q_nx, q_nx, rtol=0, atol=1e-9)
    np.testing.assert_allclose(curve.r_nx, r_nx, rtol=0, atol=1e-9)
    w = 1 / np.arange(1, len(s) - 1)
    auc = (r_nx * w).sum() / w.sum()
    assert abs(curve.auc - auc) < 1e-9
    assert abs(C.rnx_auc(s, t, student_metric=sm, teacher_metric=tm) - auc) < 1e-9


def test_ties_broken_by_index_everywhere():
    s, t = integer_valued()
    ds, dt = cdist(s, s, "sqeuclidean"), cdist(t, t, "sqeuclidean")
    assert len(np.unique(dt[0])) < len(dt[0]) - 5  # many ties indeed
    kwargs = dict(student_metric="sqeuclidean", teacher_metric="sqeuclidean")
    q_ref = coranking_brute(ds, dt)
    np.testing.assert_array_equal(C.coranking_matrix(s, t, **kwargs), q_ref)
    np.testing.assert_allclose(C.rnx_curve(s, t, **kwargs).r_nx, curve_brute(q_ref)[1], atol=1e-12)
    # Same ties as the suite's top-k overlap.
    for k in (1, 3, 7):
        np.testing.assert_allclose(C.qnx_per_point(s, t, k=k, **kwargs), neighbor_overlap(s, t, k=k, **kwargs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_inputs_and_both_dtypes(dtype):
    s, t = continuous(3, n=30)
    s32, t32 = torch.as_tensor(s, dtype=dtype), torch.as_tensor(t, dtype=dtype)
    # The reference ranks the very dissimilarities the module uses (pcoh.pairwise in that dtype).
    ds, dt = (pcoh.pairwise(x, "cosine").double().numpy() for x in (s32, t32))
    np.testing.assert_array_equal(C.coranking_matrix(s32, t32, chunk_size=4), coranking_brute(ds, dt))


def test_negative_and_signed_zero_dissimilarities_rank_as_floats():
    # A callable metric may return negative values and -0.0; -0.0 and 0.0 are one value (a tie).
    rng = np.random.default_rng(5)
    n = 12
    d = rng.normal(size=(n, n))
    d[0, 3], d[0, 5], d[2, 7], d[2, 1] = -0.0, 0.0, 0.0, -0.0
    s = np.zeros((n, 1))
    q = C.coranking_matrix(s, s, student_metric=lambda x: torch.as_tensor(d), teacher_metric=lambda x: torch.as_tensor(-d))
    np.testing.assert_array_equal(q, coranking_brute(d, -d))
    ranks = ranks_brute(d)
    assert ranks[0, 2] < ranks[0, 4]  # the tie 3 (-0.0) vs 5 (0.0) went to the smaller index


def test_matches_pydrmetrics():
    from pyDRMetrics.pyDRMetrics import DRMetrics

    s, t = continuous(7, n=40, d_s=2)
    drm = DRMetrics(t, s)  # the original space first; Euclidean distances, rank 0 = the point itself
    q = C.coranking_matrix(s, t, student_metric="euclidean", teacher_metric="euclidean")
    np.testing.assert_array_equal(q, drm.Q[1:, 1:].astype(np.int64))
    n = len(s)
    curve = C.rnx_curve(s, t, student_metric="euclidean", teacher_metric="euclidean")
    # pyDRMetrics divides the K-neighbourhood counts by K (N - 1) where Lee and Verleysen divide by K N.
    np.testing.assert_allclose(curve.q_nx, drm.QNN[: n - 2] * (n - 1) / n, atol=1e-12)


# ----------------------------------------------------------------------------- properties
def test_matrix_margins_and_total():
    s, t = continuous(4)
    q = C.coranking_matrix(s, t)
    n = len(s)
    assert q.sum() == n * (n - 1)
    np.testing.assert_array_equal(q.sum(axis=0), n)
    np.testing.assert_array_equal(q.sum(axis=1), n)


def test_student_equal_to_teacher_keeps_every_rank():
    _, t = continuous(1, n=40)
    curve = C.rnx_curve(t, t)
    np.testing.assert_allclose(curve.r_nx, 1.0, atol=1e-12)
    np.testing.assert_allclose(curve.q_nx, 1.0, atol=1e-12)
    assert curve.auc == pytest.approx(1.0, abs=1e-12)
    q = C.coranking_matrix(t, t)
    np.testing.assert_array_equal(q, np.diag(np.full(len(t) - 1, len(t))))
    np.testing.assert_allclose(C.qnx_per_point(t, t, k=[1, 5, 38]), 1.0)


def test_random_student_scores_about_zero():
    rng = np.random.default_rng(0)
    n = 400
    t, s = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    curve = C.rnx_curve(s, t)
    # E[Q_NX(K)] = K / (N - 1) for a student independent of the teacher, so E[R_NX] = 0; averaged
    # over the K of the log-scale area the standard error is well below 0.01 at this size.
    assert abs(curve.auc) < 0.01
    assert np.abs(curve.r_nx[20:]).max() < 0.05


@pytest.mark.parametrize("transform", [lambda d: d ** 3, np.exp, lambda d: np.log1p(d) * 7 + 2])
def test_invariant_to_monotone_transforms_of_each_dissimilarity(transform):
    s, t = continuous(2, n=30)
    ds, dt = cdist(s, s), cdist(t, t, "cosine")
    base = dict(student_metric=lambda x: torch.as_tensor(ds), teacher_metric=lambda x: torch.as_tensor(dt))
    moved = dict(student_metric=lambda x: torch.as_tensor(transform(ds)), teacher_metric=lambda x: torch.as_tensor(dt ** 3))
    np.testing.assert_array_equal(C.coranking_matrix(s, t, **base), C.coranking_matrix(s, t, **moved))
    np.testing.assert_array_equal(C.rnx_curve(s, t, **base).r_nx, C.rnx_curve(s, t, **moved).r_nx)


@pytest.mark.parametrize("k", [1, 4, 10])
def test_mean_top_k_overlap_is_q_nx_at_k(k):
    s, t = continuous(6, n=35)
    curve = C.rnx_curve(s, t, student_metric="euclidean")
    overlap = neighbor_overlap(s, t, k=k, student_metric="euclidean")
    assert overlap.mean() == pytest.approx(curve.q_nx[k - 1], abs=1e-12)
    per_point = C.qnx_per_point(s, t, k=k, student_metric="euclidean")
    np.testing.assert_allclose(per_point, overlap)


def test_per_point_for_many_k_at_once():
    s, t = continuous(8, n=25)
    ks = list(range(1, 25))  # 1..N-1
    many = C.qnx_per_point(s, t, k=ks, chunk_size=6)
    assert many.shape == (len(ks), len(s))
    for row, k in zip(many, ks):
        np.testing.assert_allclose(row, C.qnx_per_point(s, t, k=k))
    np.testing.assert_allclose(many.mean(axis=1)[:-1], C.rnx_curve(s, t).q_nx, atol=1e-12)
    np.testing.assert_allclose(many[-1], 1.0)  # K = N - 1: every other point


def test_chunking_changes_nothing():
    s, t = continuous(9, n=31)
    whole = C.rnx_curve(s, t, chunk_size=31)
    for chunk in (1, 7):
        np.testing.assert_array_equal(C.rnx_curve(s, t, chunk_size=chunk).r_nx, whole.r_nx)
        np.testing.assert_array_equal(C.coranking_matrix(s, t, chunk_size=chunk), C.coranking_matrix(s, t))


def test_rnx_area_of_a_stored_curve():
    s, t = continuous(10)
    curve = C.rnx_curve(s, t)
    assert C.rnx_area(curve.r_nx) == curve.auc
    assert C.rnx_area([1.0, 0.0]) == pytest.approx(1 / 1.5)


def test_public_names():
    for name in ("coranking_matrix", "rnx_curve", "rnx_auc", "qnx_per_point", "RNXCurve"):
        assert getattr(pcoh, name) is getattr(C, name) and name in pcoh.__all__


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("fn", [C.coranking_matrix, C.rnx_curve, C.rnx_auc])
def test_bad_inputs(fn):
    s, t = continuous(0, n=10)
    with pytest.raises(ValueError, match="same number of samples"):
        fn(s, t[:9])
    with pytest.raises(ValueError, match="at least 4 samples"):
        fn(s[:3], t[:3])
    with pytest.raises(ValueError, match="student must be 2-D"):
        fn(s[:, 0], t)
    with pytest.raises(TypeError, match="teacher must be a torch.Tensor or numpy array"):
        fn(s, "teacher")
    bad = s.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="student contains NaN or Inf"):
        fn(bad, t)
    with pytest.raises(ValueError, match="teacher_metric must be one of"):
        fn(s, t, teacher_metric="manhattan")
    with pytest.raises(TypeError, match="student_metric"):
        fn(s, t, student_metric=3)
    with pytest.raises(ValueError, match="chunk_size"):
        fn(s, t, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        fn(s, t, chunk_size=2.5)


def test_bad_k_and_bad_curves():
    s, t = continuous(0, n=10)
    with pytest.raises(ValueError, match=r"k must be"):
        C.qnx_per_point(s, t, k=10)
    with pytest.raises(ValueError, match=r"k must be"):
        C.qnx_per_point(s, t, k=0)
    with pytest.raises(TypeError, match=r"k must be an integer"):
        C.qnx_per_point(s, t, k=2.0)
    with pytest.raises(TypeError, match=r"k must be an integer"):
        C.qnx_per_point(s, t, k=[1, "3"])
    with pytest.raises(ValueError, match="non-empty"):
        C.qnx_per_point(s, t, k=[])
    with pytest.raises(TypeError, match="k"):
        C.qnx_per_point(s, t)  # k is required
    with pytest.raises(ValueError, match="r_nx must be 1-D"):
        C.rnx_area(np.ones((2, 2)))
    with pytest.raises(ValueError, match="r_nx must be a non-empty"):
        C.rnx_area([])
    with pytest.raises(ValueError, match="r_nx contains NaN"):
        C.rnx_area([0.5, np.nan])


# ----------------------------------------------------------------------------- in the evaluation
def test_evaluate_model_reports_the_area_and_its_curve():
    from pcoh import evaluate as ev

    rng = np.random.default_rng(3)
    y = np.arange(90) % 3
    x = rng.normal(size=(90, 5)) + 3 * np.eye(5)[y]
    teacher = x[60:] + 0.3 * rng.normal(size=(30, 5))
    row, rho, curves = ev.evaluate_model(x[:60], y[:60], x[60:], y[60:], teacher, metric="euclidean",
                                         return_per_reference=True, return_curves=True, n_boot=50)
    curve = C.rnx_curve(x[60:], teacher, student_metric="euclidean")
    np.testing.assert_array_equal(curves["r_nx"], curve.r_nx)
    assert row["rnx_auc"] == curve.auc and rho.shape == (30,)
    row2, curves2 = ev.evaluate_model(x[:60], y[:60], x[60:], y[60:], x[60:], return_curves=True, n_boot=50)
    assert row2["rnx_auc"] == pytest.approx(1.0) and curves2["r_nx"].shape == (28,)
    assert isinstance(ev.evaluate_model(x[:60], y[:60], x[60:], y[60:], teacher, n_boot=50), dict)


def test_cached_evaluation_stores_and_reads_the_curves(tmp_path):
    from pcoh.evaluations import cached_evaluation

    calls = []

    def compute():
        calls.append(1)
        return {"rnx_auc": 0.5}, np.ones(4), {"r_nx": np.array([0.25, 0.5])}

    path = tmp_path / "e.json"
    first = cached_evaluation(path, compute, 4, curves=True)
    second = cached_evaluation(path, compute, 4, curves=True)
    assert len(calls) == 1
    np.testing.assert_array_equal(second[2]["r_nx"], [0.25, 0.5])
    assert first[0] == second[0]
    # A file written without curves is recomputed when curves are asked for.
    other = tmp_path / "f.json"
    cached_evaluation(other, lambda: ({"rnx_auc": 0.5}, np.ones(4)), 4)
    with pytest.warns(Warning):
        cached_evaluation(other, compute, 4, curves=True)
    assert len(calls) == 2


def test_benchmark_starts_in_smoke_mode(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_coranking.py"
    spec = importlib.util.spec_from_file_location("bench_coranking", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--smoke"])
    out = capsys.readouterr().out
    assert "same curve as the reference: PASS" in out and "reference/rnx_curve" in out
