"""The specifications that name a run: :class:`TrainConfig` (optimisation), :class:`LossSettings`
(the transfer loss), :class:`TeacherSpec` and :class:`StudentSpec` (what is trained), and their
cache keys.

A spec is a frozen dataclass; :meth:`TeacherSpec.key` / :meth:`StudentSpec.key` hash it
(:func:`pcoh.runs.run_key`) into the name of the run's folder. Settings that change only the
speed (:data:`SPEED_FIELDS`) are left out of the key, and a loss argument given at its default
value is the same run as one left out (:func:`explicit_loss_kwargs`).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
from torch import nn

from . import batchnorm as _batchnorm
from . import losses as _losses
from . import methods as _methods
from . import models as _models
from ._checks import check_choice, check_count, check_positive
from .runs import run_key as _hash
from .methods import CLASS_UNAWARE

__all__ = ["TrainConfig", "LossSettings", "TeacherSpec", "StudentSpec", "MODES", "LABEL_ONLY", "UNTRAINED", "MAX_SEED",
           "SPEED_FIELDS", "method_allows_mode", "explicit_loss_kwargs", "as_dict"]

MODES = _methods.MODES
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
        Seeds the weights and every epoch's shuffling and augmentation.
    amp : bool, default False
        bf16 autocast of the model forwards on CUDA (the transfer loss stays float32). It changes
        the numerics, so on CUDA it is part of the cache key (when True: runs cached without it
        keep their keys). On any other device it changes nothing: the training functions and the
        main job switch it off, with a note, and the run is the float32 run, with its key.
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
        check_count(self.epochs, "epochs", 0)
        check_count(self.batch_size, "batch_size")
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
            object.__setattr__(self, name, float(value))  # 1 and 1.0 are one setting, one cache key
        milestones = self.milestones
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (list, tuple)):
            raise TypeError(f"milestones must be a list of epoch numbers, got {type(milestones).__name__} {milestones!r}")
        for m in milestones:
            check_count(m, "each of milestones")
        object.__setattr__(self, "milestones", tuple(int(m) for m in milestones))
        check_count(self.seed, "seed", 0)
        if self.seed >= MAX_SEED:  # torch seeds are 64-bit; each epoch's seed is derived from this one
            raise ValueError(f"seed must be below {MAX_SEED}, got {self.seed}")
        for name in ("amp", "channels_last", "compile"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {type(getattr(self, name)).__name__} "
                                f"{getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if self.num_workers is not None:
            check_count(self.num_workers, "num_workers", 0)


#: TrainConfig fields that change the speed, not the result: not part of a run's cache key.
SPEED_FIELDS = ("channels_last", "compile", "num_workers")


#: Loss arguments that a run supplies from its models and data (feature widths, training-set size).
RUN_ARGUMENTS = ("student_dim", "teacher_dim", "num_samples")


@dataclass(frozen=True)
class LossSettings:
    """The transfer loss of a student run, checked once: its method, weight and arguments.

    :class:`StudentSpec` makes one from its ``method``, ``weight`` and ``loss_kwargs`` (as its
    attribute ``loss``); training builds the loss from it (:meth:`build`) and reads its weights
    here, so nothing past the spec reads the loss's settings from a dict again.

    Parameters
    ----------
    method : str
        A loss name (:func:`pcoh.losses.available`), ``"ce"`` or ``"untrained"`` (no loss).
    weight : float, optional
        Multiplier of the transfer loss; ``None`` for the loss's ``default_weight``.
    kwargs : dict
        Constructor arguments of the loss, each one it takes (for example
        ``{"regularization_strength": 0.3}``, the strength of the PC loss's soft rank), but
        those a run supplies (:data:`RUN_ARGUMENTS`). Their values are checked by the loss's
        constructor, when the loss is built (a copy is held).
    """

    method: str = "pc"
    weight: Optional[float] = None
    kwargs: Mapping = field(default_factory=dict)

    def __post_init__(self):
        known = _losses.available() + [LABEL_ONLY, UNTRAINED]
        if self.method not in known:
            raise ValueError(f"unknown method {self.method!r}; expected one of {sorted(known)}")
        if self.weight is not None:
            check_positive(self.weight, "weight")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"kwargs must be a dict of the loss's keyword arguments, got {type(self.kwargs).__name__}")
        if self.has_loss:
            accepted = [name for name in _losses.arguments(self.method) if name not in RUN_ARGUMENTS]
            for name in self.kwargs:
                if name not in accepted:
                    why = ("is given by the run (its models and data), not by loss_kwargs" if name in RUN_ARGUMENTS
                           else "is not one the loss takes")
                    raise TypeError(f"loss argument {name!r} of the {self.method!r} loss {why}; expected some of {accepted}")
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    @property
    def has_loss(self) -> bool:
        """False for ``ce`` and ``untrained``, which train (or evaluate) without a transfer loss."""
        return self.method in _losses.LOSSES

    @property
    def transfer_weight(self) -> float:
        """The multiplier of the transfer loss: ``weight``, else the loss's ``default_weight`` (0 without a loss)."""
        if self.weight is not None:
            return float(self.weight)
        return _losses.LOSSES[self.method].default_weight if self.has_loss else 0.0

    @property
    def ce_weight(self) -> float:
        """The multiplier of the cross-entropy in class-aware training (the loss's ``ce_weight``; 1 without a loss)."""
        return _losses.LOSSES[self.method].ce_weight if self.has_loss else 1.0

    def build(self, *, student_dim: int, teacher_dim: int, num_samples: int):
        """The loss (a :class:`pcoh.losses.TransferLoss`) with these arguments and the run's widths
        and training-set size; its constructor checks the argument values."""
        return _losses.get(self.method, student_dim=student_dim, teacher_dim=teacher_dim, num_samples=num_samples,
                           **self.kwargs)


def _key_dict(spec) -> dict:
    """A spec as the dict its cache key hashes: speed options dropped, ``amp`` only when on, ``source``
    only when the data come from a user's files (so the built-in data sets keep their keys), and
    ``batch_norm`` for the models whose statistics are recomputed (:mod:`pcoh.batchnorm`)."""
    d = as_dict(spec)
    if d.get("source", "") is None:
        d.pop("source")
    train = d.get("train", {})
    for name in SPEED_FIELDS:
        train.pop(name, None)
    if not train.get("amp", False):
        train.pop("amp", None)
    if _batchnorm.recomputed(d.get("model", "")):  # their runs end with recomputed statistics
        d["batch_norm"] = "recomputed"
    if "checkpoint_sha256" in d:  # a teacher: its checkpoint by content, not by path
        if d.get("checkpoint") is None:
            d.pop("checkpoint_sha256")
        else:
            d["checkpoint"] = "sha256:" + _checkpoint_digest(spec)
            d.pop("checkpoint_sha256")
    return d


def _checkpoint_digest(spec) -> str:
    if spec.checkpoint_sha256 is not None:
        return spec.checkpoint_sha256
    from .digests import file_sha256

    try:
        return file_sha256(spec.checkpoint)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint: no such file: {spec.checkpoint}") from None


def method_allows_mode(method: str, mode: str) -> bool:
    """False for the methods that need labels (``ce``, and losses on logits such as KD) in
    ``mode="class-unaware"``; True otherwise."""
    return _methods.allows_mode(method, mode)  # one rule, in the method registry


@dataclass(frozen=True)
class TeacherSpec:
    """A teacher run: data set, architecture and optimisation.

    ``data`` holds the keyword arguments of :func:`pcoh.data.load` that change the data
    (e.g. ``{"test_size": 0.2, "seed": 0}``); it is part of the cache key. ``model`` is a name
    :func:`pcoh.models.create` accepts (a module is wrapped by :func:`pcoh.models.wrap` and
    replaced by its name). ``source`` identifies data read from a user's files
    (:attr:`pcoh.data.DataSplit.source`): runs on different image folders get different keys.
    ``checkpoint_sha256`` is the SHA-256 of the ``checkpoint`` file's bytes (computed when left
    out): the key holds it instead of the path, so a file replaced at the same path is another
    teacher, and the same file under two paths is one.
    """

    dataset: str = "digits"
    model: str = "digits_resnet"
    train: TrainConfig = field(default_factory=TrainConfig)
    data: dict = field(default_factory=dict)
    model_kwargs: dict = field(default_factory=dict)
    checkpoint: Optional[str] = None  # a user's weights: used instead of training
    source: Optional[str] = None
    checkpoint_sha256: Optional[str] = None

    def __post_init__(self):
        if isinstance(self.model, nn.Module):
            object.__setattr__(self, "model", _models.check_name(self.model, "model"))
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path or None, got {type(self.checkpoint).__name__}")
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", os.fspath(self.checkpoint))
        if self.checkpoint_sha256 is not None and not (
                isinstance(self.checkpoint_sha256, str) and len(self.checkpoint_sha256) == 64):
            raise ValueError(f"checkpoint_sha256 must be 64 hex digits or None, got {self.checkpoint_sha256!r}")
        if self.checkpoint is not None and self.checkpoint_sha256 is None and os.path.isfile(self.checkpoint):
            from .digests import file_sha256

            object.__setattr__(self, "checkpoint_sha256", file_sha256(self.checkpoint))

    def key(self) -> str:
        return _hash({"kind": "teacher", **_key_dict(self)})


@dataclass(frozen=True)
class StudentSpec:
    """A student run: architecture, transfer method, mode and optimisation.

    Parameters
    ----------
    model : str or nn.Module
        A name :func:`pcoh.models.create` accepts (built-in, ``tv:...``, or made by
        :func:`pcoh.models.wrap`); a module is wrapped and replaced by its name.
    method : str
        A loss name (:func:`pcoh.losses.available`), ``"ce"`` (labels alone) or ``"untrained"``
        (the initial weights, as a reference).
    mode : {"class-unaware", "class-aware"}
    weight : float, optional
        Multiplier of the transfer loss; default the loss's ``default_weight``.
    loss_kwargs : dict
        Constructor arguments of the loss (e.g. ``{"regularization_strength": 0.1}``), each one the
        loss takes.

    Attributes
    ----------
    loss : LossSettings
        ``method``, ``weight`` and ``loss_kwargs``, checked once here: what training builds the
        loss from. Not a field, so not part of the cache key (the fields it is made of are).
    """

    model: str = "digits_cnn"
    method: str = "pc"
    mode: str = CLASS_UNAWARE
    weight: Optional[float] = None
    loss_kwargs: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    model_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "model", _models.check_name(self.model, "model"))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if not isinstance(self.loss_kwargs, dict):
            raise TypeError(f"loss_kwargs must be a dict of keyword arguments, got {type(self.loss_kwargs).__name__}")
        object.__setattr__(self, "loss", LossSettings(self.method, self.weight, self.loss_kwargs))
        if not method_allows_mode(self.method, self.mode):
            raise ValueError(f"method {self.method!r} uses labels and exists only in mode 'class-aware'")
        if not isinstance(self.model_kwargs, dict):
            raise TypeError(f"model_kwargs must be a dict of keyword arguments, got {type(self.model_kwargs).__name__}")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"train must be a TrainConfig, got {type(self.train).__name__}")

    def key(self, teacher_key: str) -> str:
        # The loss's own defaults are part of the run: changing one must not reuse stale runs.
        # An argument given at its default value is the same run as one left out.
        d = _key_dict(self)
        d["loss_kwargs"] = _without_defaults(self.method, d.get("loss_kwargs", {}))
        defaults = _loss_defaults(self.method)
        return _hash({"kind": "student", "teacher": teacher_key, "loss_defaults": defaults, **d})


