r"""2-D embeddings of feature sets for pictures: UMAP, aligned across models by Procrustes.

UMAP (McInnes et al. 2018, umap-learn) maps each model's features to the plane; independent
runs on different feature sets come out rotated and reflected against each other, so panels are
brought into the reference panel's frame by orthogonal Procrustes (Schönemann 1966):

.. math::

    \hat E = \frac{E - \bar E}{\|E - \bar E\|_F},\quad \hat R = \frac{R - \bar R}{\|R - \bar R\|_F},\quad
    Q = \arg\min_{Q^\top Q = I} \|\hat E Q - \hat R\|_F,\quad
    E' = \|R - \bar R\|_F \, \hat E Q + \bar R

Only rotations and reflections (and a global scale and shift) are applied: the alignment never
changes who is near whom inside a panel.
"""
from __future__ import annotations

import warnings
from typing import Hashable, Mapping, Optional

import numpy as np

from ._checks import as_array, check_index, check_int, check_seed

__all__ = ["umap_embedding", "align_procrustes", "umap_embeddings", "nearest_neighbors"]


def _matrix(x, name: str) -> np.ndarray:
    return as_array(x, name, ndim=2)


def umap_embedding(features, *, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
                   random_state: Optional[int] = 0, n_epochs: Optional[int] = None) -> np.ndarray:
    """UMAP of one feature set to the plane, seeded.

    Parameters
    ----------
    features : array-like or torch.Tensor, shape (n, d)
    n_neighbors : int, default 15
    min_dist : float, default 0.1
    metric : str, default "cosine"
        Any metric name of umap-learn; use the model's own dissimilarity.
    random_state : int or None, default 0
        A seed makes the run reproducible (and single-threaded, as umap-learn requires).
    n_epochs : int, optional
        Optimisation epochs; default umap-learn's (500 below 10,000 points). Fewer for a quick look.

    Returns
    -------
    numpy.ndarray, shape (n, 2)
    """
    x = _matrix(features, "features")
    n_neighbors = check_int(n_neighbors, "n_neighbors", minimum=2)
    random_state = check_seed(random_state, "random_state")
    if len(x) <= n_neighbors:
        raise ValueError(f"features must hold more than n_neighbors = {n_neighbors} rows, got {len(x)}")
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                        random_state=random_state, n_epochs=n_epochs, n_jobs=1 if random_state is not None else -1)
    with warnings.catch_warnings():
        # umap-learn warns that it cannot use spectral initialisation on tiny disconnected graphs
        # and that a seed disables parallelism; neither changes what is drawn.
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(x.astype(np.float32)), dtype=np.float64)


def align_procrustes(embedding, reference) -> np.ndarray:
    """Rotate/reflect, scale and shift ``embedding`` onto ``reference`` (orthogonal Procrustes).

    Both are centred and scaled to unit Frobenius norm; the orthogonal matrix that best maps the
    first onto the second (:func:`scipy.linalg.orthogonal_procrustes`) is applied, and the
    result is given the reference's scale and centre. Row ``i`` of both must be the same input.

    Parameters
    ----------
    embedding, reference : array-like, shape (n, k)

    Returns
    -------
    numpy.ndarray, shape (n, k)
        ``embedding`` in the reference's frame; distances inside it are only scaled.
    """
    from scipy.linalg import orthogonal_procrustes

    e = _matrix(embedding, "embedding")
    r = _matrix(reference, "reference")
    if e.shape != r.shape:
        raise ValueError(f"embedding and reference must have the same shape, got {e.shape} and {r.shape}")
    if len(e) < 2:
        raise ValueError(f"embedding must hold at least 2 points, got {len(e)}")
    ec, rc = e - e.mean(axis=0), r - r.mean(axis=0)
    en, rn = np.linalg.norm(ec), np.linalg.norm(rc)
    if en == 0 or rn == 0:
        raise ValueError("embedding and reference must not be a single repeated point")
    q, _ = orthogonal_procrustes(ec / en, rc / rn)
    return (ec / en) @ q * rn + r.mean(axis=0)


def umap_embeddings(features: Mapping[Hashable, object], *, reference: Optional[Hashable] = None,
                    rows=None, **umap_kwargs) -> dict:
    """UMAP of several models' features of the same inputs, each aligned to a reference panel.

    Every feature set gets the same UMAP settings and seed (:func:`umap_embedding`); each
    embedding is then mapped onto the reference's by :func:`align_procrustes`.

    Parameters
    ----------
    features : dict of label -> array-like (n, d)
        Features of the same n inputs, row by row (widths may differ).
    reference : label, optional
        The panel the others are aligned to; default the first.
    rows : array-like of int, optional
        Embed only these rows (e.g. a subsample for a quick look).
    **umap_kwargs
        Passed to :func:`umap_embedding`.

    Returns
    -------
    dict of label -> numpy.ndarray (n, 2)
        In the order of ``features``.
    """
    if not features:
        raise ValueError("features must hold at least one label -> (n, d) array")
    reference = next(iter(features)) if reference is None else reference
    if reference not in features:
        raise ValueError(f"reference must be one of the labels {list(features)}, got {reference!r}")
    mats = {k: _matrix(v, f"features[{k!r}]") for k, v in features.items()}
    sizes = {len(m) for m in mats.values()}
    if len(sizes) != 1:
        raise ValueError(f"every feature set must hold the same inputs, got row counts {sorted(sizes)}")
    if rows is not None:
        rows = np.asarray(rows)
        mats = {k: m[rows] for k, m in mats.items()}
    out = {k: umap_embedding(m, **umap_kwargs) for k, m in mats.items()}
    ref = out[reference]
    return {k: (e if k == reference else align_procrustes(e, ref)) for k, e in out.items()}


def nearest_neighbors(features, reference: int, *, k: int = 10, metric="cosine") -> np.ndarray:
    r"""Indices of the k samples nearest to one reference in a feature space, nearest first.

    Nearest means the smallest dissimilarity :math:`\delta(x_{\mathrm{ref}}, \cdot)` in the
    model's own metric; the reference itself is left out and ties go to the lower index.

    Parameters
    ----------
    features : array-like or torch.Tensor, shape (n, d)
    reference : int
        Row of the reference, in ``[0, n)``.
    k : int, default 10
        In ``[1, n - 1]``.
    metric : str or Dissimilarity, default "cosine"
        See :func:`pcoh.dissimilarity.pairwise`.

    Returns
    -------
    numpy.ndarray of int, shape (k,)
    """
    import torch

    from .dissimilarity import pairwise

    x = _matrix(features, "features")
    n = len(x)
    reference = check_index(reference, "reference", n)
    k = check_int(k, "k", minimum=1, maximum=n - 1)
    x = torch.from_numpy(x)
    d = pairwise(x[int(reference)][None], metric, y=x)[0].numpy().copy()
    d[int(reference)] = np.inf
    return np.argsort(d, kind="stable")[:k]
