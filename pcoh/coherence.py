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

Work is chunked over references: at most ``chunk_size x N`` dissimilarities are held at once, so
N = 10,000 runs in seconds on two CPU cores (``benchmarks/bench_loss.py`` measures it).
Computations run in float64 for float64 input and float32 otherwise.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from .dissimilarity import Dissimilarity, MetricLike, get_metric, pairwise
from .ranking import _njit, _row_pearson, rank

__all__ = [
    "per_reference_spearman",
    "perception_coherence",
    "per_reference_kendall",
    "concordance_probability",
    "global_spearman",
    "probabilistic_ranks",
    "neighbor_overlap",
    "bootstrap_ci",
    "reference_dissimilarities",
    "heldout_probabilistic_ranks",
    "concordance_by_rank_gap",
    "subsample_coherence",
    "per_class_mean",
    "grade_coherence",
    "expected_pc_n",
]

# Dissimilarities held per chunk (rows x N); about 64 MiB per float32 matrix.
_CHUNK_ELEMENTS = 1 << 24
# Exact all-pairs computations above these sizes switch to sampled pairs under n_pairs="auto".
_EXACT_KENDALL_MAX_N = 1000
_AUTO_KENDALL_PAIRS = 2000
_AUTO_GLOBAL_PAIRS = 1_000_000


# ----------------------------------------------------------------------------- input handling
def _as_features(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number):
            raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array (N, d), got {type(x).__name__}")
    # The measures run on the CPU (index masks, numba kernels and numpy outputs): CUDA input is copied.
    x = x.detach().cpu()
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(x.shape)}")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def _check_pair(student, teacher, min_samples: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    s = _as_features(student, "student")
    t = _as_features(teacher, "teacher")
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"student and teacher must have the same number of samples, got {s.shape[0]} and {t.shape[0]}")
    if s.shape[0] < min_samples:
        raise ValueError(f"student and teacher must hold at least {min_samples} samples, got {s.shape[0]}")
    dtype = torch.float64 if torch.float64 in (s.dtype, t.dtype) else torch.float32
    return s.to(dtype), t.to(dtype)


