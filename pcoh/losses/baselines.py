"""Distillation baselines: FitNet, RKD, PKT, SP, CC and KD.

Defined as in their papers and as the CIFAR-100 distillation benchmark of Tian et al. 2020
(CRD / RepDistiller) sets them, on pooled penultimate features (KD: logits). None keeps state
across batches (CRD, which does, is :mod:`pcoh.losses.crd`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..dissimilarity import pairwise
from .._checks import check_positive
from .base import TransferLoss, _check_dim, _normalize_rows


class _RelationLoss(TransferLoss):
    """Base of the baselines that compare a relation of the batch's samples (RKD, PKT, SP, CC).

    The teacher's relations, computed without gradient on its features in the student's dtype,
    are the target of the student's: ``_compare(_relations(student), _relations(teacher))``.
    A subclass writes ``_relations(x)`` (an (n, n) matrix, or RKD's distances and angles) and,
    unless it is the mean squared difference of the two, ``_compare``.
    """

    uses = "features"
    relational = True

    def _relations(self, x: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    def _compare(self, student, teacher) -> torch.Tensor:
        return (student - teacher).pow(2).mean()

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._relations(teacher.to(student.dtype))
        return self._compare(self._relations(student), target)


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


class RKDLoss(_RelationLoss):
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

    default_weight = 1.0

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0):
        super().__init__()
        self.distance_weight = check_positive(distance_weight, "distance_weight", allow_zero=True)
        self.angle_weight = check_positive(angle_weight, "angle_weight", allow_zero=True)

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

    def _relations(self, x: torch.Tensor):
        """The (n, n) distances over their mean and the (n, n, n) angles of the batch-centred ``x``."""
        x = x - x.mean(dim=0, keepdim=True)
        dist = pairwise(x, "euclidean")
        return self._normalized_distances(dist), self._angles(x, dist)

    def _compare(self, student, teacher) -> torch.Tensor:
        (s_dist, s_angle), (t_dist, t_angle) = student, teacher
        loss = s_dist.new_zeros(())
        if self.distance_weight:
            loss = loss + self.distance_weight * F.smooth_l1_loss(s_dist, t_dist)
        if self.angle_weight:
            loss = loss + self.angle_weight * F.smooth_l1_loss(s_angle, t_angle)
        return loss


class PKTLoss(_RelationLoss):
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

    default_weight = 30000.0

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = check_positive(eps, "eps")

    def extra_repr(self) -> str:
        return f"eps={self.eps}"

    def _relations(self, x: torch.Tensor) -> torch.Tensor:
        """The (n, n) conditional probabilities :math:`p_{j|i}`."""
        x = _normalize_rows(x, self.eps, additive=True)
        sim = (x @ x.T + 1.0) / 2.0
        return sim / sim.sum(dim=1, keepdim=True)

    def _compare(self, student, teacher) -> torch.Tensor:
        return torch.mean(teacher * torch.log((teacher + self.eps) / (student + self.eps)))


class SPLoss(_RelationLoss):
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

    default_weight = 3000.0

    @staticmethod
    def _relations(x: torch.Tensor) -> torch.Tensor:
        return _normalize_rows(x @ x.T)


class CCLoss(_RelationLoss):
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

    default_weight = 0.02

    def __init__(self, gamma: float = 0.4, p_order: int = 2):
        super().__init__()
        self.gamma = check_positive(gamma, "gamma")
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

    _relations = _correlation  # C of the formula above


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
        self.temperature = check_positive(temperature, "temperature")

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

