"""Teacher training, transfer training and cached, resumable runs.

A run is described by a frozen dataclass of :mod:`pcoh.specs` (:class:`TeacherSpec`, :class:`StudentSpec`); its hash
names a folder ``<root>/runs/<kind>-<hash>/`` that holds the run's ``config.json``, a checkpoint
written atomically after every epoch (``checkpoint.pt``), and, once finished, the final weights
and learning curves (``final.pt``). Asking for the same run again loads it instead of training; a
run that was interrupted resumes from its last checkpoint and ends with the same weights as an
uninterrupted run on the same device (each epoch's shuffling is seeded from the run's seed and
the epoch number). The cache's rules (safe loading, damaged files moved aside, one process per
run, signals, NaN losses) live in :mod:`pcoh.runs`.

This module holds the training functions and the loop over epochs (checkpoints, resuming,
signals, the callback). What they use has a module of its own: the run's model, frozen teacher
and loss (:mod:`pcoh.build`), the objectives (:mod:`pcoh.objectives`), one optimisation step
(:mod:`pcoh.steps`), prediction (:mod:`pcoh.prediction`); the estimates of a run's time are in
:mod:`pcoh.estimate`. Their public names are importable from here as well.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from . import batchnorm as _batchnorm
from . import distributed as _dist
from . import models as _models
from . import files as _files
from . import interrupts as _interrupts
from . import runs as _runs
from .batches import BatchSource
from .build import StudentRun, build_model, build_run
from .data import DataSplit
from .devices import resolve_device
from .estimate import estimate_run
from .methods import CLASS_AWARE
from .objectives import student_objective, teacher_objective
from .prediction import accuracy, predict
from .runs import run_dir
from .specs import (
    LABEL_ONLY, MAX_SEED, MODES, SPEED_FIELDS, UNTRAINED, StudentSpec, TeacherSpec, TrainConfig, as_dict,
    explicit_loss_kwargs, method_allows_mode,
)
# The loop calls the step by this module's name, so that a test or a benchmark can wrap it here.
from .steps import make_optimizer, training_batches
from .steps import train_step as _train_step

__all__ = [
    "TrainConfig",
    "TeacherSpec",
    "StudentSpec",
    "TrainedModel",
    "MODES",
    "LABEL_ONLY",
    "UNTRAINED",
    "MAX_SEED",
    "SPEED_FIELDS",
    "method_allows_mode",
    "train_teacher",
    "train_student",
    "resolve_device",
    "explicit_loss_kwargs",
    "estimate_run",
    "build_model",
    "run_dir",
    "StopTraining",
]


@dataclass
class TrainedModel:
    """A trained (or loaded) model with its learning curves and run folder."""

    model: nn.Module
    history: list = field(default_factory=list)
    path: Optional[Path] = None
    cached: bool = False
    #: True when a ``callback`` or ``stop`` ended the run before its last epoch (not cached as finished).
    stopped: bool = False


class StopTraining(Exception):
    """Raised by a training ``callback`` (or returned ``False`` from it) to end a run early.

    :func:`train_student` and :func:`train_teacher` catch it and return the model as it is, with
    ``stopped=True``; the run is not cached as finished (its last epoch's checkpoint stays, so the
    same call without a callback resumes it). ``history`` holds the epochs that finished.
    """

    def __init__(self, *args, history: Optional[list] = None):
        super().__init__(*args)
        self.history = history


def _check_callback(callback, stop) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(epoch, model, loss) or None, "
                        f"got {type(callback).__name__}")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must be a threading.Event (anything with is_set()) or None, got {type(stop).__name__}")


def _notify(callback, epoch: int, model: nn.Module, loss: float, history: list) -> None:
    """``callback(epoch, model, loss)`` with ``model`` in eval mode and no gradient; ``False`` or
    :class:`StopTraining` from it stops the run (after the epoch's checkpoint was written)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            verdict = callback(epoch, model, loss)
    except StopTraining as err:
        if err.history is None:
            err.history = history
        raise
    finally:
        model.train(was_training)
    if verdict is False:
        raise StopTraining(f"the callback returned False after epoch {epoch}", history=history)


def _stop_check(stop, history: list):
    """A function that raises :class:`StopTraining` once ``stop.is_set()`` (None without ``stop``)."""
    if stop is None:
        return None

    def check():
        if stop.is_set():
            raise StopTraining("stop was set", history=history)

    return check


def without_idle_amp(spec, device):
    """``spec`` with ``train.amp`` off where it changes nothing (any device but CUDA), with a warning:
    such a run is the float32 run, with its cache key."""
    if not spec.train.amp or resolve_device(device).type == "cuda":
        return spec
    warnings.warn("amp (bf16 autocast) is used on CUDA only; training in float32 on the CPU, the run of amp off",
                  stacklevel=3)
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, amp=False))


