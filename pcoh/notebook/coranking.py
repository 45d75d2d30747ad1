"""Notebook 04's co-ranking section: the best other method by R_NX AUC, the co-ranking matrices of
`pc` and that method, the per-point scores at every K, and the computed readings."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import coranking as _cor
from .. import methods as _methods
from .._checks import check_choice, check_indices, check_int, check_names
from ..dissimilarity import MetricLike
from ..experiment import ExperimentResult
from ..tables import rnx_k_ranges
from .selection import pick_runs

__all__ = ["best_other_by_rnx", "rnx_reading", "coranking_pair", "point_scores_by_k", "coranking_reading"]


def best_other_by_rnx(result: ExperimentResult, mode: str = "class-unaware", method: str = "pc") -> str:
    """The method other than ``method`` with the highest mean ``rnx_auc`` over seeds in ``mode``
    (the references ``teacher`` and ``untrained`` are not candidates)."""
    check_choice(mode, "mode", _methods.MODES)
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name (str), got {type(method).__name__}")
    frame = result.results
    frame = frame[(frame["mode"] == mode) & ~frame["method"].isin([method, *_methods.REFERENCES])]
    if frame.empty or "rnx_auc" not in frame:
        raise ValueError(f"no {mode} run other than {method!r} with an rnx_auc")
    return str(frame.groupby("method", sort=False)["rnx_auc"].mean().idxmax())


def rnx_reading(result: ExperimentResult, method: str = "pc") -> str:
    """Markdown: ``method``'s mean R_NX AUC beside the best other method's in each mode, and the K ranges
    where its curve lies above, on par and below (:func:`pcoh.tables.rnx_k_ranges`)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name (str), got {type(method).__name__}")
    frame = result.results
    parts = []
    for mode in [m for m in _methods.MODES if ((frame["mode"] == m) & (frame["method"] == method)).any()]:
        other = best_other_by_rnx(result, mode, method)
        means = frame[frame["mode"] == mode].groupby("method")["rnx_auc"].mean()
        parts.append(f"*{mode}*: `{method}` {means[method]:.3f}, best other `{other}` {means[other]:.3f}")
    ranges = rnx_k_ranges(frame, result.curves, method=method)
    return ("**Reading** (this run). Mean area under $R_{NX}$ on a log scale: " + "; ".join(parts) + ".\n\n"
            + ranges)


def _runs(result, mode, seed, methods) -> dict:
    runs = pick_runs(result, mode, seed)
    methods = check_names(methods, "methods")
    missing = [m for m in methods if m not in runs]
    if missing:
        raise ValueError(f"methods {missing} have no {mode} run of seed {seed}; runs: {list(runs)}")
    return {m: runs[m] for m in methods}


def coranking_pair(result: ExperimentResult, mode: str = "class-unaware", seed: int = 0,
                   methods: Sequence[str] = ("pc",), *, student_metric: MetricLike = "cosine",
                   teacher_metric: MetricLike = "cosine") -> dict:
    """Co-ranking matrices (:func:`pcoh.coranking.coranking_matrix`) of the test features of
    ``methods`` (runs of ``mode`` and ``seed``) against the teacher: method -> (n-1, n-1) counts.
    Pass the configuration's metrics (``config.student_metric``, ``config.teacher_metric``)."""
    runs = _runs(result, mode, seed, methods)
    teacher = result.features["teacher"]["test"]
    return {m: _cor.coranking_matrix(result.features[key]["test"], teacher, student_metric=student_metric,
                                     teacher_metric=teacher_metric) for m, key in runs.items()}


def point_scores_by_k(result: ExperimentResult, mode: str = "class-unaware", seed: int = 0,
                      methods: Sequence[str] = ("pc",), *, rows=None, student_metric: MetricLike = "cosine",
                      teacher_metric: MetricLike = "cosine") -> dict:
    """For each of ``methods``: the (n - 1, len(rows)) share of each point's teacher K-neighbourhood
    the student keeps, K = 1..n-1 (row K - 1), over all n test points, kept for ``rows``
    (default all); :func:`pcoh.coranking.qnx_per_point`."""
    runs = _runs(result, mode, seed, methods)
    teacher = result.features["teacher"]["test"]
    n = len(teacher)
    keep = np.arange(n) if rows is None else check_indices(rows, "rows", n)
    out = {}
    for m, key in runs.items():
        out[m] = _cor.qnx_per_point(result.features[key]["test"], teacher, k=range(1, n), student_metric=student_metric,
                                    teacher_metric=teacher_metric)[:, keep]
    return out


def coranking_reading(matrices: dict, *, band: int = 5) -> str:
    """Markdown: for each co-ranking matrix, the share of pairs within ``band`` ranks of the diagonal,
    and the shares below it (intrusions) and above it (extrusions) among the first 10% of ranks."""
    band = check_int(band, "band", minimum=0)
    if not isinstance(matrices, dict) or not matrices:
        raise TypeError(f"matrices must be a non-empty dict of name -> co-ranking matrix, got {type(matrices).__name__}")
    parts = []
    for name, q in matrices.items():
        q = np.asarray(q, dtype=np.float64)
        k, l_ = np.indices(q.shape)
        near = min(q.shape[0], max(1, q.shape[0] // 10))
        first = (k < near) | (l_ < near)
        parts.append(f"`{name}` keeps {q[np.abs(k - l_) <= band].sum() / q.sum():.1%} of all pairs within {band} ranks "
                     f"of the teacher's; among pairs ranked in the first {near} by either model, "
                     f"{q[first & (l_ < k)].sum() / q[first].sum():.1%} are intrusions and "
                     f"{q[first & (l_ > k)].sum() / q[first].sum():.1%} extrusions")
    return "**Reading** (this run, seed shown). " + "; ".join(parts) + "."
