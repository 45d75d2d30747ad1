r"""Coherence measures on finished embeddings (``docs/method.md`` §1-§2).

Every function takes the student's and the teacher's features of the same N inputs (torch
tensors or numpy arrays, shapes (N, d_S) and (N, d_T), the widths may differ), each with its own
metric (``"cosine"``, ``"euclidean"``, ``"sqeuclidean"``, a :class:`pcoh.dissimilarity.Dissimilarity`
or a callable; see :mod:`pcoh.dissimilarity`). Reference ``i`` compares the other N - 1 points.

==============================  =================================================================
function                        what it returns
==============================  =================================================================
:func:`per_reference_spearman`  (N,) Spearman of student vs teacher dissimilarity ranks per
                                reference; its mean is :math:`PC_N`
:func:`perception_coherence`    :math:`PC_N`, the mean of the above
:func:`per_reference_kendall`   (N,) Kendall's :math:`\tau_b` per reference (exact or sampled)
:func:`concordance_probability` (N,) :math:`P[(\delta_T(x,X_1)-\delta_T(x,X_2))(\delta_S(x,X_1)-\delta_S(x,X_2)) > 0]`
:func:`global_spearman`         Spearman of all pairwise dissimilarities (upper triangle)
:func:`probabilistic_ranks`     (R, N-1) plug-in probabilistic ranks :math:`u(x, x')`
:func:`neighbor_overlap`        (N,) shared fraction of the k nearest neighbours
:func:`bootstrap_ci`            percentile bootstrap interval of a statistic over references
==============================  =================================================================

Diagnostics that look inside these measures (held-out probabilistic ranks, concordance by rank
gap, :math:`PC_n` on subsets and its bias correction, per-class means) are in
:mod:`pcoh.diagnostics`.

Work is chunked over references: at most ``chunk_size x N`` dissimilarities are held at once, so
N = 10,000 runs in seconds on two CPU cores (``benchmarks/bench_loss.py`` measures it).
Computations run in float64 for float64 input and float32 otherwise.
"""
from __future__ import annotations

from typing import Callable

import numba
import numpy as np
import torch

from ._checks import as_array, as_features, check_float, check_indices, check_int, check_pairs_option
from .dissimilarity import Dissimilarity, MetricLike, get_metric, pairwise
from .ranking import rank
from .rowwise import CHUNK_ELEMENTS, Rows, check_chunk, check_pair, chunks, drop_self, generator, row_pearson, spearman_rows

__all__ = [
    "per_reference_spearman",
    "perception_coherence",
    "per_reference_kendall",
    "concordance_probability",
    "kendall_and_concordance",
    "global_spearman",
    "probabilistic_ranks",
    "neighbor_overlap",
    "bootstrap_ci",
]

# Exact all-pairs computations above these sizes switch to sampled pairs under n_pairs="auto".
_EXACT_KENDALL_MAX_N = 1000
_AUTO_KENDALL_PAIRS = 2000
_AUTO_GLOBAL_PAIRS = 1_000_000