def _progress(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)


# ----------------------------------------------------------------------------- the loop
def _train_run(model: nn.Module, objective, transfer: Optional[nn.Module], dataset: Dataset, cfg: TrainConfig,
               path: Path, *, desc: str, **kwargs) -> list:
    """:func:`_fit` with SIGINT/SIGTERM turned into :class:`pcoh.interrupts.TrainingInterrupted`.

    The exception names the run folder and the epoch whose checkpoint is on disk; signals that
    arrive while a checkpoint is written wait until it is complete.
    """
    with _interrupts.Interrupts() as interrupts:
        try:
            return _fit(model, objective, transfer, dataset, cfg, path, desc=desc, interrupts=interrupts, **kwargs)
        except KeyboardInterrupt as err:
            _close_progress_bars()
            signum = getattr(err, "signum", signal.SIGINT)
            raise _interrupts.TrainingInterrupted(signum, path=path, epoch=interrupts.checkpointed, epochs=cfg.epochs,
                                            desc=desc) from None
        except (FloatingPointError, StopTraining):
            _close_progress_bars()
            raise
        except (ValueError, RuntimeError) as err:
            # Weights blown up to NaN/Inf make the loss's input checks fail inside an epoch: the
            # same divergence as a NaN epoch loss, reported the same way.
            if "NaN" not in str(err) and all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise
            _close_progress_bars()
            done = interrupts.checkpointed
            raise _runs.TrainingDiverged(desc, path, done + 1, done, detail=str(err)) from err


def _close_progress_bars() -> None:
    # A bar left open would put its last frame on the line of the message that follows.
    from tqdm.auto import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _fit(
    model: nn.Module,
    objective,
    transfer: Optional[nn.Module],
    dataset: Dataset,
    cfg: TrainConfig,
    path: Path,
    *,
    device: torch.device,
    desc: str,
    quiet: bool,
    eval_data: Optional[Dataset] = None,
    resume: bool = True,
    interrupts: Optional[_interrupts.Interrupts] = None,
    recompute_bn: bool = False,
    callback=None,
    stop=None,
) -> list:
    """Train ``model`` on ``objective(model, x, y, idx) -> dict of named losses, 'loss' the total``.

    ``transfer`` (the transfer loss, or ``None``) is trained along with the model and its state
    is checkpointed. Writes ``checkpoint.pt`` atomically after each epoch (the model, the optimiser,
    the scheduler, the RNG state, the history and, as ``"loss"``, the transfer loss's state dict:
    its parameters and buffers such as a feature queue or a memory bank, so a resumed run continues
    exactly) and, with ``resume``, continues from it when present. A non-finite epoch loss raises
    :class:`pcoh.runs.TrainingDiverged` before that epoch is saved. Under ``torchrun``
    (:mod:`pcoh.distributed`) every process trains on its shard of each global batch of
    ``cfg.batch_size`` samples, with averaged gradients; only rank 0 writes. With
    ``recompute_bn`` the batch-norm statistics are recomputed (:mod:`pcoh.batchnorm`) over the
    epoch's batches before each held-out evaluation and at the end. ``callback(epoch, model, loss)``
    runs after each epoch's checkpoint and ``stop`` is checked after every batch
    (:class:`StopTraining`).
    """
    _dist.check_batch_size(cfg.batch_size, "batch_size")
    loss_params = list(transfer.parameters()) if transfer is not None else []
    params = list(model.parameters()) + loss_params
    opt, sched = make_optimizer(params, cfg)
    ckpt_path = path / "checkpoint.pt"
    history, start = _runs.resume(ckpt_path, model, transfer, opt, sched) if resume else ([], 0)
    hold = interrupts.hold if interrupts is not None else contextlib.nullcontext
    if interrupts is not None:
        interrupts.checkpointed = start
    source = training_batches(dataset, cfg, device)
    step = _train_step(model, objective, opt, cfg, device, shared=loss_params)
    steps = len(source)
    bar = _progress(cfg.epochs * steps, desc, quiet)
    bar.update(start * steps)
    recomputed = None  # the epoch whose batches last gave the batch-norm statistics
    for epoch in range(start, cfg.epochs):
        model.train()
        sums, count = _run_epoch(source, step, epoch, bar, stop=_stop_check(stop, history))
        sched.step()
        if _dist.is_distributed():  # means over the global batch, identical on every process
            names = sorted(sums)
            *totals, count = _dist.all_reduce_sum([sums[k] for k in names] + [count], device)
            sums = dict(zip(names, totals))
        record = {"epoch": epoch + 1, **{name: total / max(count, 1) for name, total in sums.items()}}
        if not all(math.isfinite(v) for v in record.values()):
            raise _runs.TrainingDiverged(desc, path, epoch + 1, epoch, record)
        if recompute_bn and eval_data is not None:  # on every process: a global batch norm reduces
            _recompute_bn(model, source, epoch, device)
            recomputed = epoch
        if eval_data is not None and _dist.is_main():
            record["test_accuracy"] = accuracy(model, eval_data, device)
        history.append(record)
        with hold():  # a signal waits for the write: the epoch just finished is kept
            if _dist.is_main():
                _files.atomic_save(
                    {
                        "model": model.state_dict(),
                        "loss": transfer.state_dict() if transfer is not None else {},
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "rng": torch.get_rng_state(),
                        "history": history,
                        "epoch": epoch + 1,
                    },
                    ckpt_path,
                )
            if interrupts is not None:
                interrupts.checkpointed = epoch + 1
        if callback is not None:
            _notify(callback, epoch + 1, model, record["loss"], history)
    bar.close()
    if recompute_bn and cfg.epochs > 0 and recomputed != cfg.epochs - 1:  # e.g. a class-unaware student
        _recompute_bn(model, source, cfg.epochs - 1, device)
    _dist.unsync_batchnorm(model)
    return history


