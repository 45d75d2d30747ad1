"""Teacher training, transfer training and cached, resumable runs.

A run is described by a frozen dataclass (:class:`TeacherSpec`, :class:`StudentSpec`); its hash
names a folder ``<root>/runs/<kind>-<hash>/`` that holds the run's ``config.json``, a checkpoint
written atomically after every epoch (``checkpoint.pt``), and, once finished, the final weights
and learning curves (``final.pt``). Asking for the same run again loads it instead of training; a
run that was interrupted resumes from its last checkpoint and ends with the same weights as an
uninterrupted run on the same device (each epoch's shuffling is seeded from the run's seed and
the epoch number).

Objectives (``docs/method.md`` §3):

- teacher: cross-entropy;
- student, ``mode="class-unaware"``: ``weight * L_transfer(student, teacher)``, no label used;
- student, ``mode="class-aware"``: ``ce_weight * CE(y, logits) + weight * L_transfer``; KD is
  class-aware only; method ``"ce"`` trains on labels alone (no teacher).

The transfer loss comes from :func:`pcoh.losses.get` by name, so this loop never special-cases
a method.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from . import losses as _losses
from . import methods as _methods
from . import models as _models
from .data import BatchSource, DataSplit

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
    "estimate_run",
    "run_dir",
]

MODES = _methods.MODES
#: Methods that are not transfer losses: labels alone, or no training at all (a reference).
LABEL_ONLY = "ce"
UNTRAINED = "untrained"
_FORMAT = 1  # bump to invalidate every cached run when the checkpoint layout changes


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
        Seeds the weights and every epoch's shuffling and augmentation.
    amp : bool, default False
        bf16 autocast of the model forwards on CUDA (the transfer loss stays float32); ignored,
        with a note, on the CPU. It changes the numerics, so it is part of the cache key (when
        True: runs cached without it keep their keys).
    channels_last : bool, default False
        Channels-last memory layout of models and image batches (faster convolutions on
        tensor cores).
    compile : bool, default False
        ``torch.compile`` the training step (mode ``"reduce-overhead"``, i.e. CUDA graphs, on
        CUDA). The last incomplete batch of an epoch is always dropped, so shapes are static.
    num_workers : int, optional
        Worker processes reading data sets that do not fit in memory (image folders); default
        one per core but one, at most 8.

    ``channels_last``, ``compile`` and ``num_workers`` change the speed, not the result (up to
    floating-point reassociation), and are left out of the cache key.
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
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    num_workers: Optional[int] = None

    def __post_init__(self):
        _positive_int(self.epochs, "epochs", allow_zero=True)
        _positive_int(self.batch_size, "batch_size")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        for name in ("lr", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        _positive_int(self.seed, "seed", allow_zero=True)
        for name in ("amp", "channels_last", "compile"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.num_workers is not None:
            _positive_int(self.num_workers, "num_workers", allow_zero=True)


#: TrainConfig fields that change the speed, not the result: not part of a run's cache key.
SPEED_FIELDS = ("channels_last", "compile", "num_workers")


def _key_dict(spec) -> dict:
    """A spec as the dict its cache key hashes: speed options dropped, ``amp`` only when on."""
    d = _asdict(spec)
    train = d.get("train", {})
    for name in SPEED_FIELDS:
        train.pop(name, None)
    if not train.get("amp", False):
        train.pop("amp", None)
    return d


def method_allows_mode(method: str, mode: str) -> bool:
    """False for the methods that need labels (``ce``, and losses on logits such as KD) in
    ``mode="class-unaware"``; True otherwise."""
    return _methods.allows_mode(method, mode)  # one rule, in the method registry


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
        return _hash({"kind": "teacher", **_key_dict(self)})


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
        return _hash({"kind": "student", "teacher": teacher_key, "loss_defaults": defaults, **_key_dict(self)})


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
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _asdict(spec) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str))


def _hash(obj: dict) -> str:
    text = json.dumps({"format": _FORMAT, **obj}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def run_dir(root, kind: str, key: str) -> Path:
    """Folder of a cached run: ``<root>/runs/<kind>-<key>``."""
    return Path(root) / "runs" / f"{kind}-{key}"


def _atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


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
    for x, y, _ in _batches(dataset, batch_size, device=dev):
        out = model(x)
        feats.append(out.features.float().cpu())
        logits.append(out.logits.float().cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(feats), torch.cat(logits), torch.cat(labels)


def _batches(dataset: Dataset, batch_size: int, *, device="cpu", shuffle: bool = False, seed: int = 0,
             epoch: int = 0, drop_last: bool = False, num_workers: Optional[int] = None):
    """Mini-batches ``(x, y, idx)`` on ``device``: one epoch of a :class:`pcoh.data.BatchSource`.

    In-memory data (tensor data sets, MNIST, CIFAR) are held on the device and augmented there;
    other data sets go through a DataLoader. The order and augmentation depend only on
    ``seed`` and ``epoch``.
    """
    source = BatchSource(dataset, batch_size, device=device, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         num_workers=num_workers)
    yield from source.epoch(epoch)


def _accuracy(model: nn.Module, dataset: Dataset, device) -> float:
    _, logits, y = predict(model, dataset, device=device)
    return float((logits.argmax(dim=1) == y).float().mean())


# ----------------------------------------------------------------------------- the loop
def _fit(
    model: nn.Module,
    objective,
    extra_params: list,
    dataset: Dataset,
    cfg: TrainConfig,
    path: Path,
    *,
    device: torch.device,
    desc: str,
    quiet: bool,
    eval_data: Optional[Dataset] = None,
) -> list:
    """Train ``model`` on ``objective(model, x, y, idx) -> dict of named losses, 'loss' the total``.

    Writes ``checkpoint.pt`` atomically after each epoch and resumes from it when present.
    """
    params = list(model.parameters()) + list(extra_params)
    opt, sched = _make_optimizer(params, cfg)
    source = _source(dataset, cfg, device)
    step = _train_step(model, objective, opt, cfg, device)
    history: list = []
    start = 0
    ckpt_path = path / "checkpoint.pt"
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        for p, saved in zip(extra_params, state["extra"]):
            p.data.copy_(saved.to(device))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"]
    steps = len(source)
    bar = _progress(cfg.epochs * steps, desc, quiet)
    bar.update(start * steps)
    for epoch in range(start, cfg.epochs):
        model.train()
        sums, count = _run_epoch(source, step, epoch, bar)
        sched.step()
        record = {"epoch": epoch + 1, **{name: total / max(count, 1) for name, total in sums.items()}}
        if not all(np.isfinite(v) for v in record.values()):
            raise FloatingPointError(f"{desc}: the loss became NaN or Inf at epoch {epoch + 1} ({record})")
        if eval_data is not None:
            record["test_accuracy"] = _accuracy(model, eval_data, device)
        history.append(record)
        _atomic_save(
            {
                "model": model.state_dict(),
                "extra": [p.detach().cpu() for p in extra_params],
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": torch.get_rng_state(),
                "history": history,
                "epoch": epoch + 1,
            },
            ckpt_path,
        )
    bar.close()
    return history


def _source(dataset: Dataset, cfg: TrainConfig, device: torch.device) -> BatchSource:
    """The training batches: shuffled, seeded per epoch, last incomplete batch dropped."""
    return BatchSource(dataset, cfg.batch_size, device=device, shuffle=True, drop_last=len(dataset) > cfg.batch_size,
                       seed=cfg.seed, num_workers=cfg.num_workers)


def _train_step(model: nn.Module, objective, opt, cfg: TrainConfig, device: torch.device):
    """``step(x, y, idx) -> dict of detached loss terms``: forward, backward, optimiser step.

    Nothing here reads a value back to the host, so steps queue up on an accelerator. With
    ``cfg.compile`` the whole step goes through ``torch.compile`` (CUDA graphs on CUDA).
    """
    amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not amp:
        warnings.warn("amp (bf16 autocast) is used on CUDA only; training in float32 on the CPU", stacklevel=3)
    channels_last = cfg.channels_last

    def step(x, y, idx):
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            terms = objective(model, x, y, idx)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {name: value.detach() for name, value in terms.items()}

    if channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        return torch.compile(step, mode="reduce-overhead" if device.type == "cuda" else None)
    return step


def _run_epoch(source: BatchSource, step, epoch: int, bar, every: int = 20, seconds: float = 0.5):
    """One epoch of ``step`` over ``source``; returns the per-sample sums of the loss terms (floats)
    and the sample count.

    The sums stay on the device and are read once at the end; the progress bar reads the running
    loss (one synchronisation) every ``every`` steps or ``seconds``, and never when it is hidden.
    """
    sums: dict = {}
    count = 0
    shown, last = 0, time.perf_counter()
    for i, (x, y, idx) in enumerate(source.epoch(epoch)):
        terms = step(x, y, idx)
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


def _finish(path: Path, model: nn.Module, history: list, extra: Optional[dict] = None) -> None:
    _atomic_save({"model": model.state_dict(), "history": history, **(extra or {})}, path / "final.pt")
    _write_json(history, path / "history.json")
    ckpt = path / "checkpoint.pt"
    if ckpt.exists():
        ckpt.unlink()


def _build(name: str, data: DataSplit, seed: int, model_kwargs: dict) -> nn.Module:
    kwargs = dict(num_classes=data.num_classes, in_channels=data.in_channels or 1, image_size=data.image_size or 8)
    return _models.create(name, **kwargs, seed=seed, **model_kwargs)


def _teacher_objective():
    ce = nn.CrossEntropyLoss()

    def objective(net, x, y, idx):
        loss = ce(net(x).logits, y)
        return {"loss": loss, "ce": loss}

    return objective


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
    """
    dev = resolve_device(device)
    model = _build(spec.model, data, spec.train.seed, spec.model_kwargs).to(dev)
    if spec.checkpoint is not None:
        state = torch.load(spec.checkpoint, map_location=dev, weights_only=False)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        return TrainedModel(model.eval(), state.get("history", []) if isinstance(state, dict) else [], Path(spec.checkpoint), True)
    path = run_dir(root, "teacher", spec.key())
    final = path / "final.pt"
    if cache and final.exists():
        state = torch.load(final, map_location=dev, weights_only=False)
        model.load_state_dict(state["model"])
        return TrainedModel(model.eval(), state["history"], path, True)
    if not cache and path.exists():
        for stale in ("checkpoint.pt", "final.pt"):
            (path / stale).unlink(missing_ok=True)
    _write_json({"kind": "teacher", **_asdict(spec)}, path / "config.json")
    objective = _teacher_objective()

    torch.manual_seed(spec.train.seed)
    history = _fit(model, objective, [], data.train, spec.train, path, device=dev,
                   desc=f"teacher {spec.model}", quiet=quiet, eval_data=data.test)
    _finish(path, model, history)
    return TrainedModel(model.eval(), history, path, False)