def _loss_defaults(method: str) -> dict:
    """The loss's constructor arguments that have a default, with it ({} for a method without a loss)."""
    if method not in _losses.LOSSES:
        return {}
    return {k: v for k, v in _losses.arguments(method).items() if v is not inspect.Parameter.empty}


def explicit_loss_kwargs(method: str, kwargs: dict) -> dict:
    """``kwargs`` without the arguments equal to the loss's own defaults.

    An argument given at its default value is the same run as one left out: same configuration,
    same cache key.
    """
    check_choice(method, "method", [*_losses.available(), LABEL_ONLY, UNTRAINED])
    if not isinstance(kwargs, dict):
        raise TypeError(f"kwargs must be a dict of the loss's keyword arguments, got {type(kwargs).__name__}")
    return _without_defaults(method, kwargs)


def _without_defaults(method: str, kwargs: dict) -> dict:
    """:func:`explicit_loss_kwargs` of values a spec has checked already."""
    defaults = _loss_defaults(method)
    return {k: v for k, v in kwargs.items() if not (k in defaults and same_value(v, defaults[k]))}


def same_value(a, b) -> bool:
    """Equal as settings: 1 and 1.0 are, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and other objects without a plain equality
        return False


def as_dict(spec) -> dict:
    """A spec as plain JSON values (keys sorted, other objects as their ``str``): what its
    ``config.json`` holds and, after :func:`_key_dict`, what its key hashes."""
    if not dataclasses.is_dataclass(spec) or isinstance(spec, type):
        raise TypeError(f"spec must be a TeacherSpec, StudentSpec or TrainConfig, got {type(spec).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str))
