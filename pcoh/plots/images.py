"""Figures of inputs: image grids, a reference's neighbours, class-sorted dissimilarity matrices.

Every function takes ``ax=None`` (a new figure when omitted) and returns what it drew on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .._checks import as_array, as_labels, check_index, check_int
from ..dissimilarity import get_metric
from ..diagnostics import dissimilarity_matrix
from ._base import MIN_FONT_PT, _axes, check_class_names, check_cmap, check_nonempty_dict, check_texts
from .toy import plot_dissimilarity_matrix

__all__ = ["plot_class_dissimilarities", "plot_images", "plot_neighbors"]


def plot_class_dissimilarities(features, labels, *, metric="cosine", ax=None, title: Optional[str] = None,
                               class_names: Optional[Sequence[str]] = None, cmap: str = "viridis"):
    """Dissimilarity matrix of a set of features, rows and columns sorted by class.

    Draws :func:`plot_dissimilarity_matrix` of ``d(f_i, f_j)`` with the samples grouped by label
    (a stable sort, so the order inside a class is kept), white lines between classes and the
    class names at the block centres. A representation that separates classes shows dark
    diagonal blocks.

    Parameters
    ----------
    features : array-like, shape (n, d)
    labels : array-like, shape (n,)
        Integer class labels.
    metric : str or Dissimilarity, default "cosine"
        See :func:`pcoh.dissimilarity.pairwise`.
    class_names : sequence of str, optional
        Name of each class, indexed by label; default the labels themselves.

    Returns
    -------
    matplotlib.axes.Axes
    """
    x = as_array(features, "features", ndim=2)
    y = as_labels(labels, "labels", n=len(x))
    get_metric(metric, "metric")
    cmap = check_cmap(cmap)
    class_names = check_class_names(class_names, y)
    order = np.argsort(y, kind="stable")
    d = dissimilarity_matrix(x[order], metric)
    ax = _axes(ax, size="half")
    plot_dissimilarity_matrix(d, ax=ax, title=title, cmap=cmap, label=f"{metric} dissimilarity"
                              if isinstance(metric, str) else "dissimilarity")
    classes, counts = np.unique(y[order], return_counts=True)
    edges = np.concatenate([[0], np.cumsum(counts)]) - 0.5
    for e in edges[1:-1]:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    centres = (edges[:-1] + edges[1:]) / 2
    names = [str(class_names[c]) if class_names is not None else str(c) for c in classes]
    ax.set_xticks(centres, names)
    ax.set_yticks(centres, names)
    ax.tick_params(length=0)
    ax.set_xlabel("compared sample (by class)")
    ax.set_ylabel("reference (by class)")
    return ax


def _as_images(images, mean=None, std=None) -> np.ndarray:
    """(n, H, W) grey or (n, H, W, 3) colour images in display range, normalisation undone."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    x = as_array(images, "images")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (n, H, W) or (n, C, H, W) with C in (1, 3), got shape {x.shape}")
    c = x.shape[1]
    if mean is not None or std is not None:
        m, s = (_per_channel(v, name, c) for v, name in ((0.0 if mean is None else mean, "mean"),
                                                         (1.0 if std is None else std, "std")))
        x = x * s[None, :, None, None] + m[None, :, None, None]
    return x[:, 0] if c == 1 else np.clip(x.transpose(0, 2, 3, 1), 0.0, 1.0)


def _per_channel(value, name: str, c: int) -> np.ndarray:
    """A number or one number per channel, as a (c,) array."""
    v = as_array(value, name)
    if v.ndim > 1 or v.size not in (1, c):
        raise ValueError(f"{name} must be a number or {c} numbers (one per channel), got shape {v.shape}")
    return np.broadcast_to(v.reshape(-1), (c,))


def _mosaic(images: np.ndarray, nrows: int, ncols: int, pad: int, row_pad: int, fill: float) -> np.ndarray:
    """Tile (k, H, W[, 3]) images row by row on a (nrows, ncols) grid; gaps of pad / row_pad pixels."""
    h, w = images.shape[1:3]
    dy, dx = h + row_pad, w + pad
    shape = (nrows * dy - row_pad, ncols * dx - pad) + images.shape[3:]
    canvas = np.full(shape, fill, dtype=np.float64)
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[r * dy:r * dy + h, c * dx:c * dx + w] = img
    return canvas