# ----------------------------------------------------------------------------- Spearman
def per_reference_spearman(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Spearman correlation of student and teacher dissimilarity ranks, one per reference.

    .. math::

        \rho_i = \operatorname{spearman}\big(\delta_S(x_i, x_j),\, \delta_T(x_i, x_j)\big)_{j \ne i},
        \qquad PC_N = \frac1N \sum_i \rho_i

    Ties get average ranks (as ``scipy.stats.spearmanr``). A reference whose dissimilarities are
    all equal on one side has no defined correlation; it gets 0.

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
        Features of the same N >= 3 inputs, row by row.
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
        Each model's dissimilarity. A plain callable ``fn(x) -> (N, N)`` is evaluated on the
        whole set at once (O(N^2) memory); names and Dissimilarity objects are chunked.
    chunk_size : int, optional
        References per chunk; default keeps about 16M dissimilarities per chunk.

    Returns
    -------
    numpy.ndarray, shape (N,)
        :math:`\rho_i \in [-1, 1]`.
    """
    s, t = check_pair(student, teacher)
    n = s.shape[0]
    chunk = check_chunk(chunk_size, n)
    rows_s, rows_t = Rows(s, student_metric, "student_metric"), Rows(t, teacher_metric, "teacher_metric")
    out = np.empty(n, dtype=np.float64)
    for lo, hi in chunks(n, chunk):
        out[lo:hi] = spearman_rows(rows_s.block(lo, hi), rows_t.block(lo, hi), lo)
    return out


def perception_coherence(student, teacher, **kwargs) -> float:
    r""":math:`PC_N`, the mean of :func:`per_reference_spearman` (same arguments)."""
    return float(per_reference_spearman(student, teacher, **kwargs).mean())


# ----------------------------------------------------------------------------- Kendall
# The Kendall kernel, compiled once and cached on disk.
_njit = numba.njit(cache=True, nogil=True)


@_njit
def _kendall_rows(ds, dt, out_tau, out_conc):
    """Exact Kendall tau-b and concordance fraction of each row pair, O(m^2) per row."""
    rows, m = ds.shape
    total = m * (m - 1) / 2.0
    for r in range(rows):
        conc = 0.0
        disc = 0.0
        tie_s = 0.0
        tie_t = 0.0
        for j in range(m):
            sj = ds[r, j]
            tj = dt[r, j]
            for k in range(j + 1, m):
                a = sj - ds[r, k]
                b = tj - dt[r, k]
                if a == 0.0:
                    tie_s += 1.0
                if b == 0.0:
                    tie_t += 1.0
                p = a * b
                if p > 0.0:
                    conc += 1.0
                elif p < 0.0:
                    disc += 1.0
        den = np.sqrt((total - tie_s) * (total - tie_t))
        out_tau[r] = (conc - disc) / den if den > 0 else 0.0
        out_conc[r] = conc / total


def _sample_pairs(seeds: np.ndarray, refs: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each reference i, k pairs (j, l), j != l, both != i, uniformly at random.

    Reference ``i`` draws from its own generator, seeded with ``seeds[i]``, so the pairs (and the
    estimates) do not depend on how the references are split into chunks.
    """
    j = np.empty((len(refs), k), dtype=np.int64)
    l_ = np.empty((len(refs), k), dtype=np.int64)
    for r, i in enumerate(refs):
        g = np.random.default_rng(seeds[i])
        jr = g.integers(0, n - 1, size=k)
        jr += jr >= i
        lo, hi = np.minimum(i, jr), np.maximum(i, jr)
        lr = g.integers(0, n - 2, size=k)
        lr += lr >= lo
        lr += lr >= hi
        j[r], l_[r] = jr, lr
    return j, l_


def _kendall(student, teacher, student_metric, teacher_metric, n_pairs, seed, chunk_size):
    s, t = check_pair(student, teacher)
    n = s.shape[0]
    chunk = check_chunk(chunk_size, n)
    if check_pairs_option(n_pairs, minimum=1) == "auto":
        n_pairs = None if n <= _EXACT_KENDALL_MAX_N else _AUTO_KENDALL_PAIRS
    if n_pairs is not None and n < 4:
        raise ValueError(f"sampled pairs need at least 4 samples, got {n}")
    rng = generator(seed)
    # One seed per reference, drawn up front: results do not depend on chunk_size.
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=n) if n_pairs is not None else None
    rows_s, rows_t = Rows(s, student_metric, "student_metric"), Rows(t, teacher_metric, "teacher_metric")
    tau = np.empty(n)
    conc = np.empty(n)
    for lo, hi in chunks(n, chunk):
        ds, dt = rows_s(lo, hi), rows_t(lo, hi)
        if n_pairs is None:
            a = drop_self(ds, lo).double().numpy()
            b = drop_self(dt, lo).double().numpy()
            _kendall_rows(np.ascontiguousarray(a), np.ascontiguousarray(b), tau[lo:hi], conc[lo:hi])
            continue
        j, l_ = _sample_pairs(seeds, np.arange(lo, hi), n, int(n_pairs))
        j, l_ = torch.from_numpy(j), torch.from_numpy(l_)
        a = ds.gather(1, j) - ds.gather(1, l_)
        b = dt.gather(1, j) - dt.gather(1, l_)
        p = a * b
        c = (p > 0).sum(dim=1).double()
        d = (p < 0).sum(dim=1).double()
        k = float(n_pairs)
        den = torch.sqrt((k - (a == 0).sum(dim=1).double()) * (k - (b == 0).sum(dim=1).double()))
        tau[lo:hi] = torch.where(den > 0, (c - d) / den.clamp_min(1e-300), torch.zeros_like(den)).numpy()
        conc[lo:hi] = (c / k).numpy()
    return tau, conc


