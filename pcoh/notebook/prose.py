"""The notebooks' computed prose: every number a sentence quotes is read from the results it describes."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .. import methods as _methods
from .. import stats as _stats
from .._checks import as_array, check_choice, check_float, check_columns, check_int, check_names, check_optional_str
from ..experiment import ExperimentResult
from ..methods import CLASS_AWARE, CLASS_UNAWARE, MODES

__all__ = ["ranked_baselines", "versus_best_baseline", "describe_versus", "describe_focus_study", "order_by",
           "agreeing_pairs", "intervals_overlap", "format_interval", "describe_transfer", "parameter_count",
           "describe_sizes", "uniformity_departure", "describe_uniformity"]


def _trained(results: pd.DataFrame, mode: str) -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    check_choice(mode, "mode", _methods.MODES)
    check_columns(results, ("method", "mode"), "results")
    return results[(results["mode"] == mode) & ~results["method"].isin(list(_methods.REFERENCES))]


def ranked_baselines(results: pd.DataFrame, *, mode: str = CLASS_UNAWARE, metric: str = "pc_n",
                     method: str = "pc") -> list:
    """The other methods of a mode, highest mean ``metric`` over seeds first (means rounded to 3
    decimals, as printed; ties: run order), so noise below the printed precision keeps the order."""
    frame = _trained(results, mode)
    _column(results, metric, "metric")
    if not isinstance(method, str):
        raise TypeError(f"method must be a method's name (a string), got {type(method).__name__}")
    means = frame[frame["method"] != method].groupby("method", sort=False)[metric].mean().dropna()
    return sorted(means.index, key=lambda m: -round(float(means[m]), 3))


def versus_best_baseline(results: pd.DataFrame, *, method: str = "pc", mode: str = CLASS_UNAWARE,
                         metric: str = "pc_n", level: float = 0.95) -> dict:
    """One method against the best other method of its mode, paired by seed (:mod:`pcoh.stats`).

    The best baseline is the other trained method with the highest mean (references such as
    ``untrained`` are not candidates). ``verdict`` follows :func:`pcoh.stats.paired_comparison`'s
    verdict: ``"ahead"`` when it is ``better`` (the interval lies above 0 and the difference is
    at least the minimum detectable difference), ``"behind"`` when ``worse``, ``"not separated"``
    otherwise (no difference detected, or a single seed). The method is **best** exactly when the
    verdict is ``"ahead"``.

    Returns
    -------
    dict
        ``method``, ``baseline``, ``mean``, ``std``, ``baseline_mean``, ``baseline_std``,
        ``diff``, ``low``, ``high``, ``mdd``, ``n_pairs``, ``level``, ``verdict``.
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
    verdict = {"better": "ahead", "worse": "behind"}.get(row["verdict"], "not separated")
    return {"method": method, "baseline": other, "mean": float(row["mean"]), "std": float(row["std"]),
            "baseline_mean": float(table.at[other, "mean"]), "baseline_std": float(table.at[other, "std"]),
            "diff": float(row["diff"]), "low": low, "high": high, "mdd": float(row["mdd"]),
            "n_pairs": int(row["n_pairs"]), "level": level, "verdict": verdict}


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
    mdd = v.get("mdd", math.nan)
    below = ("no interval" if math.isnan(v["low"]) else
             "the interval holds 0" if v["low"] <= 0 <= v["high"] else
             f"the difference is below the minimum detectable difference, {mdd:{f}}")
    verdict = {"ahead": f"`{v['method']}` is best (the interval lies above 0, the difference above the minimum "
                        f"detectable difference {mdd:{f}})",
               "behind": f"`{v['method']}` is behind (the interval lies below 0, the difference beyond the minimum "
                         f"detectable difference {mdd:{f}})",
               "not separated": f"no difference detected ({below}), so no method is called best"}[v["verdict"]]
    return (f"`{v['method']}` {metric} {v['mean']:{f}}{spread} against the best other method, "
            f"`{v['baseline']}`, {v['baseline_mean']:{f}}{bspread}: paired difference {v['diff']:+{f}}, "
            f"{interval}; {verdict}.")


def describe_focus_study(summary, *, mode: str = CLASS_UNAWARE, settings=("pc exp-sym 4", "pc exp-sym 8")) -> str:
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


