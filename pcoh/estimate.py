"""Estimates: a few timed training steps of a run and its projected wall time, without training it."""
from __future__ import annotations

import time
from typing import Optional

import torch
from torch import nn

from ._checks import check_int
from .batches import BatchSource
from .build import build_model, build_run, check_data
from .data import DataSplit
from .devices import resolve_device
from .methods import CLASS_AWARE
from .objectives import student_objective, teacher_objective
from .specs import UNTRAINED, StudentSpec, TeacherSpec
from .steps import make_optimizer, train_step, training_batches

__all__ = ["estimate_run"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def estimate_run(spec, data: DataSplit, *, teacher: Optional[nn.Module] = None, device=None, steps: int = 5,
                 warmup: int = 2) -> dict:
    """Time a few training steps of a run and project its wall time, without training it.

    Builds the run's model, loss, optimiser and batches exactly as :func:`pcoh.train.train_teacher`
    / :func:`pcoh.train.train_student` do (fresh weights: the speed does not depend on them), times ``steps``
    steps after ``warmup`` untimed ones (which absorb compilation and worker start-up), and one
    evaluation pass over a few test batches when the run evaluates every epoch. Writes nothing.

    Parameters
    ----------
    spec : TeacherSpec or StudentSpec
    data : DataSplit
    teacher : nn.Module, optional
        The teacher network of a student run (its weights do not matter).
    device : str, optional
    steps, warmup : int

    Returns
    -------
    dict
        ``step_s`` (seconds per step), ``steps_per_epoch``, ``eval_s`` (per epoch), ``setup_s``
        (once per run: e.g. the teacher's outputs on un-augmented in-memory data), ``epoch_s``,
        ``epochs`` and ``total_s`` = ``setup_s + epochs * epoch_s``.
    """
    if not isinstance(spec, (TeacherSpec, StudentSpec)):
        raise TypeError(f"spec must be a TeacherSpec or a StudentSpec, got {type(spec).__name__}")
    check_data(data)
    check_int(steps, "steps", minimum=1)
    check_int(warmup, "warmup", minimum=0)
    dev = resolve_device(device)
    cfg = spec.train
    setup = time.perf_counter()
    extra: list = []
    if isinstance(spec, TeacherSpec):
        model = build_model(spec.model, data, cfg.seed, spec.model_kwargs).to(dev)
        objective, eval_data = teacher_objective(), data.test
    elif isinstance(spec, StudentSpec):
        if spec.method == UNTRAINED:
            return dict(step_s=0.0, steps_per_epoch=0, eval_s=0.0, setup_s=0.0, epoch_s=0.0, epochs=0, total_s=0.0)
        if spec.loss.has_loss and teacher is None:
            raise ValueError(f"estimate_run needs the teacher network for method {spec.method!r}")
        run = build_run(spec, data, teacher if spec.loss.has_loss else None, dev)
        model, transfer, teacher = run.model, run.loss, run.teacher
        extra = list(transfer.parameters()) if transfer is not None else []
        objective = student_objective(spec, transfer, teacher, data.train, dev)
        eval_data = data.test if spec.mode == CLASS_AWARE else None
    opt, _ = make_optimizer(list(model.parameters()) + extra, cfg)
    source = training_batches(data.train, cfg, dev)
    step = train_step(model, objective, opt, cfg, dev)
    _sync(dev)
    setup_s = time.perf_counter() - setup
    model.train()

    def batches():
        epoch = 0
        while True:
            yield from source.epoch(epoch)
            epoch += 1

    it = batches()
    for _ in range(warmup):
        step(*next(it))
    _sync(dev)
    start = time.perf_counter()
    for _ in range(steps):
        terms = step(*next(it))
    float(terms["loss"])
    _sync(dev)
    step_s = (time.perf_counter() - start) / steps
    eval_s = 0.0
    if eval_data is not None and len(eval_data):
        model.eval()
        test = BatchSource(eval_data, 512, device=dev)
        taken, start = 0, time.perf_counter()
        with torch.no_grad():
            for x, _, _ in test.epoch(0):
                model(x)
                taken += x.shape[0]
                if taken >= 1024:
                    break
        _sync(dev)
        eval_s = (time.perf_counter() - start) * len(eval_data) / taken
    epoch_s = step_s * len(source) + eval_s
    return dict(step_s=step_s, steps_per_epoch=len(source), eval_s=eval_s, setup_s=setup_s, epoch_s=epoch_s,
                epochs=cfg.epochs, total_s=setup_s + cfg.epochs * epoch_s)
