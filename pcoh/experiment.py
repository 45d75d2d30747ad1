"""The main job: one teacher, students trained with every method in both modes, evaluated.

:func:`run_experiment` is what ``python -m pcoh`` runs and what the notebooks call with smaller
budgets. Every training run is cached under ``<cache>/runs/`` (the run cache, :mod:`pcoh.runs`), so a
second call with the same settings only evaluates (the evaluations are cached by :mod:`pcoh.evaluations`).

The configuration (:class:`ExperimentConfig`, :func:`load_config`) is in :mod:`pcoh.config`, the
summary tables in :mod:`pcoh.tables`; both are re-exported here.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
from torch import nn

from . import data as _data
from . import distributed as _dist
from . import evaluate as _eval
from . import losses as _losses
from . import models as _models
from . import files as _files
from . import runs as _runs
from ._checks import check_bool
from .config import CONFIGS, DEFAULT_METHODS, DRAWN_SPLITS, MAX_DEFAULT_JOBS, STUDENT_TRAIN, TEACHER_TRAIN, ExperimentConfig, load_config
from .evaluations import cached_evaluation, digest, evaluation_path
from .tables import COMPARED_METRICS, COMPARISON_NOTE, comparison_tables, estimate_table, pairing_unit, rnx_k_ranges, summary_table
from .specs import UNTRAINED, StudentSpec, TeacherSpec, method_allows_mode
from .train import TrainedModel, estimate_run, predict, run_dir, train_student, train_teacher
from .methods import CLASS_AWARE, CLASS_UNAWARE
from .devices import resolve_device
from .workers import fill_cache, worker_threads

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment", "check_experiment", "estimate",
           "estimate_table", "load_config", "summary_table", "comparison_tables",
           "evaluation_path", "cached_evaluation",
           "DEFAULT_METHODS", "CONFIGS", "COMPARED_METRICS", "TEACHER_TRAIN", "STUDENT_TRAIN"]


def _check_writable(path, name: str) -> None:
    """The folder ``path`` exists and is writable, or can be created (nothing is left behind here)."""
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
    try:  # os.access trusts permissions; some file systems (/proc, /sys) refuse all the same
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise PermissionError(f"{name}: cannot write to {probe} (needed for {folder}): the file system "
                              f"refuses new files there ({err.strerror or err})") from None


def _inside(path, folder: Path) -> bool:
    path = Path(os.path.realpath(Path(path).expanduser()))
    return path == folder or folder in path.parents


def _check_outside_root(cfg: "ExperimentConfig", write: bool) -> None:
    """An image folder is only read: no cache, output or figure folder inside it (a figure written
    there would be read as an image of a new class by the next run)."""
    if cfg.dataset != "image_folder":
        return
    root = Path(os.path.realpath(Path(cfg.root).expanduser()))
    folders = [("cache", cfg.cache)]
    if isinstance(cfg.data.get("cache"), (str, os.PathLike)):
        folders.append(("data.cache", cfg.data["cache"]))
    if write:
        folders += [("output", Path(cfg.output) / cfg.dataset), ("figures", cfg.figures)]
    for name, folder in folders:
        if _inside(folder, root):
            flag = {"data.cache": "data: {cache: ...}"}.get(name, f"--{name}")
            raise ValueError(f"{name}: {folder} is inside the image folder {cfg.root} (--root), which is only read: "
                             f"what pcoh writes there would be read as images; choose a folder outside it ({flag})")


def _without_idle_amp(cfg: "ExperimentConfig") -> "ExperimentConfig":
    """``cfg`` with ``amp`` off where it changes nothing (not on CUDA): the float32 runs and their keys."""
    from .devices import resolve_device

    if not (cfg.teacher_train.amp or cfg.student_train.amp) or resolve_device(cfg.device).type == "cuda":
        return cfg
    import warnings

    warnings.warn("amp (bf16 autocast) is used on CUDA only; training in float32 on the CPU, the runs of amp off",
                  stacklevel=3)
    return dataclasses.replace(cfg, teacher_train=dataclasses.replace(cfg.teacher_train, amp=False),
                               student_train=dataclasses.replace(cfg.student_train, amp=False))


def _min_batch(model: nn.Module) -> int:
    # Batch normalisation in training mode needs two samples per channel.
    return 2 if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) else 1


def _check_config(config, name: str) -> "ExperimentConfig":
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"{name} must be an ExperimentConfig (see pcoh.config), got {type(config).__name__}")
    return config


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
        :class:`pcoh.files.UnsafeCheckpointError` and :class:`pcoh.files.CorruptFileError`.
    OSError
        A missing data set (:class:`pcoh.data.DatasetNotFoundError`), a missing teacher
        checkpoint, a folder that cannot be written.
    pcoh.data.DatasetIntegrityError
        Data files that fail their checks.
    """
    from .build import build_model, build_run

    _check_config(cfg, "cfg")
    write = check_bool(write, "write")
    if data is not None and not isinstance(data, _data.DataSplit):
        raise TypeError(f"data must be a pcoh.data.DataSplit or None, got {type(data).__name__}")
    if cfg.teacher_checkpoint is not None and Path(cfg.teacher_checkpoint).is_dir():
        raise IsADirectoryError(f"teacher_checkpoint: {cfg.teacher_checkpoint} is a folder; expected a checkpoint "
                                "file (a state dict saved with torch.save)")
    if cfg.teacher_checkpoint is not None and not Path(cfg.teacher_checkpoint).is_file():
        raise FileNotFoundError(f"teacher_checkpoint: no such file: {cfg.teacher_checkpoint}")
    _check_outside_root(cfg, write)
    if data is None:
        try:
            data = load_data(cfg)
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
            mode = next(m for m in cfg.modes if method_allows_mode(method, m))
            spec = StudentSpec(student, method, mode, loss_kwargs=cfg.method_loss_kwargs(method), train=cfg.student_train)
            try:
                build_run(spec, data, teacher, "cpu")  # the loss as training builds it
            except (TypeError, ValueError) as err:
                raise type(err)(f"loss_kwargs.{method}: {err}") from None
            needs[method] = _losses.LOSSES[method]
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


