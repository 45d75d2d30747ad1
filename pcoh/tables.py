"""Tables of the results, for display: the styled results table and the long per-reference table.

Figures are in :mod:`pcoh.plots`; these return pandas objects.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ._checks import check_columns

__all__ = ["per_reference_frame", "style_results"]


def per_reference_frame(per_reference: dict, *, include_teacher: bool = False) -> pd.DataFrame:
    """Per-reference values of an experiment as a long table, one row per (run, reference).

    Parameters
    ----------
    per_reference : dict
        ``(student, method, mode, seed) -> (n,)`` values and ``"teacher" -> (n,)``, as
        :attr:`pcoh.experiment.ExperimentResult.per_reference`.
    include_teacher : bool, default False
        Keep the teacher's row (all ones for Spearman with itself).

    Returns
    -------
    pandas.DataFrame
        Columns ``student, method, mode, seed, reference, spearman``.
    """
    if not isinstance(per_reference, dict):
        raise TypeError(f"per_reference must be a dict of run key -> (n,) values, got {type(per_reference).__name__}")
    frames = []
    for key, values in per_reference.items():
        if key == "teacher":
            if not include_teacher:
                continue
            student, method, mode, seed = "teacher", "teacher", "-", 0
        else:
            student, method, mode, seed = key
        v = np.asarray(values, dtype=np.float64).ravel()
        frames.append(pd.DataFrame({"student": student, "method": method, "mode": mode, "seed": seed,
                                    "reference": np.arange(len(v)), "spearman": v}))
    if not frames:
        raise ValueError("per_reference holds no student runs")
    return pd.concat(frames, ignore_index=True)


def style_results(results: pd.DataFrame, columns: Sequence[str] = (
        "pc_n", "global_spearman", "kendall_tau", "topk_overlap", "trustworthiness", "continuity", "cka",
        "knn_accuracy", "linear_probe", "accuracy"), *, digits: int = 3):
    """The results table for display: mean over seeds, highest mean of each column bold per mode.

    One row per (mode, method) in the order of ``results``, the teacher first; each cell the
    mean over seeds. Within each mode the highest mean of each column is bold on a light red
    background (every column is higher-is-better); the teacher is a reference, never marked.
    ``accuracy`` is blank for class-unaware students (their classifier head is not trained).

    Parameters
    ----------
    results : pandas.DataFrame
        :attr:`pcoh.experiment.ExperimentResult.results`.
    columns : sequence of str
        Metric columns to show (those missing from ``results`` are skipped).
    digits : int, default 3

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    check_columns(results, ("method", "mode"), "results")
    cols = [c for c in columns if c in results.columns]
    if not cols:
        raise ValueError(f"none of columns {list(columns)} is in results")
    # Groups in order of first appearance: the teacher, then each mode's methods.
    table = results.groupby(["mode", "method"], sort=False)[cols].mean()
    table.insert(0, "seeds", results.groupby(["mode", "method"], sort=False).size())
    mode_of = table.index.get_level_values("mode")
    method_of = table.index.get_level_values("method")

    def best(col: pd.Series) -> np.ndarray:
        marks = np.full(len(col), "", dtype=object)
        if col.name == "seeds":
            return marks
        values = col.to_numpy(dtype=float)
        for mode in set(mode_of) - {"-"}:
            pick = (mode_of == mode) & (method_of != "teacher") & ~np.isnan(values)
            if pick.any():
                marks[pick & (values >= values[pick].max() - 1e-12)] = "font-weight: bold; background-color: #fde2e1"
        return marks

    return (table.style.apply(best, axis=0).format(precision=digits, na_rep="–", subset=cols)
            .set_caption("Mean over seeds; bold: the highest mean of each column within its mode "
                         "(which differences are resolved: pcoh.stats.paired_comparison)"))
