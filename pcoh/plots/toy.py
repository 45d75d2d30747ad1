"""Figures of the idea on toy data: points, dissimilarity matrices.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional

from .._checks import as_array, check_bool, check_float, check_index
from ._base import MIN_FONT_PT, _axes, check_cmap, check_color

__all__ = ["plot_points", "plot_dissimilarity_matrix"]


def plot_points(points, *, ax=None, reference: Optional[int] = None, annotate: bool = True,
                color: str = "#444444", title: Optional[str] = None):
    """Scatter plot of 2-D points, numbered, with an optional reference point highlighted.

    Parameters
    ----------
    points : array-like, shape (n, 2)
    reference : int, optional
        Index drawn as a large red star.
    annotate : bool, default True
        Write each point's index next to it.
    """
    p = as_array(points, "points", ndim=2, columns=2, shape_doc="(n, 2)")
    if reference is not None:
        reference = check_index(reference, "reference", len(p))
    annotate, color = check_bool(annotate, "annotate"), check_color(color, "color")
    ax = _axes(ax, size="half")
    ax.scatter(p[:, 0], p[:, 1], s=45, color=color, zorder=2)
    if reference is not None:
        ax.scatter(p[reference, 0], p[reference, 1], s=260, marker="*", color="#d62728", zorder=3,
                   label=f"reference {reference}")
        ax.legend(loc="best")
    if annotate:
        for i, (a, b) in enumerate(p):
            ax.annotate(str(i), (a, b), xytext=(4, 4), textcoords="offset points", fontsize=MIN_FONT_PT,
                        color="#555555")
    ax.margins(0.12)  # room for the numbers written beside the outermost points
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_dissimilarity_matrix(matrix, *, ax=None, title: Optional[str] = None, cmap: str = "viridis",
                              colorbar: bool = True, label: str = "dissimilarity",
                              vmin: Optional[float] = None, vmax: Optional[float] = None):
    """Heat map of an (n, n) dissimilarity matrix, row = reference, column = compared point.

    Parameters
    ----------
    matrix : array-like, shape (n, n)
    colorbar : bool, default True
        Add a colour bar labelled ``label``.
    vmin, vmax : float, optional
        Colour range; give several matrices the same range to compare their scales.
    """
    d = as_array(matrix, "matrix", ndim=2, finite=False, shape_doc="(n, n)")  # NaN cells are drawn blank
    if d.shape[0] != d.shape[1]:
        raise ValueError(f"matrix must be square (n, n), got shape {d.shape}")
    cmap, colorbar = check_cmap(cmap), check_bool(colorbar, "colorbar")
    vmin = None if vmin is None else check_float(vmin, "vmin")
    vmax = None if vmax is None else check_float(vmax, "vmax")
    ax = _axes(ax, size="half")
    # aspect="auto": the matrix fills its panel, so that its colour bar stays beside it in a grid.
    im = ax.imshow(d, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xlabel("compared point j")
    ax.set_ylabel("reference i")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    if title:
        ax.set_title(title)
    return ax
