r"""Transfer losses behind one interface: perception coherence and the distillation baselines.

Every loss is a :class:`TransferLoss` (an ``nn.Module``) called the same way,
``loss(student, teacher) -> scalar``, where ``student`` and ``teacher`` are either feature
tensors of shape (n, d_S) and (n, d_T), or model outputs with ``features`` and ``logits``
attributes (:class:`pcoh.models.ModelOutput`); each loss picks what it uses (``uses``). The
teacher side never receives a gradient. Losses are looked up by name with :func:`get`, so a
training loop swaps methods without special cases.

============  ==============================================  =====================  ==================
name          loss                                            paper                  default weight
============  ==============================================  =====================  ==================
``"pc"``      perception coherence, docs/method.md §3         this project           1
``"fitnet"``  MSE of a learned linear regressor (hint)        Romero et al. 2015     100
``"rkd"``     relational KD: distance + angle, smooth L1      Park et al. 2019       1 (w_d 25, w_a 50)
``"pkt"``     KL of cosine-similarity conditional probs       Passalis & Tefas 2018  30000
``"sp"``      similarity preserving: row-normalised Grams     Tung & Mori 2019       3000
``"cc"``      correlation congruence, Gaussian-kernel Taylor  Peng et al. 2019       0.02
``"kd"``      KL of temperature-T softmax logits (T = 4)      Hinton et al. 2015     0.9 (CE 0.1)
``"crd"``     NCE contrast against a memory of every sample   Tian et al. 2020       0.8
============  ==============================================  =====================  ==================

The default weight is the multiplier of the loss in the class-aware objective
``ce_weight * CE + weight * loss``; ``ce_weight`` is 1 except for KD (0.1). Weights are those of
the CIFAR-100 distillation benchmark of Tian et al. 2020 (CRD / RepDistiller). The baselines act on
pooled penultimate features (``uses = "features"``) except KD (logits); the differences from
the reference implementations are listed in each class's Notes.
"""
from __future__ import annotations

import inspect
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as _distributed
from ._checks import check_choice, check_float
from .dissimilarity import Dissimilarity, MetricLike, check_features, get_metric, pairwise
from .ranking import rank, soft_rank

