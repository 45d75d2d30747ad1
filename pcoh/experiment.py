"""The main job: one teacher, students trained with every method in both modes, evaluated.

:func:`run_experiment` is what ``python -m pcoh`` runs and what the notebooks call with smaller
budgets. Every training run is cached under ``<root>/runs/`` (see :mod:`pcoh.train`), so a second
call with the same settings only evaluates.

Configuration files (``--config FILE``, YAML or TOML) hold the fields of
:class:`ExperimentConfig`; ``teacher_train`` and ``student_train`` are tables of
:class:`pcoh.train.TrainConfig` fields. ``pcoh/configs/`` ships the CIFAR-100 benchmark pairs.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from . import data as _data
from . import distributed as _dist
from . import evaluate as _eval
from . import losses as _losses
from . import models as _models
from .train import (
    LABEL_ONLY, MODES, UNTRAINED, StudentSpec, TeacherSpec, TrainConfig, TrainedModel,
    method_allows_mode, predict, resolve_device, train_student, train_teacher,
)

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment", "load_config", "DEFAULT_METHODS", "CONFIGS"]

#: Every method of DESIGN §2 plus the PC loss; ``kd`` and ``ce`` run class-aware only.
DEFAULT_METHODS = ("pc", "rkd", "pkt", "sp", "cc", "fitnet", "kd", "ce")
#: The shipped configuration files.
CONFIGS = Path(__file__).parent / "configs"


@dataclass
class ExperimentConfig:
    """Settings of the main job (every field can come from a config file or the command line).

    Parameters
    ----------
    dataset : str, default "digits"
        A :func:`pcoh.data.available` name.
    root : str, default "data"
        Data files and cached runs (``<root>/runs``).
    download : bool, default False
        Let torchvision download the data set.
    data : dict
        Extra keyword arguments of :func:`pcoh.data.load` (e.g. ``{"augment": True}``).
    teacher : str, default "digits_resnet"
    teacher_checkpoint : str, optional
        Path of a user's teacher weights (a state dict, or a dict with a ``"model"`` entry).
    students : tuple of str, default ("digits_cnn",)
    methods : tuple of str, default DEFAULT_METHODS
    modes : tuple of str, default ("class-unaware", "class-aware")
    seeds : int, default 3
        Students are trained with seeds 0 .. seeds-1.
    teacher_train, student_train : TrainConfig
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
    figures : str, default "figures"
    """

    dataset: str = "digits"
    root: str = "data"
    download: bool = False
    data: dict = field(default_factory=dict)
    teacher: str = "digits_resnet"
    teacher_checkpoint: Optional[str] = None
    students: tuple = ("digits_cnn",)
    methods: tuple = DEFAULT_METHODS
    modes: tuple = MODES
    seeds: int = 3
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=128))
    student_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=64))
    teacher_metric: str = "cosine"
    student_metric: str = "cosine"
    loss_kwargs: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    include_untrained: bool = True
    device: Optional[str] = None
    output: str = "results"
    figures: str = "figures"

    def __post_init__(self):
        for name in ("students", "methods", "modes"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            value = tuple(value)
            if not value:
                raise ValueError(f"{name} must name at least one entry")
            setattr(self, name, value)
        known_models = _models.available()
        for name in (self.teacher, *self.students):
            if name not in known_models:
                raise ValueError(f"unknown model {name!r}; expected one of {known_models}")
        known = sorted(set(_losses.available()) | {LABEL_ONLY})
        for m in self.methods:
            if m not in known:
                raise ValueError(f"unknown method {m!r}; expected one of {known}")
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; expected one of {list(MODES)}")
        if self.dataset not in _data.available():
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {_data.available()}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}")
        resolve_device(self.device)  # fail before any work on a bad or unavailable device
        for name in ("teacher_train", "student_train"):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _train_config(value, name))
            elif not isinstance(value, TrainConfig):
                raise TypeError(f"{name} must be a TrainConfig or a table of its fields, got {type(value).__name__}")

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


def _train_config(table: dict, name: str) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; expected some of {sorted(fields)}")
    return TrainConfig(**table)


def load_config(path) -> dict:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file into a dict.

    A bare name (e.g. ``cifar100_resnet32x4_resnet8x4``) is looked up in ``pcoh/configs/``.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        for ext in (".yaml", ".toml"):
            if (CONFIGS / (p.name + ext)).exists():
                p = CONFIGS / (p.name + ext)
                break
    if not p.exists():
        shipped = sorted(f.stem for f in CONFIGS.glob("*.*"))
        raise ValueError(f"config file {str(path)!r} not found (shipped configs: {shipped})")
    text = p.read_text()
    if p.suffix in (".yaml", ".yml"):
        import yaml

        table = yaml.safe_load(text) or {}
    elif p.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        table = tomllib.loads(text)
    else:
        raise ValueError(f"config file must end in .yaml, .yml or .toml, got {p.name!r}")
    if not isinstance(table, dict):
        raise ValueError(f"config file {p} must hold a table of settings, got {type(table).__name__}")
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    unknown = sorted(set(table) - fields)
    if unknown:
        raise ValueError(f"config file {p} has unknown keys {unknown}; expected some of {sorted(fields)}")
    return table


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


def _features(model, data, device):
    tr, _, ytr = predict(model, data.train, device=device)
    te, logits, yte = predict(model, data.test, device=device)
    return {"train": tr.numpy(), "test": te.numpy(), "test_logits": logits.numpy(),
            "y_train": ytr.numpy(), "y_test": yte.numpy()}


def run_experiment(config: ExperimentConfig | None = None, *, quiet: bool = False, write: bool = True,
                   cache: bool = True) -> ExperimentResult:
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
        Reuse finished runs from ``<root>/runs``.

    Returns
    -------
    ExperimentResult or None
        ``None`` on the processes of rank > 0 under ``torchrun``: they train, rank 0 evaluates
        and writes (see :mod:`pcoh.distributed`).
    """
    cfg = config or ExperimentConfig()
    if not _dist.is_main():
        _dist.barrier()  # rank 0 downloads first, alone
    data = _data.load(cfg.dataset, root=cfg.root, download=cfg.download, **cfg.data)
    if _dist.is_main():
        _dist.barrier()
    tspec = TeacherSpec(cfg.dataset, cfg.teacher, cfg.teacher_train, dict(cfg.data), checkpoint=cfg.teacher_checkpoint)
    teacher = train_teacher(tspec, data, root=cfg.root, device=cfg.device, quiet=quiet, cache=cache)
    tkey = tspec.key()
    specs = cfg.runs()
    trained_here = {}
    if _dist.is_distributed():
        # Under torchrun every process trains every student (each on its shard of the global
        # batches); then rank 0 alone evaluates and writes, and the others are done.
        for i, spec in enumerate(specs):
            trained_here[i] = train_student(spec, teacher, data, teacher_key=tkey, root=cfg.root,
                                            device=cfg.device, quiet=True, cache=cache)
        if not _dist.is_main():
            return None
    feats = {"teacher": _features(teacher.model, data, cfg.device)}
    t = feats["teacher"]

    rows, per_ref, students = [], {}, {}

    def evaluate(key, f, metric, logits):
        row, rho = _eval.evaluate_model(
            f["train"], f["y_train"], f["test"], f["y_test"], t["test"],
            test_logits=logits, metric=metric, teacher_metric=cfg.teacher_metric,
            return_per_reference=True,
        )
        per_ref[key] = rho
        return row

    row = evaluate("teacher", t, cfg.teacher_metric, t["test_logits"])
    rows.append({"student": cfg.teacher, "method": "teacher", "mode": "-", "seed": cfg.teacher_train.seed,
                 "params": _models.count_parameters(teacher.model), **row})
    from tqdm.auto import tqdm

    for i, spec in enumerate(tqdm(specs, desc="students", disable=quiet, dynamic_ncols=True)):
        trained = trained_here.get(i) or train_student(spec, teacher, data, teacher_key=tkey, root=cfg.root,
                                                       device=cfg.device, quiet=True, cache=cache)
        key = (spec.model, spec.method, spec.mode, spec.train.seed)
        students[key] = trained
        feats[key] = f = _features(trained.model, data, cfg.device)
        logits = f["test_logits"] if spec.mode == "class-aware" else None
        rows.append({"student": spec.model, "method": spec.method, "mode": spec.mode, "seed": spec.train.seed,
                     "params": _models.count_parameters(trained.model), **evaluate(key, f, cfg.student_metric, logits)})
    results = pd.DataFrame(rows)
    out = ExperimentResult(results, teacher, students, per_ref, feats, data)
    if write:
        out.paths = write_outputs(out, cfg)
    return out


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


