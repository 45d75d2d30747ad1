"""Figures of the results of a run: metrics by method, per-reference distributions, global against
per-reference Spearman, the focus frontier of the PC loss.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .._checks import check_choice, check_columns, check_int, check_names
from ..methods import color as method_color
from ._base import _axes, check_column, check_nonempty_dict, check_texts, slide_figure
from ..methods import CLASS_AWARE, CLASS_UNAWARE, MODES

__all__ = [
    "plot_metric_bars",
    "plot_metric_panels",
    "plot_per_reference_by_mode",
    "plot_per_reference",
    "plot_per_reference_distributions",
    "plot_global_vs_per_reference",
    "plot_frontier",
]


def _method_ticks(ax, positions, labels) -> None:
    """Method names under bars or violins, slanted so that long names (``untrained``) never touch."""
    ax.set_xticks(positions, labels, rotation=35, ha="right", rotation_mode="anchor")


def plot_metric_bars(results: pd.DataFrame, metric: str = "pc_n", *, ax=None, title: Optional[str] = None):
    """Mean +- std over seeds of one metric, one bar per method, grouped by mode.

    Every method of ``results`` gets its bars (one per mode it ran in), its name slanted under them.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results with columns ``method``, ``mode``, ``seed`` and ``metric``.
    metric : str, default "pc_n"
    """
    check_columns(results, ("method", "mode"), "results")
    check_column(results, metric, "metric", "results")
    ax = _axes(ax)
    modes = [m for m in MODES if m in set(results["mode"])]
    width = 0.8 / max(len(modes), 1)
    methods = list(dict.fromkeys(results.loc[results["mode"].isin(modes), "method"]))
    x = np.arange(len(methods))
    for k, mode in enumerate(modes):
        sub = results[results["mode"] == mode].groupby("method")[metric]
        mean, std = sub.mean().reindex(methods), sub.std().reindex(methods).fillna(0.0)
        ax.bar(x + (k - (len(modes) - 1) / 2) * width, mean.values, width, yerr=std.values,
               color=[method_color(m, "#999999") for m in methods],
               alpha=1.0 if mode == CLASS_UNAWARE else 0.55, edgecolor="black", linewidth=0.6,
               label=mode, capsize=3)
    _method_ticks(ax, x, methods)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by method (solid: class-unaware, light: class-aware)")
    return ax


def plot_metric_panels(results: pd.DataFrame, metrics: Sequence[str] = ("pc_n", "knn_accuracy"), *,
                       titles: Optional[Sequence[str]] = None, ylabels: Optional[Sequence[str]] = None,
                       size: str = "full"):
    """One :func:`plot_metric_bars` panel per metric, side by side on a slide, with one legend of the modes.

    Bars of the class-unaware runs are solid, those of the class-aware runs light (the legend
    above the panels says so).

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results (``method``, ``mode``, ``seed`` and each metric); pass the students only
        (the teacher's row is 1 by construction).
    metrics : sequence of str, default ("pc_n", "knn_accuracy")
    titles, ylabels : sequence of str, optional
        One per metric; default the metric names.
    size : {"full", "half"}, default "full"

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise TypeError(f"metrics must be a non-empty sequence of column names, got {metrics!r}")
    if not metrics:
        raise ValueError("metrics must name at least one column")
    check_columns(results, ("method", "mode"), "results")
    for metric in metrics:
        check_column(results, metric, "metrics", "results")
    titles = check_texts(titles, "titles", len(metrics), "metric")
    ylabels = check_texts(ylabels, "ylabels", len(metrics), "metric")
    fig, axes = slide_figure(1, len(metrics), size=size, squeeze=False)
    for k, (ax, metric) in enumerate(zip(axes[0], metrics)):
        plot_metric_bars(results, metric, ax=ax, title=titles[k] if titles else metric)
        if ylabels:
            ax.set_ylabel(ylabels[k])
    modes = [m for m in MODES if m in set(results["mode"])]
    fig.legend(handles=[Patch(facecolor="#777777", edgecolor="black", alpha=1.0 if m == CLASS_UNAWARE else 0.55,
                              label=m) for m in modes], loc="outside upper center", ncol=len(modes))
    return fig


def plot_per_reference(values: dict, *, ax=None, title: str = "Per-reference Spearman with the teacher"):
    """Box plot of per-reference values (e.g. Spearman), one box per label.

    Parameters
    ----------
    values : dict of label -> array-like (n,)
    """
    check_nonempty_dict(values, "values", "label -> array")
    ax = _axes(ax)
    labels = list(values)
    ax.boxplot([np.asarray(values[k]) for k in labels], showfliers=False)
    _method_ticks(ax, np.arange(1, len(labels) + 1), labels)
    ax.set_ylabel("Spearman per reference")
    ax.set_title(title)
    return ax


def plot_per_reference_distributions(frame: pd.DataFrame, *, value: str = "spearman", kind: str = "violin",
                                     order: Optional[Sequence[str]] = None, ax=None,
                                     title: Optional[str] = None):
    """Distribution of per-reference values, one violin (or box) per method, its mean marked.

    The mean of the per-reference Spearman values is :math:`PC_n` (white diamond); the spread
    shows whether a method keeps every reference's ranking or trades some references for others.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long table with a ``method`` column and a ``value`` column, e.g. from
        :func:`per_reference_frame` (filter it to one mode first; seeds are pooled).
    value : str, default "spearman"
    kind : {"violin", "box"}, default "violin"
    order : sequence of str, optional
        Methods from left to right; default their order of appearance.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import seaborn as sns

    check_choice(kind, "kind", ["violin", "box"])
    check_columns(frame, ("method",), "frame")
    check_column(frame, value, "value", "frame")
    if frame.empty:
        raise ValueError("frame is empty")
    present = list(dict.fromkeys(frame["method"]))
    if order is not None:
        order = list(check_names(order, "order"))
        for method in order:
            check_choice(method, "order", present)
    order = order if order is not None else present
    ax = _axes(ax)
    palette = {m: method_color(m) for m in order}
    common = dict(data=frame, x="method", y=value, hue="method", order=order, hue_order=order,
                  palette=palette, legend=False, ax=ax)
    if kind == "violin":
        sns.violinplot(**common, cut=0, inner="quart", linewidth=0.8, density_norm="width")
    else:
        sns.boxplot(**common, showfliers=False, linewidth=0.8)
    means = frame.groupby("method")[value].mean().reindex(order)
    ax.scatter(np.arange(len(order)), means.values, marker="D", s=36, color="white", edgecolor="black",
               zorder=5, label="mean ($PC_n$)")
    ax.legend(loc="lower left")
    _method_ticks(ax, np.arange(len(order)), order)
    ax.set_xlabel("")
    ax.set_ylabel("Spearman per reference" if value == "spearman" else value)
    if title:
        ax.set_title(title)
    return ax


def plot_per_reference_by_mode(per_reference: dict, modes: Sequence[str] = MODES, *,
                               size: str = "full", kind: str = "violin"):
    """One :func:`plot_per_reference_distributions` panel per mode, side by side, sharing the y axis.

    Panel widths follow the number of methods of each mode; references of every seed are pooled.

    Parameters
    ----------
    per_reference : dict
        ``(student, method, mode, seed) -> (n,)`` values (and ``"teacher"``, left out), as
        :attr:`pcoh.experiment.ExperimentResult.per_reference`.
    modes : sequence of str, default both modes
        Panels from left to right; modes without runs are skipped.
    size : {"full", "half"}, default "full"
        A whole slide or one side of it.
    kind : {"violin", "box"}, default "violin"

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..tables import per_reference_frame

    frame = per_reference_frame(per_reference)
    if isinstance(modes, str) or not isinstance(modes, Sequence):
        raise TypeError(f"modes must be a sequence of mode names, got {modes!r}")
    shown = [m for m in modes if (frame["mode"] == m).any()]
    if not shown:
        raise ValueError(f"per_reference has no runs of the modes {list(modes)}; it has {sorted(set(frame['mode']))}")
    widths = [frame.loc[frame["mode"] == mode, "method"].nunique() for mode in shown]
    fig, axes = slide_figure(1, len(shown), size=size, sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, mode in zip(axes[0], shown):
        plot_per_reference_distributions(frame[frame["mode"] == mode], ax=ax, title=mode, kind=kind)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    return fig


_MODE_MARKERS = {CLASS_UNAWARE: "o", CLASS_AWARE: "^"}


def plot_global_vs_per_reference(results: pd.DataFrame, *, x: str = "global_spearman", y: str = "pc_n",
                                 exclude: Sequence[str] = ("teacher",), ax=None, title: Optional[str] = None):
    """Global Spearman of all pairwise dissimilarities against the mean per-reference Spearman.

    One point per run (method, mode, seed); colour = method, circle = class-unaware, triangle =
    class-aware. Points below the diagonal keep the global layout better than each reference's
    own order.

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results` (columns ``method``, ``mode``, ``x``, ``y``).
    x, y : str, default "global_spearman", "pc_n"
    exclude : sequence of str, default ("teacher",)
        Methods left out: the teacher is (1, 1); leaving out ``"untrained"`` too zooms in on the
        trained students.

    Returns
    -------
    matplotlib.axes.Axes
    """
    check_columns(results, ("method", "mode"), "results")
    check_column(results, x, "x", "results")
    check_column(results, y, "y", "results")
    exclude = check_names(exclude, "exclude")
    rows = results[~results["method"].isin(list(exclude))]
    if rows.empty:
        raise ValueError(f"results hold no rows besides the excluded methods {list(exclude)}")
    ax = _axes(ax)
    for (method, mode), group in rows.groupby(["method", "mode"], sort=False):
        ax.scatter(group[x], group[y], s=55, color=method_color(method), marker=_MODE_MARKERS.get(mode, "s"),
                   edgecolor="black", linewidth=0.5, zorder=3)
    lo = float(min(rows[x].min(), rows[y].min()))
    hi = float(max(rows[x].max(), rows[y].max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--", zorder=1)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", ms=8, color=method_color(m), label=m)
               for m in dict.fromkeys(rows["method"])]
    handles += [Line2D([], [], ls="", marker=mk, ms=8, color="white", markeredgecolor="black", label=mode)
                for mode, mk in _MODE_MARKERS.items() if mode in set(rows["mode"])]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
    names = {"global_spearman": "global Spearman (all pairs)", "pc_n": "$PC_n$ (mean per-reference Spearman)"}
    ax.set_xlabel(names.get(x, x))
    ax.set_ylabel(names.get(y, y))
    if title:
        ax.set_title(title)
    return ax


#: Line styles of the focus families of the PC loss in :func:`plot_frontier`.
_FOCUS_STYLES = {"exp": "--", "exp-sym": "-"}


def plot_frontier(summary: pd.DataFrame, *, data: str = "digits", batch: int = 256, mode: str = CLASS_UNAWARE,
                  families: Sequence[str] = ("exp", "exp-sym"), ax=None, title: Optional[str] = None):
    """$PC_n$ against kNN accuracy: every baseline a point, the PC loss a curve over its focus values.

    One cell of a focus study (``benchmarks/study_focus.py``): a data set, a batch size and a
    mode. Each baseline is a point with its 95% intervals on both axes; each focus family of the PC
    loss is a line through its focus values, starting at focus 0 (the plain loss, a star). Up and
    to the right is better on both; a curve that leaves the star towards the left trades kNN
    accuracy for $PC_n$, and the reverse.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``results/study_focus/summary.csv`` or ``frontier.csv``: columns ``data``, ``batch``,
        ``mode``, ``method``, ``family`` (``"baseline"``, ``"plain"`` for focus 0, or a focus
        family), ``focus``, ``pc_n_mean``, ``pc_n_ci``, ``knn_accuracy_mean``, ``knn_accuracy_ci``
        (the half-widths of the 95% intervals).
    data : str, default "digits"
    batch : int, default 256
    mode : str, default "class-unaware"
    families : sequence of str, default ("exp", "exp-sym")
        The focus families drawn as curves.

    Returns
    -------
    matplotlib.axes.Axes
    """
    check_columns(summary, ("data", "batch", "mode", "method", "family", "focus", "pc_n_mean", "pc_n_ci",
                            "knn_accuracy_mean", "knn_accuracy_ci"), "summary")
    for name, text in (("data", data), ("mode", mode)):
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a string, got {type(text).__name__} {text!r}")
    batch, families = check_int(batch, "batch", minimum=1), check_names(families, "families")
    cell = summary[(summary["data"] == data) & (summary["batch"] == batch) & (summary["mode"] == mode)]
    if cell.empty:
        raise ValueError(f"summary has no rows for data={data!r}, batch={batch!r}, mode={mode!r}")
    for family in families:
        check_choice(family, "families", sorted(set(cell["family"]) - {"baseline", "plain"}))
    ax = _axes(ax)
    pc_color = method_color("pc")
    for _, row in cell[cell["family"] == "baseline"].iterrows():
        ax.errorbar(row["knn_accuracy_mean"], row["pc_n_mean"], xerr=row["knn_accuracy_ci"], yerr=row["pc_n_ci"],
                    fmt="o", ms=8, color=method_color(row["method"]), markeredgecolor="black", capsize=3,
                    label=row["method"], zorder=3)
    plain = cell[cell["family"] == "plain"]
    for family in families:
        curve = pd.concat([plain, cell[cell["family"] == family]]).sort_values("focus")
        ax.errorbar(curve["knn_accuracy_mean"], curve["pc_n_mean"], xerr=curve["knn_accuracy_ci"],
                    yerr=curve["pc_n_ci"], fmt="o", ls=_FOCUS_STYLES.get(family, ":"), ms=6, color=pc_color,
                    capsize=2, label=f"pc, {family} focus " + ", ".join(f"{f:g}" for f in curve["focus"]), zorder=4)
    if not plain.empty:
        ax.plot(plain["knn_accuracy_mean"], plain["pc_n_mean"], ls="", marker="*", ms=18, color=pc_color,
                markeredgecolor="black", label="pc, focus 0 (default)", zorder=5)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel("kNN accuracy (frozen features)")
    ax.set_ylabel("$PC_n$ (mean per-reference Spearman)")
    ax.set_title(title if title is not None else f"{data}, batch {batch}, {mode}")
    return ax
