"""Figures of 2-D embeddings (UMAP, t-SNE, PCA): one panel, or several side by side.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._checks import as_array, as_labels, check_bool, check_float, check_indices
from ._base import _axes, check_class_names, check_cmap, check_dict, check_nonempty_dict, slide_grid

__all__ = ["plot_embedding", "plot_embedding_grid"]


def plot_embedding(embedding, labels, *, ax=None, title: Optional[str] = None, s: float = 8,
                   class_names: Optional[Sequence[str]] = None, annotate: bool = True, highlight=None,
                   cmap: str = "tab10"):
    """A 2-D embedding (e.g. UMAP) as a scatter plot coloured by class.

    Parameters
    ----------
    embedding : array-like, shape (n, 2)
    labels : array-like, shape (n,)
        Integer class labels; colour ``cmap(label)``.
    s : float, default 8
        Marker size.
    class_names : sequence of str, optional
    annotate : bool, default True
        Write each class's name just above the median of its points (below it for classes in the
        top fifth of the map, so that names stay inside the panel).
    highlight : sequence of int, optional
        Indices drawn large with a black edge, the first one as a star (e.g. a reference and
        its teacher's nearest neighbours).

    The map is framed by a thin grey line, without ticks (UMAP's axes have no meaning).

    Returns
    -------
    matplotlib.axes.Axes
    """
    e = as_array(embedding, "embedding", ndim=2, columns=2, shape_doc="(n, 2)")
    y = as_labels(labels, "labels", n=len(e))
    import matplotlib.pyplot as plt
    import matplotlib.patheffects as pe

    s, annotate = check_float(s, "s", minimum=0.0, strict=True), check_bool(annotate, "annotate")
    class_names, cmap = check_class_names(class_names, y), check_cmap(cmap)
    if highlight is not None:
        highlight = check_indices(highlight, "highlight", len(e))

    ax = _axes(ax, size="half")
    colors = plt.get_cmap(cmap)(y.astype(int) % plt.get_cmap(cmap).N)
    ax.scatter(e[:, 0], e[:, 1], s=s, c=colors, lw=0, alpha=0.85, rasterized=len(e) > 2000)
    if annotate:
        low, high = float(e[:, 1].min()), float(e[:, 1].max())
        for c in np.unique(y):
            mx, my = np.median(e[y == c], axis=0)
            name = str(class_names[int(c)]) if class_names is not None else str(c)
            # Just above the class's median, so that tight clusters stay visible under their name;
            # just below it in the top fifth of the map, so that the name stays inside the panel.
            above = my < high - 0.2 * (high - low)
            ax.annotate(name, (mx, my), xytext=(0, 5 if above else -5), textcoords="offset points", ha="center",
                        va="bottom" if above else "top", fontweight="bold",
                        path_effects=[pe.withStroke(linewidth=3, foreground="white")])
    if highlight is not None and len(highlight):
        h = np.asarray(highlight, dtype=int)
        ax.scatter(e[h[1:], 0], e[h[1:], 1], s=60, c=colors[h[1:]], edgecolor="black", lw=1.2, zorder=4)
        ax.scatter(e[h[0], 0], e[h[0], 1], s=260, marker="*", c=[colors[h[0]]], edgecolor="black", lw=1.2, zorder=5)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():  # a thin frame: each map is its own panel
        side.set_visible(True)
        side.set_color("#777777")
        side.set_linewidth(0.8)
    ax.margins(0.06)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_embedding_grid(embeddings: dict, labels, *, titles: Optional[dict] = None, ncols: Optional[int] = None,
                        axes=None, size: str = "full", **kwargs):
    """Several 2-D embeddings of the same points, one framed :func:`plot_embedding` panel each.

    Align them first (:func:`pcoh.embedding.align_procrustes`) so that the same structure sits
    in the same place in every panel. A new figure is a slide (:func:`slide_grid`) with exactly one
    panel per embedding: full rows, a shorter last row centred, never an empty panel.

    Parameters
    ----------
    embeddings : dict of label -> array-like (n, 2)
        Panels in the dict's order.
    labels : array-like, shape (n,)
    titles : dict of label -> str, optional
        Panel titles; default the labels.
    ncols : int, optional
        Panels per row of a new figure; default the rows that keep panels closest to square.
    axes : sequence of Axes, optional
        At least ``len(embeddings)`` axes; a new figure when omitted.
    size : {"full", "half"}, default "full"
        The new figure: a whole slide or one side of it.
    **kwargs
        Passed to :func:`plot_embedding` (``s``, ``class_names``, ``annotate``, ``highlight``).

    Returns
    -------
    numpy.ndarray of Axes, shape (len(embeddings),)
    """
    check_nonempty_dict(embeddings, "embeddings", "label -> (n, 2) array")
    titles = check_dict(titles, "titles", "label -> title")
    k = len(embeddings)
    if axes is None:
        rows = None
        if ncols is not None:
            from .._checks import check_int

            ncols = min(check_int(ncols, "ncols", minimum=1), k)
            rows = [ncols] * (k // ncols) + ([k % ncols] if k % ncols else [])
        axes = slide_grid(k, size=size, rows=rows)[1]
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < k:
        raise ValueError(f"axes must hold at least {k} axes, got {len(axes)}")
    for a, (name, e) in zip(axes, embeddings.items()):
        plot_embedding(e, labels, ax=a, title=titles.get(name, str(name)), **kwargs)
    return axes[:k]
