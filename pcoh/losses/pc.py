"""The perception-coherence loss: per-reference Spearman correlation of soft student ranks against hard teacher ranks.

:class:`PerceptionCoherenceLoss` with its feature queue and its neighbourhood emphasis
(``focus``); :func:`_pc_correlations` is the per-reference correlation behind it.
"""
from __future__ import annotations

import math
import warnings

import torch

from .._checks import check_choice, check_float, check_positive
from ..distributed import world_size
from ..dissimilarity import Dissimilarity, MetricLike, get_metric, pairwise
from ..ranking import rank, soft_rank
from . import _pc_cpu
from .base import TransferLoss, _check_dim, _check_indices, off_diagonal


def _exclude_self(matrix: torch.Tensor, offset: int) -> torch.Tensor:
    """Drop column ``offset + i`` from row ``i`` of ``matrix`` (n, M): (n, M - 1).

    The columns of a row are not kept in their original order (the block of the references
    first, then the columns before and after it); ranks and correlations do not depend on the
    order, as long as the student's and the teacher's matrices are cut the same way.
    """
    n, m = matrix.shape
    block = off_diagonal(matrix[:, offset:offset + n])
    if m == n:
        return block
    return torch.cat([block, matrix[:, :offset], matrix[:, offset + n:]], dim=1)


def _cross_dissimilarities(ref: torch.Tensor, compared: torch.Tensor, metric, offset) -> torch.Tensor:
    """(n, M) dissimilarities of the reference rows to the compared rows (validated inputs).

    Built-in metrics compute only the (n, M) block, without the diagonal corrections of
    :func:`pcoh.dissimilarity.pairwise` (the self-pairs are cut away anyway). A plain callable
    ``fn(x) -> (M, M)`` is evaluated on the compared set (with the references prepended when
    they are not part of it) and its rows of the references kept.
    """
    fn = get_metric(metric)
    if isinstance(fn, Dissimilarity):
        return fn.matrix(ref, compared)
    n = ref.shape[0]
    if offset is not None:
        return pairwise(compared, fn)[offset:offset + n]
    return pairwise(torch.cat([ref, compared.to(ref.dtype)]), fn)[:n, n:]


