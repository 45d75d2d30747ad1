"""Figures of ranks: teacher rank against student rank, soft ranks against the strength.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._checks import as_array, check_bool, check_index, check_int
from ..dissimilarity import get_metric
from ..diagnostics import dissimilarity_matrix, reference_ranks, soft_rank_path
from ._base import _axes, check_color, check_dict, check_nonempty_dict, grid_rows, slide_grid

__all__ = ["plot_rank_vs_rank", "plot_soft_ranks", "plot_soft_rank_bars", "plot_rank_hexbin", "plot_rank_hexbin_grid"]


def _hard_ranks(v: np.ndarray) -> np.ndarray:
    import torch

    from ..ranking import rank

    return rank(torch.from_numpy(v)).numpy()


def plot_rank_vs_rank(teacher_matrix, student_matrix, *, ax=None, reference: Optional[int] = None,
                      title: Optional[str] = None, color: str = "#d62728"):
    r"""Student rank against teacher rank of every compared point, seen from every reference.

    Each reference :math:`i` ranks the other n - 1 points by :math:`\delta_T(x_i, \cdot)` and by
    :math:`\delta_S(x_i, \cdot)`; every (reference, compared point) pair is a grey dot at
    :math:`(r^T_i(j), r^S_i(j))`, the chosen reference's points in colour. Perception-coherent
    students put every dot on the diagonal.

    Parameters
    ----------
    teacher_matrix, student_matrix : array-like, shape (n, n)
        Dissimilarity matrices of the same n points.
    reference : int, optional
        The reference drawn in colour, joined in teacher order.
    """
    tm = as_array(teacher_matrix, "teacher_matrix", ndim=2, shape_doc="(n, n)")
    sm = as_array(student_matrix, "student_matrix", ndim=2, shape_doc="(n, n)")
    if tm.shape != sm.shape or tm.shape[0] != tm.shape[1]:
        raise ValueError(f"teacher_matrix and student_matrix must be square (n, n) matrices of the same shape, "
                         f"got {tm.shape} and {sm.shape}")
    rt, rs = reference_ranks(tm), reference_ranks(sm)
    if reference is not None:
        reference = check_index(reference, "reference", len(rt))
    color = check_color(color, "color")
    ax = _axes(ax, size="half")
    m = rt.shape[1]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.15, 0.15, size=rt.shape)
    ax.scatter(rt + jitter, rs - jitter, s=8, color="#bbbbbb", alpha=0.7, lw=0, label="all references")
    ax.plot([1, m], [1, m], color="black", lw=0.8, ls="--")
    if reference is not None:
        order = np.argsort(rt[reference])
        ax.plot(rt[reference][order], rs[reference][order], "-o", color=color, ms=5, lw=1.2,
                label=f"reference {reference}")
        ax.legend(loc="upper left")
    ax.set_xlabel("teacher rank $r^T_i(j)$")
    ax.set_ylabel("student rank $r^S_i(j)$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def plot_soft_ranks(values, strengths, *, ax=None, title: Optional[str] = None):
    r"""Soft ranks of one fixed vector as the regularisation strength :math:`\varepsilon` varies.

    One line per entry of ``values``; the hard ranks are marked on the left, the mean rank
    :math:`(m + 1)/2` (the :math:`\varepsilon \to \infty` limit) is dashed.

    Parameters
    ----------
    values : array-like, shape (m,)
    strengths : array-like, shape (k,)
        Positive strengths, drawn on a log axis.
    """
    curves = soft_rank_path(values, strengths)  # (k, m); checks both arguments
    v = as_array(values, "values", ndim=1)
    eps = as_array(strengths, "strengths", ndim=1)
    if eps.size == 0:
        raise ValueError("strengths must hold at least one strength")
    hard = _hard_ranks(v)
    m = v.size
    ax = _axes(ax)
    import matplotlib.pyplot as plt

    colors = plt.cm.viridis(np.linspace(0, 0.95, m))
    for i in np.argsort(hard):
        ax.plot(eps, curves[:, i], color=colors[int(hard[i]) - 1], lw=1.8,
                label=f"$\\theta_{{{i}}} = {v[i]:.2g}$")
        ax.plot(eps[0], hard[i], "o", color=colors[int(hard[i]) - 1], ms=6)
    ax.axhline((m + 1) / 2, color="black", ls="--", lw=0.8)
    ax.text(eps[-1], (m + 1) / 2, " mean rank", va="bottom", ha="right")
    ax.set_xscale("log")
    ax.set_xlabel(r"strength $\varepsilon$")
    ax.set_ylabel("soft rank")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title or r"soft_rank$_\varepsilon(\theta)$: hard ranks (dots) to the mean rank")
    return ax


def plot_soft_rank_bars(values, strength: float, *, ax=None, title: Optional[str] = None):
    r"""Soft ranks of a vector at one strength (bars) against its hard ranks (black ticks).

    Parameters
    ----------
    values : array-like, shape (m,)
    strength : float
        :math:`\varepsilon > 0` of :func:`pcoh.ranking.soft_rank`.
    """
    from .._checks import check_float

    strength = check_float(strength, "strength", minimum=0.0, strict=True)
    v = as_array(values, "values", ndim=1, shape_doc="(m,)")
    soft, hard = soft_rank_path(v, [strength])[0], _hard_ranks(v)
    m = v.size
    ax = _axes(ax)
    x = np.arange(m)
    ax.bar(x, soft, color="#d62728", alpha=0.75, label=r"soft rank")
    ax.scatter(x, hard, marker="_", s=500, color="black", lw=2.5, label="hard rank", zorder=3)
    ax.axhline((m + 1) / 2, color="black", ls="--", lw=0.8, label="mean rank")
    ax.set_xticks(x, [f"{t:.2g}" for t in v.tolist()])
    ax.set_xlabel(r"entry $\theta_j$")
    ax.set_ylabel("rank")
    ax.set_ylim(0, m + 0.8)
    ax.legend(loc="upper left", ncol=3)
    ax.set_title(title or rf"$\varepsilon = {strength:.3g}$, sum = {soft.sum():.4g}")
    return ax


#: The hexbin's grey ramp: light enough that a reference's dots (dark-edged) stand out on it.
HEXBIN_GREYS = ("#f4f4f4", "#8c8c8c")
#: Edge of the reference's dots: black has a contrast ratio of at least 3 against every grey of
#: the ramp and against white, whatever the method's fill colour.
_DOT_EDGE = "#000000"


def plot_rank_hexbin(student_features, teacher_features, *, reference: Optional[int] = None,
                     student_metric="cosine", teacher_metric="cosine", gridsize: int = 25, ax=None,
                     color: Optional[str] = None, title: Optional[str] = None, colorbar: bool = False):
    r"""Student rank against teacher rank of every (reference, compared point) pair, as a hexbin.

    Each reference :math:`i` ranks the other n - 1 points by :math:`\delta_T(x_i, \cdot)` and by
    :math:`\delta_S(x_i, \cdot)`; the grey hexagons count the pairs
    :math:`(r^T_i(j), r^S_i(j))` over all references, the chosen reference's points are
    drawn on top in colour, edged in black so that every method's colour stands out on the greys,
    and their Spearman :math:`\rho_i` is written under the title as ``rho_<i> = ...`` (never over
    the points). The axes
    reach a little beyond ranks 1 and m, so that no point is cut at the edge. A
    perception-coherent student puts everything on the diagonal.

    Parameters
    ----------
    student_features, teacher_features : array-like, shapes (n, d_S) and (n, d_T)
        Features of the same n inputs, row by row.
    reference : int, optional
        The reference drawn in colour.
    student_metric, teacher_metric : str or Dissimilarity, default "cosine"
    gridsize : int, default 25
        Hexagons across.
    color : str, optional
        Colour of the reference's points; default red.
    colorbar : bool, default False
        Add a colour bar of the pair counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    s = as_array(student_features, "student_features", ndim=2)
    t = as_array(teacher_features, "teacher_features", ndim=2)
    if len(s) != len(t):
        raise ValueError(f"student_features and teacher_features must have as many rows, got {len(s)} and {len(t)}")
    if reference is not None:
        reference = check_index(reference, "reference", len(t))
    get_metric(student_metric, "student_metric")
    get_metric(teacher_metric, "teacher_metric")
    gridsize, color = check_int(gridsize, "gridsize", minimum=1), check_color(color, "color")
    colorbar = check_bool(colorbar, "colorbar")
    rt = reference_ranks(dissimilarity_matrix(t, teacher_metric, name="teacher_features"))
    rs = reference_ranks(dissimilarity_matrix(s, student_metric, name="student_features"))
    return _draw_rank_hexbin(_axes(ax, size="half"), rt, rs, reference=reference, gridsize=gridsize, color=color,
                             title=title, colorbar=colorbar)


