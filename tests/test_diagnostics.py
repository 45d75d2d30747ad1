"""pcoh.diagnostics (the probabilistic-form diagnostics of the notebooks), against brute force on tiny data."""
import itertools

import numpy as np
import pytest
import scipy.stats
import torch

from pcoh import coherence, diagnostics
from pcoh.dissimilarity import pairwise


def _data(n=9, ds=3, dt=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, ds)), rng.normal(size=(n, dt))


def _brute_gap_table(s, t, bins, metric="euclidean"):
    d_s = pairwise(torch.from_numpy(s), metric).numpy()
    d_t = pairwise(torch.from_numpy(t), metric).numpy()
    n = len(s)
    hits, counts = np.zeros(bins), np.zeros(bins)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        r = scipy.stats.rankdata(d_t[i, others])
        for a, b in itertools.combinations(range(n - 1), 2):
            j, k = others[a], others[b]
            gap = abs(r[a] - r[b]) / (n - 1)
            which = min(int(gap * bins), bins - 1)
            counts[which] += 1
            hits[which] += (d_t[i, j] - d_t[i, k]) * (d_s[i, j] - d_s[i, k]) > 0
    return hits, counts


@pytest.mark.parametrize("bins", [1, 4, 10])
def test_concordance_by_rank_gap_exact_matches_brute_force(bins):
    s, t = _data()
    table = diagnostics.concordance_by_rank_gap(s, t, bins=bins, n_pairs=None,
                                              student_metric="euclidean", teacher_metric="euclidean")
    hits, counts = _brute_gap_table(s, t, bins)
    np.testing.assert_array_equal(table["pairs"].to_numpy(), counts)
    expected = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    np.testing.assert_allclose(table["concordance"].to_numpy(), expected, equal_nan=True)
    np.testing.assert_allclose(table["gap_center"], (np.arange(bins) + 0.5) / bins)


def test_concordance_by_rank_gap_weighted_mean_is_concordance_probability():
    s, t = _data(n=12)
    table = diagnostics.concordance_by_rank_gap(s, t, bins=5, n_pairs=None)
    kappa = coherence.concordance_probability(s, t, n_pairs=None).mean()
    weighted = np.nansum(table["concordance"] * table["pairs"]) / table["pairs"].sum()
    assert weighted == pytest.approx(kappa)


def test_concordance_by_rank_gap_sampled_close_to_exact():
    s, t = _data(n=40, seed=1)
    exact = diagnostics.concordance_by_rank_gap(s, t, bins=4, n_pairs=None)
    sampled = diagnostics.concordance_by_rank_gap(s, t, bins=4, n_pairs=3000, seed=3)
    assert sampled["pairs"].sum() == 40 * 3000
    np.testing.assert_allclose(sampled["concordance"], exact["concordance"], atol=0.03)


def test_concordance_by_rank_gap_perfect_student_and_seed():
    _, t = _data(n=15)
    table = diagnostics.concordance_by_rank_gap(2.0 * t, t, bins=3, n_pairs=50, seed=7)
    assert (table["concordance"] == 1.0).all()
    again = diagnostics.concordance_by_rank_gap(2.0 * t, t, bins=3, n_pairs=50, seed=7)
    assert table.equals(again)


@pytest.mark.parametrize("kwargs,error", [({"bins": 0}, ValueError), ({"bins": 2.5}, TypeError),
                                          ({"n_pairs": 0}, ValueError), ({"n_pairs": True}, TypeError),
                                          ({"n_pairs": "auto"}, ValueError)])
def test_concordance_by_rank_gap_rejects_bad_arguments(kwargs, error):
    s, t = _data()
    with pytest.raises(error, match=next(iter(kwargs))):
        diagnostics.concordance_by_rank_gap(s, t, **kwargs)


def test_reference_dissimilarities_is_row_without_self():
    s, _ = _data()
    row = diagnostics.reference_dissimilarities(s, 4, metric="euclidean")
    full = pairwise(torch.from_numpy(s), "euclidean").numpy()
    np.testing.assert_allclose(row, np.delete(full[4], 4))
    with pytest.raises(ValueError):
        diagnostics.reference_dissimilarities(s, 9)


def test_heldout_probabilistic_ranks_brute_force():
    rng = np.random.default_rng(2)
    x, pop = rng.normal(size=(7, 3)), rng.normal(size=(11, 3))
    pop[3] = x[5]  # reference 1 then sees a tie between population point 3 and compared point 5
    u = diagnostics.heldout_probabilistic_ranks(x, pop, metric="euclidean", references=[1, 5])
    d_x = pairwise(torch.from_numpy(x), "euclidean").numpy()
    d_p = pairwise(torch.from_numpy(x), "euclidean", torch.from_numpy(pop)).numpy()
    for r, i in enumerate([1, 5]):
        others = [j for j in range(7) if j != i]
        want = [((d_p[i] < d_x[i, j]).sum() + 0.5 * (d_p[i] == d_x[i, j]).sum()) / 11 for j in others]
        np.testing.assert_allclose(u[r], want)