def _pc_correlations(
    student_ref: torch.Tensor,
    teacher_ref: torch.Tensor,
    student_compared: torch.Tensor,
    teacher_compared: torch.Tensor,
    self_offset: int | None,
    *,
    student_metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    regularization_strength: float,
    focus: float = 0.0,
    focus_kind: str = "exp",
    focus_fraction: float = 0.1,
    focus_symmetric: bool = False,
) -> torch.Tensor:
    r"""Per-reference correlation of the PC loss: soft student ranks against hard teacher ranks.

    Reference ``i`` (row ``i`` of ``*_ref``) is compared with every row of ``*_compared``
    except its own, at row ``self_offset + i`` (none excluded when ``self_offset`` is None).
    With :math:`m` the size of that compared set and :math:`s_m = \sqrt{(m^2 - 1) / 12}` the
    standard deviation of the ranks :math:`1..m`:

    .. math::

        c_i = \operatorname{corr}\big(\operatorname{softrank}_\varepsilon(s_m\, z(\delta_S(x_i, \cdot))),\;
              \operatorname{rank}(\delta_T(x_i, \cdot))\big)

    With ``focus > 0`` the correlation is the weighted Pearson correlation :math:`\operatorname{corr}_w`
    under per-row weights :math:`w_{ij} \propto g(u^T_{ij})` on the teacher's probabilistic ranks
    :math:`u^T_{ij} = (r^T_i(j) - 1/2) / m` (see :func:`_focus_weights` and
    :class:`PerceptionCoherenceLoss`); ``focus = 0`` is the plain, unweighted correlation.

    The function behind :class:`PerceptionCoherenceLoss` (batch, or batch + feature queue) and
    reusable wherever local references are ranked against a larger set (a gathered global batch).

    Parameters
    ----------
    student_ref, teacher_ref : torch.Tensor, shapes (n, d_S) and (n, d_T)
        Features of the references; gradients flow through ``student_ref``.
    student_compared, teacher_compared : torch.Tensor, shapes (M, d_S) and (M, d_T)
        Features of the compared set; rows ``self_offset .. self_offset + n - 1`` are the
        references themselves when ``self_offset`` is an int (then pass the same tensors, so
        that the gradient reaches both roles).
    self_offset : int or None
        Row of reference 0 in the compared set.
    student_metric, teacher_metric : str or callable
        As :class:`PerceptionCoherenceLoss`.
    regularization_strength : float
        :math:`\varepsilon`, relative to the spread of the ranks.
    focus, focus_kind, focus_fraction, focus_symmetric
        The neighbourhood emphasis, as :class:`PerceptionCoherenceLoss` (validated there).

    Returns
    -------
    torch.Tensor, shape (n,)
        :math:`c_i \in [-1, 1]`, in the student's dtype; 0 for a reference whose student
        dissimilarities are all equal.
    """
    d_s = _cross_dissimilarities(student_ref, student_compared, student_metric, self_offset)
    with torch.no_grad():
        d_t = _cross_dissimilarities(teacher_ref, teacher_compared, teacher_metric, self_offset)
    if not focus and _pc_cpu.supported(d_s, d_t):  # one compiled sweep per row, analytic backward
        return _pc_cpu.pc_correlations_cpu(d_s, d_t, self_offset, regularization_strength)
    with torch.no_grad():
        if self_offset is not None:
            d_t = _exclude_self(d_t, self_offset)
        m = d_t.shape[1]
        # Average ranks always sum to m (m + 1) / 2, ties or not: centre by the known mean.
        target = rank(d_t).to(d_s.dtype).sub_(0.5 * (m + 1))  # in place: a fresh tensor, no grad
        tiny = torch.finfo(d_s.dtype).eps
        target_norm = torch.linalg.vector_norm(target, dim=1).clamp_min(tiny)
    if self_offset is not None:
        d_s = _exclude_self(d_s, self_offset)
    var, mean = torch.var_mean(d_s, dim=1, correction=0, keepdim=True)
    # A reference whose student dissimilarities are all equal has nothing to standardise: its
    # row becomes 0 (correlation 0). rsqrt is only taken where it is safe, so no NaN flows back.
    ok = var > tiny * tiny
    spread = math.sqrt((m * m - 1) / 12.0)
    scale = torch.where(ok, spread * torch.where(ok, var, torch.ones_like(var)).rsqrt(), torch.zeros_like(var))
    # (d - mean) * scale in one pass: z-standardised row, stretched to the spread of the ranks.
    z = torch.addcmul(-mean * scale, d_s, scale)
    if focus:
        corr = _weighted_correlations(z, d_s, target, m, tiny, regularization_strength,
                                      focus, focus_kind, focus_fraction, focus_symmetric)
        return torch.where(ok.squeeze(1), corr, torch.zeros_like(corr))
    centred = soft_rank(z, regularization_strength) - 0.5 * (m + 1)  # soft ranks also sum to m (m + 1) / 2
    norm = torch.linalg.vector_norm(centred, dim=1).clamp_min(tiny) * target_norm
    corr = torch.linalg.vecdot(centred, target, dim=1) / norm
    return torch.where(ok.squeeze(1), corr, torch.zeros_like(corr))


#: Accepted ``focus_kind`` values of :class:`PerceptionCoherenceLoss`: the weight family g.
FOCUS_KINDS = ("exp", "top")


def _rank_weight(u: torch.Tensor, focus: float, kind: str, fraction: float, lowest: float = 0.0) -> torch.Tensor:
    r"""The weight family :math:`g(u)` of probabilistic ranks ``u`` (any shape), up to a factor.

    ``"exp"``: :math:`g(u) = e^{-\kappa u}`, computed as :math:`e^{-\kappa (u - u_0)}` with
    :math:`u_0` = ``lowest`` the smallest possible ``u`` (a constant factor, which the per-row
    normalisation removes, and which keeps the nearest point's weight at 1 so that no row
    underflows to 0 at a large :math:`\kappa`); ``"top"``: :math:`g(u) = 1 + \kappa\,[u \le q]`,
    :math:`\kappa` = ``focus``, :math:`q` = ``fraction``. Both are constant at :math:`\kappa = 0`.
    """
    if kind == "exp":
        return torch.exp((u - lowest) * -focus)
    return 1.0 + focus * (u <= fraction).to(u.dtype)


