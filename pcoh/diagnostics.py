r"""Diagnostics of the probabilistic form: what the notebooks use to look inside the measures.

The published measures (:math:`PC_n`, per-reference Spearman and Kendall, concordance, global
Spearman, probabilistic ranks, bootstrap intervals) live in :mod:`pcoh.coherence`. This module
holds the tools that examine them against the probabilistic form of ``docs/method.md`` §2 and §4:

==================================  ===============================================================
function                            what it returns
==================================  ===============================================================
:func:`reference_dissimilarities`   (N - 1,) dissimilarities seen from one reference (for ECDFs)
:func:`heldout_probabilistic_ranks` (R, N - 1) ranks :math:`\hat F_x(\delta)` fitted on another sample
:func:`concordance_by_rank_gap`     concordance probability by the teacher's rank gap (a table)
:func:`subsample_coherence`         :math:`PC_n` on random subsets of n points (a table)
:func:`per_class_mean`              per-reference values averaged within each class (a table)
:func:`grade_coherence`             :math:`PC(\mu)` estimate with the :math:`1/n` bias removed
:func:`expected_pc_n`               :math:`E[PC_k]` on subsets of k points, exactly
:func:`dissimilarity_matrix`        (n, n) numpy dissimilarities, for figures
:func:`reference_ranks`             (n, n - 1) ranks of every reference's compared set
:func:`soft_rank_path`              (k, m) soft ranks of one vector at k strengths
==================================  ===============================================================

All of them take features as :mod:`pcoh.coherence` does (torch tensors or numpy arrays, each model
with its own metric) and share its chunked computation.
"""
from __future__ import annotations

import numpy as np
import torch

from ._checks import (as_array, as_features, as_labels, check_float, check_index, check_indices, check_int,
                      check_pairs_option)
from .dissimilarity import Dissimilarity, MetricLike, get_metric, pairwise
from .ranking import rank, soft_rank
from .rowwise import Rows, check_chunk, check_pair, chunks, drop_self, generator, row_pearson

__all__ = [
    "reference_dissimilarities",
    "heldout_probabilistic_ranks",
    "concordance_by_rank_gap",
    "subsample_coherence",
    "per_class_mean",
    "grade_coherence",
    "expected_pc_n",
    "dissimilarity_matrix",
    "reference_ranks",
    "soft_rank_path",
]


def reference_dissimilarities(features, reference: int, *, metric: MetricLike = "cosine") -> np.ndarray:
    r"""Dissimilarities :math:`\delta(x_i, x_j)`, :math:`j \ne i`, seen from one reference.

    Parameters
    ----------
    features : torch.Tensor or numpy.ndarray, shape (N, d)
    reference : int
        Index :math:`i` of the reference, in [0, N).
    metric : str, Dissimilarity or callable, default "cosine"

    Returns
    -------
    numpy.ndarray, shape (N - 1,)
        The reference's row of the dissimilarity matrix without its own column, in the order of
        the other points (the column order of :func:`probabilistic_ranks`).
    """
    x = as_features(features, "features")
    n = x.shape[0]
    reference = check_index(reference, "reference", n)
    if n < 2:
        raise ValueError(f"features must hold at least 2 samples, got {n}")
    idx = torch.tensor([int(reference)])
    row = Rows(x, metric, "metric").at(idx)
    return drop_self(row, idx)[0].double().numpy()


