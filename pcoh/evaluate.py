"""The evaluation measures of teachers and students on the held-out split: what is computed
(nothing is cached here; :mod:`pcoh.evaluations` stores the results per run and settings).

For every model: kNN and linear-probe accuracy of its frozen features, and how well it keeps the
teacher's rankings (``PC_n`` with a bootstrap interval, global Spearman, mean Kendall tau,
concordance, top-k neighbour overlap, trustworthiness and continuity, the area under the R_NX
curve of the co-ranking matrix, linear CKA). Everything is
gathered in one tidy :class:`pandas.DataFrame`, one row per (student, method, mode, seed).

Columns of :func:`evaluate_model` / :func:`evaluate_models`:

====================  =============================================================================
column                meaning
====================  =============================================================================
``pc_n``              mean per-reference Spearman with the teacher (docs/method.md §1)
``pc_n_low/high``     95% percentile bootstrap interval of ``pc_n`` over references
``global_spearman``   Spearman of all pairwise dissimilarities (upper triangle)
``kendall_tau``       mean per-reference Kendall tau-b
``concordance``       mean per-reference concordance probability
``topk_overlap``      mean fraction of shared k nearest neighbours (k = 10)
``trustworthiness``   scikit-learn's trustworthiness of the student w.r.t. the teacher (k = 10)
``continuity``        the same with the roles swapped
``rnx_auc``           area under :math:`R_{NX}(K)` on a log scale, K = 1..n-2
                      (:func:`pcoh.coranking.rnx_curve`: every neighbourhood size at once)
``cka``               linear CKA of student and teacher features
``knn_accuracy``      k-nearest-neighbour accuracy (k = 5, the model's own metric), train -> test
``linear_probe``      logistic-regression accuracy on standardised frozen features, train -> test
``accuracy``          accuracy of the model's own logits (teacher, class-aware students; NaN
                      for class-unaware students, whose classifier head is never trained)
====================  =============================================================================
"""
from __future__ import annotations

from typing import Mapping, Union

import numpy as np
import pandas as pd

from . import coherence as _coh
from . import coranking as _cor
from ._checks import as_array, as_labels, check_bool, check_choice, check_float, check_int
from .dissimilarity import MetricLike

__all__ = [
    "knn_accuracy",
    "linear_probe_accuracy",
    "trustworthiness",
    "continuity",
    "linear_cka",
    "evaluate_model",
    "check_sizes",
    "score_embeddings",
    "COLUMNS",
]

COLUMNS = [
    "pc_n", "pc_n_low", "pc_n_high", "global_spearman", "kendall_tau", "concordance",
    "topk_overlap", "trustworthiness", "continuity", "rnx_auc", "cka", "knn_accuracy", "linear_probe", "accuracy",
]

# trustworthiness builds (N, N) integer matrices; above this it runs on a seeded subsample.
_TRUST_MAX_POINTS = 3000


def _np(x, name: str = "features") -> np.ndarray:
    return as_array(x, name, ndim=2)


def _labels(y, name: str = "labels", n=None) -> np.ndarray:
    return as_labels(y, name, n)


def _for_euclidean(x: np.ndarray, metric: MetricLike, name: str = "metric") -> np.ndarray:
    """Features whose Euclidean neighbours are the metric's neighbours (cosine: L2-normalise)."""
    check_choice(metric, name, _METRICS)
    if metric == "cosine":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm > 0, norm, 1.0)
    return x


_METRICS = ("cosine", "euclidean", "sqeuclidean")  # the metrics with a Euclidean form

#: Neighbours of the kNN classifier and of the neighbourhood measures (top-k overlap,
#: trustworthiness, continuity) in :func:`evaluate_model`.
KNN_K = 5
K_NEIGHBORS = 10