_PAIRS_DOC = """
    n_pairs : int, None or "auto", default "auto"
        ``None``: exact, over all :math:`\\binom{N-1}{2}` pairs of every reference (O(N^3) time in
        all, numba-compiled). An int ``K``: a Monte Carlo estimate from ``K`` pairs per reference,
        drawn uniformly (with replacement) among distinct pairs not containing the reference;
        its standard error is at most about :math:`1/\\sqrt{K}`. ``"auto"``: exact for
        N <= 1000, else 2000 sampled pairs.
    seed : int or None, default 0
        Seed of the pair sampling (unused when exact).
    chunk_size : int, optional
        References per chunk."""


def per_reference_kendall(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    n_pairs="auto",
    seed: int | None = 0,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Kendall's :math:`\tau_b` of student vs teacher dissimilarities, one per reference.

    .. math::

        \tau_i = \frac{C_i - D_i}{\sqrt{(P - T^T_i)(P - T^S_i)}}

    over pairs :math:`(j, k)` of compared points (:math:`C` concordant, :math:`D` discordant,
    :math:`T` tied on one side, :math:`P` pairs), as ``scipy.stats.kendalltau`` (variant b).

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
    %(pairs)s

    Returns
    -------
    numpy.ndarray, shape (N,)
    """
    return _kendall(student, teacher, student_metric, teacher_metric, n_pairs, seed, chunk_size)[0]


def kendall_and_concordance(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    n_pairs="auto",
    seed: int | None = 0,
    chunk_size: int | None = None,
) -> tuple:
    """:func:`per_reference_kendall` and :func:`concordance_probability` from one pass over the
    pairs (they count the same concordant pairs): ``(tau, concordance)``, each (N,), equal to the
    two functions' results with the same arguments."""
    return _kendall(student, teacher, student_metric, teacher_metric, n_pairs, seed, chunk_size)


def concordance_probability(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    n_pairs="auto",
    seed: int | None = 0,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Probability that student and teacher order two compared points alike, per reference.

    .. math::

        \kappa_i = P_{j \ne k}\big[(\delta_T(x_i,x_j) - \delta_T(x_i,x_k))
                                   (\delta_S(x_i,x_j) - \delta_S(x_i,x_k)) > 0\big]

    the finite form of :math:`\kappa(\mu)` (``docs/method.md`` §2); without ties it equals
    :math:`(1 + \tau_i) / 2`. Tied pairs count as not concordant.

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
    %(pairs)s

    Returns
    -------
    numpy.ndarray, shape (N,)
        Values in [0, 1].
    """
    return _kendall(student, teacher, student_metric, teacher_metric, n_pairs, seed, chunk_size)[1]


for _fn in (per_reference_kendall, concordance_probability):
    _fn.__doc__ = _fn.__doc__.replace("    %(pairs)s", _PAIRS_DOC.strip("\n"))


# ----------------------------------------------------------------------------- global
def _paired(x: torch.Tensor, metric, i: torch.Tensor, j: torch.Tensor, argument: str) -> torch.Tensor:
    """d(x_i, x_j) for index vectors i, j, without building the (N, N) matrix for built-ins."""
    fn = get_metric(metric, argument)
    if not isinstance(fn, Dissimilarity):
        return pairwise(x, fn)[i, j]
    out = torch.empty(len(i), dtype=x.dtype)
    step = max(1, CHUNK_ELEMENTS // max(x.shape[1], 1))
    for lo in range(0, len(i), step):
        a, b = x[i[lo:lo + step]], x[j[lo:lo + step]]
        # Row-wise d(a_k, b_k): the diagonal of the (k, k) matrix, computed without it.
        out[lo:lo + step] = _diag_metric(fn, a, b)
    return out


def _diag_metric(fn: Dissimilarity, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    name = fn.name
    if name == "cosine":
        an = torch.nn.functional.normalize(a, dim=1, eps=1e-12)
        bn = torch.nn.functional.normalize(b, dim=1, eps=1e-12)
        return 1.0 - (an * bn).sum(dim=1)
    if name in ("euclidean", "sqeuclidean"):
        sq = ((a - b) ** 2).sum(dim=1)
        return sq.sqrt() if name == "euclidean" else sq
    # A user's Dissimilarity: fall back to the diagonal of small blocks.
    return torch.stack([fn(a[k:k + 1], b[k:k + 1])[0, 0] for k in range(a.shape[0])])


def global_spearman(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    n_pairs="auto",
    seed: int | None = 0,
) -> float:
    r"""Spearman correlation of all pairwise dissimilarities (upper triangle), one number.

    .. math::

        \operatorname{spearman}\big(\delta_S(x_i, x_j),\, \delta_T(x_i, x_j)\big)_{i < j}

    The usual "distance-matrix" score; it ignores the reference structure (a student can score
    well here by getting large distances right while scrambling every neighbourhood).

    Parameters
    ----------
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
    n_pairs : int, None or "auto", default "auto"
        ``None``: all :math:`N(N-1)/2` pairs (O(N^2) memory). An int ``K``: ``K`` pairs
        :math:`i < j` drawn uniformly with replacement. ``"auto"``: exact up to one million pairs
        (N <= 1414), else one million sampled pairs (standard error about 0.001).
    seed : int or None, default 0
        Seed of the pair sampling.

    Returns
    -------
    float
    """
    s, t = check_pair(student, teacher)
    n = s.shape[0]
    total = n * (n - 1) // 2
    if check_pairs_option(n_pairs, minimum=2) == "auto":
        n_pairs = None if total <= _AUTO_GLOBAL_PAIRS else _AUTO_GLOBAL_PAIRS
    rng = generator(seed)  # checked even when the exact computation leaves it unused
    if n_pairs is None:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        a = rng.integers(0, n, size=int(n_pairs))
        b = rng.integers(0, n - 1, size=int(n_pairs))
        b = b + (b >= a)
        i, j = torch.from_numpy(np.minimum(a, b)), torch.from_numpy(np.maximum(a, b))
    if n_pairs is None and n * n <= CHUNK_ELEMENTS:
        # Every pair of a small set: the upper triangles of the two matrices (one product each),
        # not N(N-1)/2 gathered row pairs.
        ds = pairwise(s, get_metric(student_metric, "student_metric"))[i, j]
        dt = pairwise(t, get_metric(teacher_metric, "teacher_metric"))[i, j]
    else:
        ds = _paired(s, student_metric, i, j, "student_metric")
        dt = _paired(t, teacher_metric, i, j, "teacher_metric")
    return float(row_pearson(rank(ds)[None], rank(dt)[None])[0])


# ----------------------------------------------------------------------------- probabilistic
def probabilistic_ranks(
    features,
    *,
    metric: MetricLike = "cosine",
    references=None,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Plug-in probabilistic ranks :math:`u(x_i, x_j)` of every compared point, per reference.

    .. math::

        \hat u(x_i, x_j) = \frac{r_{ij} - 1/2}{N - 1} \in (0, 1)

    where :math:`r_{ij}` is the average rank of :math:`\delta(x_i, x_j)` among the N - 1
    dissimilarities seen from :math:`x_i`. It estimates :math:`u(x, x') = F_x(\delta(x, x'))` of
    ``docs/method.md`` §2 and, for continuous dissimilarities, is uniform on the grid
    :math:`\{(k - 1/2)/(N-1)\}`.

    Parameters
    ----------
    features : torch.Tensor or numpy.ndarray, shape (N, d)
    metric : str, Dissimilarity or callable, default "cosine"
    references : sequence of int, optional
        Indices of the references; default all N.
    chunk_size : int, optional

    Returns
    -------
    numpy.ndarray, shape (R, N - 1)
        Row ``r`` holds :math:`\hat u(x_i, x_j)` for ``i = references[r]`` and every ``j != i``
        in increasing order (the reference's own column removed).
    """
    x = as_features(features, "features")
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"features must hold at least 3 samples, got {n}")
    refs = np.arange(n) if references is None else check_indices(references, "references", n)
    chunk = check_chunk(chunk_size, n)
    rows = Rows(x, metric, "metric")
    out = np.empty((len(refs), n - 1))
    for lo, hi in chunks(len(refs), chunk):
        idx = torch.from_numpy(refs[lo:hi]).long()
        block = drop_self(rows.at(idx), idx)
        out[lo:hi] = ((rank(block) - 0.5) / (n - 1)).double().numpy()
    return out


# ----------------------------------------------------------------------------- neighbours
def neighbor_overlap(
    student,
    teacher,
    *,
    k: int = 10,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Fraction of each reference's k nearest neighbours that student and teacher share.

    .. math::

        \frac{|N^S_k(x_i) \cap N^T_k(x_i)|}{k}

    Neighbours exclude the reference itself; ties at the k-th distance are broken by index.

    Returns
    -------
    numpy.ndarray, shape (N,)
        Values in [0, 1].
    """
    s, t = check_pair(student, teacher)
    n = s.shape[0]
    k = check_int(k, "k", minimum=1, maximum=n - 1)
    chunk = check_chunk(chunk_size, n)
    rows_s, rows_t = Rows(s, student_metric, "student_metric"), Rows(t, teacher_metric, "teacher_metric")
    out = np.empty(n)
    for lo, hi in chunks(n, chunk):
        c = hi - lo
        hits = []
        for rows in (rows_s, rows_t):
            d = rows(lo, hi)
            d[torch.arange(c), torch.arange(lo, hi)] = float("inf")
            idx = torch.sort(d, dim=1, stable=True).indices[:, :k]
            mark = torch.zeros(c, n, dtype=torch.bool)
            mark.scatter_(1, idx, True)
            hits.append(mark)
        out[lo:hi] = ((hits[0] & hits[1]).sum(dim=1).double() / k).numpy()
    return out


# ----------------------------------------------------------------------------- bootstrap
def bootstrap_ci(
    values,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float, float]:
    r"""Percentile bootstrap interval of a statistic of per-reference values.

    References are resampled with replacement (each keeps the value computed on the full set),
    so the interval covers the variability of :math:`PC_N` over the choice of references.

    Parameters
    ----------
    values : array-like, shape (N,)
        Per-reference values, e.g. from :func:`per_reference_spearman`.
    statistic : callable, default numpy.mean
        Maps a 1-D array to a number; applied row-wise when it takes ``axis``.
    n_boot : int, default 2000
        Bootstrap resamples.
    confidence : float, default 0.95
        Level of the interval, in (0, 1).
    seed : int or None, default 0

    Returns
    -------
    (estimate, low, high) : tuple of float
        The statistic on ``values`` and the interval's bounds.
    """
    v = as_array(values, "values", ndim=1)
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 entries, got shape {v.shape}")
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    confidence = check_float(confidence, "confidence", minimum=0.0, maximum=1.0, strict=True)
    if not callable(statistic):
        raise TypeError(f"statistic must be a callable (e.g. numpy.mean), got {type(statistic).__name__}")
    rng = generator(seed)
    stats = np.empty(int(n_boot))
    step = max(1, (1 << 22) // v.size)
    for lo in range(0, int(n_boot), step):
        hi = min(int(n_boot), lo + step)
        sample = v[rng.integers(0, v.size, size=(hi - lo, v.size))]
        try:
            stats[lo:hi] = statistic(sample, axis=1)
        except TypeError:
            stats[lo:hi] = [statistic(row) for row in sample]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(statistic(v)), float(low), float(high)