def teacher_spec(cfg: "ExperimentConfig", data, split_seed: Optional[int] = None) -> TeacherSpec:
    options = dict(cfg.data) if split_seed is None else cfg.data_options(split_seed)
    digest = None
    if cfg.teacher_checkpoint is not None:  # by content, hashed once per version of the file
        from .digests import file_sha256

        digest = file_sha256(cfg.teacher_checkpoint, cache=cfg.cache)
    return TeacherSpec(cfg.dataset, cfg.teacher, cfg.teacher_train, options, model_kwargs=_teacher_kwargs(cfg),
                       checkpoint=cfg.teacher_checkpoint, source=data.source, checkpoint_sha256=digest)


def _split_seeds(cfg: "ExperimentConfig") -> dict:
    """Training seed -> split seed (the configuration's ``split`` protocol)."""
    return {s: cfg.split_seed(s) for s in range(cfg.seeds)}


def _splits(cfg: "ExperimentConfig", data, split_seeds: dict) -> dict:
    """Split seed -> DataSplit: ``data`` for the base split, each other split loaded."""
    base = cfg.data.get("seed", 0)
    splits = {}
    for ss in dict.fromkeys(split_seeds.values()):
        if ss == base:
            splits[ss] = data
        else:
            splits[ss] = load_data(dataclasses.replace(cfg, data=cfg.data_options(ss)))
    return splits


