"""What every notebook needs: the smoke switch, project paths, and the shared digits experiment.

The notebooks call :func:`experiment`; the first call trains (or loads from ``data/runs/``) the
teacher and every student, later calls and later notebooks load them from the cache. Under the
smoke switch (``PCOH_SMOKE=1``, set by ``make test`` and CI) budgets shrink and the same code runs.
The full configuration is the main job's (``python -m pcoh`` with no options), so after
``make run`` the notebooks only evaluate.
"""
from __future__ import annotations

import atexit
import dataclasses
import math
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from . import methods as _methods
from . import stats as _stats
from ._checks import as_array, check_bool, check_choice, check_columns, check_int, check_names, check_seed
from .dissimilarity import get_metric
from .experiment import ExperimentConfig, ExperimentResult, run_experiment
from .train import TrainConfig

__all__ = ["SMOKE", "UMAP_SETTINGS", "smoke", "project_root", "experiment_config", "experiment", "figures_dir",
           "figures_folder", "remove_stale_smoke_folders",
           "pick_runs", "run_features", "median_reference", "versus_best_baseline", "ranked_baselines",
           "describe_versus", "sample_rows", "embedding_titles", "umap_panels", "draw_controls", "log_slider",
           "digits_image_folder", "describe_focus_study", "order_by", "agreeing_pairs", "intervals_overlap",
           "format_interval", "describe_transfer", "parameter_count", "describe_sizes", "FOCUS_VALUES",
           "focus_loss_kwargs", "focus_students", "focus_neighbors"]


def smoke() -> bool:
    """True when ``PCOH_SMOKE`` is set to anything but ``""``/``"0"``: shrink every budget."""
    return os.environ.get("PCOH_SMOKE", "") not in ("", "0")


SMOKE = smoke()

#: The UMAP settings of every notebook map (notebooks 05, 07 and 08), for
#: :func:`pcoh.embedding.umap_embedding(s) <pcoh.embedding.umap_embeddings>`: cosine geometry as the
#: teacher's dissimilarity, fixed seed; ``n_epochs=None`` is umap-learn's default (500 for these
#: sizes), 100 under the smoke switch.
UMAP_SETTINGS = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0,
                     n_epochs=100 if SMOKE else None)


def _smoke(smoke_mode) -> bool:
    """``smoke_mode``, or the smoke switch (:data:`SMOKE`) when it is None."""
    return SMOKE if smoke_mode is None else check_bool(smoke_mode, "smoke_mode")