def _check_chunk(chunk_size, n: int) -> int:
    if chunk_size is None:
        return max(1, min(n, _CHUNK_ELEMENTS // max(n, 1)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


class _Rows:
    """Rows of a dissimilarity matrix, computed a chunk of references at a time.

    A built-in metric (a :class:`Dissimilarity`) computes only the rows asked for; a plain callable
    ``fn(x) -> (N, N)`` can only give the whole matrix, which is then computed once and sliced
    (O(N^2) memory, documented in the public functions).
    """

    def __init__(self, x: torch.Tensor, metric: MetricLike, argument: str):
        self.x = x
        self.fn = get_metric(metric, argument)
        self.full = None if isinstance(self.fn, Dissimilarity) else pairwise(x, self.fn).to(x.dtype)

    def __call__(self, lo: int, hi: int) -> torch.Tensor:
        return self.at(torch.arange(lo, hi))

    def at(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the matrix, (len(idx), N), with d(x_i, x_i) exactly 0."""
        rows = self.full[idx].clone() if self.full is not None else self.fn(self.x[idx], self.x)
        # d(x_i, x_i) is 0 by definition; the matrix formula may leave rounding there.
        rows[torch.arange(len(idx)), idx] = 0.0
        return rows


def _drop_self(rows: torch.Tensor, lo) -> torch.Tensor:
    """Remove column ``idx[r]`` from row ``r``: (c, N) -> (c, N - 1), other columns in order.

    ``lo`` is either the first index of a contiguous chunk or a tensor of row indices.
    A gather with index ``j + (j >= idx[r])`` is several times faster than a boolean mask.
    """
    c, n = rows.shape
    idx = torch.arange(lo, lo + c) if isinstance(lo, int) else lo
    cols = torch.arange(n - 1).expand(c, n - 1)
    return rows.gather(1, cols + (cols >= idx[:, None]))


def _chunks(n: int, chunk: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, chunk):
        yield lo, min(n, lo + chunk)


def _rng(seed) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return np.random.default_rng(seed)


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
    s, t = _check_pair(student, teacher)
    n = s.shape[0]
    chunk = _check_chunk(chunk_size, n)
    rows_s, rows_t = _Rows(s, student_metric, "student_metric"), _Rows(t, teacher_metric, "teacher_metric")
    out = np.empty(n, dtype=np.float64)
    for lo, hi in _chunks(n, chunk):
        rs = rank(_drop_self(rows_s(lo, hi), lo))
        rt = rank(_drop_self(rows_t(lo, hi), lo))
        out[lo:hi] = _row_pearson(rs, rt).double().numpy()
    return out


def perception_coherence(student, teacher, **kwargs) -> float:
    r""":math:`PC_N`, the mean of :func:`per_reference_spearman` (same arguments)."""
    return float(per_reference_spearman(student, teacher, **kwargs).mean())


# ----------------------------------------------------------------------------- Kendall
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
    s, t = _check_pair(student, teacher)
    n = s.shape[0]
    chunk = _check_chunk(chunk_size, n)
    if n_pairs == "auto":
        n_pairs = None if n <= _EXACT_KENDALL_MAX_N else _AUTO_KENDALL_PAIRS
    elif n_pairs is not None and (
        isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1
    ):
        raise ValueError(f"n_pairs must be a positive integer, None (exact) or 'auto', got {n_pairs!r}")
    if n_pairs is not None and n < 4:
        raise ValueError(f"sampled pairs need at least 4 samples, got {n}")
    rng = _rng(seed)
    # One seed per reference, drawn up front: results do not depend on chunk_size.
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=n) if n_pairs is not None else None
    rows_s, rows_t = _Rows(s, student_metric, "student_metric"), _Rows(t, teacher_metric, "teacher_metric")
    tau = np.empty(n)
    conc = np.empty(n)
    for lo, hi in _chunks(n, chunk):
        ds, dt = rows_s(lo, hi), rows_t(lo, hi)
        if n_pairs is None:
            a = _drop_self(ds, lo).double().numpy()
            b = _drop_self(dt, lo).double().numpy()
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
    step = max(1, _CHUNK_ELEMENTS // max(x.shape[1], 1))
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
    s, t = _check_pair(student, teacher)
    n = s.shape[0]
    total = n * (n - 1) // 2
    if n_pairs == "auto":
        n_pairs = None if total <= _AUTO_GLOBAL_PAIRS else _AUTO_GLOBAL_PAIRS
    elif n_pairs is not None and (
        isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2
    ):
        raise ValueError(f"n_pairs must be an integer >= 2, None (exact) or 'auto', got {n_pairs!r}")
    if n_pairs is None:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        rng = _rng(seed)
        a = rng.integers(0, n, size=int(n_pairs))
        b = rng.integers(0, n - 1, size=int(n_pairs))
        b = b + (b >= a)
        i, j = torch.from_numpy(np.minimum(a, b)), torch.from_numpy(np.maximum(a, b))
    ds = _paired(s, student_metric, i, j, "student_metric")
    dt = _paired(t, teacher_metric, i, j, "teacher_metric")
    return float(_row_pearson(rank(ds)[None], rank(dt)[None])[0])


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
    x = _as_features(features, "features")
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"features must hold at least 3 samples, got {n}")
    refs = np.arange(n) if references is None else np.asarray(references)
    if refs.ndim != 1 or not np.issubdtype(refs.dtype, np.integer) or (refs.size and (refs.min() < 0 or refs.max() >= n)):
        raise ValueError(f"references must be a 1-D sequence of integers in [0, {n}), got {references!r}")
    chunk = _check_chunk(chunk_size, n)
    rows = _Rows(x, metric, "metric")
    out = np.empty((len(refs), n - 1))
    for lo, hi in _chunks(len(refs), chunk):
        idx = torch.from_numpy(refs[lo:hi]).long()
        block = _drop_self(rows.at(idx), idx)
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
    s, t = _check_pair(student, teacher)
    n = s.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k must be an integer in [1, N - 1] = [1, {n - 1}], got {k!r}")
    chunk = _check_chunk(chunk_size, n)
    rows_s, rows_t = _Rows(s, student_metric, "student_metric"), _Rows(t, teacher_metric, "teacher_metric")
    out = np.empty(n)
    for lo, hi in _chunks(n, chunk):
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
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be 1-D with at least 2 entries, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values contains NaN or Inf")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not (isinstance(confidence, (int, float)) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    rng = _rng(seed)
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


# ----------------------------------------------------------------------------- diagnostics
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
    x = _as_features(features, "features")
    n = x.shape[0]
    if isinstance(reference, bool) or not isinstance(reference, (int, np.integer)) or not 0 <= reference < n:
        raise ValueError(f"reference must be an integer in [0, {n}), got {reference!r}")
    if n < 2:
        raise ValueError(f"features must hold at least 2 samples, got {n}")
    idx = torch.tensor([int(reference)])
    row = _Rows(x, metric, "metric").at(idx)
    return _drop_self(row, idx)[0].double().numpy()


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
    x = _as_features(features, "features")
    p = _as_features(population, "population")
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
    refs = np.arange(n) if references is None else np.asarray(references)
    if refs.ndim != 1 or not np.issubdtype(refs.dtype, np.integer) or (refs.size and (refs.min() < 0 or refs.max() >= n)):
        raise ValueError(f"references must be a 1-D sequence of integers in [0, {n}), got {references!r}")
    chunk = _check_chunk(chunk_size, max(n, p.shape[0]))
    rows = _Rows(x, metric, "metric")
    m = p.shape[0]
    out = np.empty((len(refs), n - 1))
    for lo, hi in _chunks(len(refs), chunk):
        idx = torch.from_numpy(refs[lo:hi]).long()
        compared = _drop_self(rows.at(idx), idx)
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

    s, t = _check_pair(student, teacher, min_samples=3)
    n = s.shape[0]
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if n_pairs is not None and (isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1):
        raise ValueError(f"n_pairs must be a positive integer or None (every pair), got {n_pairs!r}")
    m = n - 1
    rng = _rng(seed)
    if n_pairs is None:
        jj, kk = torch.triu_indices(m, m, offset=1)
        per_ref = jj.numel()
    else:
        per_ref = int(n_pairs)
        seeds = rng.integers(0, np.iinfo(np.int64).max, size=n)
    # About 4M sampled pairs per chunk: several (chunk, pairs) temporaries live at once.
    chunk = max(1, (1 << 22) // per_ref) if chunk_size is None else _check_chunk(chunk_size, n)
    rows_s, rows_t = _Rows(s, student_metric, "student_metric"), _Rows(t, teacher_metric, "teacher_metric")
    hits = np.zeros(int(bins))
    counts = np.zeros(int(bins))
    for lo, hi in _chunks(n, chunk):
        c = hi - lo
        ds = _drop_self(rows_s(lo, hi), lo)
        dt = _drop_self(rows_t(lo, hi), lo)
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

    s, t = _check_pair(student, teacher)
    n_total = s.shape[0]
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) \
            or sizes.min() < 3 or sizes.max() > n_total:
        raise ValueError(f"sizes must be a 1-D sequence of integers in [3, N] = [3, {n_total}], got {sizes!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    rng = _rng(seed)
    # The full matrices once; each subset is an index into them (N is an evaluation set).
    d_s = _Rows(s, student_metric, "student_metric")(0, n_total)
    d_t = _Rows(t, teacher_metric, "teacher_metric")(0, n_total)
    # Sub-matrices are cut in numpy: small fancy-indexing ops are much cheaper there than in torch.
    np_s, np_t = d_s.numpy(), d_t.numpy()
    rows = []
    for n in sizes.tolist():
        if n == n_total:  # every "subset" is the whole set: one computation, no draw
            rho = _row_pearson(rank(_drop_self(d_s, 0)), rank(_drop_self(d_t, 0)))
            rows.extend((n, r, float(rho.double().mean())) for r in range(int(repeats)))
            continue
        for r in range(int(repeats)):
            idx = np.sort(rng.choice(n_total, size=n, replace=False))
            keep = ~np.eye(n, dtype=bool)
            sub_s = torch.from_numpy(np_s[np.ix_(idx, idx)][keep].reshape(n, n - 1))
            sub_t = torch.from_numpy(np_t[np.ix_(idx, idx)][keep].reshape(n, n - 1))
            rho = _row_pearson(rank(sub_s), rank(sub_t))
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
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {y.shape}")
    table = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
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
    k = np.asarray(sizes, dtype=np.float64)
    if (k < 3).any():
        raise ValueError(f"sizes must be >= 3, got {sizes!r}")
    rho = grade_coherence(pc_n, kendall_tau, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isinf(k), rho, rho + 3.0 * (kendall_tau - rho) / k)
