"""Tables of the results, for display: the styled results table, the long per-reference table, the
summary and paired-comparison tables of ``summary.md`` and the projected training times.

Figures are in :mod:`pcoh.plots`; these return pandas objects or Markdown text.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import methods as _methods
from ._checks import check_bool, check_columns, check_float, check_int, check_names

__all__ = ["per_reference_frame", "style_results", "summary_table", "comparison_tables", "estimate_table",
           "rnx_k_ranges", "paired_verdicts_by_k", "compare_report", "COMPARED_METRICS", "COMPARISON_NOTE", "CHECKED_METRICS"]


def _present(results: pd.DataFrame, columns) -> list:
    """The ``columns`` (names) that ``results`` has, in order; ValueError if none."""
    cols = [c for c in check_names(columns, "columns") if c in results.columns]
    if not cols:
        raise ValueError(f"none of columns {list(columns)} is in results")
    return cols


def per_reference_frame(per_reference: dict, *, include_teacher: bool = False) -> pd.DataFrame:
    """Per-reference values of an experiment as a long table, one row per (run, reference).

    Parameters
    ----------
    per_reference : dict
        ``(student, method, mode, seed) -> (n,)`` values and ``"teacher" -> (n,)``, as
        :attr:`pcoh.experiment.ExperimentResult.per_reference`.
    include_teacher : bool, default False
        Keep the teacher's row (all ones for Spearman with itself).

    Returns
    -------
    pandas.DataFrame
        Columns ``student, method, mode, seed, reference, spearman``.
    """
    if not isinstance(per_reference, dict):
        raise TypeError(f"per_reference must be a dict of run key -> (n,) values, got {type(per_reference).__name__}")
    include_teacher = check_bool(include_teacher, "include_teacher")
    frames = []
    for key, values in per_reference.items():
        if key == "teacher":
            if not include_teacher:
                continue
            student, method, mode, seed = "teacher", "teacher", "-", 0
        else:
            student, method, mode, seed = key
        v = np.asarray(values, dtype=np.float64).ravel()
        frames.append(pd.DataFrame({"student": student, "method": method, "mode": mode, "seed": seed,
                                    "reference": np.arange(len(v)), "spearman": v}))
    if not frames:
        raise ValueError("per_reference holds no student runs")
    return pd.concat(frames, ignore_index=True)


def style_results(results: pd.DataFrame, columns: Sequence[str] = (
        "pc_n", "global_spearman", "kendall_tau", "topk_overlap", "trustworthiness", "continuity", "rnx_auc",
        "cka", "knn_accuracy", "linear_probe", "accuracy"), *, digits: int = 3):
    """The results table for display: mean over seeds, highest mean of each column bold per mode.

    One row per (mode, method) in the order of ``results``, the teacher first; each cell the
    mean over seeds. Within each mode the highest mean of each column is bold on a light red
    background (every column is higher-is-better); the teacher is a reference, never marked.
    ``accuracy`` is blank for class-unaware students (their classifier head is not trained).

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results`.
    columns : sequence of str
        Metric columns to show (those missing from ``results`` are skipped).
    digits : int, default 3

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    check_columns(results, ("method", "mode"), "results")
    cols = _present(results, columns)
    digits = check_int(digits, "digits", minimum=0)
    # Groups in order of first appearance: the teacher, then each mode's methods.
    table = results.groupby(["mode", "method"], sort=False)[cols].mean()
    table.insert(0, "seeds", results.groupby(["mode", "method"], sort=False).size())
    mode_of = table.index.get_level_values("mode")
    method_of = table.index.get_level_values("method")

    def best(col: pd.Series) -> np.ndarray:
        marks = np.full(len(col), "", dtype=object)
        if col.name == "seeds":
            return marks
        values = col.to_numpy(dtype=float)
        for mode in set(mode_of) - {"-"}:
            pick = (mode_of == mode) & (method_of != "teacher") & ~np.isnan(values)
            if pick.any():
                marks[pick & (values >= values[pick].max() - 1e-12)] = "font-weight: bold; background-color: #fde2e1"
        return marks

    return (table.style.apply(best, axis=0).format(precision=digits, na_rep="–", subset=cols)
            .set_caption("Mean over seeds; bold: the highest mean of each column within its mode "
                         "(which differences are resolved: pcoh.stats.paired_comparison)"))


#: Metrics whose paired comparisons over seeds ``summary.md`` and the command line show.
COMPARED_METRICS = ("pc_n", "knn_accuracy", "rnx_auc")


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_table(table: pd.DataFrame, device: str = "") -> str:
    """Markdown rendering of :func:`pcoh.experiment.estimate`'s table, with the totals."""
    check_columns(table, ("run", "runs", "cached", "step_ms", "steps_per_epoch", "epochs", "epoch_s", "total_s",
                          "remaining_s"), "table")
    if not isinstance(device, str):
        raise TypeError(f"device must be a string (its name, or ''), got {type(device).__name__}")
    lines = ["| run | runs | cached | ms/step | steps/epoch | epochs | epoch | all runs |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.run} | {r.runs} | {r.cached} | {r.step_ms:.1f} | {r.steps_per_epoch} | {r.epochs} | "
                     f"{_duration(r.epoch_s)} | {_duration(r.total_s)} |")
    where = f" on {device}" if device else ""
    jobs, threads = table.attrs.get("jobs", 1), table.attrs.get("threads")
    lines.append("")
    if jobs > 1:
        # The step times were measured with one worker's threads; the workers share the runs.
        lines.append(f"projected training time{where}, {jobs} processes of {threads} thread(s) side by side: "
                     f"{_duration(table['total_s'].sum() / jobs)} in all, "
                     f"{_duration(table['remaining_s'].sum() / jobs)} for the runs not yet cached "
                     "(step times measured with one process's threads, the sum shared by the processes)")
    else:
        lines.append(f"projected training time{where}: {_duration(table['total_s'].sum())} in all, "
                     f"{_duration(table['remaining_s'].sum())} for the runs not yet cached")
    return "\n".join(lines)


def summary_table(results: pd.DataFrame, columns=("pc_n", "global_spearman", "kendall_tau", "topk_overlap",
                                                  "rnx_auc", "knn_accuracy", "linear_probe", "accuracy")) -> str:
    """Markdown table of mean +- std over seeds, one row per (student, method, mode).

    ``columns``: the metric columns to show (those missing from ``results`` are skipped).
    """
    check_columns(results, ("student", "method", "mode"), "results")
    cols = _present(results, columns)
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
        One row per run, as :attr:`pcoh.experiment.ExperimentResult.results`.
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

    check_columns(results, ("method",), "results")
    metrics = check_names(metrics, "metrics")
    level = check_float(level, "level", minimum=0.0, maximum=1.0, strict=True)
    students = results[~results["method"].isin(list(_methods.REFERENCES))]
    sections = []
    for metric in metrics:
        if metric not in students.columns or students[metric].notna().sum() == 0:
            continue
        comparison = _stats.paired_comparison(students, metric, by=("student", "mode"), level=level)
        sections.append(f"### {metric}: paired difference to the best other method\n\n"
                        + _stats.format_comparison(comparison, metric=metric, level=level))
    return "\n\n".join(sections)


#: The note above the comparisons of ``summary.md`` (``{pct}``: the confidence level; ``{unit}``:
#: what one seed shares, :func:`pairing_unit`).
COMPARISON_NOTE = (
    "Each method against the best other method of its mode (highest mean), paired by seed: {unit}. "
    "Mean difference over seeds with its {pct} t-interval; MDD, the minimum detectable difference (the "
    "smallest true difference this design detects at {pct} with 80% power). Verdict: *better* / *worse* "
    "only when the interval excludes 0 and the difference is at least the MDD, otherwise *no difference "
    "detected* (never a ranking). **best** marks the method with the highest mean whose verdict against "
    "the runner-up is *better*. The best other method and the verdicts are decided on the numbers rounded "
    "as printed."
)


# ----------------------------------------------------------------------------- R_NX by K
def paired_verdicts_by_k(a: np.ndarray, b: np.ndarray, *, level: float = 0.95) -> np.ndarray:
    """Per K, whether curve ``a`` lies above (+1), on par with (0) or below (-1) curve ``b``, paired by seed.

    ``a`` and ``b`` are (seeds, K) arrays whose rows are the same seeds in the same order. At each K
    the paired t-interval of ``a - b`` over seeds (:func:`pcoh.stats.paired_comparison`, the
    verdicts' protocol) decides: above when it lies above 0, below when it lies below 0, on par
    otherwise (and with fewer than two seeds, which give no interval). The one place the K ranges
    meet the comparison protocol.
    """
    from . import stats as _stats

    from ._checks import as_array

    a, b = as_array(a, "a", ndim=2), as_array(b, "b", ndim=2)
    level = check_float(level, "level", minimum=0.0, maximum=1.0, strict=True)
    if a.shape != b.shape:
        raise ValueError(f"a and b must be (seeds, K) arrays of one shape, got {a.shape} and {b.shape}")
    seeds, n_k = a.shape
    frame = pd.DataFrame({
        "k": np.tile(np.arange(1, n_k + 1), 2 * seeds),
        "method": np.repeat(["a", "b"], seeds * n_k),
        "seed": np.tile(np.repeat(np.arange(seeds), n_k), 2),
        "r_nx": np.concatenate([a.ravel(), b.ravel()]),
    })
    comparison = _stats.paired_comparison(frame, "r_nx", by=("k",), level=level)
    mine = comparison[comparison["method"] == "a"].set_index("k").reindex(np.arange(1, n_k + 1))
    low, high = mine["diff_low"].to_numpy(), mine["diff_high"].to_numpy()
    return np.where(low > 0, 1, np.where(high < 0, -1, 0))


def _k_runs(ks: np.ndarray) -> str:
    """``1–12, 40, 45–60`` for the sorted K values ``ks``."""
    parts, start = [], None
    for i, k in enumerate(ks):
        if start is None:
            start = k
        if i == len(ks) - 1 or ks[i + 1] != k + 1:
            parts.append(f"{start}" if start == k else f"{start}–{k}")
            start = None
    return ", ".join(parts)


def rnx_k_ranges(results: pd.DataFrame, curves: dict, *, method: str = "pc", level: float = 0.95) -> str:
    r"""Markdown lines: where ``method``'s :math:`R_{NX}(K)` curve lies above, on par with and below the
    best other method's, per student and mode, paired by seed.

    The best other method of a (student, mode) is the one with the highest mean ``rnx_auc``
    among the candidates (the references ``teacher`` and ``untrained`` are left out); each K is
    judged by :func:`paired_verdicts_by_k` over the seeds both methods ran.

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results` (columns ``student, method, mode, seed,
        rnx_auc``).
    curves : dict
        :attr:`pcoh.experiment.ExperimentResult.curves`: run key -> ``{"r_nx": (K,)}``.
    method : str, default "pc"
    level : float, default 0.95

    Returns
    -------
    str
        One ``- ...`` line per (student, mode) where ``method`` ran against another method; ``""``
        when there is none.
    """
    check_columns(results, ("student", "method", "mode", "seed", "rnx_auc"), "results")
    if not isinstance(curves, dict):
        raise TypeError(f"curves must be a dict of run key -> {{'r_nx': curve}}, got {type(curves).__name__}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name (str), got {type(method).__name__}")
    level = check_float(level, "level", minimum=0.0, maximum=1.0, strict=True)
    students = results[~results["method"].isin(list(_methods.REFERENCES))]
    lines = []
    for (student, mode), group in students.groupby(["student", "mode"], sort=False):
        means = group.groupby("method", sort=False)["rnx_auc"].mean().dropna()
        if method not in means or len(means) < 2:
            continue
        other = means.drop(method).idxmax()
        seeds = sorted(set(group.loc[group["method"] == method, "seed"]) & set(group.loc[group["method"] == other, "seed"]))
        seeds = [s for s in seeds if (student, method, mode, s) in curves and (student, other, mode, s) in curves]
        if not seeds:
            continue
        a = np.vstack([np.asarray(curves[(student, method, mode, s)]["r_nx"]) for s in seeds])
        b = np.vstack([np.asarray(curves[(student, other, mode, s)]["r_nx"]) for s in seeds])
        verdict = paired_verdicts_by_k(a, b, level=level)
        ks = np.arange(1, a.shape[1] + 1)
        where = [f"{word} at K = {_k_runs(ks[verdict == v])}" for v, word in ((1, "above"), (0, "on par"), (-1, "below"))
                 if (verdict == v).any()]
        note = " (one seed: no interval, so no K is resolved)" if len(seeds) < 2 else ""
        lines.append(f"- `{student}`, {mode}: `{method}` against `{other}` (the best other method by mean rnx_auc), "
                     f"{len(seeds)} paired seed(s), {100 * level:g}% paired t-interval per K{note}: " + "; ".join(where) + ".")
    return "\n".join(lines)


def pairing_unit(per_seed_split: bool = True) -> str:
    """What the runs of one seed share, for the note next to each comparison table;
    ``per_seed_split``: each seed drew its own held-out split and trained its own teacher."""
    if per_seed_split:
        return ("the runs of one seed share its own stratified held-out split, the teacher trained on that "
                "split, the student's initial weights and the data order")
    return "the runs of one seed share the held-out split, the teacher, the student's initial weights and the data order"


#: Measures whose means ``python -m pcoh --compare`` checks against the reference (those present).
CHECKED_METRICS = ("pc_n", "global_spearman", "kendall_tau", "topk_overlap", "rnx_auc", "trustworthiness",
                   "continuity", "cka", "knn_accuracy", "linear_probe", "accuracy")


def compare_report(numbers: pd.DataFrame, changed: pd.DataFrame, *, reference: str = "the reference") -> str:
    """Text of :func:`pcoh.stats.compare_runs`'s result: the verdicts that differ, the numbers outside
    their tolerance, and one closing line."""
    check_columns(numbers, ("method", "metric", "mean", "reference", "difference", "tolerance", "ok"), "numbers")
    check_columns(changed, ("metric", "method", "verdict", "verdict_reference"), "changed")
    if not isinstance(reference, str):
        raise TypeError(f"reference must be a string (what the run was compared with), got {type(reference).__name__}")
    lines = []
    keys = [c for c in numbers.columns[: numbers.columns.get_loc("method")]]
    if len(changed):
        lines.append(f"verdicts that differ from {reference}:")
        for r in changed.to_dict("records"):
            where = " ".join(str(r[k]) for k in keys if k in r)
            lines.append(f"  {r['metric']} {where} {r['method']}: {r['verdict']} vs {r['other']}"
                         f"{' (best)' if r['best'] else ''}; reference: {r['verdict_reference']} vs "
                         f"{r['other_reference']}{' (best)' if r['best_reference'] else ''}")
    bad = numbers[~numbers["ok"]]
    if len(bad):
        lines.append(f"means outside their tolerance of {reference}:")
        for r in bad.to_dict("records"):
            where = " ".join(str(r[k]) for k in keys)
            lines.append(f"  {r['metric']} {where} {r['method']}: {r['mean']:.3f} vs {r['reference']:.3f} "
                         f"(difference {r['difference']:+.3f}, tolerance {r['tolerance']:.3f})")
    verdict_word = "every verdict agrees" if not len(changed) else f"{len(changed)} verdict(s) differ"
    lines.append(f"compared with {reference}: {verdict_word}; {int(numbers['ok'].sum())} of {len(numbers)} means "
                 f"within tolerance (largest |difference| {numbers['difference'].abs().max():.3f})"
                 if len(numbers) else f"compared with {reference}: {verdict_word}; no mean in common")
    return "\n".join(lines)