def _show_mosaic(ax, tiles: np.ndarray, nrows: int, ncols: int, cmap: str, row_pad: Optional[int] = None):
    """Draw a mosaic of (k, H, W[, 3]) tiles in ``ax``; returns the (row, column) pitch in pixels."""
    h, w = tiles.shape[1:3]
    pad = max(1, w // 8)
    row_pad = pad if row_pad is None else row_pad
    grey = tiles.ndim == 3
    lo, hi = (float(tiles.min()), float(tiles.max())) if grey else (0.0, 1.0)
    canvas = _mosaic(tiles, nrows, ncols, pad, row_pad, fill=lo if grey else 1.0)
    ax.imshow(canvas, cmap=cmap if grey else None, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return h + row_pad, w + pad


def plot_images(images, *, titles: Optional[Sequence[str]] = None, ncols: int = 10, mean=None, std=None,
                ax=None, cmap: str = "gray_r"):
    """A grid of images in one axes, with an optional title above each.

    Parameters
    ----------
    images : array-like or torch.Tensor, shape (n, H, W) or (n, C, H, W), C in (1, 3)
    titles : sequence of str, optional
        One per image (e.g. its label).
    ncols : int, default 10
    mean, std : float or sequence of float, optional
        Per-channel normalisation to undo (``x * std + mean``), e.g. ``DataSplit.mean/std``.
    cmap : str, default "gray_r"
        Grey images only (dark ink on white).

    Returns
    -------
    matplotlib.axes.Axes
    """
    x = _as_images(images, mean, std)
    if len(x) == 0:
        raise ValueError("images must hold at least one image")
    titles = check_texts(titles, "titles", len(x), "image")
    ncols, cmap = min(check_int(ncols, "ncols", minimum=1), len(x)), check_cmap(cmap)
    nrows = -(-len(x) // ncols)
    h, w = x.shape[1:3]
    row_pad = max(1, w // 8) if titles is None else max(2, h // 2)
    ax = _axes(ax)
    dy, dx = _show_mosaic(ax, x, nrows, ncols, cmap, row_pad=row_pad)
    for k, t in enumerate(titles or []):
        r, c = divmod(k, ncols)
        ax.text(c * dx + (w - 1) / 2, r * dy - 0.7, str(t), ha="center", va="bottom")
    if titles is not None:
        ax.set_ylim(nrows * dy - row_pad - 0.5, -0.5 - row_pad)
    return ax


def plot_neighbors(images, features: dict, reference: int, *, k: int = 8, metric="cosine", labels=None,
                   shared_with: Optional[str] = None, mean=None, std=None, ax=None, cmap: str = "gray_r"):
    r"""A reference image and its k nearest neighbours as each model ranks them, one row per model.

    Row ``m`` shows the reference, then the k samples with the smallest dissimilarity
    :math:`\delta_m(x, \cdot)` in model ``m``'s feature space, nearest first. With ``labels``,
    neighbours of another class than the reference are framed in red and a note right of each
    row counts those of the same class; with ``shared_with``, it also counts how many of the row's
    neighbours are among that model's k (e.g. the teacher's).

    Parameters
    ----------
    images : array-like or torch.Tensor, shape (n, H, W) or (n, C, H, W)
        The inputs, in the order of the features' rows.
    features : dict of label -> array-like (n, d)
        One feature matrix per row, e.g. ``{"teacher": ..., "pc": ..., "rkd": ...}``.
    reference : int
        Index of the reference sample.
    k : int, default 8
    metric : str or dict of label -> str, default "cosine"
        Each model's dissimilarity (see :func:`pcoh.dissimilarity.pairwise`).
    labels : array-like, shape (n,), optional
    shared_with : str, optional
        A key of ``features`` whose neighbours the other rows are compared with.
    mean, std : optional
        Normalisation to undo, as :func:`plot_images`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from ..embedding import nearest_neighbors

    check_nonempty_dict(features, "features", "label -> (n, d) array")
    reference = check_index(reference, "reference", len(next(iter(features.values()))))
    if shared_with is not None and not isinstance(shared_with, str) and shared_with not in features:
        raise TypeError(f"shared_with must be a label of features (a string), got {type(shared_with).__name__}")
    cmap = check_cmap(cmap)
    x = _as_images(images, mean, std)
    n = len(x)
    rows, names = [], []
    for name, f in features.items():
        f = as_array(f, f"features[{name!r}]", ndim=2)
        if len(f) != n:
            raise ValueError(f"features[{name!r}] must have one row per image ({n}), got {len(f)}")
        rows.append(nearest_neighbors(f, reference, k=k, metric=metric[name] if isinstance(metric, dict) else metric))
        names.append(str(name))
    ax = _axes(ax)
    tiles = np.stack([x[i] for row in rows for i in (reference, *row)])
    dy, dx = _show_mosaic(ax, tiles, len(rows), k + 1, cmap)
    h, w = x.shape[1:3]
    notes = [[] for _ in rows]
    if labels is not None:
        y = as_labels(labels, "labels", n=n)
        from matplotlib.patches import Rectangle

        for r, row in enumerate(rows):
            wrong = y[row] != y[reference]
            for c in np.flatnonzero(wrong):
                ax.add_patch(Rectangle(((c + 1) * dx - 0.5, r * dy - 0.5), w, h, fill=False,
                                       edgecolor="#d62728", lw=2.2))
            notes[r].append(f"{int((~wrong).sum())}/{k} same class")
    if shared_with is not None:
        if shared_with not in features:
            raise ValueError(f"shared_with must be a key of features {list(features)}, got {shared_with!r}")
        theirs = set(rows[list(features).index(shared_with)].tolist())
        for r, (name, row) in enumerate(zip(features, rows)):
            if name != shared_with:
                notes[r].append(f"{len(theirs & set(row.tolist()))}/{k} {shared_with}'s")
    for r, note in enumerate(notes):
        if note:
            ax.text((k + 1) * dx, r * dy + (h - 1) / 2, "\n".join(note), ha="left", va="center",
                    fontsize=MIN_FONT_PT)
    ax.set_yticks(np.arange(len(rows)) * dy + (h - 1) / 2, names)
    ax.set_xticks(np.arange(k + 1) * dx + (w - 1) / 2, ["ref."] + [str(j) for j in range(1, k + 1)])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    return ax
