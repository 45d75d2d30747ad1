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
highest mean metric. Each comparison states its **minimum detectable difference**

.. math::

    \mathrm{MDD} = \left(t_{(1+\ell)/2,\, m-1} + t_{\beta,\, m-1}\right)\frac{\operatorname{sd}(\Delta)}{\sqrt m},

the smallest true difference that the design detects at level :math:`\ell` with power
:math:`\beta` (80% by default), and a **verdict**: ``better`` (or ``worse``) only when the
interval lies above (below) 0 *and* :math:`|\bar\Delta| \ge \mathrm{MDD}`, otherwise
``no difference detected``. A method is called **best** only when it has the highest mean and its
verdict against the runner-up is ``better``; a single seed gives no interval, so never a best.

The choice of the best other method and the verdicts are made on numbers rounded to
``decimals`` (3 by default, what the tables print), ties in the rounded mean keeping the order of
appearance: a change of ``1e-6`` in a measure (another summation order, another machine's
evaluation numerics) cannot change a verdict except across a rounding boundary.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Sequence, Union

import numpy as np
import pandas as pd

from ._checks import check_float, check_int, check_names

__all__ = ["paired_comparison", "format_comparison", "verdicts", "two_level_interval", "compare_runs",
           "COMPARISON_COLUMNS", "VERDICTS", "POWER", "TOLERANCE_SE", "TOLERANCE_FLOOR"]

#: Columns of :func:`paired_comparison` after the group keys.
COMPARISON_COLUMNS = ["method", "n_seeds", "mean", "std", "other", "n_pairs", "diff", "diff_low", "diff_high",
                      "mdd", "verdict", "best"]
#: The verdicts of a comparison: interval above 0 and at least the MDD, below 0 and at least the
#: MDD, neither, and too few pairs for an interval.
VERDICTS = ("better", "worse", "no difference detected", "too few pairs")
#: Power at which the minimum detectable difference is stated.
POWER = 0.8
#: :func:`compare_runs`: two runs' means of a measure agree when they differ by at most this many
#: standard errors of their difference ...
TOLERANCE_SE = 4.0
#: ... or by at most this much (one held-out image of 360 is 0.0028).
TOLERANCE_FLOOR = 0.005


def _t_interval(diffs: np.ndarray, level: float, power: float = POWER) -> tuple:
    """Mean, two-sided t-interval and minimum detectable difference of paired differences; NaN
    bounds and MDD below two pairs."""
    m = len(diffs)
    if m == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(diffs.mean())
    if m < 2:
        return mean, math.nan, math.nan, math.nan
    from scipy.stats import t

    se = float(diffs.std(ddof=1)) / math.sqrt(m)
    half = float(t.ppf((1 + level) / 2, m - 1)) * se
    mdd = half + float(t.ppf(power, m - 1)) * se
    return mean, mean - half, mean + half, mdd


def _verdict(diff: float, low: float, high: float, mdd: float, decimals: int) -> str:
    """The verdict of one paired comparison, decided on numbers rounded to ``decimals``."""
    if any(math.isnan(v) for v in (diff, low, high, mdd)):
        return VERDICTS[3]
    diff, low, high, mdd = (round(v, decimals) for v in (diff, low, high, mdd))
    if low > 0 and diff >= mdd:
        return VERDICTS[0]
    if high < 0 and -diff >= mdd:
        return VERDICTS[1]
    return VERDICTS[2]


def paired_comparison(
    results: pd.DataFrame,
    metric: str = "pc_n",
    *,
    by: Union[str, Sequence[str]] = ("student", "mode"),
    method_col: str = "method",
    seed_col: str = "seed",
    level: float = 0.95,
    power: float = POWER,
    decimals: int = 3,
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
    power : float, default 0.8
        Power at which the minimum detectable difference is stated, in (0, 1).
    decimals : int, default 3
        The best other method and the verdicts are decided on means, differences, bounds and
        MDDs rounded to this many decimals.

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
        ``mdd``       minimum detectable difference at ``level`` and ``power`` (NaN below 2 pairs)
        ``verdict``   one of :data:`VERDICTS`: ``better`` / ``worse`` when the interval excludes 0
                      and ``|diff| >= mdd``, else ``no difference detected``
        ``best``      True for the method with the highest mean when its verdict is ``better``
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
    >>> paired_comparison(frame, by=())[["method", "other", "diff", "diff_low", "mdd", "verdict", "best"]].round(3)
      method other   diff  diff_low    mdd verdict   best
    0      a     b  0.057     0.042  0.018  better   True
    1      b     a -0.057    -0.071  0.018   worse  False
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
    power = check_float(power, "power", minimum=0.0, maximum=1.0, strict=True)
    decimals = check_int(decimals, "decimals", minimum=0)
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
        # Highest rounded mean first; ties keep the order of appearance (a stable sort), so that
        # noise below the printed precision does not change the best other method.
        ranking = sorted(means, key=lambda m: -round(means[m], decimals))
        for method, values in by_method.items():
            others = [m for m in ranking if m != method]
            other = others[0] if others else None
            if other is None:
                n_pairs, (diff, low, high, mdd) = 0, (math.nan,) * 4
            else:
                common = values.index.intersection(by_method[other].index)
                diffs = (values.loc[common] - by_method[other].loc[common]).to_numpy()
                n_pairs, (diff, low, high, mdd) = len(diffs), _t_interval(diffs, float(level), power)
            verdict = _verdict(diff, low, high, mdd, decimals)
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
                "mdd": mdd,
                "verdict": verdict,
                "best": bool(method == ranking[0] and verdict == VERDICTS[0]),
            })
    return pd.DataFrame(rows, columns=[*keys, *COMPARISON_COLUMNS])


