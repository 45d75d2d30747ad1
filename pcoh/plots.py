"""Figures of the main job and the notebooks.

Every function takes ``ax=None`` (a new figure is made when omitted) and returns the axes, as
scikit-learn and umap's plot helpers do. :func:`savefig` writes PNG and SVG side by side.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

__all__ = ["style", "savefig", "plot_metric_bars", "plot_per_reference"]

#: One colour per method, the same in every figure.
METHOD_COLORS = {
    "pc": "#d62728",
    "rkd": "#1f77b4",
    "pkt": "#2ca02c",
    "sp": "#9467bd",
    "cc": "#8c564b",
    "fitnet": "#e377c2",
    "kd": "#17becf",
    "ce": "#7f7f7f",
    "untrained": "#bcbd22",
    "teacher": "#000000",
}


def style() -> None:
    """A consistent, slide-readable matplotlib style (larger fonts, no top/right spines)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "font.size": 12,
        "axes.titlesize": 13,
        "axes.labelsize": 12,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "svg.hashsalt": "pcoh",  # stable SVG ids, so re-exported figures diff cleanly
    })


def _axes(ax, figsize=(7, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def savefig(fig, path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``path.png`` and ``path.svg`` (creating the folder); returns the paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        out.append(target)
    return out


def plot_metric_bars(results: pd.DataFrame, metric: str = "pc_n", *, ax=None, title: Optional[str] = None):
    """Mean +- std over seeds of one metric, one bar per method, grouped by mode.

    Parameters
    ----------
    results : pandas.DataFrame
        Long-format results with columns ``method``, ``mode``, ``seed`` and ``metric``.
    metric : str, default "pc_n"
    """
    if metric not in results.columns:
        raise ValueError(f"metric must be a column of results, one of {list(results.columns)}; got {metric!r}")
    ax = _axes(ax)
    modes = [m for m in ("class-unaware", "class-aware") if m in set(results["mode"])]
    width = 0.8 / max(len(modes), 1)
    methods = list(dict.fromkeys(results.loc[results["mode"].isin(modes), "method"]))
    x = np.arange(len(methods))
    for k, mode in enumerate(modes):
        sub = results[results["mode"] == mode].groupby("method")[metric]
        mean, std = sub.mean().reindex(methods), sub.std().reindex(methods).fillna(0.0)
        ax.bar(x + (k - (len(modes) - 1) / 2) * width, mean.values, width, yerr=std.values,
               color=[METHOD_COLORS.get(m, "#999999") for m in methods],
               alpha=1.0 if mode == "class-unaware" else 0.55, edgecolor="black", linewidth=0.6,
               label=mode, capsize=3)
    ax.set_xticks(x, methods)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by method (solid: class-unaware, light: class-aware)")
    return ax


def plot_per_reference(values: dict, *, ax=None, title: str = "Per-reference Spearman with the teacher"):
    """Box plot of per-reference values (e.g. Spearman), one box per label.

    Parameters
    ----------
    values : dict of label -> array-like (n,)
    """
    if not values:
        raise ValueError("values must hold at least one label -> array")
    ax = _axes(ax)
    labels = list(values)
    ax.boxplot([np.asarray(values[k]) for k in labels], showfliers=False)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylabel("Spearman per reference")
    ax.set_title(title)
    return ax
