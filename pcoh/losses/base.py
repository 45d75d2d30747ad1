"""The interface every transfer loss shares, its argument checks and the global batch under torchrun.

:class:`TransferLoss` takes a student and a teacher (feature tensors or model outputs), picks
what the loss uses, checks the batch, gathers the global batch of a process group for the
relational losses, and calls the subclass's ``_loss`` on validated 2-D tensors.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from ..dissimilarity import check_features
from ..distributed import gather_no_grad, gather_with_grad, is_distributed, shard_sizes
from ..distributed import rank as process_rank

_NORM_EPS = 1e-12  # eps of F.normalize, as in the reference implementations


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The (n, n - 1) matrix of ``matrix`` (n, n) without its diagonal, rows kept in order.

    Row ``i`` holds ``matrix[i, j]`` for ``j != i`` in increasing ``j``. A view-based reshape
    (no mask, no copy of an index tensor), so it is cheap and differentiable.
    """
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"matrix must be a torch.Tensor, got {type(matrix).__name__}")
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square (n, n), got shape {tuple(matrix.shape)}")
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


def _check_dim(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(value).__name__}")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)

def _normalize_rows(x: torch.Tensor, eps: float = _NORM_EPS, additive: bool = False) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm; an all-zero row stays zero, with zero gradient.

    ``additive=False`` is ``F.normalize`` (``x / max(||x||, eps)``), ``additive=True`` is PKT's
    ``x / (||x|| + eps)``. Values equal the reference's everywhere; only at an exactly zero row
    is the gradient taken as 0 instead of the reference's ``1 / eps``-scaled one.
    """
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    denom = norm + eps if additive else norm.clamp_min(eps)
    return torch.where(norm > 0, x / denom, torch.zeros_like(x))


def _check_indices(indices, n: int):
    """``indices`` as given (a 1-D integer tensor of length n), or None: the batch samples'
    positions in the training set, for the losses that take them (the PC loss's queue, CRD)."""
    if indices is None:
        return None
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"indices must be a 1-D integer torch.Tensor or None, got {type(indices).__name__}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got dtype {indices.dtype}")
    if tuple(indices.shape) != (n,):
        raise ValueError(
            f"indices must have shape (n,) = ({n},), one per sample of the batch, got {tuple(indices.shape)} "
            f"instead of shape ({n},)"
        )
    return indices


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
    if not is_distributed():
        return student, teacher, indices, None
    sizes = shard_sizes(student)
    student = gather_with_grad(student, sizes)
    teacher = gather_no_grad(teacher, sizes)
    indices = gather_no_grad(indices, sizes) if indices is not None else None
    return student, teacher, indices, sum(sizes[:process_rank()])


def _poisoned(loss: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``loss`` on the CPU (its inputs were checked finite); on an accelerator, ``loss`` made NaN
    when a feature is NaN or infinite, without a host round trip: the training loop then reports
    the divergence at the end of the epoch, where it reads the loss once."""
    if student.device.type == "cpu":
        return loss
    return loss + 0.0 * (student.detach().sum() + teacher.detach().sum()).to(loss.dtype)

