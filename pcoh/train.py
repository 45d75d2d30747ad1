"""Teacher training, transfer training and cached, resumable runs.

A run is described by a frozen dataclass (:class:`TeacherSpec`, :class:`StudentSpec`); its hash
names a folder ``<root>/runs/<kind>-<hash>/`` that holds the run's ``config.json``, a checkpoint
written atomically after every epoch (``checkpoint.pt``), and, once finished, the final weights
and learning curves (``final.pt``). Asking for the same run again loads it instead of training; a
run that was interrupted resumes from its last checkpoint and ends with the same weights as an
uninterrupted run on the same device (each epoch's shuffling is seeded from the run's seed and
the epoch number). The cache's rules (safe loading, damaged files moved aside, one process per
run, signals, NaN losses) live in :mod:`pcoh.runs`.

Objectives (DESIGN §1.3):

- teacher: cross-entropy;
- student, ``mode="class-unaware"``: ``weight * L_transfer(student, teacher)``, no label used;
- student, ``mode="class-aware"``: ``ce_weight * CE(y, logits) + weight * L_transfer``; KD is
  class-aware only; method ``"ce"`` trains on labels alone (no teacher).

The transfer loss comes from :func:`pcoh.losses.get` by name, so this loop never special-cases
a method.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import json
import math
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import losses as _losses
from . import models as _models
from . import runs as _runs
from .data import DataSplit
# The run cache lives in pcoh.runs; these names stay importable from here.
from .runs import atomic_save as _atomic_save
from .runs import run_dir
from .runs import run_key as _hash
from .runs import write_json as _write_json

__all__ = [
    "TrainConfig",
    "TeacherSpec",
    "StudentSpec",
    "TrainedModel",
    "MODES",
    "method_allows_mode",
    "train_teacher",
    "train_student",
    "resolve_device",
    "run_dir",
]

MODES = ("class-unaware", "class-aware")
#: Methods that are not transfer losses: labels alone, or no training at all (a reference).
LABEL_ONLY = "ce"
UNTRAINED = "untrained"
#: Seeds (and numbers of seeds) stay below this, so every derived torch seed fits in 64 bits.
MAX_SEED = 2**32


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one run.

    Parameters
    ----------
    epochs : int, default 30
    batch_size : int, default 128
    optimizer : {"adam", "sgd"}, default "adam"
        ``"adam"``: Adam; ``"sgd"``: SGD with Nesterov-free momentum (the CIFAR-100 benchmark).
    lr : float, default 1e-3
    momentum : float, default 0.9
        SGD only.
    weight_decay : float, default 0.0
    milestones : tuple of int, default ()
        Epochs at which the learning rate is multiplied by ``gamma``.
    gamma : float, default 0.1
    seed : int, default 0
        Seeds the weights and every epoch's shuffling.
    """

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple = ()
    gamma: float = 0.1
    seed: int = 0

    def __post_init__(self):
        _positive_int(self.epochs, "epochs", allow_zero=True)
        _positive_int(self.batch_size, "batch_size")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        for name, low in (("lr", "positive"), ("gamma", "positive"), ("momentum", "non-negative"),
                          ("weight_decay", "non-negative")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) else ""
                raise TypeError(f"{name} must be a {low} number, got {type(value).__name__} {value!r}{hint}")
            if not math.isfinite(value) or value < 0 or (low == "positive" and value == 0):
                raise ValueError(f"{name} must be a {low} finite number, got {value!r}")
        milestones = self.milestones
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (list, tuple)):
            raise TypeError(f"milestones must be a list of epoch numbers, got {type(milestones).__name__} {milestones!r}")
        for m in milestones:
            _positive_int(m, "each of milestones")
        object.__setattr__(self, "milestones", tuple(int(m) for m in milestones))
        _positive_int(self.seed, "seed", allow_zero=True)
        if self.seed >= MAX_SEED:  # torch seeds are 64-bit; each epoch's seed is derived from this one
            raise ValueError(f"seed must be below {MAX_SEED}, got {self.seed}")