def knn_accuracy(train_features, train_labels, test_features, test_labels, *, k: int = KNN_K,
                 metric: MetricLike = "cosine") -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on the train features.

    ``metric`` is the model's own dissimilarity (``"cosine"``, ``"euclidean"`` or
    ``"sqeuclidean"``; the last two have the same neighbours).
    """
    from sklearn.neighbors import KNeighborsClassifier

    k = check_int(k, "k", minimum=1)
    xtr = _for_euclidean(_np(train_features, "train_features"), metric)
    xte = _for_euclidean(_np(test_features, "test_features"), metric)
    ytr = _labels(train_labels, "train_labels", len(xtr))
    yte = _labels(test_labels, "test_labels", len(xte))
    if k > len(xtr):
        raise ValueError(f"k must be at most the number of training samples ({len(xtr)}), got {k}")
    clf = KNeighborsClassifier(n_neighbors=k).fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, *,
                          C: float = 1.0, max_iter: int = 2000) -> float:
    """Accuracy of a logistic regression on standardised frozen features (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    C = check_float(C, "C", minimum=0.0, strict=True)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    xtr, xte = _np(train_features, "train_features"), _np(test_features, "test_features")
    clf.fit(xtr, _labels(train_labels, "train_labels", len(xtr)))
    return float((clf.predict(xte) == _labels(test_labels, "test_labels", len(xte))).mean())


def _subsample(n: int, seed: int = 0) -> np.ndarray:
    if n <= _TRUST_MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, _TRUST_MAX_POINTS, replace=False))


def trustworthiness(student, teacher, *, k: int = 10, student_metric: MetricLike = "cosine",
                    teacher_metric: MetricLike = "cosine") -> float:
    """How few of the student's k nearest neighbours are intruders in the teacher's view.

    scikit-learn's :func:`sklearn.manifold.trustworthiness` with the teacher as the original
    space and the student as the embedding; each side with its own metric. Above 3,000 points it
    runs on a seeded subsample of 3,000 (it holds (N, N) matrices).
    """
    from sklearn.manifold import trustworthiness as _tw

    s, t, k = _neighbourhood_pair(student, teacher, k, student_metric, teacher_metric)
    return float(_tw(t, s, n_neighbors=k))


def continuity(student, teacher, *, k: int = 10, student_metric: MetricLike = "cosine",
               teacher_metric: MetricLike = "cosine") -> float:
    """How few of the teacher's k nearest neighbours the student loses: trustworthiness swapped."""
    from sklearn.manifold import trustworthiness as _tw

    s, t, k = _neighbourhood_pair(student, teacher, k, student_metric, teacher_metric)
    return float(_tw(s, t, n_neighbors=k))


