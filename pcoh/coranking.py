r"""Co-ranking diagnostics: how well a student keeps the teacher's ranks at every neighbourhood size.

The co-ranking matrix (Lee and Verleysen, "Quality assessment of dimensionality reduction:
Rank-based criteria", Neurocomputing 72, 2009) counts, over the N (N - 1) ordered pairs
:math:`(i, j)`, :math:`i \ne j`, how the teacher's rank of :math:`j` seen from :math:`i` and the
student's rank of it go together:

.. math::

    Q_{kl} = \big|\{(i, j) : \rho^T_{ij} = k,\ \rho^S_{ij} = l\}\big|, \qquad k, l = 1..N-1

where :math:`\rho_{ij}` is the rank of :math:`\delta(x_i, x_j)` among the N - 1 dissimilarities
seen from :math:`x_i` (the reference itself excluded; rank 1 is the nearest). Rows are the
teacher's ranks, columns the student's. The curves read from it (Lee, Peluffo-Ordóñez and
Verleysen, Neurocomputing 169, 2015):

.. math::

    Q_{NX}(K) = \frac{1}{K N} \sum_{k \le K} \sum_{l \le K} Q_{kl}, \qquad
    R_{NX}(K) = \frac{(N - 1)\, Q_{NX}(K) - K}{N - 1 - K}, \qquad K = 1..N-2,

    \mathrm{AUC}_{\log K}(R_{NX}) = \frac{\sum_{K=1}^{N-2} R_{NX}(K) / K}{\sum_{K=1}^{N-2} 1 / K}.

:math:`Q_{NX}(K)` is the mean fraction of each point's K nearest teacher neighbours that are
also among its K nearest student neighbours; :math:`R_{NX}(K)` rescales it so that a random
student scores 0 in expectation (:math:`E[Q_{NX}(K)] = K / (N - 1)`) and a student that keeps
every K-neighbourhood scores 1. The area weighs every scale of :math:`\log K` alike.

==============================  =================================================================
function                        what it returns
==============================  =================================================================
:func:`coranking_matrix`        the (N-1, N-1) integer matrix :math:`Q` (O(N^2) memory)
:func:`rnx_curve`               :class:`RNXCurve`: :math:`K`, :math:`Q_{NX}(K)`, :math:`R_{NX}(K)`
                                and the area (O(N) memory per reference)
:func:`rnx_auc`                 the area under :math:`R_{NX}` on a log scale, one float
:func:`qnx_per_point`           (N,) or (len(k), N): the fraction of each point's teacher
                                K-neighbourhood the student keeps; its mean over points is
                                :math:`Q_{NX}(K)`
==============================  =================================================================

**Ties** are broken one way everywhere: among equal dissimilarities seen from a reference, the
point of smaller index gets the smaller rank (a stable sort by index), as in
:func:`pcoh.coherence.neighbor_overlap`; so ``qnx_per_point(..., k=K)`` equals
``neighbor_overlap(..., k=K)`` and the mean top-K overlap equals :math:`Q_{NX}(K)` exactly.

**Cost.** Every reference's two rows of N - 1 dissimilarities are ranked (an LSD radix sort on
the bits of the floats, stable, numba-compiled, references in parallel), a chunk of references
at a time; the curve needs only the histogram of :math:`\max(\rho^T_{ij}, \rho^S_{ij})` over pairs,
since :math:`\sum_{k, l \le K} Q_{kl}` counts the pairs whose larger rank is at most K;
:func:`rnx_curve` ranks both rows of a reference and counts their larger ranks in one compiled
pass, into one histogram per thread, without keeping the ranks. Time is O(N^2) (the
dissimilarities and the sorts), memory O(N) per reference of a chunk. Inputs and
metrics are those of :func:`pcoh.coherence.per_reference_spearman`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from ._checks import as_array, check_int
from .dissimilarity import MetricLike, renamed
from .radix import INDEX_MASK, argsort_keys, argsort_packed32, sortable_keys
from .rowwise import CHUNK_ELEMENTS, Rows, check_pair, chunks

__all__ = ["RNXCurve", "coranking_matrix", "rnx_curve", "rnx_auc", "rnx_area", "qnx_per_point"]

# Each reference of a chunk holds about a dozen numbers per compared point (two rows of
# dissimilarities, their keys, two rows of ranks): a quarter of the coherence measures' chunk.
_CHUNK_ELEMENTS = CHUNK_ELEMENTS // 4
_DIGIT_BITS = 11  # radix of the sort: 2048 buckets, 3 passes for float32 keys, 6 for float64


# ----------------------------------------------------------------------------- ranks
@numba.njit(cache=True, nogil=True, parallel=True)
def _rank_rows(bits, lo, sign, full, passes, out):
    """Ranks 1..N-1 of each row of dissimilarities without column ``lo + r`` of row ``r``.

    ``bits`` (c, N) are the floats' bit patterns (unsigned integers of their width; ``sign`` is
    the sign bit, ``full`` all bits set). They are turned into keys ordered as the floats
    (negative: all bits flipped; else the sign bit set; -0.0 is 0.0) and sorted by an LSD radix
    sort, which is stable: equal keys keep the order of their columns, so the smaller index gets
    the smaller rank. ``out`` (c, N - 1) receives the rank of every other column, columns in
    increasing order. Arithmetic stays in uint64: numba turns a mix of uint64 and int64 into float64.
    """
    c, n = bits.shape
    buckets = 1 << 11
    mask = np.uint64(buckets - 1)
    zero = np.uint64(0)
    for r in numba.prange(c):
        i = lo + r
        idx = np.empty(n - 1, dtype=np.int64)
        key = np.empty(n - 1, dtype=np.uint64)
        idx2 = np.empty(n - 1, dtype=np.int64)
        key2 = np.empty(n - 1, dtype=np.uint64)
        count = np.empty(buckets + 1, dtype=np.int64)
        p = 0
        for j in range(n):
            if j != i:
                b = np.uint64(bits[r, j])
                if b == sign:  # -0.0
                    b = zero
                key[p] = ((~b) & full) if (b & sign) != zero else (b | sign)
                idx[p] = j
                p += 1
        for q in range(passes):
            shift = np.uint64(q * 11)
            count[:] = 0
            for p in range(n - 1):
                count[np.int64((key[p] >> shift) & mask) + 1] += 1
            if count.max() == n - 1:  # every key has this digit: the pass would change nothing
                continue
            for d in range(buckets):
                count[d + 1] += count[d]
            for p in range(n - 1):
                d = np.int64((key[p] >> shift) & mask)
                key2[count[d]] = key[p]
                idx2[count[d]] = idx[p]
                count[d] += 1
            idx, idx2 = idx2, idx
            key, key2 = key2, key
        for p in range(n - 1):
            j = idx[p]
            out[r, j - (j > i)] = p + 1


def _ranks(rows: Rows, lo: int, hi: int) -> np.ndarray:
    """(hi - lo, N - 1) int32 ranks of the references lo..hi-1, self excluded, ties by index."""
    d = np.ascontiguousarray(rows(lo, hi).numpy())
    if d.dtype == np.float64:
        bits, sign, full = d.view(np.uint64), np.uint64(1 << 63), np.uint64((1 << 64) - 1)
    else:
        d = d.astype(np.float32, copy=False)
        bits, sign, full = d.view(np.uint32), np.uint64(1 << 31), np.uint64((1 << 32) - 1)
    out = np.empty((hi - lo, d.shape[1] - 1), dtype=np.int32)
    _rank_rows(bits, lo, sign, full, -(-8 * d.itemsize // _DIGIT_BITS), out)
    return out


@numba.njit(nogil=True, cache=True)
def _row_ranks(row, skip, x, keys, order, tmp_keys, tmp_order, hist, ranks):
    """``ranks[p]`` = the rank (1..N-1) of the p-th column of ``row`` other than ``skip``; ties by
    column (the LSD radix sort of :mod:`pcoh.radix` is stable), -0.0 tied with 0.0, as :func:`_rank_rows`."""
    m = 0
    for j in range(row.shape[0]):
        if j != skip:
            x[m] = row[j] + 0.0  # + 0.0: -0.0 ties with +0.0
            m += 1
    if x.itemsize == 4:  # key and position in one word (keys and order as its two buffers)
        words = argsort_packed32(x, keys, order, hist)
        for q in range(m):
            ranks[words[q] & INDEX_MASK] = q + 1
        return
    nbytes = sortable_keys(x, keys)
    argsort_keys(keys, nbytes, order, tmp_keys, tmp_order, hist)
    for q in range(m):
        ranks[order[q]] = q + 1


def _larger_rank_counts(dt, ds, lo, counts):
    """Add to ``counts[b]`` (``counts`` (B, N) int64) the histogram of max(teacher rank, student
    rank) over the pairs of the references of block ``b`` of the rows of ``dt`` and ``ds`` (c, N),
    row ``r`` being reference ``lo + r`` (its own column left out); blocks in parallel, each with
    its own histogram, so that no (c, N - 1) array of ranks is made."""
    c, n = dt.shape
    blocks = counts.shape[0]
    m = n - 1
    for b in numba.prange(blocks):
        x = np.empty(m, dt.dtype)
        y = np.empty(m, ds.dtype)
        keys = np.empty(m, np.int64)
        order = np.empty(m, np.int64)
        tmp_keys = np.empty(m, np.int64)
        tmp_order = np.empty(m, np.int64)
        hist = np.empty((8, 256), np.int64)
        rt = np.empty(m, np.int64)
        rs = np.empty(m, np.int64)
        for r in range(b * c // blocks, (b + 1) * c // blocks):
            _row_ranks(dt[r], lo + r, x, keys, order, tmp_keys, tmp_order, hist, rt)
            _row_ranks(ds[r], lo + r, y, keys, order, tmp_keys, tmp_order, hist, rs)
            for p in range(m):
                k = rt[p] if rt[p] > rs[p] else rs[p]
                counts[b, k] += 1


_PARALLEL_MIN_ELEMENTS = 1 << 17
_larger_rank_counts_serial = numba.njit(nogil=True, cache=True)(_larger_rank_counts)
_larger_rank_counts_parallel = numba.njit(nogil=True, cache=True, parallel=True)(
    renamed(_larger_rank_counts, "_parallel"))


def _chunked_rows(student, teacher, student_metric, teacher_metric, chunk_size, elements=_CHUNK_ELEMENTS):
    """N, the chunk of references (default: ``elements`` compared points), and the student's and
    teacher's :class:`Rows`."""
    s, t = check_pair(student, teacher, min_samples=4)
    n = s.shape[0]
    if chunk_size is None:
        chunk = max(1, min(n, elements // n))
    else:
        chunk = check_int(chunk_size, "chunk_size", minimum=1)
    return n, chunk, Rows(s, student_metric, "student_metric"), Rows(t, teacher_metric, "teacher_metric")


def _pair_ranks(student, teacher, student_metric, teacher_metric, chunk_size):
    """Chunks ``(lo, hi, teacher ranks, student ranks)`` over all references, and N."""
    n, chunk, rows_s, rows_t = _chunked_rows(student, teacher, student_metric, teacher_metric, chunk_size)

    def gen():
        for lo, hi in chunks(n, chunk):
            yield lo, hi, _ranks(rows_t, lo, hi), _ranks(rows_s, lo, hi)

    return n, gen()


_ARGS_DOC = """
    student, teacher : torch.Tensor or numpy.ndarray, shapes (N, d_S) and (N, d_T)
        Features of the same N >= 4 inputs, row by row (the widths may differ).
    student_metric, teacher_metric : str, Dissimilarity or callable, default "cosine"
        Each model's dissimilarity (see :mod:`pcoh.dissimilarity`). A plain callable
        ``fn(x) -> (N, N)`` is evaluated on the whole set at once (O(N^2) memory); names and
        Dissimilarity objects are computed a chunk of references at a time.
    chunk_size : int, optional
        References per chunk; default keeps about 4M compared points per chunk (16M for
        :func:`rnx_curve`, which keeps no ranks, only the two blocks of dissimilarities)."""


# ----------------------------------------------------------------------------- matrix
def coranking_matrix(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""The co-ranking matrix of a student against its teacher.

    .. math::

        Q_{k-1,\, l-1} = \big|\{(i, j),\ i \ne j : \rho^T_{ij} = k,\ \rho^S_{ij} = l\}\big|

    with :math:`\rho_{ij}` the rank (1 = nearest) of :math:`x_j` among the N - 1 other points
    seen from :math:`x_i`, ties broken by index (the smaller index ranks first). Rows are teacher
    ranks, columns student ranks: the diagonal holds the pairs whose rank the student keeps, the
    lower triangle (:math:`l < k`) the intrusions (points the student brings closer than the
    teacher), the upper triangle (:math:`l > k`) the extrusions (points it pushes away). Every
    row and every column sums to N.

    Parameters
    ----------%(args)s

    Returns
    -------
    numpy.ndarray of int64, shape (N - 1, N - 1)
        O(N^2) memory: for large N use :func:`rnx_curve`, which never builds it.
    """
    n, parts = _pair_ranks(student, teacher, student_metric, teacher_metric, chunk_size)
    q = np.zeros((n - 1) * (n - 1), dtype=np.int64)
    for _, _, rt, rs in parts:
        flat = (rt.astype(np.int64).ravel() - 1) * (n - 1) + (rs.ravel() - 1)
        q += np.bincount(flat, minlength=q.size)
    return q.reshape(n - 1, n - 1)


# ----------------------------------------------------------------------------- curve
def rnx_area(r_nx) -> float:
    r"""Area under an :math:`R_{NX}` curve on a log scale: :math:`\sum_K R_{NX}(K)/K \,/\, \sum_K 1/K`.

    Parameters
    ----------
    r_nx : array-like, shape (N - 2,)
        :math:`R_{NX}(K)` for K = 1, 2, ..., as :attr:`RNXCurve.r_nx` (e.g. a curve stored earlier).

    Returns
    -------
    float
    """
    r = as_array(r_nx, "r_nx", ndim=1)  # TypeError for non-numbers, ValueError for NaN, Inf or a wrong shape
    if r.size < 1:
        raise ValueError("r_nx must be a non-empty 1-D array of R_NX(K) for K = 1, 2, ..., got an empty one")
    w = 1.0 / np.arange(1, r.size + 1)
    return float((r * w).sum() / w.sum())


@dataclass(frozen=True)
class RNXCurve:
    r"""What :func:`rnx_curve` returns: the quality curves of one student at every K.

    Attributes
    ----------
    k : numpy.ndarray of int64, shape (N - 2,)
        Neighbourhood sizes 1..N-2.
    q_nx : numpy.ndarray, shape (N - 2,)
        :math:`Q_{NX}(K)`, in [0, 1].
    r_nx : numpy.ndarray, shape (N - 2,)
        :math:`R_{NX}(K)`: 1 for a student that keeps every K-neighbourhood, 0 in expectation for
        a random one, negative for one worse than random.
    n : int
        Number of points N.
    """

    k: np.ndarray
    q_nx: np.ndarray
    r_nx: np.ndarray
    n: int

    @property
    def auc(self) -> float:
        r"""Area under :math:`R_{NX}` on a log scale (:func:`rnx_area`)."""
        return rnx_area(self.r_nx)


def rnx_curve(
    student,
    teacher,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
) -> RNXCurve:
    r""":math:`Q_{NX}(K)` and :math:`R_{NX}(K)` for every K = 1..N-2, without the co-ranking matrix.

    .. math::

        Q_{NX}(K) = \frac{|\{(i, j) : \max(\rho^T_{ij}, \rho^S_{ij}) \le K\}|}{K N}, \qquad
        R_{NX}(K) = \frac{(N - 1)\, Q_{NX}(K) - K}{N - 1 - K}

    (the sum of the co-ranking matrix over :math:`k, l \le K`, counted as a histogram of the
    larger of the two ranks of each pair). Ties broken by index, as :func:`coranking_matrix`.

    Parameters
    ----------%(args)s

    Returns
    -------
    RNXCurve
        ``k``, ``q_nx``, ``r_nx`` (each (N - 2,)), ``n``, and the area ``auc``.
    """
    # No ranks are kept, only the two blocks of dissimilarities: the coherence measures' chunk.
    n, chunk, rows_s, rows_t = _chunked_rows(student, teacher, student_metric, teacher_metric, chunk_size,
                                             CHUNK_ELEMENTS)
    blocks = max(1, numba.get_num_threads())
    counts = np.zeros((blocks, n), dtype=np.int64)
    for lo, hi in chunks(n, chunk):
        # The rows as computed: each reference's own column is left out by the kernel.
        dt = np.ascontiguousarray(rows_t.block(lo, hi).numpy())
        ds = np.ascontiguousarray(rows_s.block(lo, hi).numpy())
        parallel = blocks > 1 and dt.size >= _PARALLEL_MIN_ELEMENTS
        kernel = _larger_rank_counts_parallel if parallel else _larger_rank_counts_serial
        kernel(dt, ds, lo, counts if parallel else counts[:1])
    hist = counts.sum(axis=0)
    k = np.arange(1, n - 1, dtype=np.int64)
    q_nx = np.cumsum(hist)[1:n - 1] / (k * float(n))
    r_nx = ((n - 1) * q_nx - k) / (n - 1 - k)
    return RNXCurve(k=k, q_nx=q_nx, r_nx=r_nx, n=n)


def rnx_auc(student, teacher, **kwargs) -> float:
    r"""Area under :math:`R_{NX}(K)` on a log scale, one number in [-1, 1] (1: every rank kept).

    .. math::

        \mathrm{AUC} = \frac{\sum_{K=1}^{N-2} R_{NX}(K) / K}{\sum_{K=1}^{N-2} 1 / K}

    Same arguments as :func:`rnx_curve`; ``rnx_curve(...).auc`` gives the same number.
    """
    return rnx_curve(student, teacher, **kwargs).auc


# ----------------------------------------------------------------------------- per point
def qnx_per_point(
    student,
    teacher,
    *,
    k,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""For each point, the fraction of its K nearest teacher neighbours the student keeps among its K nearest.

    .. math::

        q_i(K) = \frac{|N^T_K(x_i) \cap N^S_K(x_i)|}{K}, \qquad \frac1N \sum_i q_i(K) = Q_{NX}(K)

    Neighbourhoods exclude the point itself; ties broken by index (as :func:`coranking_matrix`,
    so ``k=K`` gives :func:`pcoh.coherence.neighbor_overlap` with ``k=K``).

    Parameters
    ----------
    k : int or sequence of int
        Neighbourhood size(s), each in [1, N - 1]. A sequence (e.g. ``range(1, N - 1)`` for a
        slider over K) is computed in one pass.%(args)s

    Returns
    -------
    numpy.ndarray
        Shape (N,) for an int ``k``, (len(k), N) for a sequence; values in [0, 1].
    """
    s, _ = check_pair(student, teacher, min_samples=4)
    n = s.shape[0]
    scalar = not isinstance(k, (list, tuple, range, np.ndarray))
    ks = [k] if scalar else list(np.asarray(k).ravel()) if isinstance(k, np.ndarray) else list(k)
    if not ks:
        raise ValueError("k must be an int or a non-empty sequence of ints in [1, N - 1], got an empty sequence")
    ks = np.array([check_int(v, "k", minimum=1, maximum=n - 1) for v in ks], dtype=np.int64)
    _, parts = _pair_ranks(student, teacher, student_metric, teacher_metric, chunk_size)
    out = np.empty((len(ks), n))
    for lo, hi, rt, rs in parts:
        # Per reference: how many pairs have their larger rank at most K, for every K at once.
        larger = np.sort(np.maximum(rt, rs), axis=1)
        counts = np.stack([np.searchsorted(row, ks, side="right") for row in larger], axis=1)
        out[:, lo:hi] = counts / ks[:, None]
    return out[0] if scalar else out


for _fn in (coranking_matrix, rnx_curve, qnx_per_point):
    _fn.__doc__ = _fn.__doc__.replace("%(args)s", _ARGS_DOC)