def test_heldout_probabilistic_ranks_equals_plugin_on_same_sample_up_to_self():
    # With the compared points themselves as the population (minus the reference), the fitted
    # distribution function is the plug-in one: u = (r - 1/2) / (N - 1).
    x, _ = _data(n=10)
    u_plugin = coherence.probabilistic_ranks(x, metric="euclidean", references=[0])
    u_held = diagnostics.heldout_probabilistic_ranks(x, x[1:], metric="euclidean", references=[0])
    np.testing.assert_allclose(u_held, u_plugin)


def test_heldout_probabilistic_ranks_rejects_bad_input():
    x, _ = _data()
    with pytest.raises(ValueError):
        diagnostics.heldout_probabilistic_ranks(x, np.zeros((4, 2)))
    with pytest.raises(ValueError):
        diagnostics.heldout_probabilistic_ranks(x, x, metric=lambda a: pairwise(a))


def test_subsample_coherence_full_size_is_pc_n_and_shapes():
    s, t = _data(n=20)
    table = diagnostics.subsample_coherence(s, t, [5, 20], repeats=3, seed=0)
    assert list(table.columns) == ["n", "repeat", "pc_n"]
    assert len(table) == 6
    full = coherence.perception_coherence(s, t)
    np.testing.assert_allclose(table.loc[table["n"] == 20, "pc_n"], full)


def test_subsample_coherence_matches_direct_computation():
    s, t = _data(n=20, seed=4)
    table = diagnostics.subsample_coherence(s, t, [6], repeats=2, seed=11)
    rng = np.random.default_rng(11)
    for r in range(2):
        idx = np.sort(rng.choice(20, size=6, replace=False))
        assert table["pc_n"].iloc[r] == pytest.approx(coherence.perception_coherence(s[idx], t[idx]))


@pytest.mark.parametrize("sizes", [[2], [21], [], [[3, 4]]])
def test_subsample_coherence_rejects_bad_sizes(sizes):
    s, t = _data(n=20)
    with pytest.raises(ValueError):
        diagnostics.subsample_coherence(s, t, sizes)


def test_per_class_mean():
    values = {"a": np.array([1.0, 2.0, 3.0, 4.0]), "b": np.array([0.0, 0.0, 1.0, 1.0])}
    table = diagnostics.per_class_mean(values, [1, 0, 1, 0])
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", 0] == 3.0 and table.loc["a", 1] == 2.0 and table.loc["a", "all"] == 2.5
    assert table.loc["b", 0] == 0.5
    with pytest.raises(ValueError):
        diagnostics.per_class_mean({"a": np.ones(3)}, [0, 1])


def test_concordance_by_rank_gap_does_not_depend_on_chunking():
    s, t = _data(n=25, seed=5)
    a = diagnostics.concordance_by_rank_gap(s, t, bins=4, n_pairs=100, seed=1, chunk_size=3)
    b = diagnostics.concordance_by_rank_gap(s, t, bins=4, n_pairs=100, seed=1, chunk_size=25)
    np.testing.assert_array_equal(a["pairs"], b["pairs"])
    np.testing.assert_allclose(a["concordance"], b["concordance"])


def test_expected_pc_n_is_exact_mean_over_all_subsets():
    s, t = _data(n=8, seed=6)
    n = 8
    pc = coherence.perception_coherence(s, t)
    tau = coherence.per_reference_kendall(s, t, n_pairs=None).mean()
    for k in (4, 5, 6, 8):
        values = [coherence.perception_coherence(s[list(idx)], t[list(idx)])
                  for idx in itertools.combinations(range(n), k)]
        expected = diagnostics.expected_pc_n([k], pc_n=pc, kendall_tau=tau, n=n)[0]
        assert np.mean(values) == pytest.approx(expected, abs=1e-12)


def test_grade_coherence_kruskal_decomposition_brute_force():
    # PC(mu) estimate = mean over references of 3 * mean over distinct triples of sign * sign.
    s, t = _data(n=7, seed=8)
    d_s = pairwise(torch.from_numpy(s), "cosine").numpy()
    d_t = pairwise(torch.from_numpy(t), "cosine").numpy()
    per_ref = []
    for i in range(7):
        others = [j for j in range(7) if j != i]
        terms = [np.sign(d_s[i, j] - d_s[i, k]) * np.sign(d_t[i, j] - d_t[i, l])
                 for j, k, l in itertools.permutations(others, 3)]
        per_ref.append(3 * np.mean(terms))
    pc = coherence.perception_coherence(s, t)
    tau = coherence.per_reference_kendall(s, t, n_pairs=None).mean()
    assert diagnostics.grade_coherence(pc, tau, 7) == pytest.approx(np.mean(per_ref), abs=1e-12)
    assert diagnostics.expected_pc_n([np.inf], pc_n=pc, kendall_tau=tau, n=7)[0] == pytest.approx(np.mean(per_ref))
    with pytest.raises(ValueError):
        diagnostics.grade_coherence(pc, tau, 3)
    with pytest.raises(ValueError):
        diagnostics.expected_pc_n([2], pc_n=pc, kendall_tau=tau, n=7)