def _teacher_outputs(dataset: Dataset, teacher: nn.Module, device) -> Optional[tuple]:
    """For in-memory data without augmentation, the teacher's outputs on the whole training set,
    computed once, ``(features (n, p), logits (n, c))`` on ``device``; None otherwise."""
    source = BatchSource(dataset, 512, device=device)
    if source.memory is None or source.augmented:
        return None
    feats, logits, _ = predict(teacher, dataset, device=device)
    return feats.to(device), logits.to(device)


def _student_objective(spec: StudentSpec, transfer, teacher_net: nn.Module, train_set: Dataset, dev: torch.device):
    """``objective(net, x, y, idx) -> dict of loss terms`` of a student run.

    The teacher runs under ``torch.inference_mode()``; for in-memory data without augmentation
    its outputs are computed once and looked up by ``idx``.
    """
    class_aware = spec.mode == "class-aware"
    weight = float(spec.weight) if spec.weight is not None else (transfer.default_weight if transfer else 0.0)
    ce_weight = getattr(transfer, "ce_weight", 1.0) if transfer is not None else 1.0
    ce = nn.CrossEntropyLoss()
    cached_teacher = _teacher_outputs(train_set, teacher_net, dev) if transfer is not None else None
    amp = spec.train.amp and dev.type == "cuda"
    # Under torch.compile the loss runs eagerly between the compiled graphs: its input checks
    # read values back and its soft rank may call numba, which dynamo cannot trace.
    transfer_loss = torch.compiler.disable(transfer) if transfer is not None else None
    if transfer is not None and spec.train.channels_last:
        teacher_net.to(memory_format=torch.channels_last)

    def objective(net, x, y, idx):
        out = net(x)
        terms = {}
        total = 0.0
        if transfer is not None:
            if cached_teacher is not None:
                t_out = _models.ModelOutput(cached_teacher[0][idx], cached_teacher[1][idx])
            else:
                with torch.inference_mode():
                    t_out = teacher_net(x)
                # Inference tensors cannot be saved for backward; a copy of two small matrices can.
                t_out = _models.ModelOutput(t_out.features.clone(), t_out.logits.clone())
            if amp:  # the transfer loss in float32: ranks and Gram matrices are sensitive to rounding
                out = _models.ModelOutput(out.features.float(), out.logits.float())
                t_out = _models.ModelOutput(t_out.features.float(), t_out.logits.float())
                with torch.autocast(dev.type, enabled=False):
                    terms["transfer"] = transfer_loss(out, t_out, indices=idx)
            else:
                terms["transfer"] = transfer_loss(out, t_out, indices=idx)
            total = weight * terms["transfer"]
        if class_aware:
            terms["ce"] = ce(out.logits, y)
            total = total + ce_weight * terms["ce"]
        terms["loss"] = total
        return terms

    return objective


