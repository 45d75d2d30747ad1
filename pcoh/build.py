"""From a specification to what a run trains: the model, and for a student run its frozen teacher
and its transfer loss (:class:`StudentRun`), built by one constructor, :func:`build_run`, that
training, ``--estimate`` and ``--check`` share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import models as _models
from .data import DataSplit
from .devices import resolve_device
from .specs import StudentSpec

__all__ = ["build_model"]


def check_data(data) -> None:
    """TypeError unless ``data`` is a :class:`pcoh.data.DataSplit`."""
    if not isinstance(data, DataSplit):
        raise TypeError(f"data must be a pcoh.data.DataSplit (see pcoh.data.load), got {type(data).__name__}")


def build_model(name: str, data: DataSplit, seed: int, model_kwargs: dict) -> nn.Module:
    """The model ``name`` for ``data`` (its classes, channels and image size), initialised with ``seed``."""
    check_data(data)
    if not isinstance(model_kwargs, dict):
        raise TypeError(f"model_kwargs must be a dict of the model's options, got {type(model_kwargs).__name__}")
    kwargs = dict(num_classes=data.num_classes, in_channels=data.in_channels or 1, image_size=data.image_size or 8)
    return _models.create(name, **kwargs, seed=seed, **model_kwargs)


def _make_transfer(spec: StudentSpec, student: nn.Module, teacher_net: nn.Module, data: DataSplit, dev):
    """The run's transfer loss on ``dev``, built under the run's seed: a loss's own parameters and
    state (FitNet's regressor, CRD's memory) are part of the run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        return spec.loss.build(student_dim=student.feature_dim, teacher_dim=teacher_net.feature_dim,
                               num_samples=len(data.train)).to(dev)


@dataclass
class StudentRun:
    """What one student run trains, on its device: the student (fresh weights from the run's seed),
    the frozen teacher (eval mode, no gradient) and the transfer loss (``None`` for ``ce`` and
    ``untrained``)."""

    model: nn.Module
    teacher: Optional[nn.Module]
    loss: Optional[nn.Module]
    device: torch.device


def build_run(spec: StudentSpec, data: DataSplit, teacher: Optional[nn.Module], device=None) -> StudentRun:
    """The one constructor of a student run, shared by :func:`pcoh.train.train_student`,
    :func:`pcoh.estimate.estimate_run` and :func:`pcoh.experiment.check_experiment`: the model, the frozen teacher and the loss, built
    as training builds them. ``teacher`` may be ``None`` for a method without a transfer loss."""
    dev = resolve_device(device)
    if teacher is not None:
        teacher = teacher.to(dev).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    student = build_model(spec.model, data, spec.train.seed, spec.model_kwargs).to(dev)
    transfer = _make_transfer(spec, student, teacher, data, dev) if spec.loss.has_loss else None
    return StudentRun(student, teacher, transfer, dev)
