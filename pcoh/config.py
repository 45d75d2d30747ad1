"""The main job's configuration: :class:`ExperimentConfig`, read from a file and flags, checked
before anything trains.

Configuration files (``--config FILE``, YAML or TOML) hold the fields of
:class:`ExperimentConfig`; ``teacher_train`` and ``student_train`` are tables of
:class:`pcoh.specs.TrainConfig` fields. ``pcoh/configs/`` ships the CIFAR-100 benchmark pairs.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from . import data as _data
from . import losses as _losses
from . import methods as _methods
from . import models as _models
from ._checks import check_count, check_name_list, check_path, check_str, check_table, name_list, typed_repr
from .data.registry import load_defaults as _data_defaults
from .devices import resolve_device
from .dissimilarity import METRICS, Dissimilarity, get_metric
from .specs import (
    LABEL_ONLY, MAX_SEED, MODES, UNTRAINED, LossSettings, StudentSpec, TrainConfig, same_value,
    explicit_loss_kwargs, method_allows_mode,
)
from .methods import CLASS_UNAWARE
from .threads import choose_threads

__all__ = ["ExperimentConfig", "load_config", "DEFAULT_METHODS", "CONFIGS", "TEACHER_TRAIN", "STUDENT_TRAIN",
           "DEFAULT_OUTPUT", "DEFAULT_FIGURES", "REFERENCE_OUTPUT", "SPLITS", "DRAWN_SPLITS", "DEFAULT_SEEDS",
           "MAX_DEFAULT_JOBS"]

#: Every baseline of the README plus the PC loss (from :mod:`pcoh.methods`); ``kd`` and ``ce`` run class-aware only.
DEFAULT_METHODS = _methods.default_methods()
#: The shipped configuration files.
CONFIGS = Path(__file__).parent / "configs"
#: The main job's optimisation settings. A field a user does not set (on the command line or in a
#: config file's ``teacher_train`` / ``student_train`` table) keeps the value given here.
TEACHER_TRAIN = TrainConfig(epochs=20, batch_size=128)
STUDENT_TRAIN = TrainConfig(epochs=20, batch_size=64)
#: Where the tables go unless ``output`` says otherwise: an untracked folder (a user's run never
#: rewrites the committed reference results, ``results/reference/``). The figures go beside the
#: tables (``<output>/<dataset>/``) unless ``figures`` says otherwise.
DEFAULT_OUTPUT = "results/latest"
#: The committed reference results of the main job (``python -m pcoh --compare`` reads them).
REFERENCE_OUTPUT = "results/reference"
DEFAULT_FIGURES = None
#: How the seeds' held-out splits are drawn: ``per-seed`` (seed ``s`` draws its own stratified
#: split, with its own teacher: the repeated hold-out) or ``fixed`` (one split and one teacher).
SPLITS = ("per-seed", "fixed")
#: Data sets whose train/test split is drawn by the loader's ``seed``; the others keep their
#: official split, so ``per-seed`` varies only the students' training seed there.
DRAWN_SPLITS = ("digits", "image_folder")
#: Replicates of the main job (see docs/method.md, "Evaluation protocol").
DEFAULT_SEEDS = 10
#: The most processes the main job trains side by side when ``jobs`` is not set.
MAX_DEFAULT_JOBS = 4


@dataclass
class ExperimentConfig:
    """Settings of the main job (every field can come from a config file or the command line).

    Parameters
    ----------
    dataset : str, default "digits"
        A :func:`pcoh.data.available` name.
    root : str, default "data"
        Where the data set's files are (for ``image_folder``: the folder of images). Only read,
        except when torchvision downloads a data set into it (``download``). This path and the
        others (``cache``, ``output``, ``figures``, ``teacher_checkpoint``) may start with ``~``,
        the home folder.
    cache : str, default "data"
        Cached runs (``<cache>/runs``), evaluations (``<cache>/evaluations``) and image-folder
        statistics (``<cache>/statistics``).
    download : bool, default False
        Let torchvision download the data set.
    data : dict
        Extra keyword arguments of :func:`pcoh.data.load` (e.g. ``{"augment": True}``); one at
        its default value is dropped (the same runs as one left out).
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
    seeds : int, default 5
        Replicates: students are trained with seeds 0 .. seeds-1 (each on the split ``split``
        gives it).
    split : {"per-seed", "fixed"}, default "per-seed"
        ``per-seed`` (the repeated hold-out): seed ``s`` draws its own stratified split, split
        seed ``data.seed + s`` (``data.seed`` defaults to 0, so seed 0 keeps the default split),
        and trains its own teacher on it; methods are paired within a seed (same split, teacher,
        initial weights and data order). ``fixed``: every seed on the one split of ``data``, one
        teacher. Data sets with an official split (not in :data:`DRAWN_SPLITS`) keep it either
        way, with one teacher.
    teacher_train, student_train : TrainConfig or dict
        A table sets only the fields it names; the others keep :data:`TEACHER_TRAIN` /
        :data:`STUDENT_TRAIN` (20 epochs; batch 128 for the teacher, 64 for the students; Adam, lr 1e-3).
    teacher_metric, student_metric : str, default "cosine"
        Dissimilarities for evaluation and for losses that take them (``pc``): a name of
        :data:`pcoh.dissimilarity.METRICS` (a built-in metric's object stands for its name). A
        callable is refused: runs are cached under their settings, and a function has no name that
        says what it computes (the measures, e.g. :func:`pcoh.perception_coherence`, take one).
    loss_kwargs : dict
        Per method, extra loss arguments, e.g. ``{"pc": {"regularization_strength": 0.3}}``.
    weights : dict
        Per method, the transfer-loss weight (default: each loss's ``default_weight``; a weight
        equal to it is dropped, the same runs as one left out).
    include_untrained : bool, default True
        Evaluate the untrained student too, as a floor.
    device : str, optional
        ``"auto"`` (default), ``"cpu"``, ``"cuda"``.
    output : str, default "results/latest"
        Tables go to ``<output>/<dataset>/`` (the default folder is not tracked by git; the
        committed reference results are under ``results/reference/``).
    figures : str, optional
        Default ``<output>/<dataset>`` (the figures go with the tables).
    threads : int, optional
        Threads of each pool (torch, numba, BLAS); default ``OMP_NUM_THREADS`` if set, else the
        cores in the process's CPU affinity (:mod:`pcoh.threads`). Not part of any cache key.
    jobs : int, optional
        Processes that train runs side by side on a CPU, sharing the threads (:mod:`pcoh.workers`);
        default: as many as the threads, at most :data:`MAX_DEFAULT_JOBS`. One on CUDA, under
        ``torchrun``, without the run cache, and with models wrapped in this process (a fresh
        process does not know them). Not part of any cache key.
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
    seeds: int = DEFAULT_SEEDS
    split: str = "per-seed"
    teacher_train: TrainConfig = TEACHER_TRAIN
    student_train: TrainConfig = STUDENT_TRAIN
    teacher_metric: str = "cosine"
    student_metric: str = "cosine"
    loss_kwargs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    include_untrained: bool = True
    device: Optional[str] = None
    output: str = DEFAULT_OUTPUT
    figures: Optional[str] = DEFAULT_FIGURES
    threads: Optional[int] = None
    jobs: Optional[int] = None

    def __post_init__(self):
        # Every field is checked here, so that a config file's mistake is reported before any work,
        # naming the field: TypeError for a wrong type, ValueError for a wrong value.
        self.dataset = check_str(self.dataset, "dataset")
        if self.dataset not in _data.available():
            raise ValueError(f"dataset: unknown data set {self.dataset!r}; expected one of {_data.available()}")
        check_path(self.output, "output")
        # A config file's `~/...` is the home folder, as in a shell (never a folder named `~`).
        for name in ("root", "cache", "output", "figures", "teacher_checkpoint"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)) and os.fspath(value).startswith("~"):
                setattr(self, name, os.path.expanduser(os.fspath(value)))
        if self.figures is None:
            self.figures = str(Path(self.output) / self.dataset)
        for name in ("root", "cache", "output", "figures"):
            check_path(getattr(self, name), name)
        for name in ("download", "include_untrained"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {typed_repr(getattr(self, name))}")
        self.data = check_table(self.data, "data")
        # An option at its default is the same data as one left out: same runs, same cache keys.
        given_defaults = _data_defaults(self.dataset)
        self.data = {k: v for k, v in self.data.items()
                     if not (k in given_defaults and same_value(v, given_defaults[k]))}
        if isinstance(self.teacher, nn.Module):  # a module of one's own: wrapped, named by its digest
            self.teacher = _models.check_name(self.teacher, "teacher")
        if isinstance(self.students, (list, tuple)):
            self.students = tuple(_models.check_name(s, "students") if isinstance(s, nn.Module) else s
                                  for s in self.students)
        self.teacher = check_str(self.teacher, "teacher")
        if self.teacher_checkpoint is not None:
            check_path(self.teacher_checkpoint, "teacher_checkpoint")
        for name in ("students", "methods", "modes"):
            if name == "methods" and self.methods is None:
                continue
            setattr(self, name, check_name_list(getattr(self, name), name))
        if self.methods is None:
            self.methods = tuple(m for m in DEFAULT_METHODS
                                 if any(mode not in MODES or method_allows_mode(m, mode) for mode in self.modes))
        for name, values in (("teacher", (self.teacher,)), ("students", self.students)):
            for value in values:
                _models.check_name(value, name)
        if self.teacher_weights is not None:
            check_str(self.teacher_weights, "teacher_weights")
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
            raise TypeError(f"seeds must be a positive integer, got {typed_repr(self.seeds)}")
        if not 1 <= self.seeds <= MAX_SEED:
            raise ValueError(f"seeds must be a positive integer up to {MAX_SEED}, got {self.seeds}")
        check_str(self.split, "split")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {self.split!r}")
        for name in ("teacher_metric", "student_metric"):
            value = getattr(self, name)
            if isinstance(value, Dissimilarity) and type(value) in {type(m) for m in METRICS.values()}:
                value = value.name  # a built-in metric's object: the same runs as its name
            if not isinstance(value, str):
                # Runs are cached under their settings, so a metric must be named: a function has no
                # name that says what it computes (pcoh.perception_coherence and the measures take one).
                raise TypeError(f"{name} must be one of {sorted(METRICS)} in an experiment (its runs are cached "
                                f"by the metric's name), got {typed_repr(value)}; a callable metric works with "
                                "pcoh.perception_coherence and the measures directly")
            get_metric(check_str(value, name), name)
            setattr(self, name, value)
        self.loss_kwargs = check_table(self.loss_kwargs, "loss_kwargs")
        for method, kwargs in self.loss_kwargs.items():
            if method not in _losses.LOSSES:
                raise ValueError(f"loss_kwargs: unknown loss {method!r}; expected some of {_losses.available()}")
            check_table(kwargs, f"loss_kwargs.{method}")
            _loss_settings(f"loss_kwargs.{method}", method, kwargs=kwargs)  # every name one the loss takes
        self.loss_kwargs = {m: explicit_loss_kwargs(m, kw) for m, kw in self.loss_kwargs.items()}
        self.loss_kwargs = {m: kw for m, kw in self.loss_kwargs.items() if kw}
        self.weights = check_table(self.weights, "weights")
        for method, weight in self.weights.items():
            if method not in _losses.LOSSES:
                raise ValueError(f"weights: unknown loss {method!r}; expected some of {_losses.available()}")
            _loss_settings(f"weights.{method}", method, weight=weight)
        # A weight at the loss's default is the same run as one left out: same cache key.
        self.weights = {m: w for m, w in self.weights.items()
                        if w is not None and not same_value(w, _losses.LOSSES[m].default_weight)}
        if self.threads is not None:
            self.threads = choose_threads(self.threads)  # a positive int, or TypeError/ValueError
        if self.jobs is not None:
            self.jobs = check_count(self.jobs, "jobs")
        if self.device is not None:
            check_str(self.device, "device")
        resolve_device(self.device)  # fail before any work on a bad or unavailable device
        for name, default in (("teacher_train", TEACHER_TRAIN), ("student_train", STUDENT_TRAIN)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _train_config(value, name, default))
            elif not isinstance(value, TrainConfig):
                raise TypeError(f"{name} must be a TrainConfig or a table of its fields, got {typed_repr(value)}")
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
                    specs.append(StudentSpec(student, UNTRAINED, CLASS_UNAWARE, train=train))
                for mode in self.modes:
                    for method in self.methods:
                        if not method_allows_mode(method, mode):
                            continue
                        specs.append(StudentSpec(student, method, mode, weight=self.weights.get(method),
                                                 loss_kwargs=self.method_loss_kwargs(method), train=train))
        return specs

    def split_seed(self, seed: int) -> int:
        """The seed of the held-out split that the students of training seed ``seed`` use."""
        base = self.data.get("seed", 0)
        if self.split == "fixed" or self.dataset not in DRAWN_SPLITS:
            return base
        return base + seed

    def data_options(self, split_seed: int) -> dict:
        """The data options (:func:`pcoh.data.load` keywords) of the split ``split_seed``: those of
        ``data`` for the base split (so its teacher and runs keep their cache keys), with
        ``seed`` set for the others."""
        if split_seed == self.data.get("seed", 0):
            return dict(self.data)
        return {**self.data, "seed": split_seed}

    def method_loss_kwargs(self, method: str) -> dict:
        """The keyword arguments of ``method``'s loss: the experiment's metrics (where the loss takes
        them) and the method's ``loss_kwargs``."""
        kwargs = {}
        if method in _losses.LOSSES:
            accepted = _losses.arguments(method)
            for name in ("teacher_metric", "student_metric"):
                if name in accepted:
                    kwargs[name] = getattr(self, name)
        kwargs.update(self.loss_kwargs.get(method, {}))
        return kwargs



def _loss_settings(name: str, method: str, **settings) -> LossSettings:
    """:class:`LossSettings` of ``method``, a fault named by the configuration's key ``name``."""
    try:
        return LossSettings(method, **settings)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name}: {err}") from None


def _train_config(table: dict, name: str, default: TrainConfig) -> TrainConfig:
    """``default`` with the fields ``table`` names replaced (and checked)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    check_table(table, name)
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"{name} has unknown keys {name_list(unknown)}; expected some of {sorted(fields)}")
    try:
        return dataclasses.replace(default, **table)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name}.{err}") from None


def _unique_key_loader():
    """PyYAML's safe loader, refusing a key given twice in one table (PyYAML keeps the last)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        repeated = key in seen
                    except TypeError:  # an unhashable key: the safe loader reports it
                        break
                    if repeated:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} is given twice in one table", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


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
        raise TypeError(f"config must be a path, got {typed_repr(path)}")
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
            table = yaml.load(text, Loader=_unique_key_loader())
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
        raise ValueError(f"config file {p} has keys that are not names: {name_list(map(repr, bad_keys))}")
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"config file {p} has unknown keys {name_list(unknown)}; expected some of {sorted(fields)}")
    return table
