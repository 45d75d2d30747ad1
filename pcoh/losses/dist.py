"""DIST: the Pearson correlation of softened class probabilities, per sample and per class."""
from __future__ import annotations

import torch

from .._checks import check_positive
from .base import TransferLoss

_PEARSON_EPS = 1e-8  # added to the product of the norms, as in the reference implementations


def _pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = _PEARSON_EPS) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``: (n,)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1) + eps)


class DISTLoss(TransferLoss):
    r"""DIST, knowledge distillation from a stronger teacher (Huang, You, Wang, Qian & Xu, NeurIPS 2022).

    With :math:`Y^S = \operatorname{softmax}(Z^S / \tau)` and :math:`Y^T` likewise, row-wise over
    the C classes of the (n, C) logits, and :math:`\rho` the Pearson correlation,

    .. math::

        L_{DIST} = \beta \, \tau^2 \Big(1 - \frac{1}{n} \sum_{i=1}^{n} \rho(Y^S_{i\cdot}, Y^T_{i\cdot})\Big)
            + \gamma \, \tau^2 \Big(1 - \frac{1}{C} \sum_{c=1}^{C} \rho(Y^S_{\cdot c}, Y^T_{\cdot c})\Big):

    the inter-class relation (each sample's probabilities over the classes) and the intra-class
    relation (each class's probabilities over the batch). :math:`\rho(a, b) =
    \langle a - \bar a, b - \bar b\rangle / (\|a - \bar a\| \|b - \bar b\| + 10^{-8})`, the
    reference's form.

    Parameters
    ----------
    beta : float, default 2
        Weight of the inter-class (row) term.
    gamma : float, default 2
        Weight of the intra-class (column) term.
    temperature : float, default 4
        :math:`\tau`.

    Notes
    -----
    The defaults are the CIFAR-100 setting (:math:`\beta = \gamma = 2, \tau = 4`), as every other
    default of :mod:`pcoh.losses` comes from the CIFAR-100 benchmark; the authors' code defaults
    to :math:`\beta = \gamma = \tau = 1`, their ImageNet setting (pass ``beta=1, gamma=1,
    temperature=1`` for it). ``uses = "logits"`` and ``class_aware_only``, like KD: the logits
    live in the label space, so a student matching them is taught the classes even without a
    cross-entropy term. The intra-class term compares samples of the batch, so under torchrun the
    global batch is gathered first (``relational``). ``default_weight = 1``, ``ce_weight = 1``.
    Needs at least 2 samples and 2 classes (a Pearson correlation of one value is undefined).
    """

    uses = "logits"
    class_aware_only = True
    default_weight = 1.0
    min_samples = 2
    relational = True  # the intra-class term runs over the batch

    def __init__(self, beta: float = 2.0, gamma: float = 2.0, temperature: float = 4.0):
        super().__init__()
        self.beta = check_positive(beta, "beta", allow_zero=True)
        self.gamma = check_positive(gamma, "gamma", allow_zero=True)
        self.temperature = check_positive(temperature, "temperature")

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}, temperature={self.temperature}"

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape[1] != teacher.shape[1]:
            raise ValueError(
                "student and teacher logits must have the same number of classes, "
                f"got {student.shape[1]} and {teacher.shape[1]}"
            )
        if student.shape[1] < 2:
            raise ValueError(f"DISTLoss needs logits of at least 2 classes, got {student.shape[1]}")
        tau = self.temperature
        y_s = torch.softmax(student / tau, dim=1)
        y_t = torch.softmax(teacher.to(student.dtype) / tau, dim=1)
        inter = 1.0 - _pearson_rows(y_s, y_t).mean()
        intra = 1.0 - _pearson_rows(y_s.T, y_t.T).mean()
        return tau * tau * (self.beta * inter + self.gamma * intra)