def load_data(cfg: "ExperimentConfig") -> "_data.DataSplit":
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
        The base split (seed 0's): ``teacher``, ``features["teacher"]`` and
        ``per_reference["teacher"]`` belong to it.
    paths : dict
        Files written (``results``, ``summary``, figures).
    curves : dict
        Same keys (and ``"teacher"``) -> ``{"r_nx": (n_test - 2,)}``, the R_NX curve behind
        ``rnx_auc`` (K = 1..n_test-2), stored with the cached evaluation.
    teachers : dict
        Split seed -> the teacher trained on that split (one entry for ``split="fixed"``).
    splits : dict
        Split seed -> DataSplit.
    teacher_features : dict
        Split seed -> the teacher's features on that split (as ``features["teacher"]``).
    split_seeds : dict
        Training seed -> split seed: the students of seed ``s`` are trained and evaluated on
        ``splits[split_seeds[s]]`` against ``teachers[split_seeds[s]]``.
    """

    results: pd.DataFrame
    teacher: TrainedModel
    students: dict
    per_reference: dict
    features: dict
    data: "_data.DataSplit"
    paths: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    teachers: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    teacher_features: dict = field(default_factory=dict)
    split_seeds: dict = field(default_factory=dict)


def _eval_defaults() -> dict:
    """The default parameters of :func:`pcoh.evaluate.evaluate_model` (part of the cache key)."""
    params = inspect.signature(_eval.evaluate_model).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
            and p.name not in ("test_logits", "metric", "teacher_metric", "return_per_reference", "return_curves")}


def _features(model, data, device):
    tr, _, ytr = predict(model, data.train, device=device)
    te, logits, yte = predict(model, data.test, device=device)
    return {"train": tr.numpy(), "test": te.numpy(), "test_logits": logits.numpy(),
            "y_train": ytr.numpy(), "y_test": yte.numpy()}




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
        The configuration's base split (``data`` as it configures it), already loaded by
        :func:`check_experiment`; otherwise loaded here. With ``split="per-seed"`` the other
        seeds' splits are loaded from the configuration either way.

    Everything :func:`check_experiment` checks is checked before any training starts.

    Returns
    -------
    ExperimentResult or None
        ``None`` on the processes of rank > 0 under ``torchrun``: they train, rank 0 evaluates
        and writes (see :mod:`pcoh.distributed`).
    """
    cfg = _without_idle_amp(ExperimentConfig() if config is None else _check_config(config, "config"))
    if not _dist.is_main():
        _dist.barrier()  # rank 0 downloads and checks first, alone
    data = check_experiment(cfg, write=write, data=data)
    if _dist.is_main():
        _dist.barrier()
    # One run at a time writes an output folder, from before its first training to its last file.
    folders = (Path(cfg.output) / cfg.dataset, cfg.figures) if write and _dist.is_main() else ()
    with _runs.output_lock(*folders):
        return _run(cfg, data, quiet=quiet, write=write, cache=cache)


def side_by_side_jobs(cfg: ExperimentConfig, cache: bool = True) -> int:
    """How many processes train the runs of ``cfg`` side by side (:mod:`pcoh.workers`): ``jobs``,
    else as many as the threads (at most :data:`~pcoh.config.MAX_DEFAULT_JOBS`); 1 on CUDA,
    under ``torchrun``, without the run cache, or with a model wrapped in this process."""
    import torch

    if not cache or _dist.is_distributed() or resolve_device(cfg.device).type != "cpu":
        return 1
    if any(_models.is_wrapped(name) for name in (cfg.teacher, *cfg.students)):
        return 1
    return cfg.jobs if cfg.jobs is not None else max(1, min(MAX_DEFAULT_JOBS, torch.get_num_threads()))


#: Without ``jobs`` set, runs are trained side by side only when they take at least this many
#: training steps in all (on digits about 10 s): fewer take less time than starting the processes.
MIN_SIDE_BY_SIDE_STEPS = 2000

#: A worker process's data, by split seed: each split is loaded once per process.
_WORKER_SPLITS: dict = {}


def _worker_split(cfg: ExperimentConfig, split_seed: int) -> "_data.DataSplit":
    if split_seed not in _WORKER_SPLITS:
        _WORKER_SPLITS[split_seed] = load_data(dataclasses.replace(cfg, data=cfg.data_options(split_seed)))
    return _WORKER_SPLITS[split_seed]


#: A worker process's teachers and their features, by split seed.
_WORKER_TEACHERS: dict = {}


def _teacher_task(cfg: ExperimentConfig, split_seed: int):
    """Train (or load) the teacher of split ``split_seed`` and evaluate it, into the caches;
    returns ``(teacher, its key, its features)``."""
    if split_seed not in _WORKER_TEACHERS:
        split = _worker_split(cfg, split_seed)
        tspec = teacher_spec(cfg, split, split_seed)
        teacher = train_teacher(tspec, split, root=cfg.cache, device=cfg.device, quiet=True, cache=True)
        t = _features(teacher.model, split, cfg.device)
        _evaluation(cfg, f"teacher-{tspec.key()}", t, cfg.teacher_metric, t["test_logits"], t, True)
        _WORKER_TEACHERS[split_seed] = teacher, tspec.key(), t
    return _WORKER_TEACHERS[split_seed]


def _student_task(cfg: ExperimentConfig, spec: StudentSpec, split_seed: int) -> None:
    """Train (or load) one student and evaluate it, into the caches, as :func:`_run` does."""
    split = _worker_split(cfg, split_seed)
    teacher, tkey, t = _teacher_task(cfg, split_seed)
    trained = train_student(spec, teacher, split, teacher_key=tkey, root=cfg.cache, device=cfg.device, quiet=True,
                            cache=True)
    f = _features(trained.model, split, cfg.device)
    logits = f["test_logits"] if spec.mode == CLASS_AWARE else None
    _evaluation(cfg, f"student-{spec.key(tkey)}", f, cfg.student_metric, logits, t, True)


def _train_side_by_side(cfg: ExperimentConfig, splits: dict, split_seeds: dict, jobs: int, quiet: bool) -> None:
    """Train the runs not yet in the cache on ``jobs`` processes: the teachers, then the students
    whose teacher is there. The caller reads them from the cache afterwards."""
    import torch

    threads = worker_threads(torch.get_num_threads(), jobs)
    tkeys = {ss: teacher_spec(cfg, split, ss).key() for ss, split in splits.items()}

    def done(kind, key):
        return (run_dir(cfg.cache, kind, key) / "final.pt").exists()

    def steps(train, ss):
        return train.epochs * math.ceil(len(splits[ss].train) / train.batch_size)

    teachers = [] if cfg.teacher_checkpoint is not None else [ss for ss, key in tkeys.items() if not done("teacher", key)]
    students = [spec for spec in cfg.runs() if spec.method != UNTRAINED
                and not done("student", spec.key(tkeys[split_seeds[spec.train.seed]]))]
    work = (sum(steps(cfg.teacher_train, ss) for ss in teachers)
            + sum(steps(spec.train, split_seeds[spec.train.seed]) for spec in students))
    if cfg.jobs is None and work < MIN_SIDE_BY_SIDE_STEPS:
        return  # less training than it takes to start the processes
    fill_cache([(_teacher_task, (cfg, ss)) for ss in teachers], jobs=jobs, threads=threads, desc="teachers",
               quiet=quiet)
    ready = {ss for ss, key in tkeys.items() if cfg.teacher_checkpoint is not None or done("teacher", key)}
    todo = [(_student_task, (cfg, spec, split_seeds[spec.train.seed])) for spec in students
            if split_seeds[spec.train.seed] in ready]
    fill_cache(todo, jobs=jobs, threads=threads, desc="students", quiet=quiet)


def _evaluation(cfg: ExperimentConfig, run: str, f: dict, metric: str, logits, t: dict, cache: bool):
    """``(row, per-reference rho, R_NX curve)`` of run ``run``'s features ``f`` against the teacher's
    ``t``, from the evaluation cache when it holds them."""
    def compute():
        return _eval.evaluate_model(
            f["train"], f["y_train"], f["test"], f["y_test"], t["test"],
            test_logits=logits, metric=metric, teacher_metric=cfg.teacher_metric,
            return_per_reference=True, return_curves=True,
        )

    if cache and isinstance(metric, str) and isinstance(cfg.teacher_metric, str):
        # Keyed by the run and everything the measures depend on, features included, so a
        # notebook or a second job re-evaluates nothing it evaluated before.
        settings = {"metric": metric, "teacher_metric": cfg.teacher_metric,
                    "evaluate": _eval_defaults(),
                    "features": digest(f["train"], f["y_train"], f["test"], f["y_test"], t["test"], logits)}
        return cached_evaluation(evaluation_path(cfg.cache, run, settings), compute, len(f["test"]), curves=True)
    return compute()


def _run(cfg: ExperimentConfig, data, *, quiet: bool, write: bool, cache: bool) -> Optional[ExperimentResult]:
    # One teacher per held-out split: seed s's students are paired with the other methods of
    # seed s, on the same split, against the same teacher (docs/method.md, evaluation protocol).
    split_seeds = _split_seeds(cfg)
    splits = _splits(cfg, data, split_seeds)
    jobs = side_by_side_jobs(cfg, cache)
    if jobs > 1:
        _train_side_by_side(cfg, splits, split_seeds, jobs, quiet)
    teachers, tkeys = {}, {}
    for ss, split in splits.items():
        tspec = teacher_spec(cfg, split, ss)
        teachers[ss] = train_teacher(tspec, split, root=cfg.cache, device=cfg.device, quiet=quiet, cache=cache)
        tkeys[ss] = tspec.key()
    base = split_seeds[0]
    teacher, data = teachers[base], splits[base]
    specs = cfg.runs()
    trained_here = {}

    def train(spec):
        ss = split_seeds[spec.train.seed]
        return train_student(spec, teachers[ss], splits[ss], teacher_key=tkeys[ss], root=cfg.cache,
                             device=cfg.device, quiet=True, cache=cache)

    if _dist.is_distributed():
        # Under torchrun every process trains every student (each on its shard of the global
        # batches); then rank 0 alone evaluates and writes, and the others are done.
        for i, spec in enumerate(specs):
            trained_here[i] = train(spec)
        if not _dist.is_main():
            return None
    tfeats = {ss: _features(teachers[ss].model, splits[ss], cfg.device) for ss in splits}
    feats = {"teacher": tfeats[base]}

    rows, per_ref, students, curves = [], {}, {}, {}

    def evaluate(key, run, f, metric, logits, t):
        row, rho, curve = _evaluation(cfg, run, f, metric, logits, t, cache)
        per_ref[key] = rho
        curves[key] = curve
        return row

    # The teacher rows: one per split, with the first training seed that uses it (seed and split
    # columns name it); the base split's first.
    first_seed = {}
    for seed, ss in split_seeds.items():
        first_seed.setdefault(ss, seed)
    for ss in splits:
        t = tfeats[ss]
        row = evaluate("teacher" if ss == base else ("teacher", ss), f"teacher-{tkeys[ss]}", t,
                       cfg.teacher_metric, t["test_logits"], t)
        rows.append({"student": cfg.teacher, "method": "teacher", "mode": "-",
                     "seed": cfg.teacher_train.seed if len(splits) == 1 else first_seed[ss], "split": ss,
                     "params": _models.count_parameters(teachers[ss].model), **row})
    per_ref = {k: v for k, v in per_ref.items() if not isinstance(k, tuple)}  # only the base teacher's
    from tqdm.auto import tqdm

    for i, spec in enumerate(tqdm(specs, desc="students", disable=quiet, dynamic_ncols=True)):
        trained = trained_here.get(i) or train(spec)
        ss = split_seeds[spec.train.seed]
        key = (spec.model, spec.method, spec.mode, spec.train.seed)
        students[key] = trained
        feats[key] = f = _features(trained.model, splits[ss], cfg.device)
        logits = f["test_logits"] if spec.mode == CLASS_AWARE else None
        rows.append({"student": spec.model, "method": spec.method, "mode": spec.mode, "seed": spec.train.seed,
                     "split": ss, "params": _models.count_parameters(trained.model),
                     **evaluate(key, f"student-{spec.key(tkeys[ss])}", f, cfg.student_metric, logits, tfeats[ss])})
    results = pd.DataFrame(rows)
    out = ExperimentResult(results, teacher, students, per_ref, feats, data, teachers=teachers, splits=splits,
                           teacher_features=tfeats, split_seeds=split_seeds, curves=curves)
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

    cfg = _without_idle_amp(ExperimentConfig() if config is None else _check_config(config, "config"))
    if data is None:
        data = load_data(cfg)
    # One teacher per held-out split (``split="per-seed"``); the specs' keys, hence what is
    # cached, depend on it. The other splits' data are not loaded: their keys need only options.
    split_seeds = _split_seeds(cfg)
    tkeys = {ss: teacher_spec(cfg, data, ss).key() for ss in dict.fromkeys(split_seeds.values())}
    tspec = teacher_spec(cfg, data, split_seeds[0])
    groups: dict = {}
    for spec in cfg.runs():
        if spec.method == UNTRAINED:
            continue
        name = f"{spec.model} {spec.method} {spec.mode}"
        tkey = tkeys[split_seeds[spec.train.seed]]
        done = (run_dir(cfg.cache, "student", spec.key(tkey)) / "final.pt").exists()
        group = groups.setdefault(name, {"spec": spec, "runs": 0, "cached": 0})
        group["runs"] += 1
        group["cached"] += int(done)
    teachers_done = sum(cfg.teacher_checkpoint is not None or (run_dir(cfg.cache, "teacher", k) / "final.pt").exists()
                        for k in tkeys.values())
    import torch

    jobs = side_by_side_jobs(cfg)
    threads = torch.get_num_threads()
    if jobs > 1:  # time the steps as a worker runs them: with its share of the threads
        torch.set_num_threads(worker_threads(threads, jobs))
    try:
        table = _estimate_rows(cfg, data, tspec, tkeys, teachers_done, groups, steps, warmup, quiet)
    finally:
        torch.set_num_threads(threads)
    table.attrs.update(jobs=jobs, threads=worker_threads(threads, jobs))
    return table


def _estimate_rows(cfg, data, tspec, tkeys, teachers_done, groups, steps, warmup, quiet) -> pd.DataFrame:
    from tqdm.auto import tqdm

    rows = []
    t = estimate_run(tspec, data, device=cfg.device, steps=steps, warmup=warmup)
    rows.append({"run": f"teacher {cfg.teacher}", "runs": len(tkeys), "cached": int(teachers_done), **t})
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




def _split_words(result: ExperimentResult) -> str:
    splits = getattr(result, "splits", None) or {}  # a result made by hand may have the base split alone
    sizes = sorted({len(split.test) for split in splits.values()} or {len(result.data.test)})
    size = " or ".join(map(str, sizes))
    if len(splits) > 1:
        return (f"each seed on its own stratified held-out split ({size} samples) with its own teacher "
                f"({len(splits)} splits)")
    return f"metrics on the held-out split ({size} samples)"


def write_outputs(result: ExperimentResult, cfg: ExperimentConfig) -> dict:
    """Write results.csv, summary.md, config.json and the key figures; returns their paths.

    Everything is rendered first and then written as one (:func:`pcoh.files.write_files`): an
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
        note = COMPARISON_NOTE.format(pct="95%", unit=pairing_unit(cfg.split == "per-seed" and cfg.dataset in DRAWN_SPLITS))
        comparisons = f"\n## Comparisons\n\n{note}\n\n{comparisons}\n"
    ranges = rnx_k_ranges(result.results, result.curves) if result.curves and "rnx_auc" in result.results else ""
    if ranges:
        comparisons += (f"\n## R_NX by neighbourhood size\n\nWhere the R_NX(K) curve of `pc` lies above, on par "
                        f"with and below the best other method's, K = 1..{len(result.data.test) - 2} (figure "
                        f"`{cfg.dataset}-main-rnx.png`).\n\n{ranges}\n")
    contents = {
        paths["results"]: result.results.to_csv(index=False).encode(),
        paths["summary"]: (
            f"# pcoh main job: {cfg.dataset}\n\nTeacher `{cfg.teacher}`; mean ± std over {cfg.seeds} seed(s); "
            f"{_split_words(result)}.\n\n{text}\n{comparisons}"
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
    if any(isinstance(k, tuple) for k in result.curves):
        add_figure("main-rnx", plots.plot_rnx_panels(result.curves))
    # One seed's per-reference distributions, class-unaware students.
    # Named by method alone for one student; by student and method for several (none overwritten).
    shown = [k for k in result.per_reference if isinstance(k, tuple) and k[2] == CLASS_UNAWARE and k[3] == 0]
    several = len({k[0] for k in shown}) > 1
    values = {(f"{k[0]} {k[1]}" if several else f"{k[1]}"): result.per_reference[k] for k in shown}
    if values:
        fig, ax = plots.slide_figure()
        plots.plot_per_reference(values, ax=ax, title="Per-reference Spearman, class-unaware students (seed 0)")
        add_figure("main-per-reference", fig)
    _files.write_files(contents)
    return paths