@torch.no_grad()
def _focus_weights(target, d_s, m: int, focus: float, kind: str, fraction: float, symmetric: bool) -> torch.Tensor:
    """(n, m) row weights, each row summing to 1: :func:`_rank_weight` of the teacher's probabilistic ranks
    ``u = (r - 1/2) / m``, from the centred teacher ranks ``target`` (= r - (m + 1) / 2);
    ``symmetric``: the mean of that and :func:`_rank_weight` of the student's hard ranks of ``d_s``.
    No gradient: the weights are functions of ranks only."""
    lowest = 0.5 / m  # u of rank 1; the same factor on both sides keeps their average exact
    w = _rank_weight(target / m + 0.5, focus, kind, fraction, lowest)
    if symmetric:
        u_s = rank(d_s.detach()).to(target.dtype).sub_(0.5).div_(m)
        w = w.add_(_rank_weight(u_s, focus, kind, fraction, lowest)).mul_(0.5)
    return w.div_(w.sum(dim=1, keepdim=True))


def _weighted_correlations(z, d_s, target, m, tiny, strength, focus, kind, fraction, symmetric):
    """Weighted Pearson correlation per row of ``softrank(z)`` and the centred teacher ranks
    ``target``, under :func:`_focus_weights`.

    With ``sw = sqrt(w)``, the correlation is the cosine of ``sw * (a - a_w)`` and
    ``sw * (b - b_w)``, the rows centred by their weighted means; the teacher's side is computed
    once, without gradient.
    """
    w = _focus_weights(target, d_s, m, focus, kind, fraction, symmetric)
    with torch.no_grad():
        sw = w.sqrt()
        b = (target - torch.linalg.vecdot(w, target, dim=1).unsqueeze(1)).mul_(sw)
        b = b.div_(torch.linalg.vector_norm(b, dim=1, keepdim=True).clamp_min(tiny))
    soft = soft_rank(z, strength)
    a = (soft - torch.linalg.vecdot(soft, w, dim=1).unsqueeze(1)) * sw
    return torch.linalg.vecdot(a, b, dim=1) / torch.linalg.vector_norm(a, dim=1).clamp_min(tiny)


def _check_focus(focus, focus_kind, focus_fraction, focus_symmetric) -> tuple:
    """The neighbourhood-emphasis arguments of :class:`PerceptionCoherenceLoss`, checked."""
    focus = check_float(focus, "focus", minimum=0.0)
    if not isinstance(focus_kind, str):
        raise TypeError(f"focus_kind must be one of {list(FOCUS_KINDS)} (a string), got {type(focus_kind).__name__}")
    check_choice(focus_kind, "focus_kind", FOCUS_KINDS)
    focus_fraction = check_float(focus_fraction, "focus_fraction", minimum=0.0, maximum=1.0, strict=True)
    if not isinstance(focus_symmetric, bool):
        raise TypeError(f"focus_symmetric must be True or False, got {type(focus_symmetric).__name__}")
    return focus, focus_kind, focus_fraction, focus_symmetric


_QUEUE_BUFFERS = ("queue_student", "queue_teacher", "queue_index", "queue_ptr", "queue_count")


