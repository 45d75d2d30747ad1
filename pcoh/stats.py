r"""Honest comparisons of methods over seeds: paired differences with t-intervals.

Runs of the main job that share a seed share the data order and the student's initial weights,
so two methods are compared run by run: for methods :math:`a` and :math:`b` and the seeds
:math:`s = 1..m` that both have,

.. math::

    \Delta_s = M_{a,s} - M_{b,s}, \qquad
    \bar\Delta \pm t_{(1+\ell)/2,\, m-1} \, \frac{\operatorname{sd}(\Delta)}{\sqrt m}

(the paired t-interval at level :math:`\ell`; the same interval as
:func:`scipy.stats.ttest_rel`). Pairing removes what the seed does to every method alike (an
easy or a hard data order), which an unpaired comparison of two means would count as noise.

Each method is compared with the *best other method* of its group: the other method with the
highest mean metric. A method is called **best** only when it has the highest mean and its
interval against the runner-up lies above 0; a single seed gives no interval, so never a best.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Sequence, Union

import numpy as np
import pandas as pd

from ._checks import check_float, check_int, check_names

__all__ = ["paired_comparison", "format_comparison", "COMPARISON_COLUMNS"]

#: Columns of :func:`paired_comparison` after the group keys.
COMPARISON_COLUMNS = ["method", "n_seeds", "mean", "std", "other", "n_pairs", "diff", "diff_low", "diff_high", "best"]


def _t_interval(diffs: np.ndarray, level: float) -> tuple:
    """Mean and two-sided t-interval of paired differences; NaN bounds below two pairs."""
    m = len(diffs)
    if m == 0:
        return math.nan, math.nan, math.nan
    mean = float(diffs.mean())
    if m < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf((1 + level) / 2, m - 1)) * float(diffs.std(ddof=1)) / math.sqrt(m)
    return mean, mean - half, mean + half


def paired_comparison(
    results: pd.DataFrame,
    metric: str = "pc_n",
    *,
    by: Union[str, Sequence[str]] = ("student", "mode"),
    method_col: str = "method",
    seed_col: str = "seed",
    level: float = 0.95,
) -> pd.DataFrame:
    r"""Each method against the best other method of its group, paired by seed.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per run: the group columns ``by``, ``method_col``, ``seed_col`` and ``metric``
        (e.g. :attr:`pcoh.experiment.ExperimentResult.results`). Rows whose metric is NaN (not
        applicable, e.g. ``accuracy`` of class-unaware students) are left out.
    metric : str, default "pc_n"
        The column compared; higher is better.
    by : str or sequence of str, default ("student", "mode")
        Methods are compared only within a group of equal values in these columns (a student
        architecture and a mode); ``()`` compares all rows as one group.
    method_col, seed_col : str, default "method", "seed"
    level : float, default 0.95
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per (group, method), groups and methods in order of first appearance, with the
        columns ``by`` and then:

        ============  ==============================================================================
        ``method``    the method
        ``n_seeds``   runs of the method (seeds)
        ``mean``      mean of the metric over its seeds
        ``std``       standard deviation over seeds (``ddof=1``; NaN for one seed)
        ``other``     the best other method of the group (highest mean); None if it is alone
        ``n_pairs``   seeds both methods have
        ``diff``      mean of the paired differences (method - other)
        ``diff_low``  lower bound of the paired t-interval at ``level`` (NaN below 2 pairs)
        ``diff_high`` upper bound
        ``best``      True for the method with the highest mean when ``diff_low > 0``
        ============  ==============================================================================

    Raises
    ------
    TypeError
        ``results`` is not a DataFrame; a column name or ``level`` of the wrong type.
    ValueError
        A missing column, a non-numeric or infinite metric, ``level`` outside (0, 1), or a
        method with two runs of the same seed in one group.

    Examples
    --------
    >>> frame = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
    ...                       "pc_n": [0.90, 0.92, 0.94, 0.85, 0.86, 0.88]})
    >>> paired_comparison(frame, by=())[["method", "other", "diff", "diff_low", "best"]].round(3)
      method other   diff  diff_low   best
    0      a     b  0.057     0.042   True
    1      b     a -0.057    -0.071  False
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    for name, value in (("metric", metric), ("method_col", method_col), ("seed_col", seed_col)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a column name (str), got {value!r}")
    keys = check_names(by, "by")
    if isinstance(level, bool) or not isinstance(level, Real):
        raise TypeError(f"level must be a number in (0, 1), got {level!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    for name, column in [("metric", metric), ("method_col", method_col), ("seed_col", seed_col)] + [
            ("by", k) for k in keys]:
        if column not in results.columns:
            raise ValueError(f"{name} names column {column!r}, which results lacks; it has {list(results.columns)}")
    if not pd.api.types.is_numeric_dtype(results[metric]) or pd.api.types.is_bool_dtype(results[metric]):
        raise ValueError(f"metric column {metric!r} must be numeric, got dtype {results[metric].dtype}")
    frame = results[results[metric].notna()]
    if np.isinf(frame[metric].to_numpy(dtype=np.float64)).any():
        raise ValueError(f"metric column {metric!r} contains infinite values")
    dup = frame.duplicated(list(keys) + [method_col, seed_col])
    if dup.any():
        row = frame[dup].iloc[0]
        where = ", ".join(f"{c}={row[c]!r}" if isinstance(row[c], str) else f"{c}={row[c]}"
                          for c in (*keys, method_col, seed_col))
        raise ValueError(f"results must hold one run per (group, method, seed), got two with {where}")

    rows = []
    groups = frame.groupby(list(keys), sort=False) if keys else [((), frame)]
    for group_key, group in groups:
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        # method -> Series of the metric indexed by seed
        by_method = {m: g.set_index(seed_col)[metric].astype(np.float64) for m, g in group.groupby(method_col, sort=False)}
        means = {m: float(v.mean()) for m, v in by_method.items()}
        # Highest mean first; ties keep the order of appearance (a stable sort).
        ranking = sorted(means, key=lambda m: -means[m])
        for method, values in by_method.items():
            others = [m for m in ranking if m != method]
            other = others[0] if others else None
            if other is None:
                n_pairs, (diff, low, high) = 0, (math.nan, math.nan, math.nan)
            else:
                common = values.index.intersection(by_method[other].index)
                diffs = (values.loc[common] - by_method[other].loc[common]).to_numpy()
                n_pairs, (diff, low, high) = len(diffs), _t_interval(diffs, float(level))
            rows.append({
                **dict(zip(keys, group_key)),
                "method": method,
                "n_seeds": len(values),
                "mean": means[method],
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "other": other,
                "n_pairs": n_pairs,
                "diff": diff,
                "diff_low": low,
                "diff_high": high,
                # NaN > 0 is False: no interval, no best.
                "best": bool(method == ranking[0] and other is not None and low > 0),
            })
    return pd.DataFrame(rows, columns=[*keys, *COMPARISON_COLUMNS])


def _signed(x: float, digits: int) -> str:
    return "nan" if math.isnan(x) else f"{x:+.{digits}f}"


def format_comparison(comparison: pd.DataFrame, *, metric: str = "pc_n", digits: int = 3,
                      level: float = 0.95) -> str:
    """A Markdown table of :func:`paired_comparison`'s output.

    One line per method: its group, ``mean ± std`` over seeds, the paired difference to the best
    other method with its interval, ``diff [low, high] vs other``, and ``**best**`` where the
    method is best (interval above 0).

    Parameters
    ----------
    comparison : pandas.DataFrame
        What :func:`paired_comparison` returned.
    metric : str, default "pc_n"
        Name shown in the header (the table holds whatever metric was compared).
    digits : int, default 3
        Decimals of every number.
    level : float, default 0.95
        Shown in the header; it should be the level the comparison was made at.

    Returns
    -------
    str
        The table, lines joined by newlines, no trailing newline.
    """
    if not isinstance(comparison, pd.DataFrame):
        raise TypeError(f"comparison must be a pandas DataFrame, got {type(comparison).__name__}")
    missing = [c for c in COMPARISON_COLUMNS if c not in comparison.columns]
    if missing:
        raise ValueError(f"comparison must be paired_comparison's output; it lacks the columns {missing}")
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string (the metric's name), got {type(metric).__name__}")
    digits = check_int(digits, "digits", minimum=0)
    level = check_float(level, "level", minimum=0.0, maximum=1.0, strict=True)
    keys = list(comparison.columns[: comparison.columns.get_loc("method")])
    pct = f"{100 * level:g}%"
    header = [*keys, "method", "seeds", f"{metric} (mean ± std)", f"diff to best other [{pct} CI]", "best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in comparison.to_dict("records"):
        spread = "" if math.isnan(r["std"]) else f" ± {r['std']:.{digits}f}"
        if r["other"] is None or (isinstance(r["other"], float) and math.isnan(r["other"])):
            diff = "-"
        else:
            interval = "" if math.isnan(r["diff_low"]) else (
                f" [{_signed(r['diff_low'], digits)}, {_signed(r['diff_high'], digits)}]")
            diff = f"{_signed(r['diff'], digits)}{interval} vs {r['other']}"
        cells = [*(str(r[k]) for k in keys), str(r["method"]), str(r["n_seeds"]),
                 f"{r['mean']:.{digits}f}{spread}", diff, "**best**" if r["best"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