def method_allows_mode(method: str, mode: str) -> bool:
    """False for the methods that need labels (``ce``, and losses on logits such as KD) in
    ``mode="class-unaware"``; True otherwise."""
    label_bound = method == LABEL_ONLY or (method in _losses.LOSSES and _losses.LOSSES[method].class_aware_only)
    return mode == "class-aware" or not label_bound


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher run: data set, architecture and optimisation.

    ``data`` holds the keyword arguments of :func:`pcoh.data.load` that change the data
    (e.g. ``{"test_size": 0.2, "seed": 0}``); it is part of the cache key.
    """

    dataset: str = "digits"
    model: str = "digits_resnet"
    train: TrainConfig = field(default_factory=TrainConfig)
    data: dict = field(default_factory=dict)
    model_kwargs: dict = field(default_factory=dict)
    checkpoint: Optional[str] = None  # a user's weights: used instead of training

    def key(self) -> str:
        return _hash({"kind": "teacher", **_asdict(self)})


@dataclass(frozen=True)
class StudentSpec:
    """A student run: architecture, transfer method, mode and optimisation.

    Parameters
    ----------
    model : str
        Registry name of the student (:func:`pcoh.models.available`).
    method : str
        A loss name (:func:`pcoh.losses.available`), ``"ce"`` (labels alone) or ``"untrained"``
        (the initial weights, as a reference).
    mode : {"class-unaware", "class-aware"}
    weight : float, optional
        Multiplier of the transfer loss; default the loss's ``default_weight``.
    loss_kwargs : dict
        Constructor arguments of the loss (e.g. ``{"regularization_strength": 0.1}``).
    """

    model: str = "digits_cnn"
    method: str = "pc"
    mode: str = "class-unaware"
    weight: Optional[float] = None
    loss_kwargs: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        known = _losses.available() + [LABEL_ONLY, UNTRAINED]
        if self.method not in known:
            raise ValueError(f"unknown method {self.method!r}; expected one of {sorted(known)}")
        if not method_allows_mode(self.method, self.mode):
            raise ValueError(f"method {self.method!r} uses labels and exists only in mode 'class-aware'")
        if self.weight is not None and (isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not self.weight > 0):
            raise ValueError(f"weight must be a positive number or None, got {self.weight!r}")

    def key(self, teacher_key: str) -> str:
        # The loss's own defaults are part of the run: changing one must not reuse stale runs.
        defaults = {}
        if self.method in _losses.LOSSES:
            params = inspect.signature(_losses.LOSSES[self.method].__init__).parameters.values()
            defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        return _hash({"kind": "student", "teacher": teacher_key, "loss_defaults": defaults, **_asdict(self)})


@dataclass
class TrainedModel:
    """A trained (or loaded) model with its learning curves and run folder."""

    model: nn.Module
    history: list = field(default_factory=list)
    path: Optional[Path] = None
    cached: bool = False


# ----------------------------------------------------------------------------- helpers
def _positive_int(value, name: str, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _asdict(spec) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str))


def resolve_device(device: Optional[str] = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when present, else CPU; otherwise ``torch.device(device)``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine")
    return dev


def _make_optimizer(params, cfg: TrainConfig):
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return opt, sched


def _progress(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=quiet, leave=False, dynamic_ncols=True)


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, *, batch_size: int = 512, device=None):
    """Features, logits and labels of a data set, in order, on the CPU.

    Returns
    -------
    features : torch.Tensor, (n, feature_dim)
    logits : torch.Tensor, (n, num_classes)
    labels : torch.Tensor, (n,)
    """
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, logits, labels = [], [], []
    for batch in _batches(dataset, batch_size):
        out = model(batch[0].to(dev))
        feats.append(out.features.float().cpu())
        logits.append(out.logits.float().cpu())
        labels.append(torch.as_tensor(batch[1]).cpu())
    model.train(was_training)
    return torch.cat(feats), torch.cat(logits), torch.cat(labels)


def _batches(dataset: Dataset, batch_size: int, *, shuffle: bool = False, generator=None, drop_last: bool = False):
    """Mini-batches as lists of tensors.

    In-memory data (a TensorDataset) is sliced directly, which on small images is several times
    faster than a DataLoader collating items one by one; other data sets go through a DataLoader.
    The shuffling order depends only on ``generator`` in both cases.
    """
    if isinstance(dataset, TensorDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for lo in range(0, stop, batch_size):
            idx = order[lo:lo + batch_size]
            yield [t[idx] for t in dataset.tensors]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)
    for batch in loader:
        yield [torch.as_tensor(b) for b in batch]


def _accuracy(model: nn.Module, dataset: Dataset, device) -> float:
    _, logits, y = predict(model, dataset, device=device)
    return float((logits.argmax(dim=1) == y).float().mean())


# ----------------------------------------------------------------------------- the loop
#: What a training checkpoint holds; "loss" is the transfer loss's state_dict (parameters and
#: buffers such as a feature queue or a memory bank), so a resumed run continues exactly.
_CHECKPOINT_KEYS = ("model", "loss", "optimizer", "scheduler", "rng", "history", "epoch")


def _resume(ckpt_path: Path, model: nn.Module, transfer: Optional[nn.Module], opt, sched, device) -> tuple:
    """``(history, first epoch)`` from ``checkpoint.pt``; ``([], 0)`` when there is none.

    A checkpoint that cannot be read or applied is moved aside (:func:`pcoh.runs.quarantine`)
    and every object is put back in its initial state, so the run restarts exactly as a fresh one.
    """
    if not ckpt_path.exists():
        return [], 0
    objects = [obj for obj in (model, transfer, opt, sched) if obj is not None]
    initial = [copy.deepcopy(obj.state_dict()) for obj in objects]
    try:
        state = _runs.load_checkpoint(ckpt_path, map_location=device)
        if not isinstance(state, dict) or not set(_CHECKPOINT_KEYS) <= set(state):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise _runs.CorruptFileError(f"not a training checkpoint of this version (found {found})")
        history, epoch = state["history"], state["epoch"]
        if not isinstance(history, list) or not isinstance(epoch, int) or len(history) != epoch:
            raise _runs.CorruptFileError(f"inconsistent history and epoch ({type(history).__name__}, {epoch!r})")
        model.load_state_dict(state["model"])
        if transfer is not None:
            transfer.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"].cpu())
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        for obj, saved in zip(objects, initial):
            obj.load_state_dict(saved)
        _runs.quarantine(ckpt_path, str(err))
        return [], 0
    return history, epoch


def _train_run(model: nn.Module, objective, transfer: Optional[nn.Module], dataset: Dataset, cfg: TrainConfig,
               path: Path, *, desc: str, **kwargs) -> list:
    """:func:`_fit` with SIGINT/SIGTERM turned into :class:`pcoh.runs.TrainingInterrupted`.

    The exception names the run folder and the epoch whose checkpoint is on disk; signals that
    arrive while a checkpoint is written wait until it is complete.
    """
    with _runs.Interrupts() as interrupts:
        try:
            return _fit(model, objective, transfer, dataset, cfg, path, desc=desc, interrupts=interrupts, **kwargs)
        except KeyboardInterrupt as err:
            _close_progress_bars()
            signum = getattr(err, "signum", signal.SIGINT)
            raise _runs.TrainingInterrupted(signum, path=path, epoch=interrupts.checkpointed, epochs=cfg.epochs,
                                            desc=desc) from None
        except FloatingPointError:
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
    interrupts: Optional[_runs.Interrupts] = None,
) -> list:
    """Train ``model`` on ``objective(model, batch) -> dict of named losses, 'loss' the total``.

    ``transfer`` (the transfer loss, or ``None``) is trained along with the model and its state
    is checkpointed. Writes ``checkpoint.pt`` atomically after each epoch and, with ``resume``,
    continues from it when present. A non-finite epoch loss raises
    :class:`pcoh.runs.TrainingDiverged` before that epoch is saved.
    """
    params = list(model.parameters()) + (list(transfer.parameters()) if transfer is not None else [])
    opt, sched = _make_optimizer(params, cfg)
    ckpt_path = path / "checkpoint.pt"
    history, start = _resume(ckpt_path, model, transfer, opt, sched, device) if resume else ([], 0)
    hold = interrupts.hold if interrupts is not None else contextlib.nullcontext
    if interrupts is not None:
        interrupts.checkpointed = start
    steps = len(dataset) // cfg.batch_size if len(dataset) > cfg.batch_size else 1
    bar = _progress(cfg.epochs * steps, desc, quiet)
    bar.update(start * steps)
    for epoch in range(start, cfg.epochs):
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        loader = _batches(dataset, cfg.batch_size, shuffle=True, generator=gen, drop_last=len(dataset) > cfg.batch_size)
        sums: dict = {}
        count = 0
        for batch in loader:
            batch = [b.to(device) for b in batch]
            terms = objective(model, batch)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            k = batch[0].shape[0]
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * k
            count += k
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(terms['loss'].detach()):.4f}")
        sched.step()
        record = {"epoch": epoch + 1, **{name: total / max(count, 1) for name, total in sums.items()}}
        if not all(math.isfinite(v) for v in record.values()):
            raise _runs.TrainingDiverged(desc, path, epoch + 1, epoch, record)
        if eval_data is not None:
            record["test_accuracy"] = _accuracy(model, eval_data, device)
        history.append(record)
        with hold():  # a signal waits for the write: the epoch just finished is kept
            _atomic_save(
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
    bar.close()
    return history


def _load_final(path: Path, model: nn.Module, device) -> Optional[list]:
    """Load a finished run's weights into ``model``; its history, or ``None`` when there is no
    usable ``final.pt`` (a damaged one is moved aside and ``model`` keeps its initial weights)."""
    final = path / "final.pt"
    if not final.exists():
        return None
    initial = copy.deepcopy(model.state_dict())
    try:
        state = _runs.load_checkpoint(final, map_location=device)
        if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("history"), list):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise _runs.CorruptFileError(f"not a finished run (expected 'model' and 'history', found {found})")
        model.load_state_dict(state["model"])
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        model.load_state_dict(initial)
        _runs.quarantine(final, str(err))
        return None
    _repair_json(path / "history.json", state["history"])
    return state["history"]


def _repair_json(path: Path, content, *, overwrite: bool = False) -> None:
    """Write ``content`` to a JSON file that is missing or damaged (moved aside first), or always
    with ``overwrite``."""
    if path.exists():
        try:
            _runs.read_json(path)
            if not overwrite:
                return
        except (ValueError, OSError) as err:
            _runs.quarantine(path, str(err))
    _write_json(content, path)


def _finish(path: Path, model: nn.Module, history: list, extra: Optional[dict] = None) -> None:
    _atomic_save({"model": model.state_dict(), "history": history, **(extra or {})}, path / "final.pt")
    _write_json(history, path / "history.json")
    ckpt = path / "checkpoint.pt"
    if ckpt.exists():
        ckpt.unlink()


def _build(name: str, data: DataSplit, seed: int, model_kwargs: dict) -> nn.Module:
    kwargs = dict(num_classes=data.num_classes, in_channels=data.in_channels or 1, image_size=data.image_size or 8)
    return _models.create(name, **kwargs, seed=seed, **model_kwargs)


def train_teacher(
    spec: TeacherSpec,
    data: DataSplit,
    *,
    root="data",
    device=None,
    quiet: bool = False,
    cache: bool = True,
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

    Returns
    -------
    TrainedModel
        The teacher in eval mode on ``device``.

    Raises
    ------
    FileNotFoundError, ValueError
        ``spec.checkpoint`` is missing, unsafe or damaged (:class:`pcoh.runs.UnsafeCheckpointError`,
        :class:`pcoh.runs.CorruptFileError`), or does not match the architecture.
    pcoh.runs.TrainingInterrupted
        SIGINT or SIGTERM during training (the last finished epoch is saved).
    pcoh.runs.TrainingDiverged
        The loss became NaN or infinite (the last finite epoch is saved).
    """
    dev = resolve_device(device)
    model = _build(spec.model, data, spec.train.seed, spec.model_kwargs).to(dev)
    if spec.checkpoint is not None:
        state = _runs.load_weights(model, spec.checkpoint, what="teacher checkpoint")
        history = state.get("history", [])
        return TrainedModel(model.eval(), history if isinstance(history, list) else [], Path(spec.checkpoint), True)
    path = run_dir(root, "teacher", spec.key())
    config = {"kind": "teacher", **_asdict(spec)}
    with _runs.run_lock(path):  # a second process waits here, then finds the finished run
        if cache:
            history = _load_final(path, model, dev)
            if history is not None:
                _repair_json(path / "config.json", config)
                return TrainedModel(model.eval(), history, path, True)
        _repair_json(path / "config.json", config, overwrite=True)
        ce = nn.CrossEntropyLoss()

        def objective(net, batch):
            loss = ce(net(batch[0]).logits, batch[1])
            return {"loss": loss, "ce": loss}

        torch.manual_seed(spec.train.seed)
        history = _train_run(model, objective, None, data.train, spec.train, path, device=dev,
                             desc=f"teacher {spec.model}", quiet=quiet, eval_data=data.test, resume=cache)
        _finish(path, model, history)
    return TrainedModel(model.eval(), history, path, False)


