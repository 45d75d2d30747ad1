"""The main job: one teacher, students trained with every method in both modes, evaluated.

:func:`run_experiment` is what ``python -m pcoh`` runs and what the notebooks call with smaller
budgets. Every training run is cached under ``<cache>/runs/`` (see :mod:`pcoh.train`), so a second
call with the same settings only evaluates.

Configuration files (``--config FILE``, YAML or TOML) hold the fields of
:class:`ExperimentConfig`; ``teacher_train`` and ``student_train`` are tables of
:class:`pcoh.train.TrainConfig` fields. ``pcoh/configs/`` ships the CIFAR-100 benchmark pairs.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
from torch import nn

from . import data as _data
from . import distributed as _dist
from . import evaluate as _eval
from . import losses as _losses
from . import methods as _methods
from . import models as _models
from . import runs as _runs
from .dissimilarity import get_metric
from .train import (
    LABEL_ONLY, MAX_SEED, MODES, UNTRAINED, StudentSpec, TeacherSpec, TrainConfig, TrainedModel,
    estimate_run, explicit_loss_kwargs, method_allows_mode, predict, resolve_device, run_dir, train_student, train_teacher,
)

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment", "check_experiment", "estimate",
           "estimate_table", "load_config", "summary_table", "comparison_tables",
           "evaluation_path", "cached_evaluation",
           "DEFAULT_METHODS", "CONFIGS", "COMPARED_METRICS"]

#: Every baseline of the README plus the PC loss (from :mod:`pcoh.methods`); ``kd`` and ``ce`` run class-aware only.
DEFAULT_METHODS = _methods.default_methods()
#: Metrics whose paired comparisons over seeds ``summary.md`` and the command line show.
COMPARED_METRICS = ("pc_n", "knn_accuracy")
#: The shipped configuration files.
CONFIGS = Path(__file__).parent / "configs"
#: The main job's optimisation settings. A field a user does not set (on the command line or in a
#: config file's ``teacher_train`` / ``student_train`` table) keeps the value given here.
TEACHER_TRAIN = TrainConfig(epochs=20, batch_size=128)
STUDENT_TRAIN = TrainConfig(epochs=20, batch_size=64)
#: Where the tables go unless ``output`` says otherwise; the figures go to ``figures/`` with it,
#: and beside the tables (``<output>/<dataset>/``) for any other ``output``.
DEFAULT_OUTPUT = "results"
DEFAULT_FIGURES = "figures"


@dataclass
class ExperimentConfig:
    """Settings of the main job (every field can come from a config file or the command line).

    Parameters
    ----------
    dataset : str, default "digits"
        A :func:`pcoh.data.available` name.
    root : str, default "data"
        Where the data set's files are (for ``image_folder``: the folder of images). Only read,
        except when torchvision downloads a data set into it (``download``).
    cache : str, default "data"
        Cached runs (``<cache>/runs``), evaluations (``<cache>/evaluations``) and image-folder
        statistics (``<cache>/statistics``).
    download : bool, default False
        Let torchvision download the data set.
    data : dict
        Extra keyword arguments of :func:`pcoh.data.load` (e.g. ``{"augment": True}``).
    teacher : str, default "digits_resnet"
        A name :func:`pcoh.models.check_name` accepts (built-in, ``tv:<torchvision model>``, a
        wrapped module's name), or a module (wrapped by :func:`pcoh.models.wrap`).
    teacher_checkpoint : str, optional
        Path of a user's teacher weights (a state dict, or a dict with a ``"model"`` entry).
    teacher_weights : str, optional
        Published weights of a ``tv:`` teacher (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...): its
        starting weights (trained further for ``teacher_train.epochs``, 0 to keep them) and, for
        ``image_folder`` data, its published preprocessing. With ``teacher_checkpoint``, only the
        preprocessing.
    students : tuple of str, default ("digits_cnn",)
    methods : tuple of str, optional
        Default: every method of :data:`DEFAULT_METHODS` that runs in one of ``modes`` (``kd``
        and ``ce`` need labels, so they run class-aware only). A method named here that runs in
        none of ``modes`` is an error.
    modes : tuple of str, default ("class-unaware", "class-aware")
    seeds : int, default 3
        Students are trained with seeds 0 .. seeds-1.
    teacher_train, student_train : TrainConfig or dict
        A table sets only the fields it names; the others keep :data:`TEACHER_TRAIN` /
        :data:`STUDENT_TRAIN` (20 epochs; batch 128 for the teacher, 64 for the students; Adam, lr 1e-3).
    teacher_metric, student_metric : str, default "cosine"
        Dissimilarities for evaluation and for losses that take them (``pc``).
    loss_kwargs : dict
        Per method, extra loss arguments, e.g. ``{"pc": {"regularization_strength": 0.3}}``.
    weights : dict
        Per method, the transfer-loss weight (default: each loss's ``default_weight``).
    include_untrained : bool, default True
        Evaluate the untrained student too, as a floor.
    device : str, optional
        ``"auto"`` (default), ``"cpu"``, ``"cuda"``.
    output : str, default "results"
        Tables go to ``<output>/<dataset>/``.
    figures : str, optional
        Default ``"figures"`` when ``output`` is ``"results"``, else ``<output>/<dataset>``
        (the figures go with the tables).
    """

    dataset: str = "digits"
    root: str = "data"
    cache: str = "data"
    download: bool = False
    data: dict = field(default_factory=dict)
    teacher: str = "digits_resnet"
    teacher_checkpoint: Optional[str] = None
    teacher_weights: Optional[str] = None
    students: tuple = ("digits_cnn",)
    methods: Optional[tuple] = None
    modes: tuple = MODES
    seeds: int = 3
    teacher_train: TrainConfig = TEACHER_TRAIN
    student_train: TrainConfig = STUDENT_TRAIN
    teacher_metric: str = "cosine"
    student_metric: str = "cosine"
    loss_kwargs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    include_untrained: bool = True
    device: Optional[str] = None
    output: str = DEFAULT_OUTPUT
    figures: Optional[str] = None

    def __post_init__(self):
        # Every field is checked here, so that a config file's mistake is reported before any work,
        # naming the field: TypeError for a wrong type, ValueError for a wrong value.
        self.dataset = _check_str(self.dataset, "dataset")
        if self.dataset not in _data.available():
            raise ValueError(f"dataset: unknown data set {self.dataset!r}; expected one of {_data.available()}")
        _check_path(self.output, "output")
        if self.figures is None:
            same = os.path.normpath(os.fspath(self.output)) == DEFAULT_OUTPUT
            self.figures = DEFAULT_FIGURES if same else str(Path(self.output) / self.dataset)
        for name in ("root", "cache", "output", "figures"):
            _check_path(getattr(self, name), name)
        for name in ("download", "include_untrained"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {_show(getattr(self, name))}")
        self.data = _check_table(self.data, "data")
        if isinstance(self.teacher, nn.Module):  # a module of one's own: wrapped, named by its digest
            self.teacher = _models.check_name(self.teacher, "teacher")
        if isinstance(self.students, (list, tuple)):
            self.students = tuple(_models.check_name(s, "students") if isinstance(s, nn.Module) else s
                                  for s in self.students)
        self.teacher = _check_str(self.teacher, "teacher")
        if self.teacher_checkpoint is not None:
            _check_path(self.teacher_checkpoint, "teacher_checkpoint")
        for name in ("students", "methods", "modes"):
            if name == "methods" and self.methods is None:
                continue
            setattr(self, name, _check_names(getattr(self, name), name))
        if self.methods is None:
            self.methods = tuple(m for m in DEFAULT_METHODS
                                 if any(mode not in MODES or method_allows_mode(m, mode) for mode in self.modes))
        for name, values in (("teacher", (self.teacher,)), ("students", self.students)):
            for value in values:
                _models.check_name(value, name)
        if self.teacher_weights is not None:
            _check_str(self.teacher_weights, "teacher_weights")
            try:
                _models.tv.weights_enum(self.teacher, self.teacher_weights)  # a known name; nothing is downloaded
            except ValueError as err:
                raise ValueError(f"teacher_weights: {err}") from None
        known = sorted(set(_losses.available()) | {LABEL_ONLY})
        for m in self.methods:
            if m not in known:
                raise ValueError(f"methods: unknown method {m!r}; expected one of {known}")
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"modes: unknown mode {m!r}; expected one of {list(MODES)}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int):
            raise TypeError(f"seeds must be a positive integer, got {_show(self.seeds)}")
        if not 1 <= self.seeds <= MAX_SEED:
            raise ValueError(f"seeds must be a positive integer up to {MAX_SEED}, got {self.seeds}")
        for name in ("teacher_metric", "student_metric"):
            if not callable(getattr(self, name)):
                _check_str(getattr(self, name), name)
            get_metric(getattr(self, name), name)
        self.loss_kwargs = _check_table(self.loss_kwargs, "loss_kwargs")
        for method, kwargs in self.loss_kwargs.items():
            if method not in _losses.LOSSES:
                raise ValueError(f"loss_kwargs: unknown loss {method!r}; expected some of {_losses.available()}")
            _check_table(kwargs, f"loss_kwargs.{method}")
        self.loss_kwargs = {m: explicit_loss_kwargs(m, kw) for m, kw in self.loss_kwargs.items()}
        self.loss_kwargs = {m: kw for m, kw in self.loss_kwargs.items() if kw}
        self.weights = _check_table(self.weights, "weights")
        for method, weight in self.weights.items():
            if method not in _losses.LOSSES:
                raise ValueError(f"weights: unknown loss {method!r}; expected some of {_losses.available()}")
            if weight is not None:
                if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                    raise TypeError(f"weights.{method} must be a positive number, got {_show(weight)}")
                if not (math.isfinite(weight) and weight > 0):
                    raise ValueError(f"weights.{method} must be a positive finite number, got {weight!r}")
        if self.device is not None:
            _check_str(self.device, "device")
        resolve_device(self.device)  # fail before any work on a bad or unavailable device
        for name, default in (("teacher_train", TEACHER_TRAIN), ("student_train", STUDENT_TRAIN)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _train_config(value, name, default))
            elif not isinstance(value, TrainConfig):
                raise TypeError(f"{name} must be a TrainConfig or a table of its fields, got {_show(value)}")
        if self.student_train.epochs < 1:
            raise ValueError("student_train.epochs must be at least 1 (a student trained for 0 epochs is the "
                             "'untrained' reference, which the job evaluates anyway)")
        if self.teacher_train.epochs < 1 and self.teacher_checkpoint is None:
            raise ValueError("teacher_train.epochs must be at least 1, or give teacher_checkpoint")
        for method in self.methods:
            if not any(method_allows_mode(method, mode) for mode in self.modes):
                raise ValueError(f"methods: {method!r} uses labels and runs only in mode 'class-aware', "
                                 f"but modes are {list(self.modes)}")

    def runs(self) -> list[StudentSpec]:
        """The student runs this configuration asks for, invalid combinations left out."""
        specs = []
        for seed in range(self.seeds):
            train = dataclasses.replace(self.student_train, seed=seed)
            for student in self.students:
                if self.include_untrained:
                    specs.append(StudentSpec(student, UNTRAINED, "class-unaware", train=train))
                for mode in self.modes:
                    for method in self.methods:
                        if not method_allows_mode(method, mode):
                            continue
                        specs.append(StudentSpec(student, method, mode, weight=self.weights.get(method),
                                                 loss_kwargs=self._loss_kwargs(method), train=train))
        return specs

    def _loss_kwargs(self, method: str) -> dict:
        kwargs = {}
        if method in _losses.LOSSES:
            accepted = inspect.signature(_losses.LOSSES[method].__init__).parameters
            for name in ("teacher_metric", "student_metric"):
                if name in accepted:
                    kwargs[name] = getattr(self, name)
        kwargs.update(self.loss_kwargs.get(method, {}))
        return kwargs


def _show(value, limit: int = 60) -> str:
    """``type value`` for an error message, cut to one short line."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(value).__name__} {text}"


def _check_str(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_show(value)}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _check_path(value, name: str):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (a string), got {_show(value)}")
    text = os.fspath(value)
    if not text or "\0" in str(text):
        raise ValueError(f"{name} must be a non-empty path without NUL characters, got {text!r}")
    return value


def _check_names(value, name: str) -> tuple:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a name or a list of names, got {_show(value)}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold names (strings), got {_show(item)}")
    if not value:
        raise ValueError(f"{name} must name at least one entry")
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"{name}: {_some(repeated)} given more than once; name each once")
    return tuple(value)


def _check_table(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table (a mapping of names to values), got {_show(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} must have names (strings) as keys, got {_show(key)}")
    return dict(value)


def _some(names, limit: int = 5) -> str:
    """At most ``limit`` names, and how many more: error messages stay one short line."""
    names = [str(n)[:40] for n in names]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{names[:limit]}{more}"


def _train_config(table: dict, name: str, default: TrainConfig) -> TrainConfig:
    """``default`` with the fields ``table`` names replaced (and checked)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    _check_table(table, name)
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"{name} has unknown keys {_some(unknown)}; expected some of {sorted(fields)}")
    try:
        return dataclasses.replace(default, **table)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name}.{err}") from None


def load_config(path) -> dict:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file into a dict.

    A bare name (e.g. ``cifar100_resnet32x4_resnet8x4``) is looked up in ``pcoh/configs/``.

    Raises
    ------
    ValueError
        The file is missing, unreadable, not valid YAML/TOML (the message gives the line), not a
        table, or has keys that are not :class:`ExperimentConfig` fields. Field values are
        checked by :class:`ExperimentConfig`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"config must be a path, got {_show(path)}")
    p = Path(path)
    if not p.exists() and not p.suffix:
        for ext in (".yaml", ".toml"):
            if (CONFIGS / (p.name + ext)).exists():
                p = CONFIGS / (p.name + ext)
                break
    if p.is_dir():
        raise ValueError(f"config file {str(path)!r} is a folder; expected a .yaml or .toml file")
    if p.exists() and not p.is_file():
        raise ValueError(f"config file {str(path)!r} is not a regular file (a device or a pipe); "
                         "expected a .yaml or .toml file")
    if not p.exists():
        shipped = sorted(f.stem for f in CONFIGS.glob("*.*"))
        raise ValueError(f"config file {str(path)!r} not found (shipped configs: {shipped})")
    if p.suffix not in (".yaml", ".yml", ".toml"):
        raise ValueError(f"config file must end in .yaml, .yml or .toml, got {p.name!r}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {p} cannot be read as UTF-8 text ({err})") from None
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            table = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ValueError(f"config file {p} is not valid YAML{where}: {' '.join(str(problem).split())}") from None
        except (ValueError, TypeError, RecursionError, OverflowError) as err:  # e.g. a date out of range
            raise ValueError(f"config file {p} is not valid YAML: {' '.join(str(err).split())}") from None
        table = {} if table is None else table
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10: the same parser, as a package
            import tomli as tomllib

        try:
            table = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as err:
            raise ValueError(f"config file {p} is not valid TOML: {' '.join(str(err).split())}") from None
    if not isinstance(table, dict):
        raise ValueError(f"config file {p} must hold a table of settings, got {type(table).__name__}")
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    bad_keys = [k for k in table if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"config file {p} has keys that are not names: {_some(map(repr, bad_keys))}")
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"config file {p} has unknown keys {_some(unknown)}; expected some of {sorted(fields)}")
    return table


def _check_writable(path, name: str) -> None:
    """The folder ``path`` exists and is writable, or can be created (nothing is created here)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{name}: {folder} is a file, expected a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{name}: cannot create {folder}, because {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{name}: cannot write to {probe} (needed for {folder})")


def _min_batch(model: nn.Module) -> int:
    # Batch normalisation in training mode needs two samples per channel.
    return 2 if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) else 1


def check_experiment(cfg: "ExperimentConfig", *, write: bool = True, data: Optional["_data.DataSplit"] = None):
    """Check everything that can fail before any training, and load the data.

    - the data set's files are present (and, for CIFAR, pass their checks);
    - the teacher checkpoint, if any, exists, is a safe state dict and matches the teacher's
      architecture (missing and unexpected keys named);
    - every chosen loss can be built with its ``loss_kwargs`` and the batch size is at least its
      ``min_samples`` (and two for models with batch normalisation);
    - the folders of cached runs and, with ``write``, of tables and figures are writable.

    Parameters
    ----------
    cfg : ExperimentConfig
    write : bool, default True
        Check the output and figure folders too.
    data : DataSplit, optional
        Already loaded data (skips loading).

    Returns
    -------
    DataSplit
        The loaded data.

    Raises
    ------
    ValueError, TypeError
        A setting that cannot work (the message names it); includes
        :class:`pcoh.runs.UnsafeCheckpointError` and :class:`pcoh.runs.CorruptFileError`.
    OSError
        A missing data set (:class:`pcoh.data.DatasetNotFoundError`), a missing teacher
        checkpoint, a folder that cannot be written.
    pcoh.data.DatasetIntegrityError
        Data files that fail their checks.
    """
    from .train import build_model

    if cfg.teacher_checkpoint is not None and not Path(cfg.teacher_checkpoint).is_file():
        raise FileNotFoundError(f"teacher_checkpoint: no such file: {cfg.teacher_checkpoint}")
    if data is None:
        try:
            data = _load_data(cfg)
        except (TypeError, ValueError) as err:
            raise type(err)(f"data: {err}") from None
        except _data.DatasetNotFoundError as err:
            raise _data.DatasetNotFoundError(f"dataset {cfg.dataset!r}: {err}", err.path, err.missing) from None
    try:
        _eval.check_sizes(len(data.train), len(data.test), data.num_classes)
    except ValueError as err:
        raise ValueError(f"dataset {cfg.dataset!r}: {err}") from None
    _check_writable(Path(cfg.cache) / "runs", "cache")
    _check_writable(Path(cfg.cache) / "evaluations", "cache")
    if write:
        _check_writable(Path(cfg.output) / cfg.dataset, "output")
        _check_writable(cfg.figures, "figures")
    teacher = build_model(cfg.teacher, data, cfg.teacher_train.seed, _teacher_kwargs(cfg))  # fetches published weights
    if cfg.teacher_checkpoint is not None:
        _models.load_weights(teacher, cfg.teacher_checkpoint, what="teacher_checkpoint")
        _check_finite(teacher, f"teacher_checkpoint {cfg.teacher_checkpoint}")
    else:
        _check_batch("teacher_train", cfg.teacher_train.batch_size, len(data.train), {}, _min_batch(teacher), cfg.teacher)
    for student in cfg.students:
        net = build_model(student, data, 0, {})
        needs = {}
        for method in cfg.methods:
            if method not in _losses.LOSSES:
                continue
            cls = _losses.LOSSES[method]
            kwargs = dict(cfg._loss_kwargs(method), student_dim=net.feature_dim, teacher_dim=teacher.feature_dim)
            if "num_samples" in inspect.signature(cls.__init__).parameters:
                kwargs["num_samples"] = len(data.train)
            try:
                _losses.get(method, **kwargs)
            except (TypeError, ValueError) as err:
                raise type(err)(f"loss_kwargs.{method}: {err}") from None
            needs[method] = cls
        _check_batch("student_train", cfg.student_train.batch_size, len(data.train), needs, _min_batch(net), student)
    return data


def _check_finite(model: nn.Module, what: str) -> None:
    """Every weight and buffer finite: a NaN teacher would be blamed on its students later."""
    import torch

    bad = [name for name, t in list(model.named_parameters()) + list(model.named_buffers())
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"{what} holds NaN or infinite values in {len(bad)} tensor(s), e.g. {bad[:3]}; "
                         f"it cannot be a trained teacher")


def _teacher_kwargs(cfg: "ExperimentConfig") -> dict:
    """The teacher's model options: its published weights, unless a checkpoint replaces them."""
    return {"weights": cfg.teacher_weights} if cfg.teacher_weights and cfg.teacher_checkpoint is None else {}


def _teacher_spec(cfg: "ExperimentConfig", data) -> TeacherSpec:
    return TeacherSpec(cfg.dataset, cfg.teacher, cfg.teacher_train, dict(cfg.data), model_kwargs=_teacher_kwargs(cfg),
                       checkpoint=cfg.teacher_checkpoint, source=data.source)


def _load_data(cfg: "ExperimentConfig") -> "_data.DataSplit":
    """The configuration's data: an image folder gets the run cache for its statistics and, with a
    teacher's published weights, their preprocessing (options given in ``data`` win)."""
    options = dict(cfg.data)
    if cfg.dataset == "image_folder":
        options.setdefault("cache", cfg.cache)
        if cfg.teacher_weights is not None:
            published = _models.published_preprocessing(cfg.teacher, cfg.teacher_weights)
            if "image_size" in options and "resize" not in options:
                published.pop("resize")  # a size of one's own: resized to it, not cropped from the published one
            options = {**published, **options}
    elif cfg.teacher_weights is not None:
        import warnings

        warnings.warn(f"teacher_weights: data set {cfg.dataset!r} keeps its own preprocessing (the published one "
                      "applies to image_folder data)", stacklevel=2)
    return _data.load(cfg.dataset, root=cfg.root, download=cfg.download, **options)


def _check_batch(name: str, batch_size: int, n_train: int, losses: dict, model_min: int, model: str) -> None:
    # Every training batch has batch_size samples (the last, smaller one is dropped) unless the
    # training set is smaller than one batch.
    batch = min(batch_size, n_train)
    for method, cls in losses.items():
        if batch < cls.min_samples:
            raise ValueError(
                f"{name}.batch_size: method {method!r} needs at least {cls.min_samples} samples per batch "
                f"({cls.__name__}.min_samples), got batches of {batch}"
            )
    if batch < model_min:
        raise ValueError(
            f"{name}.batch_size: model {model!r} uses batch normalisation, which needs at least {model_min} "
            f"samples per batch in training, got batches of {batch}"
        )


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per (student, method, mode, seed), plus the teacher's row; the columns of
        :mod:`pcoh.evaluate`.
    teacher : TrainedModel
    students : dict
        ``(student, method, mode, seed) -> TrainedModel``.
    per_reference : dict
        Same keys (and ``"teacher"``) -> (n_test,) per-reference Spearman values.
    features : dict
        Same keys (and ``"teacher"``) -> ``{"train": (n, d), "test": (n, d)}`` numpy features.
    data : DataSplit
    paths : dict
        Files written (``results``, ``summary``, figures).
    """

    results: pd.DataFrame
    teacher: TrainedModel
    students: dict
    per_reference: dict
    features: dict
    data: "_data.DataSplit"
    paths: dict = field(default_factory=dict)


def _eval_defaults() -> dict:
    """The default parameters of :func:`pcoh.evaluate.evaluate_model` (part of the cache key)."""
    params = inspect.signature(_eval.evaluate_model).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
            and p.name not in ("test_logits", "metric", "teacher_metric", "return_per_reference")}


def _features(model, data, device):
    tr, _, ytr = predict(model, data.train, device=device)
    te, logits, yte = predict(model, data.test, device=device)
    return {"train": tr.numpy(), "test": te.numpy(), "test_logits": logits.numpy(),
            "y_train": ytr.numpy(), "y_test": yte.numpy()}


#: Version of the cached evaluations' format and of what :func:`pcoh.evaluate.evaluate_model`
#: computes; raising it makes every cached evaluation stale.
EVALUATION_FORMAT = 1


def _digest(*arrays) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes (None for a missing one)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def evaluation_path(root, run: str, settings: dict) -> Path:
    """Where the evaluation of one run under some measure settings is cached.

    ``<root>/evaluations/<run>-<hash>.json``: ``run`` names the run's folder (``student-<key>``,
    as under ``<root>/runs``), ``hash`` is :func:`pcoh.runs.run_key` of ``settings`` (the
    dissimilarities, the evaluation's parameters, a digest of the features evaluated).
    """
    return Path(root) / "evaluations" / f"{run}-{_runs.run_key({'evaluation': EVALUATION_FORMAT, **settings})}.json"


def _finite_or_none(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def cached_evaluation(path, compute, n_test: int):
    """``compute()`` -> ``(row, per_reference)``, read from ``path`` when it was computed before.

    The cache file is JSON (no code can run on reading it), written atomically. A damaged file,
    or one whose content does not have the expected form, is moved aside
    (:func:`pcoh.runs.quarantine`) and the evaluation recomputed.

    Parameters
    ----------
    path : path-like
        From :func:`evaluation_path`.
    compute : callable
        ``() -> (dict of str -> float, (n_test,) array)``.
    n_test : int
        Length of the per-reference values, checked on reading.

    Returns
    -------
    (dict, numpy.ndarray)
    """
    import numpy as np

    path = Path(path)
    if path.exists():
        try:
            cached = _runs.read_json(path)
            row, names, rho = cached["row"], cached["columns"], cached["per_reference"]
            if not (isinstance(row, dict) and isinstance(rho, list) and len(rho) == n_test
                    and isinstance(names, list) and sorted(names) == sorted(row)
                    and all(_finite_or_none(v) for v in row.values())
                    and all(_finite_or_none(v) for v in rho)):
                raise _runs.CorruptFileError(f"{path}: not an evaluation of {n_test} references "
                                             "(finite numbers or null)")
            # The columns in the order they were computed (the JSON object's keys are sorted).
            return ({k: (math.nan if row[k] is None else float(row[k])) for k in names},
                    np.asarray(rho, dtype=np.float64))
        except (_runs.CorruptFileError, KeyError, TypeError, ValueError) as err:
            _runs.quarantine(path, str(err))
    row, rho = compute()
    rho = np.asarray(rho, dtype=np.float64)
    # NaN (a metric that does not apply) is written as null: strict JSON.
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    _runs.write_json({"row": clean, "columns": list(row), "per_reference": [None if math.isnan(v) else float(v) for v in rho]}, path)
    return row, rho


def run_experiment(config: ExperimentConfig | None = None, *, quiet: bool = False, write: bool = True,
                   cache: bool = True, data: Optional["_data.DataSplit"] = None) -> ExperimentResult:
    """Train (or load) the teacher and every student, evaluate them, write tables and figures.

    Parameters
    ----------
    config : ExperimentConfig, optional
        Default: the embedded digits job.
    quiet : bool, default False
        Hide progress bars.
    write : bool, default True
        Write ``<output>/<dataset>/results.csv``, ``summary.md`` and the figures.
    cache : bool, default True
        Reuse finished runs from ``<cache>/runs``.
    data : DataSplit, optional
        The data, already loaded by :func:`check_experiment` (otherwise loaded here).

    Everything :func:`check_experiment` checks is checked before any training starts.

    Returns
    -------
    ExperimentResult or None
        ``None`` on the processes of rank > 0 under ``torchrun``: they train, rank 0 evaluates
        and writes (see :mod:`pcoh.distributed`).
    """
    cfg = config or ExperimentConfig()
    if not _dist.is_main():
        _dist.barrier()  # rank 0 downloads and checks first, alone
    data = check_experiment(cfg, write=write, data=data)
    if _dist.is_main():
        _dist.barrier()
    # One run at a time writes an output folder, from before its first training to its last file.
    folders = (Path(cfg.output) / cfg.dataset, cfg.figures) if write and _dist.is_main() else ()
    with _runs.output_lock(*folders):
        return _run(cfg, data, quiet=quiet, write=write, cache=cache)


def _run(cfg: ExperimentConfig, data, *, quiet: bool, write: bool, cache: bool) -> Optional[ExperimentResult]:
    tspec = _teacher_spec(cfg, data)
    teacher = train_teacher(tspec, data, root=cfg.cache, device=cfg.device, quiet=quiet, cache=cache)
    tkey = tspec.key()
    specs = cfg.runs()
    trained_here = {}
    if _dist.is_distributed():
        # Under torchrun every process trains every student (each on its shard of the global
        # batches); then rank 0 alone evaluates and writes, and the others are done.
        for i, spec in enumerate(specs):
            trained_here[i] = train_student(spec, teacher, data, teacher_key=tkey, root=cfg.cache,
                                            device=cfg.device, quiet=True, cache=cache)
        if not _dist.is_main():
            return None
    feats = {"teacher": _features(teacher.model, data, cfg.device)}
    t = feats["teacher"]

    rows, per_ref, students = [], {}, {}

    def evaluate(key, run, f, metric, logits):
        def compute():
            return _eval.evaluate_model(
                f["train"], f["y_train"], f["test"], f["y_test"], t["test"],
                test_logits=logits, metric=metric, teacher_metric=cfg.teacher_metric,
                return_per_reference=True,
            )

        if cache and isinstance(metric, str) and isinstance(cfg.teacher_metric, str):
            # Keyed by the run and everything the measures depend on, features included, so a
            # notebook or a second job re-evaluates nothing it evaluated before.
            settings = {"metric": metric, "teacher_metric": cfg.teacher_metric,
                        "evaluate": _eval_defaults(),
                        "features": _digest(f["train"], f["y_train"], f["test"], f["y_test"], t["test"], logits)}
            row, rho = cached_evaluation(evaluation_path(cfg.cache, run, settings), compute, len(f["test"]))
        else:
            row, rho = compute()
        per_ref[key] = rho
        return row

    row = evaluate("teacher", f"teacher-{tkey}", t, cfg.teacher_metric, t["test_logits"])
    rows.append({"student": cfg.teacher, "method": "teacher", "mode": "-", "seed": cfg.teacher_train.seed,
                 "params": _models.count_parameters(teacher.model), **row})
    from tqdm.auto import tqdm

    for i, spec in enumerate(tqdm(specs, desc="students", disable=quiet, dynamic_ncols=True)):
        trained = trained_here.get(i) or train_student(spec, teacher, data, teacher_key=tkey, root=cfg.cache,
                                                       device=cfg.device, quiet=True, cache=cache)
        key = (spec.model, spec.method, spec.mode, spec.train.seed)
        students[key] = trained
        feats[key] = f = _features(trained.model, data, cfg.device)
        logits = f["test_logits"] if spec.mode == "class-aware" else None
        rows.append({"student": spec.model, "method": spec.method, "mode": spec.mode, "seed": spec.train.seed,
                     "params": _models.count_parameters(trained.model),
                     **evaluate(key, f"student-{spec.key(tkey)}", f, cfg.student_metric, logits)})
    results = pd.DataFrame(rows)
    out = ExperimentResult(results, teacher, students, per_ref, feats, data)
    if write:
        out.paths = write_outputs(out, cfg)
    return out


def estimate(config: ExperimentConfig | None = None, *, steps: int = 5, warmup: int = 2,
             quiet: bool = True, data: "_data.DataSplit | None" = None) -> pd.DataFrame:
    """Projected training time of a configuration on the current device, without training it.

    Times ``steps`` steps (after ``warmup``) of the teacher and of each kind of student run
    (architecture, method, mode: seeds share the time) with :func:`pcoh.train.estimate_run`,
    and multiplies by the runs' steps and epochs. Runs already finished in the cache, and a
    teacher given by checkpoint, are listed with no remaining time. Nothing is written; only
    the training loops are counted (not the evaluation after training).

    Returns
    -------
    pandas.DataFrame
        One row per kind of run: ``run``, ``runs``, ``cached``, ``step_ms``, ``steps_per_epoch``,
        ``epochs``, ``epoch_s``, ``total_s`` (every run of the row, cached ones included) and
        ``remaining_s`` (those not cached).
    """
    from tqdm.auto import tqdm

    cfg = config or ExperimentConfig()
    if data is None:
        data = _load_data(cfg)
    tspec = _teacher_spec(cfg, data)
    tkey = tspec.key()
    groups: dict = {}
    for spec in cfg.runs():
        if spec.method == UNTRAINED:
            continue
        name = f"{spec.model} {spec.method} {spec.mode}"
        done = (run_dir(cfg.cache, "student", spec.key(tkey)) / "final.pt").exists()
        group = groups.setdefault(name, {"spec": spec, "runs": 0, "cached": 0})
        group["runs"] += 1
        group["cached"] += int(done)
    teacher_done = cfg.teacher_checkpoint is not None or (run_dir(cfg.cache, "teacher", tkey) / "final.pt").exists()
    rows = []
    t = estimate_run(tspec, data, device=cfg.device, steps=steps, warmup=warmup)
    rows.append({"run": f"teacher {cfg.teacher}", "runs": 1, "cached": int(teacher_done), **t})
    teacher_net = _models.create(cfg.teacher, num_classes=data.num_classes, in_channels=data.in_channels or 1,
                                 image_size=data.image_size or 8)
    for name, group in tqdm(groups.items(), desc="estimate", disable=quiet, dynamic_ncols=True):
        t = estimate_run(group["spec"], data, teacher=teacher_net, device=cfg.device, steps=steps, warmup=warmup)
        rows.append({"run": name, "runs": group["runs"], "cached": group["cached"], **t})
    table = pd.DataFrame(rows)
    table["step_ms"] = 1000 * table["step_s"]
    table["remaining_s"] = table["total_s"] * (table["runs"] - table["cached"])
    table["total_s"] = table["total_s"] * table["runs"]
    return table[["run", "runs", "cached", "step_ms", "steps_per_epoch", "epochs", "epoch_s", "total_s", "remaining_s"]]


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_table(table: pd.DataFrame, device: str = "") -> str:
    """Markdown rendering of :func:`estimate`'s table, with the totals."""
    lines = ["| run | runs | cached | ms/step | steps/epoch | epochs | epoch | all runs |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.run} | {r.runs} | {r.cached} | {r.step_ms:.1f} | {r.steps_per_epoch} | {r.epochs} | "
                     f"{_duration(r.epoch_s)} | {_duration(r.total_s)} |")
    where = f" on {device}" if device else ""
    lines.append("")
    lines.append(f"projected training time{where}: {_duration(table['total_s'].sum())} in all, "
                 f"{_duration(table['remaining_s'].sum())} for the runs not yet cached")
    return "\n".join(lines)


def summary_table(results: pd.DataFrame, columns=("pc_n", "global_spearman", "kendall_tau", "topk_overlap",
                                                  "knn_accuracy", "linear_probe", "accuracy")) -> str:
    """Markdown table of mean +- std over seeds, one row per (student, method, mode)."""
    cols = [c for c in columns if c in results.columns]
    lines = ["| student | method | mode | seeds | " + " | ".join(cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for (student, method, mode), group in results.groupby(["student", "method", "mode"], sort=False):
        cells = []
        for c in cols:
            v = group[c].dropna()
            if v.empty:
                cells.append("-")
            elif len(v) == 1:
                cells.append(f"{v.iloc[0]:.3f}")
            else:
                cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
        lines.append(f"| {student} | {method} | {mode} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_tables(results: pd.DataFrame, metrics=COMPARED_METRICS, *, level: float = 0.95) -> str:
    """Markdown sections: each method against the best other method of its mode, paired by seed.

    One section per metric, made by :func:`pcoh.stats.paired_comparison` (grouped by student and
    mode) and :func:`pcoh.stats.format_comparison`. The references (``teacher``, ``untrained``)
    are left out: they are not candidates. A method is marked **best** only when it has the
    highest mean of its group and its paired interval against the runner-up lies above 0.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per run, as :attr:`ExperimentResult.results`.
    metrics : sequence of str, default COMPARED_METRICS
        Metric columns to compare (those missing from ``results`` are skipped).
    level : float, default 0.95
        Confidence level of the paired t-intervals.

    Returns
    -------
    str
        The sections, separated by blank lines; ``""`` when no metric is present.
    """
    from . import stats as _stats

    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    students = results[~results["method"].isin(list(_methods.REFERENCES))]
    sections = []
    for metric in metrics:
        if metric not in students.columns or students[metric].notna().sum() == 0:
            continue
        comparison = _stats.paired_comparison(students, metric, by=("student", "mode"), level=level)
        sections.append(f"### {metric}: paired difference to the best other method\n\n"
                        + _stats.format_comparison(comparison, metric=metric, level=level))
    return "\n\n".join(sections)


_COMPARISON_NOTE = (
    "Each method against the best other method of its mode (highest mean), paired by seed (runs of one "
    "seed share the data order and the initial weights): mean difference over seeds with its {pct} "
    "t-interval. **best** marks the method with the highest mean only when that interval lies above 0."
)


def write_outputs(result: ExperimentResult, cfg: ExperimentConfig) -> dict:
    """Write results.csv, summary.md, config.json and the key figures; returns their paths.

    Everything is rendered first and then written as one (:func:`pcoh.runs.write_files`): an
    interruption leaves the previous files, never a mix of two runs or a half-written one.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots

    folder = Path(cfg.output) / cfg.dataset
    paths = {"results": folder / "results.csv", "summary": folder / "summary.md"}
    text = summary_table(result.results)
    comparisons = comparison_tables(result.results)
    if comparisons:
        comparisons = f"\n## Comparisons\n\n{_COMPARISON_NOTE.format(pct='95%')}\n\n{comparisons}\n"
    contents = {
        paths["results"]: result.results.to_csv(index=False).encode(),
        paths["summary"]: (
            f"# pcoh main job: {cfg.dataset}\n\nTeacher `{cfg.teacher}`; mean ± std over {cfg.seeds} seed(s); "
            f"metrics on the held-out split ({len(result.data.test)} samples).\n\n{text}\n{comparisons}"
        ).encode(),
        folder / "config.json": json.dumps(dataclasses.asdict(cfg), indent=2, default=str).encode(),
    }

    def add_figure(name: str, fig) -> None:
        base = Path(cfg.figures) / f"{cfg.dataset}-{name}"
        for fmt, data in plots.render(fig, name=base.name).items():
            contents[base.with_suffix(f".{fmt}")] = data
        paths[f"figure_{name.removeprefix('main-').replace('-', '_')}"] = base.with_suffix(".png")
        plt.close(fig)

    plots.style()
    students = result.results[result.results["method"] != "teacher"]
    fig = plots.plot_metric_panels(students, ("pc_n", "knn_accuracy"),
                                   titles=("$PC_n$ on held-out data", "kNN accuracy of student features"))
    add_figure("main-metrics", fig)
    # One seed's per-reference distributions, class-unaware students.
    # Named by method alone for one student; by student and method for several (none overwritten).
    shown = [k for k in result.per_reference if isinstance(k, tuple) and k[2] == "class-unaware" and k[3] == 0]
    several = len({k[0] for k in shown}) > 1
    values = {(f"{k[0]} {k[1]}" if several else f"{k[1]}"): result.per_reference[k] for k in shown}
    if values:
        fig, ax = plots.slide_figure()
        plots.plot_per_reference(values, ax=ax, title="Per-reference Spearman, class-unaware students (seed 0)")
        add_figure("main-per-reference", fig)
    _runs.write_files(contents)
    return paths