def heldout_probabilistic_ranks(
    features,
    population,
    *,
    metric: MetricLike = "cosine",
    references=None,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Probabilistic ranks with each reference's distribution function fitted on another sample.

    .. math::

        \hat u(x_i, x_j) = \hat F_{x_i}\big(\delta(x_i, x_j)\big), \qquad
        \hat F_{x}(t) = \frac{1}{M} \sum_{p=1}^{M} \Big( \mathbb 1[\delta(x, y_p) < t]
                        + \tfrac12 \mathbb 1[\delta(x, y_p) = t] \Big)

    where :math:`y_1 .. y_M` are the rows of ``population``, a sample of :math:`\mu` independent of
    the compared points. Unlike the plug-in ranks of :func:`probabilistic_ranks`, which are uniform
    on a grid by construction, these are a genuine test of ``docs/method.md`` §2: for continuous
    dissimilarities :math:`u(x, X')` is Uniform(0, 1) given :math:`x` only if the two samples come
    from the same distribution.

    Parameters
    ----------
    features : torch.Tensor or numpy.ndarray, shape (N, d)
        References and compared points.
    population : torch.Tensor or numpy.ndarray, shape (M, d)
        The sample :math:`\hat F_x` is fitted on (e.g. the training split), same width.
    metric : str or Dissimilarity, default "cosine"
        A built-in name or a :class:`pcoh.dissimilarity.Dissimilarity` (two-argument call).
    references : sequence of int, optional
        Indices into ``features``; default all N.
    chunk_size : int, optional
        References per chunk.

    Returns
    -------
    numpy.ndarray, shape (R, N - 1)
        Same layout as :func:`probabilistic_ranks`: row ``r`` holds :math:`\hat u(x_i, x_j)` for
        ``i = references[r]`` and every ``j != i`` in increasing order; values in [0, 1].
    """
    x = as_features(features, "features")
    p = as_features(population, "population")
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"features must hold at least 3 samples, got {n}")
    if p.shape[1] != x.shape[1]:
        raise ValueError(f"population must have the width of features ({x.shape[1]}), got shape {tuple(p.shape)}")
    if p.shape[0] < 1:
        raise ValueError("population must hold at least one sample")
    fn = get_metric(metric, "metric")
    if not isinstance(fn, Dissimilarity):
        raise ValueError("metric must be a built-in name or a Dissimilarity (it is called with two sets)")
    dtype = torch.float64 if torch.float64 in (x.dtype, p.dtype) else torch.float32
    x, p = x.to(dtype), p.to(dtype)
    refs = np.arange(n) if references is None else check_indices(references, "references", n)
    chunk = check_chunk(chunk_size, max(n, p.shape[0]))
    rows = Rows(x, metric, "metric")
    m = p.shape[0]
    out = np.empty((len(refs), n - 1))
    for lo, hi in chunks(len(refs), chunk):
        idx = torch.from_numpy(refs[lo:hi]).long()
        compared = drop_self(rows.at(idx), idx)
        fitted = torch.sort(fn(x[idx], p), dim=1).values
        below = torch.searchsorted(fitted, compared.contiguous(), right=False)
        at_or_below = torch.searchsorted(fitted, compared.contiguous(), right=True)
        out[lo:hi] = ((below + at_or_below).double() / (2.0 * m)).numpy()
    return out


def concordance_by_rank_gap(
    student,
    teacher,
    *,
    bins: int = 10,
    n_pairs: int | None = 2000,
    seed: int | None = 0,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
):
    r"""Concordance probability as a function of how far apart the teacher ranks the two points.

    For a reference :math:`x_i` and two compared points :math:`x_j, x_k`, the teacher's rank gap is

    .. math::

        g_{ijk} = \frac{|r^T_i(j) - r^T_i(k)|}{N - 1} \in [0, 1)

    (:math:`r^T_i` the teacher's average ranks among the N - 1 compared points), and the pair is
    concordant when :math:`(\delta_T(x_i,x_j)-\delta_T(x_i,x_k))(\delta_S(x_i,x_j)-\delta_S(x_i,x_k)) > 0`.
    The function returns, per bin of :math:`g`,

    .. math::

        \kappa(g) = P\big[\text{concordant} \mid g_{ijk} \in \text{bin}\big]

    over all references. A small gap is a *fine* order (two points the teacher finds almost
    equally far), a large gap a *coarse* one (near vs far). Averaging :math:`\kappa(g)` with the
    bins' pair counts as weights gives :func:`concordance_probability` averaged over references.
    Pairs tied on the teacher's side (gap 0) count as not concordant, as there.

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
    bins : int, default 10
        Equal-width bins of :math:`g` on [0, 1).
    n_pairs : int or None, default 2000
        An int ``K``: ``K`` pairs :math:`j \ne k` (both :math:`\ne i`) per reference, drawn
        uniformly with replacement. ``None``: every pair of every reference (O(N^3) time).
    seed : int or None, default 0
        Seed of the pair sampling.
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
    chunk_size : int, optional
        References per chunk.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``gap_low``, ``gap_high``, ``gap_center``, ``concordance`` (NaN for an
        empty bin), ``pairs`` (pairs that fell in the bin) and ``se``, the binomial standard
        error :math:`\sqrt{\kappa(1-\kappa)/\text{pairs}}` (pairs of one reference are not
        independent, so read it as a lower bound).
    """
    import pandas as pd

    s, t = check_pair(student, teacher, min_samples=3)
    n = s.shape[0]
    bins = check_int(bins, "bins", minimum=1)
    n_pairs = check_pairs_option(n_pairs, minimum=1, auto=False)
    m = n - 1
    rng = generator(seed)
    if n_pairs is None:
        jj, kk = torch.triu_indices(m, m, offset=1)
        per_ref = jj.numel()
    else:
        per_ref = int(n_pairs)
        seeds = rng.integers(0, np.iinfo(np.int64).max, size=n)
    # About 4M sampled pairs per chunk: several (chunk, pairs) temporaries live at once.
    chunk = max(1, (1 << 22) // per_ref) if chunk_size is None else check_chunk(chunk_size, n)
    rows_s, rows_t = Rows(s, student_metric, "student_metric"), Rows(t, teacher_metric, "teacher_metric")
    hits = np.zeros(int(bins))
    counts = np.zeros(int(bins))
    for lo, hi in chunks(n, chunk):
        c = hi - lo
        ds = drop_self(rows_s(lo, hi), lo)
        dt = drop_self(rows_t(lo, hi), lo)
        rt = rank(dt)
        if n_pairs is None:
            j, k = jj.expand(c, -1), kk.expand(c, -1)
        else:
            # Positions among the reference's N - 1 compared points, from the reference's own
            # generator: the estimate does not depend on the chunking.
            j = np.empty((c, per_ref), dtype=np.int64)
            k = np.empty((c, per_ref), dtype=np.int64)
            for r in range(c):
                g = np.random.default_rng(seeds[lo + r])
                j[r] = g.integers(0, m, size=per_ref)
                k[r] = g.integers(0, m - 1, size=per_ref)
            k += k >= j
            j, k = torch.from_numpy(j), torch.from_numpy(k)
        a = ds.gather(1, j) - ds.gather(1, k)
        b = dt.gather(1, j) - dt.gather(1, k)
        concordant = ((a * b) > 0).reshape(-1).numpy()
        gap = ((rt.gather(1, j) - rt.gather(1, k)).abs() / m).double().reshape(-1).numpy()
        which = np.minimum((gap * bins).astype(np.int64), int(bins) - 1)
        counts += np.bincount(which, minlength=int(bins))
        hits += np.bincount(which, weights=concordant.astype(np.float64), minlength=int(bins))
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
        se = np.where(counts > 0, np.sqrt(kappa * (1 - kappa) / np.maximum(counts, 1)), np.nan)
    return pd.DataFrame({
        "gap_low": edges[:-1], "gap_high": edges[1:], "gap_center": (edges[:-1] + edges[1:]) / 2,
        "concordance": kappa, "pairs": counts.astype(np.int64), "se": se,
    })


def subsample_coherence(
    student,
    teacher,
    sizes,
    *,
    repeats: int = 50,
    seed: int | None = 0,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
):
    r""":math:`PC_n` on random subsets of n of the N points, for several n: the estimator's law.

    For each size :math:`n` and repeat, n of the N points are drawn without replacement and
    :math:`PC_n` is computed on them alone (every drawn point is a reference, compared with the
    other n - 1 drawn points). As n grows to N the values concentrate on the full-set
    :math:`PC_N`; their mean approaches it with a bias of order :math:`1/n` (``docs/method.md`` §4).

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
    sizes : sequence of int
        Subset sizes, each in [3, N]. A size equal to N is computed once per repeat (the same
        value every time).
    repeats : int, default 50
        Subsets drawn per size.
    seed : int or None, default 0
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (size, repeat): columns ``n``, ``repeat``, ``pc_n``.
    """
    import pandas as pd

    s, t = check_pair(student, teacher)
    n_total = s.shape[0]
    sizes = np.asarray(sizes)
    if sizes.size and not np.issubdtype(sizes.dtype, np.integer):  # [] is empty, not of a wrong type
        raise TypeError(f"sizes must be a sequence of integers, got dtype {sizes.dtype}")
    if sizes.ndim != 1 or sizes.size == 0 or sizes.min() < 3 or sizes.max() > n_total:
        raise ValueError(f"sizes must be a 1-D sequence of integers in [3, N] = [3, {n_total}], got {sizes!r}")
    repeats = check_int(repeats, "repeats", minimum=1)
    rng = generator(seed)
    # The full matrices once; each subset is an index into them (N is an evaluation set).
    d_s = Rows(s, student_metric, "student_metric")(0, n_total)
    d_t = Rows(t, teacher_metric, "teacher_metric")(0, n_total)
    # Sub-matrices are cut in numpy: small fancy-indexing ops are much cheaper there than in torch.
    np_s, np_t = d_s.numpy(), d_t.numpy()
    rows = []
    for n in sizes.tolist():
        if n == n_total:  # every "subset" is the whole set: one computation, no draw
            rho = row_pearson(rank(drop_self(d_s, 0)), rank(drop_self(d_t, 0)))
            rows.extend((n, r, float(rho.double().mean())) for r in range(int(repeats)))
            continue
        for r in range(int(repeats)):
            idx = np.sort(rng.choice(n_total, size=n, replace=False))
            keep = ~np.eye(n, dtype=bool)
            sub_s = torch.from_numpy(np_s[np.ix_(idx, idx)][keep].reshape(n, n - 1))
            sub_t = torch.from_numpy(np_t[np.ix_(idx, idx)][keep].reshape(n, n - 1))
            rho = row_pearson(rank(sub_s), rank(sub_t))
            rows.append((n, r, float(rho.double().mean())))
    return pd.DataFrame(rows, columns=["n", "repeat", "pc_n"])


def per_class_mean(values, labels):
    r"""Mean of per-reference values within each class of the reference, one row per model.

    .. math::

        PC_n^{(c)} = \frac{1}{|\{i: y_i = c\}|} \sum_{i:\, y_i = c} \rho_i

    Parameters
    ----------
    values : dict of name -> array-like (N,), or array-like (N,)
        Per-reference values (e.g. :func:`per_reference_spearman`), one array per model.
    labels : array-like, shape (N,)
        The class of each reference.

    Returns
    -------
    pandas.DataFrame
        Index: the names (``"value"`` for a single array); columns: the sorted classes; plus a
        column ``"all"`` with the mean over every reference.
    """
    import pandas as pd

    if not isinstance(values, dict):
        values = {"value": values}
    if not values:
        raise ValueError("values must hold at least one name -> array")
    y = as_labels(labels, "labels")
    table = {}
    for name, v in values.items():
        v = as_array(v, f"values[{name!r}]", finite=False)
        if v.shape != y.shape:
            raise ValueError(f"values[{name!r}] must have the shape of labels {y.shape}, got {v.shape}")
        means = pd.Series(v).groupby(y).mean()
        means["all"] = v.mean()
        table[name] = means
    return pd.DataFrame(table).T


def grade_coherence(pc_n: float, kendall_tau: float, n: int) -> float:
    r"""Estimate of the population score :math:`PC(\mu)` with the :math:`1/n` bias of :math:`PC_n` removed.

    Spearman's correlation of :math:`m` pairs splits exactly into a U-statistic over distinct
    triples and Kendall's :math:`\tau_a` (Kruskal 1958):

    .. math::

        r_s = \frac{(m - 2)\, \hat\rho + 3\, \hat\tau}{m + 1}, \qquad
        \hat\rho = \frac{3}{m(m-1)(m-2)} \sum_{j \ne k \ne l}
                   \operatorname{sign}(\delta^S_j - \delta^S_k)\,\operatorname{sign}(\delta^T_j - \delta^T_l)

    and :math:`\hat\rho` is unbiased for the population Spearman (grade) correlation
    :math:`\rho(x) = 1 - 6 E[(U - V)^2]`. Averaged over references, with :math:`m = N - 1`:

    .. math::

        \widehat{PC}(\mu) = \frac{(m + 1)\, PC_N - 3\, \bar\tau}{m - 2}

    Parameters
    ----------
    pc_n : float
        :math:`PC_N` on N points (:func:`perception_coherence`).
    kendall_tau : float
        Mean per-reference Kendall :math:`\tau` on the same points (:func:`per_reference_kendall`,
        exact; without ties :math:`\tau_b = \tau_a`).
    n : int
        N, the number of points (at least 4).

    Returns
    -------
    float
    """
    n = check_int(n, "n", minimum=4)
    pc_n = check_float(pc_n, "pc_n", minimum=-1.0, maximum=1.0)
    kendall_tau = check_float(kendall_tau, "kendall_tau", minimum=-1.0, maximum=1.0)
    m = n - 1
    return float(((m + 1) * pc_n - 3.0 * kendall_tau) / (m - 2))


def expected_pc_n(sizes, *, pc_n: float, kendall_tau: float, n: int) -> np.ndarray:
    r"""Expected :math:`PC_k` on random subsets of k of N points (the law of :func:`subsample_coherence`).

    With :math:`\hat\rho = ` :func:`grade_coherence` and :math:`m = k - 1` compared points per reference,

    .. math::

        E[PC_k] = \frac{(m - 2)\, \hat\rho + 3\, \bar\tau}{m + 1}
                = \hat\rho + \frac{3 (\bar\tau - \hat\rho)}{k}

    exactly (no ties): both U-statistics are unbiased under sampling without replacement. The
    bias against the population value is :math:`3(\bar\tau - \hat\rho)/k`, of order :math:`1/k`, and
    negative when :math:`\tau < \rho` (as usual); at :math:`k = N` the formula returns :math:`PC_N`.

    Parameters
    ----------
    sizes : array-like of int
        Subset sizes k (>= 3); ``numpy.inf`` gives the limit :math:`\hat\rho`.
    pc_n, kendall_tau, n
        As in :func:`grade_coherence`, on the full set of N points.

    Returns
    -------
    numpy.ndarray, shape of ``sizes``
    """
    k = as_array(sizes, "sizes", finite=False)
    if np.isnan(k).any() or (k < 3).any():
        raise ValueError(f"sizes must be >= 3, got {sizes!r}")
    rho = grade_coherence(pc_n, kendall_tau, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isinf(k), rho, rho + 3.0 * (kendall_tau - rho) / k)


# ----------------------------------------------------------------------------- helpers of the figures
def dissimilarity_matrix(features, metric: MetricLike = "cosine", *, name: str = "features") -> np.ndarray:
    """The (n, n) float64 dissimilarities between the rows of ``features`` (array or tensor) in ``metric``.

    A numpy view of :func:`pcoh.dissimilarity.pairwise`, for figures and tables.
    """
    x = torch.from_numpy(np.ascontiguousarray(as_array(features, name, ndim=2)))
    return pairwise(x, metric).double().numpy()


def reference_ranks(matrix) -> np.ndarray:
    """Average ranks of each reference's compared set, from a square (n, n) dissimilarity matrix.

    Row ``i`` holds the ranks of ``matrix[i, j]`` over ``j != i`` (1 = smallest, ties averaged),
    in increasing ``j``: the :math:`r_i` of ``docs/method.md`` §1.

    Returns
    -------
    numpy.ndarray, shape (n, n - 1)
    """
    d = as_array(matrix, "matrix", ndim=2, shape_doc="(n, n)")
    if d.shape[0] != d.shape[1]:
        raise ValueError(f"matrix must be square (n, n), got shape {d.shape}")
    n = d.shape[0]
    rows = d[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return rank(torch.from_numpy(rows)).numpy()


def soft_rank_path(values, strengths) -> np.ndarray:
    r"""Soft ranks of one vector at several strengths :math:`\varepsilon`: the path from hard ranks
    (small :math:`\varepsilon`) to the mean rank (large :math:`\varepsilon`).

    Parameters
    ----------
    values : array-like, shape (m,)
    strengths : array-like, shape (k,)
        Positive strengths.

    Returns
    -------
    numpy.ndarray, shape (k, m)
        Row ``e`` holds :func:`pcoh.ranking.soft_rank` of ``values`` at ``strengths[e]``.
    """
    v = torch.from_numpy(as_array(values, "values", ndim=1, shape_doc="(m,)"))
    eps = as_array(strengths, "strengths", ndim=1, shape_doc="(k,)")
    if not (eps > 0).all():
        raise ValueError(f"strengths must all be positive, got {eps.tolist()}")
    return np.stack([soft_rank(v[None], float(e))[0].numpy() for e in eps]) if eps.size else np.empty((0, v.numel()))