def _with_teacher_outputs(dataset: Dataset, teacher: nn.Module, device) -> Optional[TensorDataset]:
    """For in-memory data without augmentation, compute the teacher's outputs once."""
    if not (isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2):
        return None
    feats, logits, _ = predict(teacher, dataset, device=device)
    x, y = dataset.tensors
    return TensorDataset(x, y, feats, logits)


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

    Returns
    -------
    TrainedModel
        The student in eval mode; ``history`` has per-epoch means of ``loss``, ``transfer``
        and (class-aware) ``ce``, and ``test_accuracy``.
    """
    dev = resolve_device(device)
    teacher_net = teacher.model if isinstance(teacher, TrainedModel) else teacher
    teacher_net = teacher_net.to(dev).eval()
    for p in teacher_net.parameters():
        p.requires_grad_(False)
    student = _build(spec.model, data, spec.train.seed, spec.model_kwargs).to(dev)
    transfer = None
    if spec.method not in (LABEL_ONLY, UNTRAINED):
        transfer = _losses.get(
            spec.method, student_dim=student.feature_dim, teacher_dim=teacher_net.feature_dim, **spec.loss_kwargs
        ).to(dev)
    if spec.method == UNTRAINED:
        return TrainedModel(student.eval(), [], None, False)
    path = run_dir(root, "student", spec.key(teacher_key))
    config = {"kind": "student", "teacher": teacher_key, **_asdict(spec)}
    with _runs.run_lock(path):  # a second process waits here, then finds the finished run
        if cache:
            history = _load_final(path, student, dev)
            if history is not None:
                _repair_json(path / "config.json", config)
                return TrainedModel(student.eval(), history, path, True)
        _repair_json(path / "config.json", config, overwrite=True)
        history = _train_student(spec, student, transfer, teacher_net, data, path, dev, quiet=quiet, resume=cache)
    return TrainedModel(student.eval(), history, path, False)


def _train_student(spec: StudentSpec, student: nn.Module, transfer, teacher_net: nn.Module, data: DataSplit,
                   path: Path, dev, *, quiet: bool, resume: bool) -> list:
    """The student's objective and training loop, run with the run folder locked; its history."""
    weight = float(spec.weight) if spec.weight is not None else (transfer.default_weight if transfer else 0.0)
    ce_weight = getattr(transfer, "ce_weight", 1.0) if transfer is not None else 1.0
    class_aware = spec.mode == "class-aware"
    ce = nn.CrossEntropyLoss()
    cached_teacher = _with_teacher_outputs(data.train, teacher_net, dev) if transfer is not None else None
    dataset = cached_teacher if cached_teacher is not None else data.train

    def objective(net, batch):
        x, y = batch[0], batch[1]
        out = net(x)
        terms = {}
        total = 0.0
        if transfer is not None:
            if len(batch) == 4:
                t_out = _models.ModelOutput(batch[2], batch[3])
            else:
                with torch.no_grad():
                    t_out = teacher_net(x)
            terms["transfer"] = transfer(out, t_out)
            total = weight * terms["transfer"]
        if class_aware:
            terms["ce"] = ce(out.logits, y)
            total = total + ce_weight * terms["ce"]
        terms["loss"] = total
        return terms

    torch.manual_seed(spec.train.seed)
    history = _train_run(student, objective, transfer, dataset, spec.train, path, device=dev,
                         desc=f"{spec.model} {spec.method} {spec.mode} s{spec.train.seed}", quiet=quiet,
                         eval_data=data.test if class_aware else None, resume=resume)
    _finish(path, student, history)
    return history
