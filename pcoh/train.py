"""Teacher training, transfer training and cached, resumable runs.

A run is described by a frozen dataclass (:class:`TeacherSpec`, :class:`StudentSpec`); its hash
names a folder ``<root>/runs/<kind>-<hash>/`` that holds the run's ``config.json``, a checkpoint
written atomically after every epoch (``checkpoint.pt``), and, once finished, the final weights
and learning curves (``final.pt``). Asking for the same run again loads it instead of training; a
run that was interrupted resumes from its last checkpoint and ends with the same weights as an
uninterrupted run on the same device (each epoch's shuffling is seeded from the run's seed and
the epoch number).

Objectives (DESIGN §1.3):

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import distributed as _dist
from . import losses as _losses
from . import models as _models
from .data import DataSplit

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
    """Train ``model`` on ``objective(model, batch) -> dict of named losses, 'loss' the total``.

    Writes ``checkpoint.pt`` atomically after each epoch and resumes from it when present.
    Under ``torchrun`` (:mod:`pcoh.distributed`) every process trains on its shard of each
    global batch of ``cfg.batch_size`` samples, with averaged gradients; only rank 0 writes.
    """
    _dist.check_batch_size(cfg.batch_size, "batch_size")
    params = list(model.parameters()) + list(extra_params)
    opt, sched = _make_optimizer(params, cfg)
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
    steps = len(dataset) // cfg.batch_size if len(dataset) > cfg.batch_size else 1
    # Every process has loaded the same weights; batch norm then uses global-batch statistics
    # and DDP averages the gradients (both no-ops in one process).
    net = _dist.wrap(_dist.sync_batchnorm(model))
    bar = _progress(cfg.epochs * steps, desc, quiet)
    bar.update(start * steps)
    for epoch in range(start, cfg.epochs):
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        loader = _batches(dataset, cfg.batch_size, shuffle=True, generator=gen, drop_last=len(dataset) > cfg.batch_size)
        sums: dict = {}
        count = 0
        for batch in loader:
            batch = [b.to(device) for b in _dist.shard(batch)]
            terms = objective(net, batch)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            _dist.average_gradients(extra_params)
            opt.step()
            k = batch[0].shape[0]
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * k
            count += k
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(terms['loss'].detach()):.4f}")
        sched.step()
        if _dist.is_distributed():  # means over the global batch, identical on every process
            names = sorted(sums)
            *totals, count = _dist.all_reduce_sum([sums[k] for k in names] + [count], device)
            sums = dict(zip(names, totals))
        record = {"epoch": epoch + 1, **{name: total / max(count, 1) for name, total in sums.items()}}
        if not all(np.isfinite(v) for v in record.values()):
            raise FloatingPointError(f"{desc}: the loss became NaN or Inf at epoch {epoch + 1} ({record})")
        if eval_data is not None and _dist.is_main():
            record["test_accuracy"] = _accuracy(model, eval_data, device)
        history.append(record)
        if _dist.is_main():
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
    _dist.unsync_batchnorm(model)
    return history


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
    if _dist.is_main():
        if not cache and path.exists():
            for stale in ("checkpoint.pt", "final.pt"):
                (path / stale).unlink(missing_ok=True)
        _write_json({"kind": "teacher", **_asdict(spec)}, path / "config.json")
    _dist.barrier()  # nobody looks for a checkpoint before rank 0 has removed stale ones
    ce = nn.CrossEntropyLoss()

    def objective(net, batch):
        loss = ce(net(batch[0]).logits, batch[1])
        return {"loss": loss, "ce": loss}

    torch.manual_seed(spec.train.seed)
    history = _fit(model, objective, [], data.train, spec.train, path, device=dev,
                   desc=f"teacher {spec.model}", quiet=quiet, eval_data=data.test)
    if _dist.is_main():
        _finish(path, model, history)
    _dist.barrier()  # the next run's cache check sees final.pt on every process
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
    path = run_dir(root, "student", spec.key(teacher_key))
    final = path / "final.pt"
    if cache and final.exists():
        state = torch.load(final, map_location=dev, weights_only=False)
        student.load_state_dict(state["model"])
        return TrainedModel(student.eval(), state["history"], path, True)
    if spec.method == UNTRAINED:
        return TrainedModel(student.eval(), [], None, False)
    if _dist.is_main():
        if not cache and path.exists():
            for stale in ("checkpoint.pt", "final.pt"):
                (path / stale).unlink(missing_ok=True)
        _write_json({"kind": "student", "teacher": teacher_key, **_asdict(spec)}, path / "config.json")
    _dist.barrier()

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
    extra = list(transfer.parameters()) if transfer is not None else []
    history = _fit(student, objective, extra, dataset, spec.train, path, device=dev,
                   desc=f"{spec.model} {spec.method} {spec.mode} s{spec.train.seed}", quiet=quiet,
                   eval_data=data.test if class_aware else None)
    if _dist.is_main():
        _finish(path, student, history)
    _dist.barrier()
    return TrainedModel(student.eval(), history, path, False)