def _optional_str(value, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {type(value).__name__} {value!r}")


def project_root() -> Path:
    """The folder holding ``pyproject.toml``, searched upwards from the working directory.

    Falls back to the working directory (e.g. for an installed, non-editable package).
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() and (folder / "pcoh").is_dir():
            return folder
    return here


def figures_dir() -> Path:
    """``<project>/figures``, created if missing."""
    path = project_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def experiment_config(smoke_mode: bool | None = None) -> ExperimentConfig:
    """The notebooks' experiment: the main job's settings, or a tiny budget in smoke mode."""
    smoke_mode = _smoke(smoke_mode)
    root = project_root()
    cfg = ExperimentConfig(root=str(root / "data"), cache=str(root / "data"), output=str(root / "results"),
                           figures=str(root / "figures"))
    if smoke_mode:
        cfg = dataclasses.replace(
            cfg,
            seeds=1,
            teacher_train=TrainConfig(epochs=3),
            student_train=TrainConfig(epochs=2),
        )
    return cfg


@lru_cache(maxsize=2)
def experiment(smoke_mode: bool | None = None) -> ExperimentResult:
    """Train or load the teacher and every student of :func:`experiment_config`, evaluated.

    Nothing is written to ``results/`` (the main job owns it); cached runs go to ``data/runs``.
    """
    return run_experiment(experiment_config(smoke_mode), quiet=True, write=False)


_SMOKE_PREFIX = "pcoh-smoke-figures-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: keep its folder
    return True


def remove_stale_smoke_folders(folder: Optional[Path] = None) -> list:
    """Remove the scratch figure folders of smoke runs whose process has ended.

    Each smoke run's folder is named ``pcoh-smoke-figures-<pid>-...`` after the process (the
    notebook's kernel) that made it. A kernel that exits normally removes its own folder; one that
    is killed (nbval stops its kernels so) cannot, so every later smoke run, and the notebook test
    session when it ends (``notebooks/conftest.py``), removes the folders of processes that are
    gone.

    Parameters
    ----------
    folder : pathlib.Path, optional
        Where the folders are; default the system's temporary folder.

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path or None, got {type(folder).__name__}")
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(_SMOKE_PREFIX + "*"):
        pid = path.name[len(_SMOKE_PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def figures_folder(smoke_mode: bool | None = None) -> Path:
    """Where a notebook exports its figures: :func:`figures_dir`, or a scratch folder in smoke mode.

    Smoke runs (``PCOH_SMOKE=1``, as in ``make test``) write to a new temporary folder, so that
    they never overwrite the committed full-run figures. The folder is removed when the Python
    process (the notebook's kernel) exits, or, if that process is killed, by the next smoke run
    or the end of the notebook tests (:func:`remove_stale_smoke_folders`).
    """
    smoke_mode = _smoke(smoke_mode)
    if smoke_mode:
        remove_stale_smoke_folders()
        folder = tempfile.mkdtemp(prefix=f"{_SMOKE_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return Path(folder)
    return figures_dir()


def pick_runs(result: ExperimentResult, mode: str = "class-unaware", seed: int = 0, *,
              student: Optional[str] = None) -> dict:
    """The student runs of one mode and seed: method -> run key ``(student, method, mode, seed)``.

    Parameters
    ----------
    result : ExperimentResult
    mode : str, default "class-unaware"
    seed : int, default 0
    student : str, optional
        The student architecture; default the first one of the result.

    Returns
    -------
    dict
        In the order the runs were made (the method registry's order).

    Raises
    ------
    ValueError
        No run of that mode and seed.
    """
    check_choice(mode, "mode", _methods.MODES)
    seed = check_int(seed, "seed", minimum=0)
    _optional_str(student, "student")
    keys = [k for k in result.features if k != "teacher"]
    if student is None and keys:
        student = keys[0][0]
    runs = {k[1]: k for k in keys if k[0] == student and k[2] == mode and k[3] == seed}
    if not runs:
        seeds = sorted({k[3] for k in keys if k[2] == mode})
        raise ValueError(f"no {mode} run of student {student!r} with seed {seed!r}; seeds of that mode: {seeds}")
    return runs


def run_features(result: ExperimentResult, mode: str = "class-unaware", seed: int = 0, *, split: str = "test",
                 teacher: bool = False, student: Optional[str] = None) -> dict:
    """Features of the runs of one mode and seed: method -> ``(n, d)`` array (see :func:`pick_runs`).

    Parameters
    ----------
    split : {"test", "train"}, default "test"
    teacher : bool, default False
        Put the teacher's features first, under ``"teacher"``.
    """
    check_choice(split, "split", ["test", "train"])
    teacher = check_bool(teacher, "teacher")
    runs = pick_runs(result, mode, seed, student=student)
    out = {"teacher": result.features["teacher"][split]} if teacher else {}
    out.update({method: result.features[key][split] for method, key in runs.items()})
    return out


def median_reference(values) -> int:
    """The reference whose value is the median (the upper one of an even count): a typical reference.

    Parameters
    ----------
    values : array-like, shape (n,)
        Per-reference values, e.g. one run's per-reference Spearman.
    """
    v = as_array(values, "values", finite=False)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty (n,) array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values must not contain NaN")
    return int(np.argsort(v, kind="stable")[len(v) // 2])


def _trained(results: pd.DataFrame, mode: str) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    check_choice(mode, "mode", _methods.MODES)
    check_columns(results, ("method", "mode"), "results")
    return results[(results["mode"] == mode) & ~results["method"].isin(list(_methods.REFERENCES))]


def ranked_baselines(results: pd.DataFrame, *, mode: str = "class-unaware", metric: str = "pc_n",
                     method: str = "pc") -> list:
    """The other methods of a mode, highest mean ``metric`` over seeds first (ties: run order)."""
    frame = _trained(results, mode)
    _column(results, metric, "metric")
    if not isinstance(method, str):
        raise TypeError(f"method must be a method's name (a string), got {type(method).__name__}")
    means = frame[frame["method"] != method].groupby("method", sort=False)[metric].mean().dropna()
    return sorted(means.index, key=lambda m: -means[m])


def versus_best_baseline(results: pd.DataFrame, *, method: str = "pc", mode: str = "class-unaware",
                         metric: str = "pc_n", level: float = 0.95) -> dict:
    """One method against the best other method of its mode, paired by seed (:mod:`pcoh.stats`).

    The best baseline is the other trained method with the highest mean (references such as
    ``untrained`` are not candidates). ``verdict`` follows the paired interval: ``"ahead"`` when
    it lies above 0, ``"behind"`` below 0, ``"not separated"`` when it holds 0 or there is no
    interval (a single seed). The method is **best** exactly when the verdict is ``"ahead"``.

    Returns
    -------
    dict
        ``method``, ``baseline``, ``mean``, ``std``, ``baseline_mean``, ``baseline_std``,
        ``diff``, ``low``, ``high``, ``n_pairs``, ``level``, ``verdict``.
    """
    frame = _trained(results, mode)
    _column(results, metric, "metric")
    if not isinstance(method, str):
        raise TypeError(f"method must be a method's name (a string), got {type(method).__name__}")
    if method not in set(frame["method"]):
        raise ValueError(f"method {method!r} has no {mode} run; methods: {sorted(set(frame['method']))}")
    table = _stats.paired_comparison(frame, metric, by=("student",), level=level)
    table = table[table["student"] == table["student"].iloc[0]].set_index("method")
    row = table.loc[method]
    other = row["other"]
    if other is None or (isinstance(other, float) and math.isnan(other)):
        raise ValueError(f"{mode}: {method!r} has no other method to be compared with")
    low, high = float(row["diff_low"]), float(row["diff_high"])
    verdict = "ahead" if low > 0 else "behind" if high < 0 else "not separated"
    return {"method": method, "baseline": other, "mean": float(row["mean"]), "std": float(row["std"]),
            "baseline_mean": float(table.at[other, "mean"]), "baseline_std": float(table.at[other, "std"]),
            "diff": float(row["diff"]), "low": low, "high": high, "n_pairs": int(row["n_pairs"]),
            "level": level, "verdict": verdict}


def describe_versus(v: dict, *, metric: str = "PC_n", digits: int = 3) -> str:
    """One sentence (Markdown) from :func:`versus_best_baseline`'s dict, numbers as computed."""
    if not isinstance(v, dict):
        raise TypeError(f"v must be the dict of versus_best_baseline, got {type(v).__name__}")
    missing = sorted({"method", "baseline", "mean", "std", "baseline_mean", "baseline_std", "diff", "low", "high",
                      "n_pairs", "level", "verdict"} - set(v))
    if missing:
        raise ValueError(f"v must be the dict of versus_best_baseline; it lacks {missing}")
    if not isinstance(metric, str):
        raise TypeError(f"metric must be the name shown (a string), got {type(metric).__name__}")
    f = f".{check_int(digits, 'digits', minimum=0)}f"
    spread = "" if math.isnan(v["std"]) else f" ± {v['std']:{f}}"
    bspread = "" if math.isnan(v["baseline_std"]) else f" ± {v['baseline_std']:{f}}"
    interval = ("no interval (one seed)" if math.isnan(v["low"]) else
                f"{100 * v['level']:g}% interval [{v['low']:+{f}}, {v['high']:+{f}}] over {v['n_pairs']} paired seeds")
    verdict = {"ahead": f"`{v['method']}` is best (the interval lies above 0)",
               "behind": f"`{v['method']}` is behind (the interval lies below 0)",
               "not separated": "no method is called best (the interval holds 0)"}[v["verdict"]]
    return (f"`{v['method']}` {metric} {v['mean']:{f}}{spread} against the best other method, "
            f"`{v['baseline']}`, {v['baseline_mean']:{f}}{bspread}: paired difference {v['diff']:+{f}}, "
            f"{interval}; {verdict}.")


def sample_rows(n: int, n_points: Optional[int] = None, seed: int = 0) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``n_points`` of them drawn without replacement."""
    n, seed = check_int(n, "n", minimum=1), check_seed(seed)
    if n_points is None:
        return np.arange(n)
    n_points = check_int(n_points, "n_points", minimum=1)
    if n_points >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, n_points, replace=False))


def embedding_titles(results: pd.DataFrame, methods: Sequence[str], *, mode: str = "class-unaware", seed: int = 0,
                     teacher: str = "teacher\n(reference)") -> dict:
    """Panel titles: each method with its trustworthiness T and continuity C against the teacher.

    ``"teacher"`` (if among ``methods``) gets ``teacher``; the others read
    ``"<method>\nT = ...\nC = ..."`` (one measure a line, so that a grid of maps on a slide keeps its
    titles apart) from the run of ``mode`` and ``seed`` in ``results``.
    """
    check_choice(mode, "mode", _methods.MODES)
    check_columns(results, ("method", "mode", "seed", "trustworthiness", "continuity"), "results")
    methods, seed = check_names(methods, "methods"), check_int(seed, "seed", minimum=0)
    if not isinstance(teacher, str):
        raise TypeError(f"teacher must be the teacher's title (a string), got {type(teacher).__name__}")
    scores = results[(results["mode"] == mode) & (results["seed"] == seed)].set_index("method")
    titles = {}
    for m in methods:
        if m == "teacher":
            titles[m] = teacher
        elif m not in scores.index:
            raise ValueError(f"methods: no {mode} run of method {m!r} with seed {seed}")
        else:
            titles[m] = f"{m}\nT = {scores.at[m, 'trustworthiness']:.3f}\nC = {scores.at[m, 'continuity']:.3f}"
    return titles


def umap_panels(result: ExperimentResult, methods: Optional[Sequence[str]] = None, *, mode: str = "class-unaware",
                seed: int = 0, n_points: Optional[int] = None, **umap_settings):
    """UMAP maps of the teacher and students of one mode and seed, aligned to the teacher, with titles.

    Parameters
    ----------
    result : ExperimentResult
    methods : sequence of str, optional
        The students shown after the teacher; default every run of the mode and seed.
    mode, seed
        Which runs (:func:`pick_runs`).
    n_points : int, optional
        Embed a random subset of the test images (:func:`sample_rows`); default all.
    **umap_settings
        Passed to :func:`pcoh.embedding.umap_embeddings`.

    Returns
    -------
    embeddings : dict
        ``"teacher"`` and each method -> ``(len(rows), 2)`` array.
    rows : numpy.ndarray
        The test rows embedded.
    titles : dict
        From :func:`embedding_titles`.
    """
    from .embedding import umap_embeddings

    features = run_features(result, mode, seed, teacher=True)
    if methods is not None:
        missing = [m for m in methods if m not in features]
        if missing:
            raise ValueError(f"no {mode} run with seed {seed} of {missing}; runs: {[m for m in features if m != 'teacher']}")
        features = {m: features[m] for m in ["teacher", *methods]}
    rows = sample_rows(len(features["teacher"]), n_points)
    embeddings = umap_embeddings(features, reference="teacher", rows=rows, **umap_settings)
    return embeddings, rows, embedding_titles(result.results, list(features), mode=mode, seed=seed)


def draw_controls(function: Callable, *, manual: bool = True, show: bool = True, **controls):
    """Widgets that redraw ``function`` with the values of ``controls`` (needs a live kernel).

    With ``manual`` (default) a *Draw* button redraws: drawing into a widget while a notebook is
    executed unattended can stall the executor, so nothing is drawn until the button is pressed.
    Give every control the value of the static figure above it. ``function`` draws a figure (and
    may return it, as for the static figure): each call is followed by ``plt.show()``, so that the
    figure lands in the widget's output area, and its return value is dropped (the output area
    would otherwise print it).

    Returns
    -------
    ipywidgets.interactive
        Displayed already when ``show``.
    """
    import functools

    import ipywidgets as widgets
    from IPython.display import display

    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    manual, show = check_bool(manual, "manual"), check_bool(show, "show")

    @functools.wraps(function)  # keeps the signature, whose defaults and names the controls are matched to
    def draw(*args, **kwargs):
        import matplotlib.pyplot as plt

        function(*args, **kwargs)
        plt.show()

    options = {"manual": True, "manual_name": "Draw"} if manual else {}
    panel = widgets.interactive(draw, options, **controls) if options else widgets.interactive(draw, **controls)
    if show:
        display(panel)
    return panel


def log_slider(value: float, low: float, high: float, *, per_decade: int = 4, description: str = "",
               digits: int = 3):
    """A slider over a logarithmic grid that holds ``value`` exactly.

    An ``ipywidgets.SelectionSlider`` over the explicit values ``10**(k / per_decade)`` from
    ``low`` to ``high`` and ``value`` itself: unlike a ``FloatLogSlider``, whose step rounds the
    exponent, it starts at exactly ``value`` (the value of the static figure above it).

    Parameters
    ----------
    value, low, high : float
        ``0 < low <= value <= high``.
    per_decade : int, default 4
        Grid points per factor of 10.
    description : str
    digits : int, default 3
        Significant digits of the labels.
    """
    import ipywidgets as widgets

    for name, v in (("value", value), ("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name} must be a finite number, got {v!r}")
    if not 0 < low <= value <= high:
        raise ValueError(f"need 0 < low <= value <= high, got low={low!r}, value={value!r}, high={high!r}")
    per_decade, digits = check_int(per_decade, "per_decade", minimum=1), check_int(digits, "digits", minimum=1)
    if not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    exponents = np.arange(math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade) + 1)
    grid = [float(10.0 ** (k / per_decade)) for k in exponents]
    grid = [g for g in grid if low * (1 - 1e-12) <= g <= high * (1 + 1e-12)]
    values = sorted(set(grid) | {float(value)})
    options = [(f"{v:.{digits}g}", v) for v in values]
    return widgets.SelectionSlider(options=options, value=float(value), description=description,
                                   continuous_update=False)


#: Digits of each class that the smoke switch keeps in :func:`digits_image_folder`'s folder.
SMOKE_DIGITS_PER_CLASS = 12


def digits_image_folder(smoke_mode: bool | None = None, *, size: int = 32) -> Path:
    """The digits as an image folder of PNG files, as a user's own images would be (notebook 09).

    ``<project>/data/digits-png/<digit>/<index>.png``: every image of scikit-learn's digits,
    ``size x size`` grey (:func:`pcoh.data.write_image_folder`, bilinear upsampling of the 8x8
    originals). Under the smoke switch, the first :data:`SMOKE_DIGITS_PER_CLASS` of each digit in
    ``data/digits-png-smoke/``. Files already written with the same bytes are left alone, so the
    folder, and the runs cached on it, stay valid from one call to the next.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from sklearn.datasets import load_digits

    from .data import write_image_folder

    smoke_mode = _smoke(smoke_mode)
    size = check_int(size, "size", minimum=1)
    digits = load_digits()
    images, labels = digits.images / 16.0, digits.target
    folder = project_root() / "data" / "digits-png"
    if smoke_mode:
        keep = np.concatenate([np.flatnonzero(labels == k)[:SMOKE_DIGITS_PER_CLASS] for k in range(10)])
        images, labels, folder = images[keep], labels[keep], folder.with_name("digits-png-smoke")
    return write_image_folder(folder, images, labels, size=size)


def describe_focus_study(summary, *, mode: str = "class-unaware", settings=("pc exp-sym 4", "pc exp-sym 8")) -> str:
    """One sentence per cell (data, batch) of the focus study, from its ``summary.csv``.

    Each sentence gives the change in top-k overlap and kNN accuracy of ``settings`` against
    ``pc focus 0``, and whether the plain loss keeps the lead in $PC_n$ over the best baseline.
    """
    check_choice(mode, "mode", _methods.MODES)
    check_columns(summary, ("data", "batch", "mode", "method", "family", "pc_n_mean", "topk_overlap_mean",
                            "knn_accuracy_mean"), "summary")
    settings = check_names(settings, "settings")
    rows = summary[summary["mode"] == mode]
    if rows.empty:
        raise ValueError(f"summary has no rows for mode={mode!r}")
    for setting in settings:
        check_choice(setting, "settings", sorted(set(rows["method"])))
    out = []
    for (data, batch), cell in rows.groupby(["data", "batch"], sort=False):
        by = cell.set_index("method")
        plain = by.loc["pc focus 0"]
        base = cell[cell["family"] == "baseline"].sort_values("pc_n_mean").iloc[-1]
        best_pc = cell[cell["family"] != "baseline"].sort_values("pc_n_mean").iloc[-1]
        changes = "; ".join(
            f"`{s}` top-k {by.at[s, 'topk_overlap_mean'] - plain['topk_overlap_mean']:+.3f}, "
            f"kNN {by.at[s, 'knn_accuracy_mean'] - plain['knn_accuracy_mean']:+.3f}" for s in settings)
        lead = (f"pc leads in $PC_n$ ({best_pc['pc_n_mean']:.3f} against `{base['method']}` {base['pc_n_mean']:.3f})"
                if best_pc["pc_n_mean"] > base["pc_n_mean"] else
                f"`{base['method']}` leads every pc setting in $PC_n$ ({base['pc_n_mean']:.3f} against "
                f"{best_pc['pc_n_mean']:.3f})")
        out.append(f"*{data}, batch {batch}*: against focus 0, {changes}; {lead}.")
    return " ".join(out)


def _scores_frame(scores) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a pandas DataFrame indexed by embedding, got {type(scores).__name__}")
    return scores


def _column(scores: pd.DataFrame, column, name: str) -> None:
    """``column`` (a string) names a column of ``scores``."""
    if not isinstance(column, str):
        raise TypeError(f"{name} must be a column name (a string), got {type(column).__name__} {column!r}")
    check_choice(column, name, list(scores.columns))


def _row(scores: pd.DataFrame, row, name: str) -> None:
    """``row`` (a string) names a row (an embedding) of ``scores``."""
    if not isinstance(row, str):
        raise TypeError(f"{name} must be an embedding's name (a string), got {type(row).__name__} {row!r}")
    check_choice(row, name, list(scores.index))


def _interval_columns(scores: pd.DataFrame, column) -> tuple:
    """``("<column>_low", "<column>_high")``, both columns of ``scores``, and ``column`` itself."""
    _column(scores, column, "column")
    lo, hi = f"{column}_low", f"{column}_high"
    if lo not in scores.columns or hi not in scores.columns:
        raise ValueError(f"column must have an interval in scores (columns {lo!r} and {hi!r}), got {column!r}")
    return lo, hi


def order_by(scores: pd.DataFrame, column: str) -> str:
    """The embeddings (index of ``scores``) from highest to lowest ``column``, joined by ``" > "``.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per embedding, indexed by name (e.g. :func:`pcoh.evaluate.score_embeddings`'s
        table with ``set_index("embedding")``).
    column : str
        The measure, e.g. ``"pc_n"``.
    """
    scores = _scores_frame(scores)
    _column(scores, column, "column")
    return " > ".join(scores.sort_values(column, ascending=False, kind="stable").index)


def agreeing_pairs(scores: pd.DataFrame, a: str, b: str) -> tuple:
    """Every pair of embeddings as ``"<higher> above <lower>"`` by measure ``a``, split by whether ``b`` agrees.

    A pair *agrees* when ``b`` of the one higher by ``a`` is strictly larger than ``b`` of the
    other (ties by ``a`` put the later row on top; ties by ``b`` count as disagreement).

    Returns
    -------
    same, differ : list of str
        The pairs that ``b`` orders as ``a`` does, and the others; ``len(same) + len(differ)``
        is ``n (n - 1) / 2`` for ``n`` embeddings.
    """
    scores = _scores_frame(scores)
    for name, column in (("a", a), ("b", b)):
        _column(scores, column, name)
    same, differ = [], []
    names = list(scores.index)
    for i, x in enumerate(names):
        for z in names[i + 1:]:
            hi, lo = (x, z) if scores.at[x, a] > scores.at[z, a] else (z, x)
            (same if (scores.at[hi, b] - scores.at[lo, b]) > 0 else differ).append(f"{hi} above {lo}")
    return same, differ


def intervals_overlap(scores: pd.DataFrame, x: str, z: str, *, column: str = "pc_n") -> bool:
    """Whether the intervals ``[<column>_low, <column>_high]`` of embeddings ``x`` and ``z`` share a point."""
    scores = _scores_frame(scores)
    for name, v in (("x", x), ("z", z)):
        _row(scores, v, name)
    lo, hi = _interval_columns(scores, column)
    return bool(scores.at[x, lo] <= scores.at[z, hi] and scores.at[z, lo] <= scores.at[x, hi])


def format_interval(scores: pd.DataFrame, name: str, *, column: str = "pc_n", digits: int = 3) -> str:
    """``"<value> [<low>, <high>]"`` of one embedding's ``column`` and its interval, ``digits`` decimals."""
    scores = _scores_frame(scores)
    _row(scores, name, "name")
    _interval_columns(scores, column)
    digits = check_int(digits, "digits", minimum=0)
    f = f".{digits}f"
    return (f"{scores.at[name, column]:{f}} [{scores.at[name, f'{column}_low']:{f}}, "
            f"{scores.at[name, f'{column}_high']:{f}}]")


def describe_transfer(results: pd.DataFrame, *, modes: Sequence[str] = ("class-unaware", "class-aware"),
                      seeds: Optional[int] = None, epochs: Optional[int] = None) -> str:
    """The *Reading* paragraph of notebook 03 (Markdown), every number from ``results``.

    Per mode, :func:`describe_versus` of ``pc`` against the best other method in $PC_n$; then,
    class-unaware, every other method's mean $PC_n$ (:func:`ranked_baselines` order) and the
    untrained floor, the linear CKA of ``pc`` against the range of the other trained methods, the
    paired kNN-accuracy comparison, and the ranges of kNN accuracy and linear probe of the trained
    students.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per run (``ExperimentResult.results``), with columns ``mode``, ``method``,
        ``seed``, ``student``, ``pc_n``, ``cka``, ``knn_accuracy`` and ``linear_probe``.
    modes : sequence of str
        The modes described, in order; must include ``"class-unaware"``.
    seeds, epochs : int, optional
        Seeds per method and epochs per student, quoted in the opening words when given.
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    modes = check_names(modes, "modes")
    for mode in modes:
        check_choice(mode, "modes", _methods.MODES)
    seeds = None if seeds is None else check_int(seeds, "seeds", minimum=1)
    epochs = None if epochs is None else check_int(epochs, "epochs", minimum=1)
    if "class-unaware" not in modes:
        raise ValueError(f"modes must include 'class-unaware', got {list(modes)}")
    columns = ["pc_n", "cka", "knn_accuracy", "linear_probe"]
    missing = [c for c in ["mode", "method", *columns] if c not in results.columns]
    if missing:
        raise ValueError(f"results lacks the columns {missing}")
    students = results[results["method"] != "teacher"]
    means = students.groupby(["mode", "method"], sort=False)[columns].mean()
    versus = {mode: versus_best_baseline(results, mode=mode) for mode in modes}
    knn = versus_best_baseline(results, mode="class-unaware", metric="knn_accuracy")
    order = ranked_baselines(results, mode="class-unaware")
    unaware = means.loc["class-unaware"]
    trained = unaware.drop(index=list(_methods.REFERENCES), errors="ignore")
    others_cka = trained.drop(index="pc")["cka"]
    run = ", ".join(part for part in (f"{seeds} seed(s)" if seeds is not None else "",
                                      f"{epochs} epochs per student" if epochs is not None else "") if part)
    floor = (f"; the untrained student {unaware.at['untrained', 'pc_n']:.3f}." if "untrained" in unaware.index
             else ".")
    return (
        f"**Reading** (this run{': ' + run if run else ''}). "
        + " ".join(f"*{mode}*: {describe_versus(versus[mode])}" for mode in modes)
        + " Class-unaware, the other methods by mean $PC_n$: "
        + ", ".join(f"`{m}` {unaware.at[m, 'pc_n']:.3f}" for m in order) + floor
        + f" Linear CKA with the teacher, class-unaware: `pc` {unaware.at['pc', 'cka']:.3f}, the other trained "
          f"methods {others_cka.min():.3f} to {others_cka.max():.3f}: $PC_n$ asks for the teacher's orderings, "
          "not its geometry."
        + f" kNN accuracy of the frozen features, class-unaware: {describe_versus(knn, metric='kNN accuracy')}"
        + f" Trained students' kNN accuracies range from {trained['knn_accuracy'].min():.3f} to "
          f"{trained['knn_accuracy'].max():.3f}, linear probes from {trained['linear_probe'].min():.3f} to "
          f"{trained['linear_probe'].max():.3f}.")


def parameter_count(model) -> int:
    """Number of parameters (trainable or not) of a ``torch.nn.Module``."""
    if not hasattr(model, "parameters") or not callable(model.parameters):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return int(sum(p.numel() for p in model.parameters()))


def describe_sizes(result: ExperimentResult, *, student: Optional[str] = None) -> str:
    """One sentence (Markdown): the student's and teacher's parameter counts, their ratio, the split sizes.

    Parameters
    ----------
    result : ExperimentResult
        Its ``teacher.model``, the first run of ``student`` in ``students``, and
        ``features["teacher"]`` (``"train"`` and ``"test"`` rows) are read.
    student : str, optional
        The student architecture; default the first one of the result.
    """
    _optional_str(student, "student")
    runs = [k for k in result.students if student is None or k[0] == student]
    if not runs:
        raise ValueError(f"no run of student {student!r}; students: {sorted({k[0] for k in result.students})}")
    name = runs[0][0]
    n_student = parameter_count(result.students[runs[0]].model)
    n_teacher = parameter_count(result.teacher.model)
    t = result.features["teacher"]
    return (f"The `{name}` student has {n_student:,} parameters, the teacher {n_teacher:,}: "
            f"{n_teacher / n_student:.0f}× fewer. Students are trained on the {len(t['train']):,} training digits "
            f"and evaluated on the {len(t['test']):,} held-out digits.")


#: The focus values of notebook 03's neighbour control: plain pc (0) and the symmetric exponential focus.
FOCUS_VALUES = (0, 4, 8)


def focus_loss_kwargs(focus: float) -> dict:
    """Keyword arguments of the ``pc`` loss at ``focus``: none for 0 (plain pc), else the symmetric exp focus."""
    if isinstance(focus, bool) or not isinstance(focus, (int, float)) or not math.isfinite(focus):
        raise TypeError(f"focus must be a finite number, got {focus!r}")
    if focus < 0:
        raise ValueError(f"focus must be >= 0, got {focus!r}")
    return {} if focus == 0 else {"focus": float(focus), "focus_kind": "exp", "focus_symmetric": True}


def focus_students(focus_values: Sequence[float] = FOCUS_VALUES, *, seed: int = 0,
                   smoke_mode: bool | None = None, result: Optional[ExperimentResult] = None) -> dict:
    """Test features of class-unaware ``pc`` students trained at each focus, with the notebooks' settings.

    One :func:`pcoh.experiment.run_experiment` per focus, with :func:`experiment_config`'s teacher,
    student, budgets and data, the ``pc`` method only, the class-unaware mode, seeds ``0..seed``
    and the loss arguments of :func:`focus_loss_kwargs`. Runs are cached in ``data/runs/`` like
    every other run, so focus 0 is the main experiment's ``pc`` run and a second call only loads.

    Parameters
    ----------
    focus_values : sequence of float, default :data:`FOCUS_VALUES`
    seed : int, default 0
    smoke_mode : bool, optional
        As :func:`experiment_config`.
    result : ExperimentResult, optional
        The main experiment of the same settings (:func:`experiment`): focus 0 is then read from
        its class-unaware ``pc`` run instead of a run of its own (the same cached run, without
        evaluating it again).

    Returns
    -------
    dict
        focus -> ``(n_test, d)`` numpy features of the run with ``seed``.
    """
    seed = check_int(seed, "seed", minimum=0)
    base = experiment_config(smoke_mode)
    out = {}
    for focus in focus_values:
        kwargs = focus_loss_kwargs(focus)
        if not kwargs and result is not None:
            out[focus] = result.features[pick_runs(result, "class-unaware", seed)["pc"]]["test"]
            continue
        config = dataclasses.replace(base, methods=("pc",), modes=("class-unaware",), seeds=seed + 1,
                                     include_untrained=False, loss_kwargs={"pc": kwargs} if kwargs else {})
        result = run_experiment(config, quiet=True, write=False)
        out[focus] = result.features[(config.students[0], "pc", "class-unaware", seed)]["test"]
    return out


def focus_neighbors(result: ExperimentResult, focus_features: dict, focus: float, reference: int, *,
                    baseline: Optional[str] = None, seed: int = 0, k: int = 8, teacher_metric: str = "cosine",
                    student_metric: str = "cosine", ax=None):
    """The reference's ``k`` nearest test images: teacher, the ``pc`` student at ``focus``, the best baseline.

    Parameters
    ----------
    result : ExperimentResult
        The main experiment (:func:`experiment`): the test images, the teacher's features and the
        baseline's class-unaware run of ``seed``.
    focus_features : dict
        focus -> ``(n_test, d)`` features (:func:`focus_students`).
    focus : float
        A key of ``focus_features``.
    reference : int
        Test index of the reference image.
    baseline : str, optional
        Default the class-unaware method other than ``pc`` with the highest mean $PC_n$
        (:func:`ranked_baselines`).
    seed : int, default 0
    k : int, default 8
    teacher_metric, student_metric : str, default "cosine"
        The dissimilarities of the teacher and of the students (the experiment's).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        From :func:`pcoh.plots.plot_neighbors`, the teacher's row first.
    """
    from . import plots

    if not isinstance(focus_features, dict):
        raise TypeError(f"focus_features must be a dict of focus -> features, got {type(focus_features).__name__}")
    if not focus_features:
        raise ValueError("focus_features must hold at least one focus -> features")
    check_choice(focus, "focus", list(focus_features))
    seed = check_int(seed, "seed", minimum=0)
    get_metric(teacher_metric, "teacher_metric")
    get_metric(student_metric, "student_metric")
    _optional_str(baseline, "baseline")
    if baseline is None:
        baseline = ranked_baselines(result.results, mode="class-unaware")[0]
    runs = pick_runs(result, "class-unaware", seed)
    check_choice(baseline, "baseline", [m for m in runs if m != "pc"])
    images, labels = result.data.tensors("test")
    features = {"teacher": result.features["teacher"]["test"], f"pc, focus {focus:g}": focus_features[focus],
                baseline: result.features[runs[baseline]]["test"]}
    metric = {name: teacher_metric if name == "teacher" else student_metric for name in features}
    ax = plots.plot_neighbors(images, features, reference, k=k, metric=metric, labels=labels,
                              shared_with="teacher", mean=result.data.mean, std=result.data.std, ax=ax)
    ax.set_title(f"class-unaware students, seed {seed}: nearest neighbours of reference {reference}", pad=28)
    return ax