def _recompute_bn(model: nn.Module, source: BatchSource, epoch: int, device: torch.device) -> None:
    """Batch-norm statistics of ``model`` over the batches of ``epoch`` (each process its shard)."""
    batches = (_dist.shard(batch)[0] for batch in source.epoch(epoch))
    _batchnorm.recompute_statistics(model, batches, devices=[device] if device.type == "cuda" else [])


def _run_epoch(source: BatchSource, step, epoch: int, bar, every: int = 20, seconds: float = 0.5, stop=None):
    """One epoch of ``step`` over ``source``; returns the per-sample sums of the loss terms (floats)
    and the sample count.

    The sums stay on the device and are read once at the end; the progress bar reads the running
    loss (one synchronisation) every ``every`` steps or ``seconds``, and never when it is hidden.
    ``stop()``, when given, runs after every step (it raises to stop).
    """
    sums: dict = {}
    count = 0
    shown, last = 0, time.perf_counter()
    for i, batch in enumerate(source.epoch(epoch)):
        x, y, idx = _dist.shard(batch)  # this process's slice of the global batch (all of it in one)
        terms = step(x, y, idx)
        if stop is not None:
            stop()
        k = x.shape[0]
        for name, value in terms.items():
            sums[name] = sums[name] + value * k if name in sums else value * k
        count += k
        if not bar.disable and ((i + 1) % every == 0 or time.perf_counter() - last > seconds):
            bar.update(i + 1 - shown)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(sums['loss']) / count:.4f}")
            shown, last = i + 1, time.perf_counter()
    bar.update(len(source) - shown)
    if sums:
        values = torch.stack([v.float() for v in sums.values()]).tolist()  # the epoch's one read
        sums = dict(zip(sums, values))
    return sums, count


def _cached(path: Path, config: dict, model: nn.Module, dev, cache: bool, train) -> TrainedModel:
    """:func:`pcoh.runs.cached_run` with its result as a :class:`TrainedModel`; a run ended by
    :class:`StopTraining` is returned as it is, ``stopped``, and not written as finished."""
    try:
        history, cached = _runs.cached_run(path, config, model, dev, cache, train)
    except StopTraining as stop:
        return TrainedModel(model.eval(), list(stop.history or []), path, False, stopped=True)
    return TrainedModel(model.eval(), history, path, cached)