def _draw_rank_hexbin(ax, rt, rs, *, reference, gridsize, color, title, colorbar):
    """:func:`plot_rank_hexbin` from the (n, n - 1) teacher and student reference ranks."""
    m = rt.shape[1]
    from matplotlib.colors import LinearSegmentedColormap

    greys = LinearSegmentedColormap.from_list("pcoh_greys", list(HEXBIN_GREYS))
    hb = ax.hexbin(rt.ravel(), rs.ravel(), gridsize=gridsize, extent=(1, m, 1, m), cmap=greys, mincnt=1,
                   linewidths=0)
    hb.set_in_layout(False)  # clipped to the axes: the layout need not measure every hexagon
    if colorbar:
        ax.figure.colorbar(hb, ax=ax, fraction=0.046, pad=0.04, label="pairs, all references")
    ax.plot([1, m], [1, m], color="black", lw=0.8, ls="--")
    note = None
    if reference is not None:
        a, b = rt[reference], rs[reference]
        rho = float(np.corrcoef(a, b)[0, 1])
        dots = ax.scatter(a, b, s=22, color=color or "#d62728", edgecolor=_DOT_EDGE, linewidth=0.5, zorder=3)
        dots.set_in_layout(False)
        note = rf"$\rho_{{{int(reference)}}}$ = {rho:.2f}"  # short, so that grids of panels keep it
    pad = max(0.5, 0.03 * (m - 1))  # room for the dots at ranks 1 and m
    ax.set_xlim(1 - pad, m + pad)
    ax.set_ylim(1 - pad, m + pad)
    if not colorbar:  # a square box; beside a colour bar the layout keeps the box it was given
        ax.set_aspect("equal")
    ax.set_xlabel("teacher rank")
    ax.set_ylabel("student rank")
    if title or note:
        ax.set_title("\n".join(x for x in (title, note) if x))
    return ax


