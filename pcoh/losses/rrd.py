"""Relational representation distillation (RRD): a FIFO queue of the teacher's projections."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive
from .base import TransferLoss, _check_dim, _normalize_rows

#: The authors' queue length on CIFAR-100 (50,000 training images), the cap of :func:`queue_length`.
AUTHORS_QUEUE = 16384
#: The queue holds at most this fraction of the training set (the authors' 16,384 of 50,000, about a third).
QUEUE_FRACTION = 1 / 3


def queue_length(num_samples: int | None) -> int:
    """The default queue length K for a training set of ``num_samples``: ``min(16384, num_samples // 3)``.

    The authors' 16,384 on CIFAR-100 is a third of its 50,000 training images; the rule keeps that
    fraction on any training set (capped at their 16,384), so the queue never holds more than the
    last third of an epoch: no sample twice, and no entry older than a third of an epoch.
    ``None`` (size unknown) gives 16,384. At least 1.
    """
    if num_samples is None:
        return AUTHORS_QUEUE
    _check_dim(num_samples, "num_samples")
    return max(1, min(AUTHORS_QUEUE, int(num_samples * QUEUE_FRACTION)))


class RRDLoss(TransferLoss):
    r"""Relational representation distillation (Giakoumoglou & Stathaki, arXiv 2407.12073, 2024).

    Student and teacher features are projected by linear maps to :math:`\mathbb{R}^{m}`
    (``embed_dim``, 128) and scaled to unit norm, :math:`s_i = \operatorname{normalize}(W_S f^S_i + b_S)`,
    :math:`t_i = \operatorname{normalize}(W_T f^T_i + b_T)`. A FIFO queue keeps the last K teacher
    projections :math:`q_1 .. q_K`; the batch's own :math:`t_i` are enqueued *before* the
    similarities are taken, so each sample meets its own teacher projection among the keys. With
    :math:`\tau_T` (0.1) and :math:`\tau_S` (0.02):

    .. math::

        p^T_{ik} = \operatorname{softmax}_k(\langle t_i, q_k\rangle / \tau_T), \qquad
        L_{RRD} = -\frac{1}{n} \sum_{i=1}^{n} \sum_{k=1}^{K} p^T_{ik}
            \log \operatorname{softmax}_k(\langle s_i, q_k\rangle / \tau_S),

    the cross-entropy between the teacher's and the student's similarity distributions over the
    queue; the teacher's is a target (no gradient).

    Parameters
    ----------
    student_dim, teacher_dim : int
        Feature widths of the student (n, d_S) and the teacher (n, d_T).
    num_samples : int, optional
        Size of the training set (a training loop passes it); it sets the default queue length.
    embed_dim : int, default 128
        m, the width of the projections.
    queue_size : int, optional
        K. Default :func:`queue_length` (``min(16384, num_samples // 3)``; 16,384 when
        ``num_samples`` is not given).
    student_temperature : float, default 0.02
        :math:`\tau_S`: the student's distribution is the sharper one, as the paper says.
    teacher_temperature : float, default 0.1
        :math:`\tau_T`.

    Notes
    -----
    Which parts receive gradients, as in the authors' code (``cifar/distillers/RRD.py`` of their
    ``distillers`` repository, FIFO memory): the student's features and the student projection
    ``embed_student``. The teacher's projections enter only detached (as the target and as the
    queue's keys), so the teacher projection ``embed_teacher`` gets no gradient: it stays the
    random linear map it was initialised to; here its parameters are frozen
    (``requires_grad=False``), so no optimiser's weight decay shrinks it either.

    The queue (``queue``, (K, m), with ``queue_ptr`` and ``queue_count``) is made of buffers:
    ``state_dict()`` holds it and a resumed run goes on with the same keys. It starts empty and
    only its filled entries are keys (the authors start from K random vectors); a batch of more
    than K samples enqueues its last K. In eval mode the loss is computed as in training (the
    batch counted among the keys) but the queue is left unchanged. Under torchrun every process
    computes the loss of the global batch and enqueues it, so the queues stay identical and hold
    the global batch's projections in rank order. The similarities are computed in the loss's
    precision (float32 unless the module is converted) with autocast off: :math:`1/\tau_S = 50`
    magnifies rounding.

    Differences from the authors' code: the queue length (16,384 there on CIFAR-100; here a rule
    of the training-set size, :func:`queue_length`, since 16,384 keys on a training set of a few
    thousand would hold several stale copies of each sample), the empty start, any batch size
    (theirs requires K to be a multiple of it), and the frozen ``embed_teacher``. Their
    ``train_student.py`` sets the command-line defaults the other way round (student 0.1, teacher
    0.02) from the loss's docstring and the paper (student sharper): this class follows the paper.
    ``default_weight = 1`` and ``ce_weight = 1`` (class-aware: ``CE + 1 * L_RRD``).
    """

    uses = "features"
    default_weight = 1.0
    min_samples = 1
    relational = True  # keys from the whole global batch under torchrun (default _own_references_loss)

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        num_samples: int | None = None,
        embed_dim: int = 128,
        queue_size: int | None = None,
        student_temperature: float = 0.02,
        teacher_temperature: float = 0.1,
    ):
        super().__init__()
        self.student_dim = _check_dim(student_dim, "student_dim")
        self.teacher_dim = _check_dim(teacher_dim, "teacher_dim")
        self.num_samples = None if num_samples is None else _check_dim(num_samples, "num_samples")
        self.embed_dim = _check_dim(embed_dim, "embed_dim")
        self.queue_size = queue_length(self.num_samples) if queue_size is None else _check_dim(queue_size, "queue_size")
        self.student_temperature = check_positive(student_temperature, "student_temperature")
        self.teacher_temperature = check_positive(teacher_temperature, "teacher_temperature")
        self.embed_student = nn.Linear(self.student_dim, self.embed_dim)
        self.embed_teacher = nn.Linear(self.teacher_dim, self.embed_dim)
        self.embed_teacher.requires_grad_(False)
        self.register_buffer("queue", torch.zeros(self.queue_size, self.embed_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return (
            f"student_dim={self.student_dim}, teacher_dim={self.teacher_dim}, embed_dim={self.embed_dim}, "
            f"queue_size={self.queue_size}, student_temperature={self.student_temperature}, "
            f"teacher_temperature={self.teacher_temperature}"
        )

    def _loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape[1] != self.student_dim or teacher.shape[1] != self.teacher_dim:
            raise ValueError(
                f"RRDLoss expects student width student_dim={self.student_dim} and teacher width "
                f"teacher_dim={self.teacher_dim}, got {student.shape[1]} and {teacher.shape[1]}"
            )
        dtype = self.embed_student.weight.dtype
        with torch.autocast(device_type=student.device.type, enabled=False):
            s = _normalize_rows(self.embed_student(student.to(dtype)))
            with torch.no_grad():
                t = _normalize_rows(self.embed_teacher(teacher.to(dtype)))
                queue, ptr, count = self._pushed(t)
            keys = queue[:count]
            target = F.softmax(t @ keys.T / self.teacher_temperature, dim=1)
            log_p = F.log_softmax(s @ keys.T / self.student_temperature, dim=1)
            loss = -(target * log_p).sum(dim=1).mean()
        if self.training:
            self.queue = queue
            self.queue_ptr.fill_(ptr)
            self.queue_count.fill_(count)
        return loss

    def _pushed(self, t: torch.Tensor):
        """The queue after enqueuing ``t`` (a new tensor; the buffer is not touched), its next write
        position and its fill level."""
        k = self.queue_size
        if t.shape[0] > k:  # only the last K of the batch fit
            t = t[-k:]
        n = t.shape[0]
        ptr, count = int(self.queue_ptr), int(self.queue_count)
        queue = self.queue.to(device=t.device, dtype=t.dtype)
        pos = (torch.arange(n, device=t.device) + ptr) % k
        queue = queue.index_copy(0, pos, t)
        return queue, (ptr + n) % k, min(count + n, k)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "queue")
        if saved is not None and tuple(saved.shape) != tuple(self.queue.shape):
            raise ValueError(
                f"the checkpoint's queue has shape {tuple(saved.shape)}, but this loss keeps a queue of shape "
                f"{tuple(self.queue.shape)} (queue_size={self.queue_size}, embed_dim={self.embed_dim})"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