def _make_transfer(spec: StudentSpec, student: nn.Module, teacher_net: nn.Module, data: DataSplit, dev):
    """The run's transfer loss on ``dev``, built under the run's seed: a loss's own parameters and
    state (FitNet's regressor, CRD's memory) are part of the run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        return _losses.get(
            spec.method, student_dim=student.feature_dim, teacher_dim=teacher_net.feature_dim,
            num_samples=len(data.train), **spec.loss_kwargs
        ).to(dev)


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
        transfer = _make_transfer(spec, student, teacher_net, data, dev)
    path = run_dir(root, "student", spec.key(teacher_key))
    final = path / "final.pt"
    if cache and final.exists():
        state = torch.load(final, map_location=dev, weights_only=False)
        student.load_state_dict(state["model"])
        return TrainedModel(student.eval(), state["history"], path, True)
    if spec.method == UNTRAINED:
        return TrainedModel(student.eval(), [], None, False)
    if not cache and path.exists():
        for stale in ("checkpoint.pt", "final.pt"):
            (path / stale).unlink(missing_ok=True)
    _write_json({"kind": "student", "teacher": teacher_key, **_asdict(spec)}, path / "config.json")

    class_aware = spec.mode == "class-aware"
    objective = _student_objective(spec, transfer, teacher_net, data.train, dev)

    torch.manual_seed(spec.train.seed)
    extra = list(transfer.parameters()) if transfer is not None else []
    history = _fit(student, objective, extra, data.train, spec.train, path, device=dev,
                   desc=f"{spec.model} {spec.method} {spec.mode} s{spec.train.seed}", quiet=quiet,
                   eval_data=data.test if class_aware else None)
    _finish(path, student, history)
    return TrainedModel(student.eval(), history, path, False)


# ----------------------------------------------------------------------------- estimates
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def estimate_run(spec, data: DataSplit, *, teacher: Optional[nn.Module] = None, device=None, steps: int = 5,
                 warmup: int = 2) -> dict:
    """Time a few training steps of a run and project its wall time, without training it.

    Builds the run's model, loss, optimiser and batches exactly as :func:`train_teacher` /
    :func:`train_student` do (fresh weights: the speed does not depend on them), times ``steps``
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
    _positive_int(steps, "steps")
    _positive_int(warmup, "warmup", allow_zero=True)
    dev = resolve_device(device)
    cfg = spec.train
    setup = time.perf_counter()
    extra: list = []
    if isinstance(spec, TeacherSpec):
        model = _build(spec.model, data, cfg.seed, spec.model_kwargs).to(dev)
        objective, eval_data = _teacher_objective(), data.test
    elif isinstance(spec, StudentSpec):
        if spec.method == UNTRAINED:
            return dict(step_s=0.0, steps_per_epoch=0, eval_s=0.0, setup_s=0.0, epoch_s=0.0, epochs=0, total_s=0.0)
        model = _build(spec.model, data, cfg.seed, spec.model_kwargs).to(dev)
        transfer = None
        if spec.method != LABEL_ONLY:
            if teacher is None:
                raise ValueError(f"estimate_run needs the teacher network for method {spec.method!r}")
            teacher = teacher.to(dev).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            transfer = _make_transfer(spec, model, teacher, data, dev)
            extra = list(transfer.parameters())
        objective = _student_objective(spec, transfer, teacher, data.train, dev)
        eval_data = data.test if spec.mode == "class-aware" else None
    opt, _ = _make_optimizer(list(model.parameters()) + extra, cfg)
    source = _source(data.train, cfg, dev)
    step = _train_step(model, objective, opt, cfg, dev)
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
