"""Which runs a notebook shows: the runs of one mode and seed, their features, a typical reference, UMAP panels."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .. import methods as _methods
from .._checks import (as_array, check_bool, check_choice, check_columns, check_int, check_names, check_optional_str,
                       check_seed)
from ..experiment import ExperimentResult
from ..methods import CLASS_UNAWARE

__all__ = ["pick_runs", "run_features", "median_reference", "sample_rows", "embedding_titles", "umap_panels"]


def pick_runs(result: ExperimentResult, mode: str = CLASS_UNAWARE, seed: int = 0, *,
              student: Optional[str] = None) -> dict:
    """The student runs of one mode and seed: method -> run key ``(student, method, mode, seed)``.

    Parameters
    ----------
    result : ExperimentResult
    mode : str, default "class-unaware"
    seed : int, default 0
    student : str, optional
        The student architecture; default the first one of the result.

    Returns
    -------
    dict
        In the order the runs were made (the method registry's order).

    Raises
    ------
    ValueError
        No run of that mode and seed.
    """
    check_choice(mode, "mode", _methods.MODES)
    seed = check_int(seed, "seed", minimum=0)
    check_optional_str(student, "student")
    keys = [k for k in result.features if k != "teacher"]
    if student is None and keys:
        student = keys[0][0]
    runs = {k[1]: k for k in keys if k[0] == student and k[2] == mode and k[3] == seed}
    if not runs:
        seeds = sorted({k[3] for k in keys if k[2] == mode})
        raise ValueError(f"no {mode} run of student {student!r} with seed {seed!r}; seeds of that mode: {seeds}")
    return runs


def run_features(result: ExperimentResult, mode: str = CLASS_UNAWARE, seed: int = 0, *, split: str = "test",
                 teacher: bool = False, student: Optional[str] = None) -> dict:
    """Features of the runs of one mode and seed: method -> ``(n, d)`` array (see :func:`pick_runs`).

    Parameters
    ----------
    split : {"test", "train"}, default "test"
    teacher : bool, default False
        Put the teacher's features first, under ``"teacher"``.
    """
    check_choice(split, "split", ["test", "train"])
    teacher = check_bool(teacher, "teacher")
    runs = pick_runs(result, mode, seed, student=student)
    out = {"teacher": result.features["teacher"][split]} if teacher else {}
    out.update({method: result.features[key][split] for method, key in runs.items()})
    return out


def median_reference(values, decimals: int = 2) -> int:
    """A typical reference: the first (lowest index) whose value, rounded to ``decimals``, equals the
    rounded median (the upper one of an even count).

    Decided on rounded values, so that noise below the rounding step (another machine's
    numerics) keeps the same reference unless it moves the rounded median itself; the exact
    median reference of 360 close values changes with any noise.

    Parameters
    ----------
    values : array-like, shape (n,)
        Per-reference values, e.g. one run's per-reference Spearman.
    decimals : int, default 2
        Rounding of the values before the median is taken.
    """
    v = as_array(values, "values", finite=False)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty (n,) array, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values must not contain NaN")
    decimals = check_int(decimals, "decimals", minimum=0)
    r = np.round(v, decimals)
    median = r[np.argsort(r, kind="stable")[len(r) // 2]]
    return int(np.flatnonzero(r == median)[0])


def sample_rows(n: int, n_points: Optional[int] = None, seed: int = 0) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``n_points`` of them drawn without replacement."""
    n, seed = check_int(n, "n", minimum=1), check_seed(seed)
    if n_points is None:
        return np.arange(n)
    n_points = check_int(n_points, "n_points", minimum=1)
    if n_points >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, n_points, replace=False))


def embedding_titles(results: pd.DataFrame, methods: Sequence[str], *, mode: str = CLASS_UNAWARE, seed: int = 0,
                     teacher: str = "teacher\n(reference)") -> dict:
    """Panel titles: each method with its trustworthiness T and continuity C against the teacher.

    ``"teacher"`` (if among ``methods``) gets ``teacher``; the others read
    ``"<method>\nT = ...\nC = ..."`` (one measure a line, so that a grid of maps on a slide keeps its
    titles apart) from the run of ``mode`` and ``seed`` in ``results``.
    """
    check_choice(mode, "mode", _methods.MODES)
    check_columns(results, ("method", "mode", "seed", "trustworthiness", "continuity"), "results")
    methods, seed = check_names(methods, "methods"), check_int(seed, "seed", minimum=0)
    if not isinstance(teacher, str):
        raise TypeError(f"teacher must be the teacher's title (a string), got {type(teacher).__name__}")
    scores = results[(results["mode"] == mode) & (results["seed"] == seed)].set_index("method")
    titles = {}
    for m in methods:
        if m == "teacher":
            titles[m] = teacher
        elif m not in scores.index:
            raise ValueError(f"methods: no {mode} run of method {m!r} with seed {seed}")
        else:
            titles[m] = f"{m}\nT = {scores.at[m, 'trustworthiness']:.3f}\nC = {scores.at[m, 'continuity']:.3f}"
    return titles


def umap_panels(result: ExperimentResult, methods: Optional[Sequence[str]] = None, *, mode: str = CLASS_UNAWARE,
                seed: int = 0, n_points: Optional[int] = None, **umap_settings):
    """UMAP maps of the teacher and students of one mode and seed, aligned to the teacher, with titles.

    Parameters
    ----------
    result : ExperimentResult
    methods : sequence of str, optional
        The students shown after the teacher; default every run of the mode and seed.
    mode, seed
        Which runs (:func:`pick_runs`).
    n_points : int, optional
        Embed a random subset of the test images (:func:`sample_rows`); default all.
    **umap_settings
        Passed to :func:`pcoh.embedding.umap_embeddings`.

    Returns
    -------
    embeddings : dict
        ``"teacher"`` and each method -> ``(len(rows), 2)`` array.
    rows : numpy.ndarray
        The test rows embedded.
    titles : dict
        From :func:`embedding_titles`.
    """
    from ..embedding import umap_embeddings

    features = run_features(result, mode, seed, teacher=True)
    if methods is not None:
        missing = [m for m in methods if m not in features]
        if missing:
            raise ValueError(f"no {mode} run with seed {seed} of {missing}; runs: {[m for m in features if m != 'teacher']}")
        features = {m: features[m] for m in ["teacher", *methods]}
    rows = sample_rows(len(features["teacher"]), n_points)
    embeddings = umap_embeddings(features, reference="teacher", rows=rows, **umap_settings)
    return embeddings, rows, embedding_titles(result.results, list(features), mode=mode, seed=seed)