def _neighbourhood_pair(student, teacher, k, student_metric, teacher_metric) -> tuple:
    """``(student, teacher, k)`` of trustworthiness and continuity: checked, subsampled, each side in
    the Euclidean form of its metric."""
    s, t = _np(student, "student"), _np(teacher, "teacher")
    if len(s) != len(t):
        raise ValueError(f"student and teacher must have the same number of samples, got {len(s)} and {len(t)}")
    k = check_int(k, "k", minimum=1, maximum=max(1, (min(len(s), _TRUST_MAX_POINTS) + 1) // 2 - 1))  # scikit-learn needs k < n / 2
    idx = _subsample(len(s))
    return (_for_euclidean(s[idx], student_metric, "student_metric"),
            _for_euclidean(t[idx], teacher_metric, "teacher_metric"), k)


def linear_cka(x, y) -> float:
    r"""Linear centred kernel alignment (Kornblith et al. 2019) of two feature sets.

    .. math::

        \mathrm{CKA}(X, Y) = \frac{\|Y_c^\top X_c\|_F^2}{\|X_c^\top X_c\|_F \, \|Y_c^\top Y_c\|_F}

    with column-centred :math:`X_c, Y_c`; invariant to rotations and isotropic scaling of each.
    """
    a, b = _np(x, "x"), _np(y, "y")
    if len(a) != len(b):
        raise ValueError(f"x and y must have the same number of samples, got {len(a)} and {len(b)}")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    num = np.linalg.norm(b.T @ a) ** 2
    den = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(num / den) if den > 0 else 0.0


def check_sizes(n_train: int, n_test: int, num_classes: int, *, k_neighbors: int = K_NEIGHBORS,
                knn_k: int = KNN_K) -> None:
    """Raise ``ValueError`` when a split is too small for :func:`evaluate_model`'s measures.

    Trustworthiness and continuity need ``k_neighbors < n_test / 2``, top-k overlap
    ``k_neighbors < n_test``, the kNN classifier ``knn_k <= n_train``, the probe two classes.
    Called before any training, so that a small data set fails at once rather than after it.
    """
    n_train, n_test = check_int(n_train, "n_train", minimum=0), check_int(n_test, "n_test", minimum=0)
    num_classes = check_int(num_classes, "num_classes", minimum=0)
    k_neighbors, knn_k = check_int(k_neighbors, "k_neighbors", minimum=1), check_int(knn_k, "knn_k", minimum=1)
    need_test = 2 * k_neighbors + 1
    if n_test < need_test:
        raise ValueError(
            f"the test split has {n_test} samples; the evaluation needs at least {need_test} "
            f"(trustworthiness, continuity and top-{k_neighbors} overlap compare {k_neighbors} neighbours, "
            f"fewer than half the test set): use more data or a larger test fraction (data.test_size)")
    if n_train < knn_k:
        raise ValueError(f"the training split has {n_train} samples; the {knn_k}-nearest-neighbour "
                         f"accuracy needs at least {knn_k}")
    if num_classes < 2:
        raise ValueError(f"the data have {num_classes} class; the linear probe and kNN accuracy need at least 2")


def evaluate_model(
    train_features,
    train_labels,
    test_features,
    test_labels,
    teacher_test_features,
    *,
    test_logits=None,
    metric: MetricLike = "cosine",
    teacher_metric: MetricLike = "cosine",
    k_neighbors: int = K_NEIGHBORS,
    n_boot: int = 1000,
    seed: int = 0,
    return_per_reference: bool = False,
    return_curves: bool = False,
):
    """Every metric of the module docstring for one model, as a dict of floats.

    Parameters
    ----------
    train_features, test_features : array-like, (n_train, d) and (n_test, d)
        The model's frozen features.
    train_labels, test_labels : array-like, (n_train,) and (n_test,)
    teacher_test_features : array-like, (n_test, d_T)
        The teacher's features of the same test inputs, in the same order.
    test_logits : array-like, (n_test, num_classes), optional
        The model's logits, for ``accuracy``; omitted -> NaN (not applicable).
    metric, teacher_metric : str
        The model's and the teacher's dissimilarities.
    return_per_reference : bool, default False
        Also return the (n_test,) per-reference Spearman values behind ``pc_n``.
    return_curves : bool, default False
        Also return the curves behind ``rnx_auc``: ``{"r_nx": (n_test - 2,) array}``,
        :math:`R_{NX}(K)` for K = 1..n_test-2.

    Returns
    -------
    dict; (dict, numpy.ndarray) with ``return_per_reference``; (dict, dict) with ``return_curves``;
    (dict, numpy.ndarray, dict) with both
    """
    # Checked here, under this function's names, before the measures check them under theirs.
    _np(teacher_test_features, "teacher_test_features")
    check_choice(metric, "metric", _METRICS)
    check_choice(teacher_metric, "teacher_metric", _METRICS)
    k_neighbors = check_int(k_neighbors, "k_neighbors", minimum=1)
    return_per_reference = check_bool(return_per_reference, "return_per_reference")
    return_curves = check_bool(return_curves, "return_curves")
    kwargs = dict(student_metric=metric, teacher_metric=teacher_metric)
    rho = _coh.per_reference_spearman(test_features, teacher_test_features, **kwargs)
    curve = _cor.rnx_curve(test_features, teacher_test_features, **kwargs)
    pc_n, low, high = _coh.bootstrap_ci(rho, n_boot=n_boot, seed=seed)
    tau, conc = _coh.kendall_and_concordance(test_features, teacher_test_features, seed=seed, **kwargs)
    acc = float("nan")
    if test_logits is not None:
        logits = _np(test_logits, "test_logits")
        acc = float((logits.argmax(axis=1) == _labels(test_labels, "test_labels", len(logits))).mean())
    row = {
        "pc_n": pc_n,
        "pc_n_low": low,
        "pc_n_high": high,
        "global_spearman": _coh.global_spearman(test_features, teacher_test_features, seed=seed, **kwargs),
        "kendall_tau": float(tau.mean()),
        "concordance": float(conc.mean()),
        "topk_overlap": float(_coh.neighbor_overlap(test_features, teacher_test_features, k=k_neighbors, **kwargs).mean()),
        "trustworthiness": trustworthiness(test_features, teacher_test_features, k=k_neighbors, **kwargs),
        "continuity": continuity(test_features, teacher_test_features, k=k_neighbors, **kwargs),
        "rnx_auc": curve.auc,
        "cka": linear_cka(test_features, teacher_test_features),
        "knn_accuracy": knn_accuracy(train_features, train_labels, test_features, test_labels, metric=metric),
        "linear_probe": linear_probe_accuracy(train_features, train_labels, test_features, test_labels),
        "accuracy": acc,
    }
    out = (row,) + ((rho,) if return_per_reference else ()) + (({"r_nx": curve.r_nx},) if return_curves else ())
    return out if len(out) > 1 else row


def score_embeddings(
    teacher_features,
    embeddings: Mapping,
    *,
    metric: Union[MetricLike, Mapping] = "euclidean",
    teacher_metric: MetricLike = "cosine",
    k: int = 10,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    return_per_reference: bool = False,
):
    r"""Score any embeddings of the same inputs against a reference space, side by side.

    Perception coherence is a yardstick for any two representations, not only for a distilled
    student: a 2-D map (PCA, t-SNE, UMAP) or another network's features are scored against the
    teacher's by :math:`PC_n` (every input as the reference, the whole set ranked), with a
    percentile bootstrap interval over references, next to the neighbourhood measures
    trustworthiness and continuity (only the ``k`` nearest neighbours count) and the global
    Spearman of all pairwise dissimilarities (no reference structure).

    Parameters
    ----------
    teacher_features : array-like or torch.Tensor, shape (n, d_T)
        The reference space.
    embeddings : dict of name -> array-like (n, d)
        Each an embedding of the same n inputs, row by row (widths may differ).
    metric : str or dict of name -> str, default "euclidean"
        Each embedding's dissimilarity (``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``); a
        dict gives one per name and must name every embedding.
    teacher_metric : str, default "cosine"
    k : int, default 10
        Neighbours of trustworthiness and continuity, in [1, n / 2).
    n_boot : int, default 1000
        Bootstrap resamples of the references for the ``pc_n`` interval.
    confidence : float, default 0.95
    seed : int, default 0
        Seeds the bootstrap and the global Spearman's pair sample.
    return_per_reference : bool, default False
        Also return each embedding's (n,) per-reference Spearman values.

    Returns
    -------
    pandas.DataFrame, or (DataFrame, dict of name -> numpy.ndarray (n,))
        One row per embedding, in the order given, with the columns ``embedding``, ``dim``,
        ``metric``, ``pc_n``, ``pc_n_low``, ``pc_n_high``, ``trustworthiness``, ``continuity``
        and ``global_spearman``.
    """
    t = _np(teacher_features, "teacher_features")
    n = len(t)
    return_per_reference = check_bool(return_per_reference, "return_per_reference")
    if not isinstance(embeddings, Mapping):
        raise TypeError(f"embeddings must be a dict of name -> (n, d) array, got {type(embeddings).__name__}")
    if not embeddings:
        raise ValueError("embeddings must hold at least one name -> (n, d) array, got an empty dict")
    if isinstance(metric, Mapping):
        missing = [name for name in embeddings if name not in metric]
        if missing:
            raise ValueError(f"metric must give a metric for every embedding; missing {missing}")
        metrics = {name: metric[name] for name in embeddings}
    else:
        metrics = dict.fromkeys(embeddings, metric)
    k = check_int(k, "k")
    if not 1 <= k < n / 2:
        raise ValueError(f"k must be an integer in [1, n / 2) = [1, {n / 2:g}), got {k!r}")
    mats = {}
    for name, e in embeddings.items():
        try:
            mats[name] = _np(e)
        except ValueError as err:
            raise ValueError(f"embeddings[{name!r}]: {err}") from None
        if len(mats[name]) != n:
            raise ValueError(f"embeddings[{name!r}] must hold the teacher's {n} inputs, got {len(mats[name])} rows")
        # An unsupported metric fails before any work.
        _for_euclidean(mats[name][:1], metrics[name], f"metric[{name!r}]" if isinstance(metric, Mapping) else "metric")
    _for_euclidean(t[:1], teacher_metric, "teacher_metric")
    rows, per_ref = [], {}
    for name, e in mats.items():
        kwargs = dict(student_metric=metrics[name], teacher_metric=teacher_metric)
        rho = _coh.per_reference_spearman(e, t, **kwargs)
        pc_n, low, high = _coh.bootstrap_ci(rho, n_boot=n_boot, confidence=confidence, seed=seed)
        per_ref[name] = rho
        rows.append({
            "embedding": name, "dim": e.shape[1], "metric": str(metrics[name]),
            "pc_n": pc_n, "pc_n_low": low, "pc_n_high": high,
            "trustworthiness": trustworthiness(e, t, k=k, **kwargs),
            "continuity": continuity(e, t, k=k, **kwargs),
            "global_spearman": _coh.global_spearman(e, t, seed=seed, **kwargs),
        })
    frame = pd.DataFrame(rows)
    return (frame, per_ref) if return_per_reference else frame