def describe_transfer(results: pd.DataFrame, *, modes: Sequence[str] = MODES,
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
    if CLASS_UNAWARE not in modes:
        raise ValueError(f"modes must include 'class-unaware', got {list(modes)}")
    columns = ["pc_n", "cka", "knn_accuracy", "linear_probe"]
    missing = [c for c in ["mode", "method", *columns] if c not in results.columns]
    if missing:
        raise ValueError(f"results lacks the columns {missing}")
    students = results[results["method"] != "teacher"]
    means = students.groupby(["mode", "method"], sort=False)[columns].mean()
    versus = {mode: versus_best_baseline(results, mode=mode) for mode in modes}
    knn = versus_best_baseline(results, mode=CLASS_UNAWARE, metric="knn_accuracy")
    order = ranked_baselines(results, mode=CLASS_UNAWARE)
    unaware = means.loc[CLASS_UNAWARE]
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
    check_optional_str(student, "student")
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


def uniformity_departure(u, *, bins: int = 25) -> dict:
    """Where pooled probabilistic ranks ``u`` (any shape, values in [0, 1]) depart from Uniform(0, 1).

    Parameters
    ----------
    u : array-like
        Probabilistic ranks, e.g. of :func:`pcoh.diagnostics.heldout_probabilistic_ranks`.
    bins : int, default 25
        Bins of the density histogram over [0, 1] (those of the figure it describes).

    Returns
    -------
    dict
        ``ks``: the largest gap between the empirical distribution function and the identity,
        ``max_i |u_(i) - i/n|``, and ``ks_at``: the ``u`` where it lies; ``excess_at`` /
        ``excess``: the centre and density of the fullest bin; ``deficit_at`` / ``deficit``: those
        of the emptiest bin (a uniform sample has density 1 in every bin).
    """
    values = np.sort(as_array(u, "u").ravel())
    bins = check_int(bins, "bins", minimum=2)
    if values.size == 0:
        raise ValueError("u must hold at least one value")
    if values[0] < 0 or values[-1] > 1:
        raise ValueError(f"u must hold probabilistic ranks in [0, 1], got values in [{values[0]}, {values[-1]}]")
    gaps = np.abs(values - np.arange(1, values.size + 1) / values.size)
    density, edges = np.histogram(values, bins=bins, range=(0.0, 1.0), density=True)
    centres = (edges[:-1] + edges[1:]) / 2
    full, empty = int(np.argmax(density)), int(np.argmin(density))
    return {"ks": float(gaps.max()), "ks_at": float(values[np.argmax(gaps)]),
            "excess_at": float(centres[full]), "excess": float(density[full]),
            "deficit_at": float(centres[empty]), "deficit": float(density[empty])}


def describe_uniformity(u_by_model: dict, *, bins: int = 25, class_step: Optional[float] = None) -> str:
    """A sentence per model saying where its held-out probabilistic ranks depart most from uniform,
    with the numbers of :func:`uniformity_departure`, the most uniform model first.

    ``class_step`` (optional, in (0, 1)): the height of the class step (the mean share of inputs of
    the reference's class); each model's fullest bin is then said to lie at it (within one bin) or
    away from it.
    """
    if not isinstance(u_by_model, dict):
        raise TypeError(f"u_by_model must be a dict of model name -> ranks, got {type(u_by_model).__name__}")
    if not u_by_model:
        raise ValueError("u_by_model must name at least one model")
    if class_step is not None:
        class_step = check_float(class_step, "class_step", minimum=0.0, maximum=1.0, strict=True)
    found = {name: uniformity_departure(u, bins=bins) for name, u in u_by_model.items()}

    def where(d):
        if class_step is None:
            return ""
        near = abs(d["excess_at"] - class_step) <= 1.0 / bins
        return f", {'at' if near else 'away from'} the class step (u = {class_step:.2f})"

    parts = [f"`{name}`: sup|F - id| = {d['ks']:.3f} at u = {d['ks_at']:.2f}; fullest bin at u = "
             f"{d['excess_at']:.2f} (density {d['excess']:.2f}{where(d)}), emptiest at u = {d['deficit_at']:.2f} "
             f"(density {d['deficit']:.2f})"
             for name, d in sorted(found.items(), key=lambda kv: kv[1]["ks"])]
    return ("**Reading** (this run; a uniform sample has density 1 in every bin). Where the held-out ranks depart "
            "most from uniform, the most uniform model first: " + "; ".join(parts) + ".")
