"""Figures of 2-D embeddings (UMAP, t-SNE, PCA): one panel, or several side by side.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._checks import as_array, as_labels
from ._base import _axes

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
        Write each class's name just above the median of its points.
    highlight : sequence of int, optional
        Indices drawn large with a black edge, the first one as a star (e.g. a reference and
        its teacher's nearest neighbours).

    Returns
    -------
    matplotlib.axes.Axes
    """
    e = as_array(embedding, "embedding", ndim=2, columns=2, shape_doc="(n, 2)")
    y = as_labels(labels, "labels", n=len(e))
    import matplotlib.pyplot as plt
    import matplotlib.patheffects as pe

    ax = _axes(ax, figsize=(4.5, 4.5))
    colors = plt.get_cmap(cmap)(y.astype(int) % plt.get_cmap(cmap).N)
    ax.scatter(e[:, 0], e[:, 1], s=s, c=colors, lw=0, alpha=0.85, rasterized=len(e) > 2000)
    if annotate:
        for c in np.unique(y):
            mx, my = np.median(e[y == c], axis=0)
            name = str(class_names[int(c)]) if class_names is not None else str(c)
            # Just above the class's median, so that tight clusters stay visible under their name.
            ax.annotate(name, (mx, my), xytext=(0, 5), textcoords="offset points", ha="center", va="bottom",
                        fontsize=12, fontweight="bold", path_effects=[pe.withStroke(linewidth=3, foreground="white")])
    if highlight is not None and len(highlight):
        h = np.asarray(highlight, dtype=int)
        ax.scatter(e[h[1:], 0], e[h[1:], 1], s=60, c=colors[h[1:]], edgecolor="black", lw=1.2, zorder=4)
        ax.scatter(e[h[0], 0], e[h[0], 1], s=260, marker="*", c=[colors[h[0]]], edgecolor="black", lw=1.2, zorder=5)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_embedding_grid(embeddings: dict, labels, *, titles: Optional[dict] = None, ncols: Optional[int] = None,
                        axes=None, panel_size: float = 3.6, **kwargs):
    """Several 2-D embeddings of the same points side by side, one :func:`plot_embedding` each.

    Align them first (:func:`pcoh.embedding.align_procrustes`) so that the same structure sits
    in the same place in every panel.

    Parameters
    ----------
    embeddings : dict of label -> array-like (n, 2)
        Panels in the dict's order.
    labels : array-like, shape (n,)
    titles : dict of label -> str, optional
        Panel titles; default the labels.
    ncols : int, optional
        Panels per row; default all in one row.
    axes : sequence of Axes, optional
        At least ``len(embeddings)`` axes; a new figure when omitted.
    panel_size : float, default 3.6
        Inches per panel for a new figure.
    **kwargs
        Passed to :func:`plot_embedding` (``s``, ``class_names``, ``annotate``, ``highlight``).

    Returns
    -------
    numpy.ndarray of Axes, shape (len(embeddings),)
    """
    if not isinstance(embeddings, dict):
        raise TypeError(f"embeddings must be a dict of label -> (n, 2) array, got {type(embeddings).__name__}")
    if not embeddings:
        raise ValueError("embeddings must hold at least one label -> (n, 2) array")
    k = len(embeddings)
    if axes is None:
        import matplotlib.pyplot as plt

        ncols = k if ncols is None else max(1, min(int(ncols), k))
        nrows = -(-k // ncols)
        fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.4), squeeze=False)
        for a in grid.ravel()[k:]:
            a.set_visible(False)
        axes = grid.ravel()[:k]
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < k:
        raise ValueError(f"axes must hold at least {k} axes, got {len(axes)}")
    for a, (name, e) in zip(axes, embeddings.items()):
        plot_embedding(e, labels, ax=a, title=(titles or {}).get(name, str(name)), **kwargs)
    return axes[:k]