def train_teacher(
    spec: TeacherSpec,
    data: DataSplit,
    *,
    root="data",
    device=None,
    quiet: bool = False,
    cache: bool = True,
    callback=None,
    stop=None,
) -> TrainedModel:
    """Train a teacher with cross-entropy, or load it from the cache or a user's checkpoint.

    Parameters
    ----------
    spec : TeacherSpec
    data : DataSplit
        The data set named by ``spec.dataset`` (loaded by the caller, see :func:`pcoh.data.load`).
    root : path, default "data"
        Cached runs live in ``<root>/runs/``.
    device : str, optional
        ``"auto"``/``None`` (CUDA when present), ``"cpu"``, ``"cuda"``.
    quiet : bool, default False
        Hide the progress bar.
    cache : bool, default True
        Load a finished run with the same spec instead of training; ``False`` retrains.
    callback : callable, optional
        ``callback(epoch, model, loss)`` after each epoch (``epoch`` counts from 1; ``model`` in
        eval mode under ``torch.no_grad()``; ``loss`` the epoch's mean training loss, a float),
        once its checkpoint is written: to log, plot or stop. Returning ``False`` or raising
        :class:`StopTraining` ends the run early: the model is returned as it is with
        ``stopped=True`` and the run is not cached as finished (a later call resumes it). Any other
        exception propagates, and the run folder keeps that epoch's checkpoint, nothing more. Not
        called for a run loaded from the cache. Under ``torchrun`` it runs on every process, which
        must decide alike.
    stop : threading.Event, optional
        Checked after every batch: once set, training stops within one batch, as for
        :class:`StopTraining` (the weights are those after that batch; the checkpoint holds the
        last finished epoch). For a Stop button while training runs in another thread.

    Returns
    -------
    TrainedModel
        The teacher in eval mode on ``device``.

    Raises
    ------
    FileNotFoundError, ValueError
        ``spec.checkpoint`` is missing, unsafe or damaged (:class:`pcoh.files.UnsafeCheckpointError`,
        :class:`pcoh.files.CorruptFileError`), or does not match the architecture.
    pcoh.interrupts.TrainingInterrupted
        SIGINT or SIGTERM during training (the last finished epoch is saved).
    pcoh.runs.TrainingDiverged
        The loss became NaN or infinite (the last finite epoch is saved).
    """
    dev = resolve_device(device)
    spec = without_idle_amp(spec, dev)
    _check_callback(callback, stop)
    model = build_model(spec.model, data, spec.train.seed, spec.model_kwargs).to(dev)
    if spec.checkpoint is not None:
        state = _models.load_weights(model, spec.checkpoint, what="teacher checkpoint")
        history = state.get("history", [])
        return TrainedModel(model.eval(), history if isinstance(history, list) else [], Path(spec.checkpoint), True)
    path = run_dir(root, "teacher", spec.key())

    def train() -> list:
        torch.manual_seed(spec.train.seed)
        return _train_run(model, teacher_objective(), None, data.train, spec.train, path, device=dev,
                          desc=f"teacher {spec.model}", quiet=quiet, eval_data=data.test, resume=cache,
                          recompute_bn=_batchnorm.recomputed(spec.model), callback=callback, stop=stop)

    return _cached(path, {"kind": "teacher", **as_dict(spec)}, model, dev, cache, train)


def train_student(
    spec: StudentSpec,
    teacher: TrainedModel | nn.Module,
    data: DataSplit,
    *,
    teacher_key: str = "",
    root="data",
    device=None,
    quiet: bool = False,
    cache: bool = True,
    callback=None,
    stop=None,
) -> TrainedModel:
    """Train a student against a teacher with a transfer loss, class-unaware or class-aware.

    Parameters
    ----------
    spec : StudentSpec
    teacher : TrainedModel or nn.Module
        A model returning :class:`pcoh.models.ModelOutput`; frozen (eval mode, no gradient).
    data : DataSplit
    teacher_key : str
        Identifies the teacher in the cache key (``TeacherSpec.key()``); runs against different
        teachers must pass different keys.
    root, device, quiet, cache
        As :func:`train_teacher`.
    callback, stop
        As :func:`train_teacher`: ``callback(epoch, student, loss)`` after each epoch, to log, plot
        or stop early (return ``False`` or raise :class:`StopTraining`); ``stop`` a
        ``threading.Event`` checked after every batch.

    Returns
    -------
    TrainedModel
        The student in eval mode; ``history`` has per-epoch means of ``loss``, ``transfer``
        and (class-aware) ``ce``, and ``test_accuracy``; ``stopped`` when ended early.
    """
    _check_callback(callback, stop)
    spec = without_idle_amp(spec, device)
    run = build_run(spec, data, teacher.model if isinstance(teacher, TrainedModel) else teacher, device)
    student, transfer, teacher_net, dev = run.model, run.loss, run.teacher, run.device
    if spec.method == UNTRAINED:
        return TrainedModel(student.eval(), [], None, False)
    path = run_dir(root, "student", spec.key(teacher_key))
    config = {"kind": "student", "teacher": teacher_key, **as_dict(spec)}
    return _cached(path, config, student, dev, cache,
                       lambda: _train_student(spec, student, transfer, teacher_net, data, path, dev, quiet=quiet,
                                              resume=cache, callback=callback, stop=stop))


def _train_student(spec: StudentSpec, student: nn.Module, transfer, teacher_net: nn.Module, data: DataSplit,
                   path: Path, dev, *, quiet: bool, resume: bool, callback=None, stop=None) -> list:
    """The student's objective and training loop, run with the run folder locked; its history."""
    class_aware = spec.mode == CLASS_AWARE
    objective = student_objective(spec, transfer, teacher_net, data.train, dev)

    torch.manual_seed(spec.train.seed)
    history = _train_run(student, objective, transfer, data.train, spec.train, path, device=dev,
                         desc=f"{spec.model} {spec.method} {spec.mode} s{spec.train.seed}", quiet=quiet,
                         eval_data=data.test if class_aware else None, resume=resume,
                         recompute_bn=_batchnorm.recomputed(spec.model), callback=callback, stop=stop)
    return history