def plot_rank_hexbin_grid(student_features: dict, teacher_features, *, reference: Optional[int] = None,
                          student_metric="cosine", teacher_metric="cosine", colors: Optional[dict] = None,
                          titles: Optional[dict] = None, size: str = "full", gridsize: int = 25):
    """One :func:`plot_rank_hexbin` panel per student, on a slide-sized grid with no empty panel.

    The grid is sized from ``student_features`` (:func:`slide_grid`): every student given is drawn,
    in the dict's order, whatever their number.

    Parameters
    ----------
    student_features : dict of label -> array-like (n, d_S)
    teacher_features : array-like, shape (n, d_T)
    reference : int, optional
    colors : dict of label -> colour, optional
        Default: each label's method colour (:mod:`pcoh.methods`).
    titles : dict of label -> str, optional
        Default: the labels.
    size : {"full", "half"}, default "full"
    gridsize : int, default 25
        Hexagons across, as :func:`plot_rank_hexbin`.

    Returns
    -------
    numpy.ndarray of Axes, shape (len(student_features),)
    """
    from ..methods import color as method_color

    check_nonempty_dict(student_features, "student_features", "label -> (n, d) array")
    t = as_array(teacher_features, "teacher_features", ndim=2)
    if reference is not None:
        reference = check_index(reference, "reference", len(t))
    get_metric(student_metric, "student_metric")
    get_metric(teacher_metric, "teacher_metric")
    colors, titles = check_dict(colors, "colors", "label -> colour"), check_dict(titles, "titles", "label -> title")
    for name, c in colors.items():
        check_color(c, f"colors[{name!r}]")
    gridsize = check_int(gridsize, "gridsize", minimum=1)
    rt = reference_ranks(dissimilarity_matrix(t, teacher_metric, name="teacher_features"))  # once for all panels
    students = {}
    for name, features in student_features.items():
        f = as_array(features, f"student_features[{name!r}]", ndim=2)
        if len(f) != len(t):
            raise ValueError(f"student_features[{name!r}] must have one row per teacher row ({len(t)}), got {len(f)}")
        students[name] = f
    rows = grid_rows(len(students), size=size)
    fig, axes = slide_grid(len(students), size=size, rows=rows)
    firsts = set(np.cumsum([0, *rows[:-1]]).tolist())  # the first panel of each row
    for k, (ax, (name, f)) in enumerate(zip(axes, students.items())):
        rs = reference_ranks(dissimilarity_matrix(f, student_metric, name=f"student_features[{name!r}]"))
        _draw_rank_hexbin(ax, rt, rs, reference=reference, gridsize=gridsize,
                          color=colors.get(name, method_color(name, "#d62728")),
                          title=titles.get(name, str(name)), colorbar=False)
        if k not in firsts:  # axis names once per row and on the bottom row: less to read on a slide
            ax.set_ylabel("")
        if k < len(students) - rows[-1]:
            ax.set_xlabel("")
    return axes