def _signed(x: float, digits: int) -> str:
    return "nan" if math.isnan(x) else f"{x:+.{digits}f}"


def format_comparison(comparison: pd.DataFrame, *, metric: str = "pc_n", digits: int = 3,
                      level: float = 0.95) -> str:
    """A Markdown table of :func:`paired_comparison`'s output.

    One line per method: its group, ``mean ± std`` over seeds, the paired difference to the best
    other method with its interval, ``diff [low, high] vs other``, the minimum detectable
    difference, the verdict and ``**best**`` where the method is best.

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
    header = [*keys, "method", "seeds", f"{metric} (mean ± std)", f"diff to best other [{pct} CI]", "MDD",
              "verdict", "best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in comparison.to_dict("records"):
        spread = "" if math.isnan(r["std"]) else f" ± {r['std']:.{digits}f}"
        if r["other"] is None or (isinstance(r["other"], float) and math.isnan(r["other"])):
            diff = "-"
        else:
            interval = "" if math.isnan(r["diff_low"]) else (
                f" [{_signed(r['diff_low'], digits)}, {_signed(r['diff_high'], digits)}]")
            diff = f"{_signed(r['diff'], digits)}{interval} vs {r['other']}"
        mdd = "-" if math.isnan(r["mdd"]) else f"{r['mdd']:.{digits}f}"
        cells = [*(str(r[k]) for k in keys), str(r["method"]), str(r["n_seeds"]),
                 f"{r['mean']:.{digits}f}{spread}", diff, mdd, str(r["verdict"]), "**best**" if r["best"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(comparison: pd.DataFrame) -> pd.DataFrame:
    """The verdict columns of :func:`paired_comparison`'s output: what a rerun must reproduce.

    The group keys, ``method``, ``other`` (the best other method), ``verdict`` and ``best``; no
    number. Two runs agree on their verdicts when these frames are equal.
    """
    if not isinstance(comparison, pd.DataFrame):
        raise TypeError(f"comparison must be a pandas DataFrame, got {type(comparison).__name__}")
    missing = [c for c in COMPARISON_COLUMNS if c not in comparison.columns]
    if missing:
        raise ValueError(f"comparison must be paired_comparison's output; it lacks the columns {missing}")
    keys = list(comparison.columns[: comparison.columns.get_loc("method")])
    return comparison[[*keys, "method", "other", "verdict", "best"]].reset_index(drop=True)


def two_level_interval(diffs: Sequence, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple:
    """Paired two-level bootstrap interval of a mean over replicates of means over images.

    ``diffs[r]`` holds, for replicate ``r`` (a seed), the per-image paired differences between
    two methods on that replicate's held-out images (e.g. kNN correctness, 1 or 0, of method a
    minus that of method b on the same image; or per-reference Spearman). Each bootstrap draw
    resamples the replicates with replacement and then, within each drawn replicate, its images
    with replacement, and takes the mean over replicates of the image means: the interval covers
    both the training randomness and the choice of images.

    Parameters
    ----------
    diffs : sequence of 1-d arrays
        At least two replicates, each with at least one finite value.
    level : float, default 0.95
    n_boot : int, default 2000
    seed : int, default 0
        Seed of the resampling (the interval is reproducible).

    Returns
    -------
    (mean, low, high) : tuple of float
        The mean over replicates of the image means, and the percentile interval.
    """
    if isinstance(diffs, (str, bytes)) or not isinstance(diffs, Sequence):
        raise TypeError(f"diffs must be a sequence of 1-d arrays (one per replicate), got {type(diffs).__name__}")
    level = check_float(level, "level", minimum=0.0, maximum=1.0, strict=True)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    arrays = []
    for r, d in enumerate(diffs):
        a = np.asarray(d, dtype=np.float64)
        if a.ndim != 1 or len(a) == 0:
            raise ValueError(f"diffs[{r}] must be a non-empty 1-d array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"diffs[{r}] holds NaN or infinite values")
        arrays.append(a)
    if len(arrays) < 2:
        raise ValueError(f"diffs must hold at least two replicates, got {len(arrays)}")
    rng = np.random.default_rng(seed)
    m = len(arrays)
    picks = rng.integers(0, m, size=(n_boot, m))
    # Means of each replicate's image resamples, drawn once per (draw, slot).
    stats = np.empty(n_boot)
    for b in range(n_boot):
        total = 0.0
        for r in picks[b]:
            a = arrays[r]
            total += a[rng.integers(0, len(a), size=len(a))].mean()
        stats[b] = total / m
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(np.mean([a.mean() for a in arrays])), float(low), float(high)


def compare_runs(run: pd.DataFrame, reference: pd.DataFrame, metrics: Sequence[str], *,
                 by: Union[str, Sequence[str]] = ("student", "mode"), level: float = 0.95,
                 tolerance_se: float = TOLERANCE_SE, tolerance_floor: float = TOLERANCE_FLOOR) -> tuple:
    r"""A run of the main job against a reference run: numbers within tolerance, verdicts equal.

    On another machine every network differs (training amplifies the last bits of different
    floating-point reductions), about as much as another seed would: the means of a measure
    over :math:`m` seeds are expected to differ by about
    :math:`\sqrt{(s_a^2 + s_b^2)/m}` (the standard error of their difference). A mean agrees
    with the reference's when it differs by at most ``tolerance_se`` such standard errors or by
    at most ``tolerance_floor``, whichever is larger.

    Parameters
    ----------
    run, reference : pandas.DataFrame
        Results tables (one row per run, as ``results.csv``), with the columns ``by``,
        ``method``, ``seed`` and the ``metrics``.
    metrics : sequence of str
        Measures compared (each must be in both tables).

    Returns
    -------
    (numbers, verdicts) : tuple of pandas.DataFrame
        ``numbers``: one row per (group, method, metric) present in both, with ``mean``,
        ``reference``, ``difference``, ``tolerance`` and ``ok``. ``verdicts``: one row per
        (metric, group, method) whose verdict, best other method or best mark differs, with
        both runs' values (empty when all agree).
    """
    for name, frame in (("run", run), ("reference", reference)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    metrics = check_names(metrics, "metrics")
    keys = list(check_names(by, "by"))
    tolerance_se = check_float(tolerance_se, "tolerance_se", minimum=0.0)
    tolerance_floor = check_float(tolerance_floor, "tolerance_floor", minimum=0.0)
    for name, frame in (("run", run), ("reference", reference)):
        missing = [c for c in (*keys, "method", "seed", *metrics) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the columns {missing}")
    group = [*keys, "method"]
    numbers = []
    for metric in metrics:
        a = run.groupby(group, sort=False)[metric].agg(["mean", "std", "count"])
        b = reference.groupby(group, sort=False)[metric].agg(["mean", "std", "count"])
        both = a.add_suffix("_run").join(b.add_suffix("_ref"), how="inner").dropna(subset=["mean_run", "mean_ref"])
        for index, r in both.iterrows():
            sa = 0.0 if math.isnan(r["std_run"]) else r["std_run"]
            sb = 0.0 if math.isnan(r["std_ref"]) else r["std_ref"]
            se = math.sqrt(sa ** 2 / r["count_run"] + sb ** 2 / r["count_ref"])
            tol = max(tolerance_se * se, tolerance_floor)
            diff = float(r["mean_run"] - r["mean_ref"])
            numbers.append({**dict(zip(group, index if isinstance(index, tuple) else (index,))), "metric": metric,
                            "mean": float(r["mean_run"]), "reference": float(r["mean_ref"]), "difference": diff,
                            "tolerance": tol, "ok": bool(abs(diff) <= tol)})
    numbers = pd.DataFrame(numbers, columns=[*group, "metric", "mean", "reference", "difference", "tolerance", "ok"])
    changed = []
    for metric in metrics:
        va = verdicts(paired_comparison(run, metric, by=keys, level=level)) if run[metric].notna().any() else None
        vb = (verdicts(paired_comparison(reference, metric, by=keys, level=level))
              if reference[metric].notna().any() else None)
        if va is None or vb is None:
            continue
        merged = va.merge(vb, on=group, how="outer", suffixes=("", "_reference"), indicator=True)
        for r in merged.to_dict("records"):
            if r["_merge"] != "both":
                continue
            if (r["verdict"], r["other"], bool(r["best"])) != (r["verdict_reference"], r["other_reference"],
                                                                bool(r["best_reference"])):
                changed.append({"metric": metric, **{k: r[k] for k in group},
                                "other": r["other"], "verdict": r["verdict"], "best": bool(r["best"]),
                                "other_reference": r["other_reference"], "verdict_reference": r["verdict_reference"],
                                "best_reference": bool(r["best_reference"])})
    changed = pd.DataFrame(changed, columns=["metric", *group, "other", "verdict", "best", "other_reference",
                                             "verdict_reference", "best_reference"])
    return numbers, changed