def write_outputs(result: ExperimentResult, cfg: ExperimentConfig) -> dict:
    """Write results.csv, summary.md and the key figures; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots

    folder = Path(cfg.output) / cfg.dataset
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"results": folder / "results.csv", "summary": folder / "summary.md"}
    result.results.to_csv(paths["results"], index=False)
    text = summary_table(result.results)
    paths["summary"].write_text(
        f"# pcoh main job: {cfg.dataset}\n\nTeacher `{cfg.teacher}`; mean ± std over {cfg.seeds} seed(s); "
        f"metrics on the held-out split ({len(result.data.test)} samples).\n\n{text}\n"
    )
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2, default=str))
    plots.style()
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    students = result.results[result.results["method"] != "teacher"]
    plots.plot_metric_bars(students, "pc_n", ax=axes[0], title="PC_n on held-out data (higher is better)")
    plots.plot_metric_bars(students, "knn_accuracy", ax=axes[1], title="kNN accuracy of student features")
    fig.tight_layout()
    paths["figure_metrics"] = plots.savefig(fig, Path(cfg.figures) / f"{cfg.dataset}-main-metrics")[0]
    plt.close(fig)
    # One seed's per-reference distributions, class-unaware students.
    values = {f"{k[1]}": v for k, v in result.per_reference.items()
              if isinstance(k, tuple) and k[2] == "class-unaware" and k[3] == 0}
    if values:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        plots.plot_per_reference(values, ax=ax, title="Per-reference Spearman, class-unaware students (seed 0)")
        fig.tight_layout()
        paths["figure_per_reference"] = plots.savefig(fig, Path(cfg.figures) / f"{cfg.dataset}-main-per-reference")[0]
        plt.close(fig)
    return paths