__all__ = [
    "TransferLoss",
    "PerceptionCoherenceLoss",
    "FitNetLoss",
    "RKDLoss",
    "PKTLoss",
    "SPLoss",
    "CCLoss",
    "KDLoss",
    "CRDLoss",
    "LOSSES",
    "get",
    "available",
    "off_diagonal",
]


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The (n, n - 1) matrix of ``matrix`` (n, n) without its diagonal, rows kept in order.

    Row ``i`` holds ``matrix[i, j]`` for ``j != i`` in increasing ``j``. A view-based reshape
    (no mask, no copy of an index tensor), so it is cheap and differentiable.
    """
    n = matrix.shape[0]
    return matrix.flatten()[1:].view(n - 1, n + 1)[:, :-1].reshape(n, n - 1)


def _select(output, uses: str, argument: str) -> torch.Tensor:
    """Pick ``features`` or ``logits`` from a model output, or take a plain tensor as it is."""
    if isinstance(output, torch.Tensor):
        return output
    try:
        return getattr(output, uses)
    except AttributeError:
        raise TypeError(
            f"{argument} must be a tensor or a model output with a '{uses}' attribute, "
            f"got {type(output).__name__}"
        ) from None


def _check_batch(student: torch.Tensor, teacher: torch.Tensor, min_samples: int = 3) -> None:
    for name, x in (("student", student), ("teacher", teacher)):
        check_features(x, name)
        if x.shape[0] < min_samples:
            raise ValueError(f"{name} must hold at least {min_samples} samples, got {x.shape[0]}")
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student and teacher must have the same number of samples, got {student.shape[0]} and {teacher.shape[0]}"
        )


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


class TransferLoss(nn.Module):
    """Base of every transfer loss: one call, ``loss(student, teacher, *, indices=None) -> scalar``.

    Subclasses set ``uses`` (``"features"`` or ``"logits"``), ``default_weight``, and implement
    ``_loss(student, teacher)`` on validated 2-D tensors (the teacher already detached). A
    subclass whose ``_loss`` has an ``indices`` keyword receives the batch's positions in the
    training set (``indices=``, a LongTensor (n,) or None); the others never see them.

    Attributes
    ----------
    uses : str
        ``"features"`` (pooled penultimate features) or ``"logits"``.
    default_weight : float
        Multiplier in the class-aware objective ``CE + weight * loss``.
    class_aware_only : bool
        True for losses that need the label space (KD): they are never used class-unaware.
    min_samples : int
        Smallest batch the loss is defined on.
    ce_weight : float
        Multiplier of the cross-entropy term in the class-aware objective (1; 0.1 for KD).
    needs_indices : bool
        True for losses that need the batch samples' positions in the training set
        (``indices=``, CRD's memory); the others ignore ``indices``.
    relational : bool
        True for losses that compare samples with each other (PC, RKD, PKT, SP, CC): in a
        process group of several processes (``torchrun``), ``forward`` gathers the global
        batch first (student features with gradient), so the loss does not depend on the
        number of processes (:mod:`pcoh.distributed`).
    """

    uses = "features"
    default_weight = 1.0
    ce_weight = 1.0
    class_aware_only = False
    min_samples = 2
    needs_indices = False
    relational = False
    _takes_indices = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Decided once per class, so forward() stays free of introspection.
        cls._takes_indices = "indices" in inspect.signature(cls._loss).parameters

    def forward(self, student, teacher, *, indices=None) -> torch.Tensor:
        s = _select(student, self.uses, "student")
        t = _select(teacher, self.uses, "teacher")
        refs, offset = (s, t), None
        if self.relational:
            s, t, indices, offset = _global_batch(s, t, indices)
        _check_batch(s, t, self.min_samples)
        loss = None
        if offset is not None:  # several processes: this one's references against the global batch
            loss = self._own_references_loss(refs[0], refs[1].detach(), offset, s, t.detach())
        if loss is None:
            loss = self._loss(s, t.detach(), indices=indices) if self._takes_indices else self._loss(s, t.detach())
        return _poisoned(loss, s, t)

    def _own_references_loss(self, student_ref, teacher_ref, offset: int, student, teacher):
        """Under torchrun, the loss of this process's references (rows ``offset ..`` of the
        gathered ``student``/``teacher``) against the whole global batch, such that the mean over
        processes is the loss of the global batch; ``None`` (the default) computes the loss of the
        whole global batch on every process instead."""
        return None

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def _global_batch(student: torch.Tensor, teacher: torch.Tensor, indices):
    """The global batch under torchrun (every process's rows, in rank order): student rows with
    gradient, teacher rows and indices without (see :mod:`pcoh.distributed`), and the row of this
    process's first sample in it; as given, with offset ``None``, in one process."""
    if not _distributed.is_distributed():
        return student, teacher, indices, None
    sizes = _distributed.shard_sizes(student)
    student = _distributed.gather_with_grad(student, sizes)
    teacher = _distributed.gather_no_grad(teacher, sizes)
    indices = _distributed.gather_no_grad(indices, sizes) if indices is not None else None
    return student, teacher, indices, sum(sizes[:_distributed.rank()])


def _poisoned(loss: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``loss`` on the CPU (its inputs were checked finite); on an accelerator, ``loss`` made NaN
    when a feature is NaN or infinite, without a host round trip: the training loop then reports
    the divergence at the end of the epoch, where it reads the loss once."""
    if student.device.type == "cpu":
        return loss
    return loss + 0.0 * (student.detach().sum() + teacher.detach().sum()).to(loss.dtype)


def _check_indices(indices, n: int):
    """``indices`` as given (a 1-D integer tensor of length n), or None."""
    if indices is None:
        return None
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"indices must be a 1-D integer torch.Tensor or None, got {type(indices).__name__}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got dtype {indices.dtype}")
    if tuple(indices.shape) != (n,):
        raise ValueError(f"indices must have shape (n,) = ({n},), one per sample of the batch, got {tuple(indices.shape)}")
    return indices


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
    :class:`PerceptionCoherenceLoss`); ``focus = 0`` is the plain correlation, computed by the
    same code as before the weights existed.

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


def _g(u: torch.Tensor, focus: float, kind: str, fraction: float, lowest: float = 0.0) -> torch.Tensor:
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
    """(n, m) row weights, each row summing to 1: :func:`_g` of the teacher's probabilistic ranks
    ``u = (r - 1/2) / m``, from the centred teacher ranks ``target`` (= r - (m + 1) / 2);
    ``symmetric``: the mean of that and :func:`_g` of the student's hard ranks of ``d_s``.
    No gradient: the weights are functions of ranks only."""
    lowest = 0.5 / m  # u of rank 1; the same factor on both sides keeps their average exact
    w = _g(target / m + 0.5, focus, kind, fraction, lowest)
    if symmetric:
        u_s = rank(d_s.detach()).to(target.dtype).sub_(0.5).div_(m)
        w = w.add_(_g(u_s, focus, kind, fraction, lowest)).mul_(0.5)
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
        _check_positive(regularization_strength, "regularization_strength")
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
        if self.queue_size or student_ref.shape[0] * _distributed.world_size() != student.shape[0]:
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


LOSSES: dict[str, type[TransferLoss]] = {
    "pc": PerceptionCoherenceLoss,
}


def available() -> list[str]:
    """Names of the registered transfer losses, sorted."""
    return sorted(LOSSES)


def get(name, **kwargs) -> TransferLoss:
    """Build a transfer loss by name, or return a :class:`TransferLoss` given as it is.

    Parameters
    ----------
    name : str or TransferLoss
        One of :func:`available` (e.g. ``"pc"``, ``"rkd"``), or a loss instance.
    **kwargs
        Constructor arguments. ``student_dim`` and ``teacher_dim`` (feature widths) and
        ``num_samples`` (training-set size) are passed only to losses whose constructor takes
        them (FitNet's regressor, CRD's embeddings and memory, the PC loss's queue), so a training
        loop can always pass them.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the registered names.
    """
    if isinstance(name, TransferLoss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be a loss name {available()} or a TransferLoss, got {type(name).__name__}")
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {available()}") from None
    accepted = inspect.signature(cls.__init__).parameters
    for optional in ("student_dim", "teacher_dim", "num_samples"):
        if optional in kwargs and optional not in accepted:
            kwargs.pop(optional)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Distillation baselines, defined as in their papers and as the CIFAR-100 distillation benchmark
# of Tian et al. 2020 (CRD / RepDistiller) sets them, on pooled penultimate features (KD: logits).
# ---------------------------------------------------------------------------------------------

_NORM_EPS = 1e-12  # eps of F.normalize, as in the reference implementations


def _check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a non-negative number, got {type(value).__name__}")
    if not (value >= 0 and value < float("inf")):
        raise ValueError(f"{name} must be a non-negative finite number, got {value}")
    return float(value)


def _check_dim(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _normalize_rows(x: torch.Tensor, eps: float = _NORM_EPS, additive: bool = False) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm; an all-zero row stays zero, with zero gradient.

    ``additive=False`` is ``F.normalize`` (``x / max(||x||, eps)``), ``additive=True`` is PKT's
    ``x / (||x|| + eps)``. Values equal the reference's everywhere; only at an exactly zero row
    is the gradient taken as 0 instead of the reference's ``1 / eps``-scaled one.
    """
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    denom = norm + eps if additive else norm.clamp_min(eps)
    return torch.where(norm > 0, x / denom, torch.zeros_like(x))


class FitNetLoss(TransferLoss):
    r"""FitNet hint loss (Romero et al. 2015): a learned regressor maps student to teacher features.

    .. math::

        L_{FitNet} = \frac{1}{n\, d_T} \sum_{i=1}^{n} \big\| W f^S_i + b - f^T_i \big\|_2^2

    with :math:`W \in \mathbb{R}^{d_T \times d_S}, b` the parameters of the submodule
    ``regressor`` (``nn.Linear(student_dim, teacher_dim)``); they are in ``loss.parameters()``
    and must be given to the optimiser together with the student's.

    Parameters
    ----------
    student_dim, teacher_dim : int
        Feature widths :math:`d_S` and :math:`d_T` of the student (n, d_S) and teacher (n, d_T).

    Notes
    -----
    The benchmark's hint (``HintLoss`` = ``nn.MSELoss``, weight 100) regresses an intermediate
    feature map through a convolutional regressor (conv + BN + ReLU); here the hint is the pooled
    penultimate feature and the regressor is linear, as for every other baseline of this module.
    """

    uses = "features"
    default_weight = 100.0

    def __init__(self, student_dim: int, teacher_dim: int):
        super().__init__()
        self.student_dim = _check_dim(student_dim, "student_dim")
        self.teacher_dim = _check_dim(teacher_dim, "teacher_dim")
        self.regressor = nn.Linear(self.student_dim, self.teacher_dim)

    def extra_repr(self) -> str:
        return f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}"

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape[1] != self.student_dim or teacher.shape[1] != self.teacher_dim:
            raise ValueError(
                f"FitNetLoss expects student width student_dim={self.student_dim} and teacher width "
                f"teacher_dim={self.teacher_dim}, got {student.shape[1]} and {teacher.shape[1]}"
            )
        return F.mse_loss(self.regressor(student), teacher.to(student.dtype))


class RKDLoss(TransferLoss):
    r"""Relational knowledge distillation (Park et al. 2019): distance and angle terms.

    With :math:`D_{ij} = \|x_i - x_j\|`, :math:`\mu = \frac{1}{n(n-1)} \sum_{i \ne j} D_{ij}` the
    mean distance over the off-diagonal pairs, and :math:`e_{ij} = (x_i - x_j) / \|x_i - x_j\|`
    (0 when :math:`x_i = x_j`),

    .. math::

        L_{RKD} = w_d \, \frac{1}{n^2} \sum_{i,j} \ell_\delta\!\Big(\frac{D^S_{ij}}{\mu^S},
            \frac{D^T_{ij}}{\mu^T}\Big)
        + w_a \, \frac{1}{n^3} \sum_{j,i,k} \ell_\delta\big(\langle e^S_{ij}, e^S_{kj}\rangle,
            \langle e^T_{ij}, e^T_{kj}\rangle\big)

    with :math:`\ell_\delta` the smooth L1 (Huber, :math:`\delta = 1`) loss. Sums run over all
    entries, the diagonal and the degenerate triples (cosine 0) included, as in the reference.

    Parameters
    ----------
    distance_weight : float, default 25
        :math:`w_d`, weight of the distance term.
    angle_weight : float, default 50
        :math:`w_a`, weight of the angle term.

    Notes
    -----
    The angle tensor (n, n, n) is built from the Gram matrix :math:`G = X X^\top` of the
    batch-centred features (angles do not change under translation; centring limits rounding):

    .. math::

        \langle x_i - x_j, x_k - x_j \rangle = G_{ik} - G_{ij} - G_{jk} + G_{jj},

    divided by :math:`D_{ij} D_{kj}`. The reference materialises the (n, n, d) differences and an
    (n, n, n) product; this needs :math:`O(n^2 d)` time for the Gram matrix and :math:`O(n^3)`
    memory, with no factor :math:`d`. Coincident pairs (:math:`i = j`, duplicated rows, or a
    squared distance within rounding of zero, :math:`D_{ij}^2 \le 4\sqrt{d}\,\epsilon\,
    (G_{ii} + G_{jj})`) get cosine 0 as with the reference's ``F.normalize`` of a zero vector;
    their gradient is 0 (the reference's is ``1/eps``-scaled). Cosines are clamped to [-1, 1]
    against rounding. The reference divides by the mean of the positive entries of its distance
    matrix, but it clamps squared distances at :math:`10^{-12}` before the square root, so every
    off-diagonal pair (duplicates included, at :math:`10^{-6}`) is positive and counted: that is
    the off-diagonal mean above, the paper's :math:`\mu`. A fully collapsed batch (:math:`\mu = 0`)
    is left undivided (all distances 0) instead of the reference's division by
    :math:`10^{-6}`. Benchmark: pooled penultimate features, weight 1 with :math:`w_d = 25, w_a = 50`.
    """

    uses = "features"
    relational = True
    default_weight = 1.0

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0):
        super().__init__()
        self.distance_weight = _check_nonnegative(distance_weight, "distance_weight")
        self.angle_weight = _check_nonnegative(angle_weight, "angle_weight")

    def extra_repr(self) -> str:
        return f"distance_weight={self.distance_weight}, angle_weight={self.angle_weight}"

    @staticmethod
    def _normalized_distances(dist: torch.Tensor) -> torch.Tensor:
        """``dist`` (zero diagonal) divided by its off-diagonal mean (left as it is if that is 0)."""
        n = dist.shape[0]
        mean = dist.sum() / (n * (n - 1))
        return dist / torch.where(mean > 0, mean, torch.ones_like(mean))

    @staticmethod
    def _angles(x: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """(n, n, n) tensor ``A[j, i, k] = <e_ij, e_kj>`` from the Gram matrix of centred ``x``."""
        gram = x @ x.T
        sq = torch.diagonal(gram)
        # <x_i - x_j, x_k - x_j> for anchor j (first index), pair (i, k).
        inner = gram.unsqueeze(0) - gram.unsqueeze(2) - gram.unsqueeze(1) + sq.view(-1, 1, 1)
        tol = 4.0 * math.sqrt(x.shape[1]) * torch.finfo(x.dtype).eps
        distinct = dist.pow(2) > tol * (sq.unsqueeze(0) + sq.unsqueeze(1)).detach()
        inv = torch.where(distinct, 1.0 / torch.where(distinct, dist, torch.ones_like(dist)), torch.zeros_like(dist))
        return (inner * inv.unsqueeze(2) * inv.unsqueeze(1)).clamp(-1.0, 1.0)

    def _terms(self, x: torch.Tensor):
        x = x - x.mean(dim=0, keepdim=True)
        dist = pairwise(x, "euclidean")
        return self._normalized_distances(dist), self._angles(x, dist)

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t_dist, t_angle = self._terms(teacher.to(student.dtype))
        s_dist, s_angle = self._terms(student)
        loss = student.new_zeros(())
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(s_dist, t_dist)
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(s_angle, t_angle)
        return loss


class PKTLoss(TransferLoss):
    r"""Probabilistic knowledge transfer (Passalis & Tefas 2018), as in the benchmark.

    Rows are scaled to unit norm (:math:`\hat x_i = x_i / (\|x_i\| + \epsilon)`), cosine
    similarities mapped to [0, 1] and normalised per row into conditional probabilities

    .. math::

        p_{j|i} = \frac{(1 + \hat x_i \cdot \hat x_j) / 2}{\sum_k (1 + \hat x_i \cdot \hat x_k) / 2},
        \qquad
        L_{PKT} = \frac{1}{n^2} \sum_{i,j} p^T_{j|i} \log \frac{p^T_{j|i} + \epsilon}{p^S_{j|i} + \epsilon},

    the KL divergence of the teacher's from the student's, averaged over all n^2 entries (the
    diagonal :math:`j = i` included), exactly the reference's ``torch.mean(...)`` form.

    Parameters
    ----------
    eps : float, default 1e-7
        :math:`\epsilon` of the normalisation and of the logarithm.

    Notes
    -----
    A zero row stays zero (the reference replaces NaN by 0 after the division); its gradient is
    taken as 0. Benchmark: pooled penultimate features, weight 30000.
    """

    uses = "features"
    relational = True
    default_weight = 30000.0

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = _check_positive(eps, "eps")

    def extra_repr(self) -> str:
        return f"eps={self.eps}"

    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        x = _normalize_rows(x, self.eps, additive=True)
        sim = (x @ x.T + 1.0) / 2.0
        return sim / sim.sum(dim=1, keepdim=True)

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._probabilities(teacher.to(student.dtype))
        model = self._probabilities(student)
        return torch.mean(target * torch.log((target + self.eps) / (model + self.eps)))


class SPLoss(TransferLoss):
    r"""Similarity-preserving distillation (Tung & Mori 2019).

    .. math::

        \tilde G = \operatorname{rownorm}(F F^\top) \in \mathbb{R}^{n \times n}, \qquad
        L_{SP} = \frac{1}{n^2} \big\| \tilde G_S - \tilde G_T \big\|_F^2

    with ``rownorm`` the L2 normalisation of each row (``F.normalize``, eps 1e-12). The two
    widths may differ.

    Notes
    -----
    The benchmark applies SP to the last convolutional feature map, flattened (weight 3000);
    here it is applied to the pooled penultimate features like every other baseline. A zero row
    of F gives a zero row of :math:`\tilde G` (gradient 0 there, the reference's is
    ``1/eps``-scaled).
    """

    uses = "features"
    relational = True
    default_weight = 3000.0

    @staticmethod
    def _similarity(x: torch.Tensor) -> torch.Tensor:
        return _normalize_rows(x @ x.T)

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            g_t = self._similarity(teacher.to(student.dtype))
        g_s = self._similarity(student)
        return (g_s - g_t).pow(2).mean()


class CCLoss(TransferLoss):
    r"""Correlation congruence (Peng et al. 2019), Gaussian kernel by its Taylor expansion.

    On L2-normalised features :math:`\hat f_i`, :math:`\|\hat f_i - \hat f_j\|^2 =
    2 - 2 \hat f_i \cdot \hat f_j`, so the Gaussian RBF kernel
    :math:`\exp(-\gamma \|\hat f_i - \hat f_j\|^2)` is approximated to order P (the paper's form):

    .. math::

        C_{ij} = \sum_{p=0}^{P} e^{-2\gamma} \frac{(2\gamma)^p}{p!}
            (\hat f_i \cdot \hat f_j)^p,
        \qquad
        L_{CC} = \frac{1}{n^2} \| C_S - C_T \|_F^2 .

    The correlation matrices are (n, n), so the two widths may differ and no embedding is needed.

    Parameters
    ----------
    gamma : float, default 0.4
        :math:`\gamma` of the Gaussian kernel (the paper's value).
    p_order : int, default 2
        Order P of the Taylor expansion (the paper's value); 0 gives a constant kernel.

    Notes
    -----
    Deliberate difference from the benchmark: RepDistiller's ``Correlation`` loss (weight
    0.02) embeds both features into 128-d with learned linear layers and computes
    ``mean(sum(|f_s - f_t|[:-1] * |f_s - f_t|[1:], 1))``, which needs equal widths and is not the
    paper's kernel. This class implements the paper's Gaussian-kernel formula instead, with no
    embedding; the default weight keeps the benchmark's 0.02, although the scale of this loss
    differs from that of the benchmark's. A zero feature row stays zero after normalisation
    (gradient 0 there).
    """

    uses = "features"
    relational = True
    default_weight = 0.02

    def __init__(self, gamma: float = 0.4, p_order: int = 2):
        super().__init__()
        self.gamma = _check_positive(gamma, "gamma")
        if isinstance(p_order, bool) or not isinstance(p_order, int):
            raise TypeError(f"p_order must be a non-negative int, got {type(p_order).__name__}")
        if p_order < 0:
            raise ValueError(f"p_order must be a non-negative int, got {p_order}")
        self.p_order = p_order

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, p_order={self.p_order}"

    def _correlation(self, x: torch.Tensor) -> torch.Tensor:
        x = _normalize_rows(x)
        inner = x @ x.T
        two_gamma = 2.0 * self.gamma
        # Horner's scheme for sum_p (2 gamma)^p / p! * c^p, then the common factor exp(-2 gamma).
        out = torch.full_like(inner, two_gamma**self.p_order / math.factorial(self.p_order))
        for p in range(self.p_order - 1, -1, -1):
            out = out * inner + two_gamma**p / math.factorial(p)
        return math.exp(-two_gamma) * out

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            c_t = self._correlation(teacher.to(student.dtype))
        c_s = self._correlation(student)
        return (c_s - c_t).pow(2).mean()


class KDLoss(TransferLoss):
    r"""Knowledge distillation (Hinton et al. 2015) on logits with temperature T.

    .. math::

        L_{KD} = \frac{T^2}{n} \sum_{i=1}^{n} \operatorname{KL}\big(
            \operatorname{softmax}(z^T_i / T) \,\big\|\, \operatorname{softmax}(z^S_i / T)\big)

    for student and teacher logits of shape (n, C) (same C). The :math:`T^2` factor keeps the
    gradient scale independent of T.

    Parameters
    ----------
    temperature : float, default 4
        T (the benchmark's value).

    Notes
    -----
    ``uses = "logits"`` and ``class_aware_only``: it needs the label space. The benchmark trains
    KD with ``0.1 * CE + 0.9 * KD`` (``-r 0.1 -a 0.9``), hence ``ce_weight = 0.1`` and
    ``default_weight = 0.9``; every other loss here keeps ``ce_weight = 1``. Same value as the
    reference's ``kl_div(log_softmax, softmax, sum) * T^2 / n``, computed with a log-target for
    exact zeros when the logits agree.
    """

    uses = "logits"
    class_aware_only = True
    default_weight = 0.9
    ce_weight = 0.1

    def __init__(self, temperature: float = 4.0):
        super().__init__()
        self.temperature = _check_positive(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape[1] != teacher.shape[1]:
            raise ValueError(
                "student and teacher logits must have the same number of classes, "
                f"got {student.shape[1]} and {teacher.shape[1]}"
            )
        t = self.temperature
        log_p_s = F.log_softmax(student / t, dim=1)
        log_p_t = F.log_softmax(teacher.to(student.dtype) / t, dim=1)
        return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)


LOSSES.update(
    {
        "fitnet": FitNetLoss,
        "rkd": RKDLoss,
        "pkt": PKTLoss,
        "sp": SPLoss,
        "cc": CCLoss,
        "kd": KDLoss,
    }
)


# ---------------------------------------------------------------------------------------------
# Contrastive representation distillation: the one baseline that keeps state across batches.
# ---------------------------------------------------------------------------------------------

_CRD_EPS = 1e-7  # eps of the reference's NCE ratios


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(value).__name__}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


class CRDLoss(TransferLoss):
    r"""Contrastive representation distillation (Tian, Krishnan & Isola, ICLR 2020), as in the benchmark.

    Student and teacher features are embedded by learned linear maps into
    :math:`\mathbb{R}^{m}` (``embed_dim``, 128) and scaled to unit norm,
    :math:`v^S_i = \operatorname{normalize}(W_S f^S_i + b_S)`, :math:`v^T_i` likewise. Two
    memories hold one unit vector per training sample: :math:`M^S` (student embeddings) and
    :math:`M^T` (teacher embeddings), both (N, m). For a batch sample at training-set position
    :math:`p_i` and K indices :math:`q_{i1..iK}` drawn uniformly from :math:`\{0..N-1\}`
    (``num_negatives``), with :math:`q_{i0} = p_i` the positive,

    .. math::

        P^S_{ik} = \frac{\exp(\langle M^T_{q_{ik}}, v^S_i \rangle / \tau)}{Z^S}, \qquad
        P^T_{ik} = \frac{\exp(\langle M^S_{q_{ik}}, v^T_i \rangle / \tau)}{Z^T},

    the student's embedding contrasted against teacher memories and the teacher's against
    student memories. Each side has the NCE loss of the paper (its eq. 18) with noise
    probability :math:`1/N` and :math:`c = K / N`:

    .. math::

        L = -\frac{1}{n} \sum_{i=1}^{n} \Big[ \log \frac{P_{i0}}{P_{i0} + c + \epsilon}
            + \sum_{k=1}^{K} \log \frac{c}{P_{ik} + c + \epsilon} \Big],
        \qquad L_{CRD} = L^S + L^T,

    :math:`\epsilon = 10^{-7}`. The normalisation constants are estimated once, at the first
    call, as :math:`Z = N \cdot \operatorname{mean}_{i,k} \exp(\langle\cdot,\cdot\rangle/\tau)`
    over that batch's (n, K + 1) scores, then kept fixed. After the scores are computed the
    memories of the batch samples move towards the new embeddings and are re-normalised:
    :math:`M_{p_i} \leftarrow \operatorname{normalize}(\mu M_{p_i} + (1 - \mu) v_i)`
    (``momentum`` :math:`\mu`, no gradient).

    Parameters
    ----------
    student_dim, teacher_dim : int
        Feature widths of the student (n, d_S) and teacher (n, d_T).
    num_samples : int
        Size N of the training set: ``indices`` run over ``0 .. N - 1``.
    embed_dim : int, default 128
    num_negatives : int, default 16384
        K. Drawn with replacement, so K may exceed N (on a small data set each sample then
        appears many times among the negatives, as in the reference's sampler).
    temperature : float, default 0.07
    momentum : float, default 0.5
        :math:`\mu` in [0, 1).
    seed : int, optional
        Seed of the negative sampling. ``None`` draws one from torch's global generator at
        construction (so ``torch.manual_seed`` before building the loss fixes it, as it fixes
        the embeddings and the initial memories).

    Notes
    -----
    Call as ``loss(student, teacher, indices=idx)``, ``idx`` a LongTensor (n,) of the batch
    samples' distinct positions in the training set (``needs_indices``); the loss raises
    ``ValueError`` without them. The embeddings are submodules (``embed_student``,
    ``embed_teacher``): their parameters are in ``loss.parameters()`` and must reach the
    optimiser (the benchmark trains both). The memories (``student_memory``,
    ``teacher_memory``, initialised uniformly in :math:`[-s, s]`, :math:`s = 1/\sqrt{m/3}`,
    as in the reference), the two constants (``normalizer``, :math:`[Z^S, Z^T]`, -1 until set)
    and the sampling state (``sampling``: seed and number of calls) are buffers, so
    ``state_dict()`` holds everything and a resumed run draws the same negatives. Negatives
    are drawn on the features' device by a generator re-seeded from (seed, call number) at
    every call: the same seed on the same kind of device gives the same run.

    Differences from the benchmark (RepDistiller ``crd/``), deliberate:

    * negatives: its training script draws each sample's K negatives without replacement
      from the samples of *other classes* (the data set's ``contrast_idx``, mode "exact"),
      which uses labels; here they are drawn uniformly from all N samples with replacement,
      the positive not excluded, which is what its memory module does when no
      ``contrast_idx`` is given. This keeps CRD class-unaware, as the paper's objective is.
    * the scores are computed in the loss's precision (float32) with autocast off and in the
      log domain (:math:`\log P = s/\tau - \log Z`), which gives the same values without
      overflow of :math:`e^{1/\tau}` in half precision. When the (n, N) score matrix is no
      larger than the (n, K + 1, m) gathered memories, all N scores come from one matrix
      product; when K + 1 > N the sums over the K draws are taken over the N memory rows,
      each weighted by how often it was drawn (same values, fewer operations on small data
      sets).
    * the memory update is out of place (a new buffer tensor), so autograd may keep the old
      memory for the backward pass.

    The benchmark's objective is ``1 * CE + 0.8 * L_CRD`` (``-r 1 -a 0 -b 0.8``), hence
    ``default_weight = 0.8`` and ``ce_weight = 1``; class-unaware training uses
    ``0.8 * L_CRD``. The benchmark applies CRD to the pooled penultimate features, as here.
    """

    uses = "features"
    default_weight = 0.8
    min_samples = 1
    needs_indices = True
    relational = True  # it contrasts samples with each other: under torchrun, the global batch

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_samples: int,
        embed_dim: int = 128,
        num_negatives: int = 16384,
        temperature: float = 0.07,
        momentum: float = 0.5,
        seed: int | None = None,
    ):
        super().__init__()
        self.student_dim = _check_dim(student_dim, "student_dim")
        self.teacher_dim = _check_dim(teacher_dim, "teacher_dim")
        self.num_samples = _check_dim(num_samples, "num_samples")
        self.embed_dim = _check_dim(embed_dim, "embed_dim")
        self.num_negatives = _check_dim(num_negatives, "num_negatives")
        self.temperature = _check_positive(temperature, "temperature")
        self.momentum = _check_fraction(momentum, "momentum")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be None or a non-negative int, got {type(seed).__name__}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be None or a non-negative int, got {seed}")
        self.embed_student = nn.Linear(self.student_dim, self.embed_dim)
        self.embed_teacher = nn.Linear(self.teacher_dim, self.embed_dim)
        stdv = 1.0 / math.sqrt(self.embed_dim / 3)
        for name in ("student_memory", "teacher_memory"):
            self.register_buffer(name, torch.rand(self.num_samples, self.embed_dim) * (2 * stdv) - stdv)
        self.register_buffer("normalizer", torch.full((2,), -1.0, dtype=torch.float64))
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        self.register_buffer("sampling", torch.tensor([seed, 0], dtype=torch.int64))

    def extra_repr(self) -> str:
        return (
            f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}, num_samples={self.num_samples}, "
            f"embed_dim={self.embed_dim}, num_negatives={self.num_negatives}, "
            f"temperature={self.temperature}, momentum={self.momentum}"
        )

    def forward(self, student, teacher, *, indices=None) -> torch.Tensor:
        s = _select(student, self.uses, "student")
        t = _select(teacher, self.uses, "teacher")
        # Under torchrun every process contrasts the global batch and updates its memories with
        # it, so the memories stay identical on every process.
        s, t, indices, _ = _global_batch(s, t, indices)
        _check_batch(s, t, self.min_samples)
        if s.shape[1] != self.student_dim or t.shape[1] != self.teacher_dim:
            raise ValueError(
                f"CRDLoss expects student width student_dim={self.student_dim} and teacher width "
                f"teacher_dim={self.teacher_dim}, got {s.shape[1]} and {t.shape[1]}"
            )
        idx = self._check_indices(indices, s.shape[0], s.device)
        return self._contrast(s, t.detach(), idx)

    def _check_indices(self, indices, n: int, device) -> torch.Tensor:
        if indices is None:
            raise ValueError(
                "CRDLoss needs indices: call loss(student, teacher, indices=idx) with idx the (n,) "
                "positions of the batch samples in the training set"
            )
        if not isinstance(indices, torch.Tensor):
            raise TypeError(f"indices must be an integer tensor (n,), got {type(indices).__name__}")
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor (n,), got dtype {indices.dtype}")
        if indices.shape != (n,):
            raise ValueError(f"indices must have shape ({n},), one per batch sample, got {tuple(indices.shape)}")
        idx = indices.to(device=device, dtype=torch.long)
        ordered = idx.sort().values
        # One host sync for both checks: a bad position would index the memory out of bounds,
        # a repeated one would make the memory update depend on write order.
        bad = (ordered[0] < 0) | (ordered[-1] >= self.num_samples) | (ordered[1:] == ordered[:-1]).any()
        if bool(bad):
            raise ValueError(
                f"indices must be distinct positions in [0, num_samples={self.num_samples}), got values in "
                f"[{int(ordered[0])}, {int(ordered[-1])}] with {n - int(torch.unique(idx).numel())} repeated"
            )
        return idx

    def _draw(self, idx: torch.Tensor) -> torch.Tensor:
        """(n, K) negatives: uniform draws from the N positions, with replacement."""
        seed, calls = (int(v) for v in self.sampling.tolist())
        # A fresh generator per call, seeded from the buffers: nothing outside state_dict().
        gen = torch.Generator(device=idx.device)
        gen.manual_seed((seed * 1_000_003 + calls) % 2**63)
        self.sampling[1] += 1
        return torch.randint(0, self.num_samples, (idx.shape[0], self.num_negatives), generator=gen, device=idx.device)

    def _counts(self, negatives: torch.Tensor) -> torch.Tensor:
        """(n, N + 1) draw counts: 1 for the positive (column 0), then how often each of the
        N memory rows is among a sample's negatives."""
        n, size = negatives.shape[0], self.num_samples
        offsets = torch.arange(n, device=negatives.device).unsqueeze(1) * size
        drawn = torch.bincount((negatives + offsets).flatten(), minlength=n * size).view(n, size)
        return torch.cat([torch.ones_like(drawn[:, :1]), drawn], dim=1)

    @staticmethod
    def _scores(memory: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, negatives, counted: bool) -> torch.Tensor:
        """Inner products ``<memory[q], v[i]>``, not yet divided by the temperature.

        ``counted``: (n, N + 1), the positive then every memory row (to be weighted by
        :meth:`_counts`); otherwise (n, K + 1), the positive then the K draws.
        """
        if counted:
            full = v @ memory.T
            return torch.cat([full.gather(1, idx.unsqueeze(1)), full], dim=1)
        rows = torch.cat([idx.unsqueeze(1), negatives], dim=1)
        if memory.shape[0] <= rows.shape[1] * memory.shape[1]:
            # The (n, N) product is no larger than the gathered (n, K + 1, m) memories.
            return (v @ memory.T).gather(1, rows)
        return torch.bmm(memory[rows], v.unsqueeze(2)).squeeze(2)

    def _side(self, scores: torch.Tensor, counts, side: int, unset: bool) -> torch.Tensor:
        """NCE loss of one side from :meth:`_scores` divided by tau, with :meth:`_counts` or None."""
        n = scores.shape[0]
        if unset:
            # Z = N * mean of exp(score) over the n (K + 1) draws, by logsumexp (no overflow).
            flat = scores.detach().double()
            if counts is not None:
                flat = flat + counts.double().log()
            log_z = torch.logsumexp(flat.flatten(), 0) - math.log(n * (self.num_negatives + 1))
            self.normalizer[side] = torch.exp(log_z) * self.num_samples
        log_p = scores - torch.log(self.normalizer[side]).to(scores.dtype)
        c = self.num_negatives / self.num_samples
        log_c_eps = torch.tensor(math.log(c + _CRD_EPS), dtype=scores.dtype, device=scores.device)
        # log(P / (P + c + eps)) = log P - logaddexp(log P, log(c + eps)); likewise for log(c / ...).
        log_denominator = torch.logaddexp(log_p, log_c_eps)
        positive = log_p[:, 0] - log_denominator[:, 0]
        negative = math.log(c) - log_denominator[:, 1:]
        if counts is not None:
            negative = negative * counts[:, 1:]
        return -(positive.sum() + negative.sum()) / n

    def _contrast(self, student: torch.Tensor, teacher: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        # The loss's own precision (float32 unless the module was converted), never autocast's:
        # exp(1 / 0.07) overflows half precision.
        dtype = self.embed_student.weight.dtype
        with torch.autocast(device_type=student.device.type, enabled=False):
            v_s = _normalize_rows(self.embed_student(student.to(dtype)))
            v_t = _normalize_rows(self.embed_teacher(teacher.to(dtype)))
            negatives = self._draw(idx)
            # With more draws than memory rows, sum over the N rows weighted by their counts
            # rather than over the K draws: same value, (n, N) instead of (n, K) entries.
            counted = self.num_samples < self.num_negatives + 1
            counts = self._counts(negatives).to(dtype) if counted else None
            unset = [z < 0 for z in self.normalizer.tolist()]
            loss = 0.0
            # Student embeddings against teacher memories (side 0), and the converse (side 1).
            for side, (v, memory) in enumerate(((v_s, self.teacher_memory), (v_t, self.student_memory))):
                scores = self._scores(memory.to(dtype), v, idx, negatives, counted)
                loss = loss + self._side(scores / self.temperature, counts, side, unset[side])
            with torch.no_grad():
                self.student_memory = self._updated(self.student_memory, v_s, idx)
                self.teacher_memory = self._updated(self.teacher_memory, v_t, idx)
        return loss

    def _updated(self, memory: torch.Tensor, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        rows = memory[idx] * self.momentum + v.detach().to(memory.dtype) * (1.0 - self.momentum)
        rows = rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True).clamp_min(_NORM_EPS)
        return memory.index_copy(0, idx, rows)


LOSSES["crd"] = CRDLoss
