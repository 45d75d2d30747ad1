"""Figures of the probabilistic form (notebook 06): ECDFs, probabilistic ranks, PC_n against n,
concordance by rank gap, per-class coherence.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .._checks import as_array, check_bool, check_choice, check_columns, check_float, check_indices, check_int
from ._base import METHOD_COLORS, MIN_FONT_PT, _axes, check_cmap, check_color, check_nonempty_dict, slide_figure

__all__ = [
    "plot_reference_ecdfs",
    "plot_probabilistic_ranks",
    "plot_uniformity",
    "plot_pc_vs_n",
    "plot_concordance_by_gap",
    "plot_per_class_heatmap",
]


def plot_reference_ecdfs(teacher_dissimilarities, student_dissimilarities, *, highlight=None, ax=None,
                         student_label: str = "student", student_color: str = "#d62728"):
    r"""Empirical distribution functions :math:`\hat F^T_x` and :math:`\hat F^S_x` of one reference.

    Left panel the teacher's dissimilarities from the reference, right panel the student's, each
    on its own scale. The ``highlight`` compared points are marked on both curves with the same
    colour: their heights are the probabilistic ranks :math:`u^T(x, x')` and :math:`u^S(x, x')`,
    equal on both panels for a perception-coherent student.

    Parameters
    ----------
    teacher_dissimilarities, student_dissimilarities : array-like, shape (m,)
        :math:`\delta(x, x_j)` for the same m compared points (e.g. from
        :func:`pcoh.diagnostics.reference_dissimilarities`).
    highlight : sequence of int, optional
        Positions (in ``0..m-1``) of compared points to mark; default the points at the teacher's
        10, 30, 50, 70 and 90 % quantiles.
    ax : sequence of two Axes, optional
        Where to draw; a new (1, 2) figure when omitted.

    Returns
    -------
    numpy.ndarray of two Axes
    """
    dt = as_array(teacher_dissimilarities, "teacher_dissimilarities", ndim=1, shape_doc="(m,)")
    ds = as_array(student_dissimilarities, "student_dissimilarities", ndim=1, shape_doc="(m,)")
    if dt.shape != ds.shape:
        raise ValueError(f"teacher_dissimilarities and student_dissimilarities must have one entry per compared "
                         f"point each, got shapes {dt.shape} and {ds.shape}")
    student_color = check_color(student_color, "student_color")
    if ax is None:
        ax = slide_figure(1, 2, sharey=True)[1]
    if isinstance(ax, Axes) or not (isinstance(ax, (Sequence, np.ndarray)) and all(isinstance(a, Axes) for a in ax)):
        raise TypeError(f"ax must be a pair of matplotlib Axes or None, got {type(ax).__name__}")
    if len(ax) != 2:
        raise ValueError(f"ax must be a pair of matplotlib Axes, got {len(ax)} of them")
    ax = np.asarray(ax)
    m = dt.size
    if highlight is None:
        highlight = np.argsort(dt)[np.round(np.array([0.1, 0.3, 0.5, 0.7, 0.9]) * (m - 1)).astype(int)]
    highlight = check_indices(highlight, "highlight", m)
    import matplotlib.pyplot as plt

    colors = plt.cm.tab10(np.arange(len(highlight)) % 10)
    for a, d, name, color in ((ax[0], dt, "teacher", "black"), (ax[1], ds, student_label, student_color)):
        x = np.sort(d)
        a.step(x, np.arange(1, m + 1) / m, where="post", color=color, lw=1.6)
        u = (np.searchsorted(x, d[highlight], side="left") + np.searchsorted(x, d[highlight], side="right")) / (2 * m)
        for k, (dk, uk) in enumerate(zip(d[highlight], u)):
            a.plot([x[0], dk], [uk, uk], ls=":", color=colors[k], lw=1)
            a.plot(dk, uk, "o", color=colors[k], ms=8, mec="black", mew=0.5)
        a.set_xlabel(f"{name} dissimilarity")
        a.set_title(rf"$\hat F^{{{'T' if name == 'teacher' else 'S'}}}_x$: {name}")
    ax[0].set_ylabel("empirical distribution function")
    return ax


def plot_probabilistic_ranks(u_teacher, u_student, *, ax=None, kind: str = "scatter", gridsize: int = 30,
                             color: str = "#d62728", title: Optional[str] = None):
    r"""Probabilistic ranks :math:`u^S` against :math:`u^T` of the same (reference, point) pairs.

    Parameters
    ----------
    u_teacher, u_student : array-like, any shape (flattened), values in [0, 1]
    kind : {"scatter", "hexbin"}, default "scatter"
        ``"scatter"`` for one reference, ``"hexbin"`` (log counts) for pairs pooled over many.
    gridsize : int, default 30
        Hexagons across, ``"hexbin"`` only.
    """
    ut = as_array(u_teacher, "u_teacher").ravel()
    us = as_array(u_student, "u_student").ravel()
    if ut.shape != us.shape:
        raise ValueError(f"u_teacher and u_student must hold as many values, got {ut.size} and {us.size}")
    _check_unit(ut, "u_teacher")
    _check_unit(us, "u_student")
    check_choice(kind, "kind", ["scatter", "hexbin"])
    gridsize, color = check_int(gridsize, "gridsize", minimum=1), check_color(color, "color")
    ax = _axes(ax, size="half")
    if kind == "scatter":
        ax.scatter(ut, us, s=10, color=color, alpha=0.6, lw=0)
    else:
        hb = ax.hexbin(ut, us, gridsize=gridsize, extent=(0, 1, 0, 1), bins="log", cmap="magma_r", mincnt=1)
        ax.figure.colorbar(hb, ax=ax, fraction=0.046, pad=0.04, label="pairs (log)")
    ax.plot([0, 1], [0, 1], color="black", ls="--", lw=0.8)
    ax.set_xlim(-0.03, 1.03)  # room for the points at 0 and 1
    ax.set_ylim(-0.03, 1.03)
    if kind == "scatter":  # a square box; beside a colour bar the layout keeps the box it was given
        ax.set_aspect("equal")
    ax.set_xlabel("teacher $u^T(x, x')$")
    ax.set_ylabel("student $u^S(x, x')$")
    if title:
        ax.set_title(title)
    return ax


def plot_uniformity(u, *, ax=None, bins: int = 20, color: str = "#444444", label: Optional[str] = None,
                    title: Optional[str] = None):
    """Density histogram of probabilistic ranks against the Uniform(0, 1) density (dashed).

    Parameters
    ----------
    u : array-like, any shape (flattened), values in [0, 1]
    bins : int, default 20
    """
    v = _check_unit(as_array(u, "u").ravel(), "u")
    bins, color = check_int(bins, "bins", minimum=1), check_color(color, "color")
    ax = _axes(ax)
    ax.hist(v, bins=bins, range=(0, 1), density=True, histtype="stepfilled", alpha=0.35, color=color,
            label=label)
    ax.hist(v, bins=bins, range=(0, 1), density=True, histtype="step", color=color, lw=1.2)
    ax.axhline(1.0, color="black", ls="--", lw=0.8, label="Uniform(0, 1)")
    ax.set_xlim(-0.03, 1.03)  # keeps the tick labels "0.0" of the two axes apart at the corner
    ax.set_xlabel("probabilistic rank $u$")
    ax.set_ylabel("density")
    ax.legend(loc="lower center")
    if title:
        ax.set_title(title)
    return ax


def plot_pc_vs_n(table: pd.DataFrame, *, full: Optional[float] = None, expected=None, ax=None,
                 color: str = "#d62728", label: Optional[str] = None, band=(5, 95), inverse: bool = False):
    r"""The estimator :math:`PC_n` against the subset size n: mean and percentile band.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``n`` and ``pc_n``, several rows per n (:func:`pcoh.diagnostics.subsample_coherence`).
    full : float, optional
        The full-set value, drawn as a horizontal dotted line.
    expected : (array-like, array-like), optional
        Sizes and predicted means (e.g. :func:`pcoh.diagnostics.expected_pc_n`), drawn dashed; an
        infinite size is drawn at :math:`1/n = 0` when ``inverse``.
    band : (float, float), default (5, 95)
        Percentiles of the shaded band.
    inverse : bool, default False
        ``False``: x is n on a log axis. ``True``: x is :math:`1/n` on a linear axis, where a bias
        of order :math:`1/n` is a straight line ending at the population value at 0.
    """
    check_columns(table, ("n", "pc_n"), "table")
    full = None if full is None else check_float(full, "full")
    color, inverse = check_color(color, "color"), check_bool(inverse, "inverse")
    if not (isinstance(band, (tuple, list)) and len(band) == 2):
        raise TypeError(f"band must be a pair of percentiles (low, high), got {type(band).__name__} {band!r}")
    band = tuple(check_float(b, "band", minimum=0.0, maximum=100.0) for b in band)
    if not band[0] < band[1]:
        raise ValueError(f"band must be (low, high) with low < high, got {band}")
    ax = _axes(ax)
    g = table.groupby("n")["pc_n"]
    n = np.asarray(g.mean().index, dtype=float)
    x = 1.0 / n if inverse else n
    ax.fill_between(x, g.quantile(band[0] / 100).values, g.quantile(band[1] / 100).values, color=color,
                    alpha=0.18, lw=0)
    ax.plot(x, g.mean().values, "o", color=color, ms=5, label=label)
    if expected is not None:
        en, ev = (np.asarray(a, dtype=float) for a in expected)
        order = np.argsort(en)
        en, ev = en[order], ev[order]
        ex = np.where(np.isinf(en), 0.0, 1.0 / en) if inverse else en
        keep = np.isfinite(ex) if inverse else np.isfinite(en)
        ax.plot(ex[keep], ev[keep], "--", color=color, lw=1.3)
    if full is not None:
        ax.axhline(full, color=color, ls=":", lw=1)
    if inverse:
        ax.set_xlabel("1 / n")
        ax.set_xlim(left=-0.03 * float(np.max(x)))  # room for a point at 1/n = 0
    else:
        from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if n.min() <= t <= n.max()]
        ax.xaxis.set_major_locator(FixedLocator(ticks + [n.max()]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("subset size n")
    ax.set_ylabel("$PC_n$")
    return ax


def _check_unit(u: np.ndarray, name: str) -> np.ndarray:
    """Probabilistic ranks: values in [0, 1]."""
    if u.size and not (u.min() >= 0 and u.max() <= 1):
        raise ValueError(f"{name} must hold probabilistic ranks in [0, 1], got values in [{u.min():g}, {u.max():g}]")
    return u


def plot_concordance_by_gap(tables: dict, *, ax=None, title: Optional[str] = None):
    r"""Concordance probability against the teacher's rank gap of the compared pair, per method.

    Parameters
    ----------
    tables : dict of method -> pandas.DataFrame
        Outputs of :func:`pcoh.diagnostics.concordance_by_rank_gap` (columns ``gap_center``,
        ``concordance``, ``se``); methods are coloured by ``METHOD_COLORS``.
    """
    check_nonempty_dict(tables, "tables", "method -> table")
    for method, t in tables.items():
        check_columns(t, ("gap_center", "concordance", "se"), f"tables[{method!r}]")
    ax = _axes(ax)
    for method, t in tables.items():
        color = METHOD_COLORS.get(method, None)
        ax.errorbar(t["gap_center"], t["concordance"], yerr=2 * t["se"], fmt="-o", ms=4, capsize=2, clip_on=False,
                    color=color, label=method, lw=2.2 if method == "pc" else 1.3)
    ax.axhline(0.5, color="black", ls=":", lw=0.8)
    ax.set_xlabel(r"teacher rank gap $|r^T(j) - r^T(k)| / (N-1)$")
    ax.set_ylabel("concordance probability")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", ncol=2)
    ax.set_title(title or "Which orders does the student keep?")
    return ax


def plot_per_class_heatmap(table: pd.DataFrame, *, ax=None, title: Optional[str] = None, cmap: str = "RdYlGn",
                           fmt: str = ".2f"):
    """Annotated heat map of a (model x class) table, e.g. :func:`pcoh.diagnostics.per_class_mean`.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows: models; columns: classes (an ``"all"`` column is drawn apart, after a gap line).
    fmt : str, default ".2f"
        Format of the cell annotations.
    """
    cmap = check_cmap(cmap)
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format specification (a string such as '.2f'), got {type(fmt).__name__}")
    try:
        format(0.5, fmt)
    except ValueError:
        raise ValueError(f"fmt must be a format specification of a number (such as '.2f'), got {fmt!r}") from None
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas.DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ValueError("table must not be empty")
    ax = _axes(ax)
    values = table.to_numpy(dtype=float)
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=np.nanmin(values), vmax=np.nanmax(values))
    ax.set_xticks(np.arange(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(np.arange(table.shape[0]), [str(r) for r in table.index])
    lo, hi = np.nanmin(values), np.nanmax(values)
    for (r, c), v in np.ndenumerate(values):
        dark = (v - lo) / (hi - lo + 1e-12)
        ax.text(c, r, format(v, fmt), ha="center", va="center", fontsize=MIN_FONT_PT,
                color="white" if dark < 0.15 or dark > 0.85 else "black")
    if "all" in list(table.columns):
        ax.axvline(list(table.columns).index("all") - 0.5, color="white", lw=3)
    ax.spines[:].set_visible(False)
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    if title:
        ax.set_title(title)
    return ax