class PerceptionCoherenceLoss(TransferLoss):
    r"""Perception-coherence loss: the student ranks dissimilarities the way the teacher does.

    For a batch of n samples, each sample is the reference in turn and the other n - 1 are its
    compared set (``docs/method.md`` §3):

    .. math::

        L_{PC} = \frac1n \sum_i \Big[ 1 - \operatorname{corr}\big(
            \operatorname{softrank}_\varepsilon(s_m\, z(\delta_S(x_i, \cdot))),\;
            \operatorname{rank}(\delta_T(x_i, \cdot)) \big) \Big],
        \qquad s_m = \sqrt{(m^2 - 1) / 12},

    with :math:`z` the standardisation of a reference's row of student dissimilarities (so that
    the loss does not depend on the scale of the student's features), :math:`s_m` the standard
    deviation of the ranks :math:`1..m` of a compared set of size :math:`m` (so that
    :math:`\varepsilon` means the same at every batch size: the standardised row is put on the
    scale of the ranks it is compared with), hard average ranks on the teacher side (no
    gradient), and ``corr`` the Pearson correlation of the two centred rank vectors, i.e. a
    Spearman correlation. Self-pairs are excluded. The loss lies in :math:`[0, 2]`: 0 when, from
    every reference, the student's dissimilarities are a strictly increasing function of the
    teacher's (in the hard-rank limit), near 2 when the order is reversed. The two feature widths
    may differ; no projector is needed.

    Parameters
    ----------
    teacher_metric, student_metric : str or callable, default "cosine"
        Dissimilarity of each model on its own features: ``"cosine"``, ``"euclidean"``,
        ``"sqeuclidean"`` or a callable ``fn(x) -> (n, n)`` (see :mod:`pcoh.dissimilarity`).
    regularization_strength : float, default 1.0
        :math:`\varepsilon` of the soft rank, applied to the standardised rows scaled to the
        spread of the ranks. Small values approach the hard ranks; above about
        :math:`\max|z| / \sqrt3` (1 to 2 on typical rows, whatever the batch size) the soft rank
        is an affine function of :math:`z` and the strength stops mattering. Chosen from the
        study in ``benchmarks/study_strength.py`` (see the README).
    queue_size : int, default 0
        K, the number of past training samples whose teacher and student features are kept in a
        FIFO queue. Each batch sample is then a reference ranked against the batch *and* the
        queue (teacher ranks over the same set), which brings the batch ranks closer to the
        probabilistic ranks of the data distribution at cost :math:`O(n (n + K) \log(n + K))`.
        0 (default) uses the batch alone.
    num_samples : int, optional
        Size of the training set (a training loop passes it). When given, the queue holds at
        most ``num_samples`` entries (a warning says so if ``queue_size`` is larger): a longer
        queue would only hold several stale copies of the same samples.
    focus : float, default 0.0
        :math:`\kappa \ge 0`, the neighbourhood emphasis (ours, not the paper's; see Notes and
        ``docs/method.md``). 0 weighs every compared point alike: exactly the plain loss above,
        by the same code.
    focus_kind : {"exp", "top"}, default "exp"
        The weight family :math:`g` on the teacher's probabilistic rank :math:`u`:
        ``"exp"``, :math:`g(u) = e^{-\kappa u}`; ``"top"``, :math:`g(u) = 1 + \kappa\,[u \le q]`,
        i.e. (after normalisation) :math:`[u \le q] + \beta` with :math:`\beta = 1/\kappa`.
    focus_fraction : float, default 0.1
        :math:`q \in (0, 1)`, the neighbourhood fraction of ``"top"`` (unused by ``"exp"``).
    focus_symmetric : bool, default False
        Also weigh by the student's own (detached, hard) probabilistic ranks:
        :math:`w \propto (g(u^T) + g(u^S)) / 2`, which stresses the student's intruders (points
        the student puts near that the teacher puts far) as well as lost teacher neighbours.

    Notes
    -----
    Cost :math:`O(n^2 (d + \log n))` time and :math:`O(n^2)` memory: two (n, n) dissimilarity
    matrices, one sort per row, the PAV pass; nothing of size :math:`n^3` or :math:`n^2 d`.
    A reference whose student dissimilarities are all equal (a collapsed student) contributes
    ``1`` (correlation 0) instead of NaN.

    **Neighbourhood emphasis** (ours). Spearman's correlation weighs every rank displacement
    alike, and from each reference most compared points are far, so the few near neighbours
    (what kNN and top-k overlap read) carry little of the loss. With ``focus`` :math:`\kappa > 0`,
    compared point :math:`j` of reference :math:`i` gets the weight

    .. math::

        w_{ij} = \frac{g(u^T_{ij})}{\sum_k g(u^T_{ik})}, \qquad u^T_{ij} = \frac{r^T_i(j) - 1/2}{m},

    :math:`g` decreasing (``focus_kind``), on the teacher's probabilistic rank, so that one
    setting means the same neighbourhood fraction at any batch size or queue length; the
    correlation of the loss becomes the weighted Pearson correlation of the soft student ranks
    :math:`a` and the hard teacher ranks :math:`b`,

    .. math::

        \operatorname{corr}_w(a, b) = \frac{\sum_j w_j (a_j - \bar a_w)(b_j - \bar b_w)}
            {\sqrt{\sum_j w_j (a_j - \bar a_w)^2 \, \sum_j w_j (b_j - \bar b_w)^2}},
        \qquad \bar a_w = \sum_j w_j a_j .

    The weights carry no gradient. Teacher-rank weights cost a few elementwise (n, m) operations
    and no extra sort; ``focus_symmetric`` adds one hard rank of the student's row (a sort, in
    the forward pass only). The loss stays in [0, 2], invariant to rescaling the student's
    features, and works with the queue and under torchrun.

    **The queue.** Buffers ``queue_student`` (K, d_S), ``queue_teacher`` (K, d_T) (dtype and
    device of the features, allocated at the first training call), ``queue_index`` (K,) (the
    training-set positions of the queued samples, -1 when unknown), ``queue_ptr`` and
    ``queue_count`` are registered buffers: ``state_dict()`` holds them, and a checkpoint that
    saves it resumes exactly. The batch's features are enqueued (FIFO) after the loss is
    computed, and only in training mode (``loss.train()``, the default of a module); a batch
    larger than K keeps its last K samples. Queued features are detached: the gradient flows
    through the batch's student features only. The student features in the queue were computed
    by older weights of the student (as the key queue of MoCo, He et al. 2020): they are stale by
    up to K / n steps; with a small learning rate the drift is small, and the teacher's side,
    which sets the target ranks, is exact. When ``forward`` gets ``indices=`` (the batch's
    positions in the training set), a queued copy of a batch sample is dropped from the compared
    set of every reference: it is a stale duplicate of a sample already in the batch, and a sample
    is never compared with its own copy. Without ``indices`` only the self-pairs are excluded.
    With a queue, reading its fill level synchronises with the host once per step on a GPU.
    """

    uses = "features"
    relational = True
    min_samples = 3

    def __init__(
        self,
        teacher_metric: MetricLike = "cosine",
        student_metric: MetricLike = "cosine",
        regularization_strength: float = 1.0,
        queue_size: int = 0,
        num_samples: int | None = None,
        focus: float = 0.0,
        focus_kind: str = "exp",
        focus_fraction: float = 0.1,
        focus_symmetric: bool = False,
    ):
        super().__init__()
        self.focus, self.focus_kind, self.focus_fraction, self.focus_symmetric = _check_focus(
            focus, focus_kind, focus_fraction, focus_symmetric)
        self.teacher_metric = teacher_metric
        self.student_metric = student_metric
        self.regularization_strength = regularization_strength
        # Validate at construction too: a bad name should fail before any training starts.
        get_metric(teacher_metric, "teacher_metric")
        get_metric(student_metric, "student_metric")
        check_positive(regularization_strength, "regularization_strength")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int):
            raise TypeError(f"queue_size must be a non-negative int, got {type(queue_size).__name__}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be a non-negative int, got {queue_size}")
        if num_samples is not None:
            _check_dim(num_samples, "num_samples")
        self.queue_size = queue_size
        self.num_samples = num_samples
        self._capacity = queue_size if num_samples is None else min(queue_size, num_samples)
        if self._capacity < queue_size:
            warnings.warn(
                f"queue_size={queue_size} is larger than the training set (num_samples={num_samples}); "
                f"the queue holds {num_samples} samples",
                UserWarning,
                stacklevel=2,
            )
        if queue_size:
            # Shapes and dtype are those of the first batch's features (allocated on first use).
            self.register_buffer("queue_student", torch.zeros(0, 0))
            self.register_buffer("queue_teacher", torch.zeros(0, 0))
            self.register_buffer("queue_index", torch.zeros(0, dtype=torch.long))
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
            self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        out = (
            f"teacher_metric={self.teacher_metric!r}, student_metric={self.student_metric!r}, "
            f"regularization_strength={self.regularization_strength}"
        )
        out += f", queue_size={self.queue_size}" if self.queue_size else ""
        if self.focus:
            out += f", focus={self.focus}, focus_kind={self.focus_kind!r}"
            out += f", focus_fraction={self.focus_fraction}" if self.focus_kind == "top" else ""
            out += ", focus_symmetric=True" if self.focus_symmetric else ""
        return out

    def _options(self) -> dict:
        """Keyword arguments of :func:`_pc_correlations` that this loss's settings fix."""
        options = dict(student_metric=self.student_metric, teacher_metric=self.teacher_metric,
                       regularization_strength=self.regularization_strength)
        if self.focus:  # focus 0 takes _pc_correlations' unweighted path, with its defaults
            options.update(focus=self.focus, focus_kind=self.focus_kind, focus_fraction=self.focus_fraction,
                           focus_symmetric=self.focus_symmetric)
        return options

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor, indices=None) -> torch.Tensor:
        options = self._options()
        if not self.queue_size:
            corr = _pc_correlations(student, teacher, student, teacher, 0, **options)
            return (1.0 - corr).mean()
        indices = _check_indices(indices, student.shape[0])
        q_s, q_t = self._queued(student, teacher, indices)
        s_all = torch.cat([student, q_s.to(student.dtype)]) if q_s.shape[0] else student
        t_all = torch.cat([teacher, q_t.to(teacher.dtype)]) if q_t.shape[0] else teacher
        corr = _pc_correlations(student, teacher, s_all, t_all, 0, **options)
        if self.training:
            self._enqueue(student.detach(), teacher, indices)
        return (1.0 - corr).mean()

    def _own_references_loss(self, student_ref, teacher_ref, offset, student, teacher):
        # The cheap way under torchrun: O((n/N) n log n) per process. The mean over processes of
        # these means is the global loss (the shards are equal: the batch size divides by the
        # number of processes), and the gathered batch's backward sums every process's
        # contribution into each row. With a queue, the whole global batch is ranked instead
        # (every process then enqueues the same rows and the queues stay identical).
        if self.queue_size or student_ref.shape[0] * world_size() != student.shape[0]:
            return None
        corr = _pc_correlations(student_ref, teacher_ref, student, teacher, offset, **self._options())
        return (1.0 - corr).mean()

    def _queued(self, student, teacher, indices):
        """The valid queue entries (student, teacher), without copies of the batch's samples."""
        count = int(self.queue_count)
        if count == 0:
            return student.new_zeros(0, student.shape[1]), teacher.new_zeros(0, teacher.shape[1])
        for name, x, q in (("student", student, self.queue_student), ("teacher", teacher, self.queue_teacher)):
            if x.shape[1] != q.shape[1]:
                raise ValueError(
                    f"{name} features have width {x.shape[1]}, but the queue holds features of width {q.shape[1]}"
                )
        q_s, q_t = self.queue_student[:count], self.queue_teacher[:count]
        if indices is not None:
            keep = ~torch.isin(self.queue_index[:count], indices.to(self.queue_index.device))
            q_s, q_t = q_s[keep], q_t[keep]
        return q_s.to(student.device), q_t.to(teacher.device)

    @torch.no_grad()
    def _enqueue(self, student, teacher, indices) -> None:
        cap = self._capacity
        if self.queue_student.shape != (cap, student.shape[1]) or self.queue_teacher.shape != (cap, teacher.shape[1]):
            # First training call (or a queue never filled): allocate in the features' dtype/device.
            self.queue_student = student.new_zeros(cap, student.shape[1])
            self.queue_teacher = teacher.new_zeros(cap, teacher.shape[1])
            self.queue_index = torch.full((cap,), -1, dtype=torch.long, device=student.device)
            self.queue_ptr = self.queue_ptr.to(student.device).zero_()
            self.queue_count = self.queue_count.to(student.device).zero_()
        n = student.shape[0]
        if n > cap:  # only the last cap samples of the batch fit
            student, teacher, n = student[-cap:], teacher[-cap:], cap
            indices = indices[-cap:] if indices is not None else None
        ptr = int(self.queue_ptr)
        pos = (torch.arange(n, device=self.queue_student.device) + ptr) % cap
        self.queue_student[pos] = student.to(self.queue_student.dtype)
        self.queue_teacher[pos] = teacher.to(self.queue_teacher.device, self.queue_teacher.dtype)
        self.queue_index[pos] = -1 if indices is None else indices.to(self.queue_index.device, torch.long)
        self.queue_ptr.fill_((ptr + n) % cap)
        self.queue_count.fill_(min(int(self.queue_count) + n, cap))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The queue's shapes and dtype are set by the features of the run that saved it: take
        # them from the checkpoint before the values are copied in.
        for name in _QUEUE_BUFFERS[:3]:
            key = prefix + name
            if self.queue_size and key in state_dict:
                saved = state_dict[key]
                if saved.shape[0] not in (0, self._capacity):
                    raise ValueError(
                        f"the checkpoint's {name} holds {saved.shape[0]} entries, but this loss keeps a queue of "
                        f"{self._capacity} (queue_size={self.queue_size})"
                    )
                self._buffers[name] = torch.empty_like(saved, device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

