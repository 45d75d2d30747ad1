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
from ._checks import check_choice, check_int
from .experiment import ExperimentConfig, ExperimentResult, run_experiment
from .train import TrainConfig

__all__ = ["SMOKE", "smoke", "project_root", "experiment_config", "experiment", "figures_dir", "figures_folder",
           "remove_stale_smoke_folders",
           "pick_runs", "run_features", "median_reference", "versus_best_baseline", "ranked_baselines",
           "describe_versus", "sample_rows", "embedding_titles", "umap_panels", "draw_controls", "log_slider"]


def smoke() -> bool:
    """True when ``PCOH_SMOKE`` is set to anything but ``""``/``"0"``: shrink every budget."""
    return os.environ.get("PCOH_SMOKE", "") not in ("", "0")


SMOKE = smoke()


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
    smoke_mode = SMOKE if smoke_mode is None else smoke_mode
    root = project_root()
    cfg = ExperimentConfig(root=str(root / "data"), output=str(root / "results"), figures=str(root / "figures"))
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
    smoke_mode = SMOKE if smoke_mode is None else smoke_mode
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
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty (n,) array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values must not contain NaN")
    return int(np.argsort(v, kind="stable")[len(v) // 2])


def _trained(results: pd.DataFrame, mode: str) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    check_choice(mode, "mode", _methods.MODES)
    return results[(results["mode"] == mode) & ~results["method"].isin(list(_methods.REFERENCES))]


def ranked_baselines(results: pd.DataFrame, *, mode: str = "class-unaware", metric: str = "pc_n",
                     method: str = "pc") -> list:
    """The other methods of a mode, highest mean ``metric`` over seeds first (ties: run order)."""
    frame = _trained(results, mode)
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
    f = f".{digits}f"
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
    n = check_int(n, "n", minimum=1)
    if n_points is None or n_points >= n:
        return np.arange(n)
    n_points = check_int(n_points, "n_points", minimum=1)
    return np.sort(np.random.default_rng(seed).choice(n, n_points, replace=False))


def embedding_titles(results: pd.DataFrame, methods: Sequence[str], *, mode: str = "class-unaware", seed: int = 0,
                     teacher: str = "teacher\n(reference)") -> dict:
    """Panel titles: each method with its trustworthiness T and continuity C against the teacher.

    ``"teacher"`` (if among ``methods``) gets ``teacher``; the others read
    ``"<method>\nT = ...\nC = ..."`` (one measure a line, so that a grid of maps on a slide keeps its
    titles apart) from the run of ``mode`` and ``seed`` in ``results``.
    """
    check_choice(mode, "mode", _methods.MODES)
    scores = results[(results["mode"] == mode) & (results["seed"] == seed)].set_index("method")
    titles = {}
    for m in methods:
        if m == "teacher":
            titles[m] = teacher
        elif m not in scores.index:
            raise ValueError(f"no {mode} run of method {m!r} with seed {seed}")
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
    Give every control the value of the static figure above it. ``function`` should draw with
    ``plt.show()`` so that the figure lands in the widget's output area.

    Returns
    -------
    ipywidgets.interactive
        Displayed already when ``show``.
    """
    import ipywidgets as widgets
    from IPython.display import display

    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    options = {"manual": True, "manual_name": "Draw"} if manual else {}
    panel = widgets.interactive(function, options, **controls) if options else widgets.interactive(function, **controls)
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
    per_decade = check_int(per_decade, "per_decade", minimum=1)
    exponents = np.arange(math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade) + 1)
    grid = [float(10.0 ** (k / per_decade)) for k in exponents]
    grid = [g for g in grid if low * (1 - 1e-12) <= g <= high * (1 + 1e-12)]
    values = sorted(set(grid) | {float(value)})
    options = [(f"{v:.{digits}g}", v) for v in values]
    return widgets.SelectionSlider(options=options, value=float(value), description=description,
                                   continuous_update=False)
