"""Paired comparisons over seeds: hand computations, scipy's paired t-test, properties, bad inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pcoh.stats import COMPARISON_COLUMNS, VERDICTS, format_comparison, paired_comparison, two_level_interval, verdicts


def _frame(values: dict, *, student="s", mode="class-unaware") -> pd.DataFrame:
    """{method: [metric per seed 0, 1, ...]} -> one row per run."""
    return pd.DataFrame([{"student": student, "mode": mode, "method": m, "seed": s, "pc_n": v}
                         for m, vs in values.items() for s, v in enumerate(vs)])


def test_hand_computation():
    # a: 0.90 0.92 0.94 (mean 0.92); b: 0.88 0.91 0.91 (mean 0.90); c: 0.50 0.60 0.70.
    # a - b = 0.02 0.01 0.03: mean 0.02, sd 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3).
    frame = _frame({"a": [0.90, 0.92, 0.94], "b": [0.88, 0.91, 0.91], "c": [0.50, 0.60, 0.70]})
    out = paired_comparison(frame).set_index("method")
    assert list(out.index) == ["a", "b", "c"]
    assert out.loc["a", "other"] == "b" and out.loc["b", "other"] == "a" and out.loc["c", "other"] == "a"
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, 2) from a table
    assert out.loc["a", "diff"] == pytest.approx(0.02)
    assert out.loc["a", "diff_low"] == pytest.approx(0.02 - half)
    assert out.loc["a", "diff_high"] == pytest.approx(0.02 + half)
    assert out.loc["b", "diff"] == pytest.approx(-0.02)
    # c - a = -0.40 -0.32 -0.24: mean -0.32, sd 0.08.
    assert out.loc["c", "diff"] == pytest.approx(-0.32)
    assert out.loc["c", "diff_low"] == pytest.approx(-0.32 - 4.302652729911275 * 0.08 / math.sqrt(3))
    assert out.loc["a", "mean"] == pytest.approx(0.92) and out.loc["a", "std"] == pytest.approx(0.02)
    assert list(out["n_seeds"]) == [3, 3, 3] and list(out["n_pairs"]) == [3, 3, 3]
    # 0.02 - 0.0248 < 0: a leads but its interval against b holds 0, so no best.
    assert not out["best"].any()
    # With a larger lead the interval clears 0 and only a is best.
    frame = _frame({"a": [0.95, 0.97, 0.99], "b": [0.88, 0.91, 0.91], "c": [0.50, 0.60, 0.70]})
    out = paired_comparison(frame).set_index("method")
    assert out.loc["a", "diff_low"] > 0
    assert list(out["best"]) == [True, False, False]


@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_interval_matches_scipy_ttest_rel(level):
    rng = np.random.default_rng(1)
    base = rng.normal(size=6)
    values = {"a": base + 0.3 + rng.normal(scale=0.2, size=6), "b": base + rng.normal(scale=0.2, size=6)}
    out = paired_comparison(_frame(values), level=level).set_index("method")
    ci = sps.ttest_rel(values["a"], values["b"]).confidence_interval(confidence_level=level)
    assert out.loc["a", "diff_low"] == pytest.approx(ci.low)
    assert out.loc["a", "diff_high"] == pytest.approx(ci.high)
    ci_b = sps.ttest_rel(values["b"], values["a"]).confidence_interval(confidence_level=level)
    assert out.loc["b", "diff_low"] == pytest.approx(ci_b.low)
    assert out.loc["b", "diff_high"] == pytest.approx(ci_b.high)


def test_pairs_by_seed_not_by_row_order():
    frame = _frame({"a": [0.9, 0.8, 0.7], "b": [0.85, 0.75, 0.65]})
    shuffled = frame.sample(frac=1.0, random_state=3)
    out = paired_comparison(shuffled).set_index("method")
    # a - b = 0.05 on every seed: zero spread, a degenerate interval at 0.05.
    assert out.loc["a", "diff"] == pytest.approx(0.05)
    assert out.loc["a", "diff_low"] == pytest.approx(0.05) and out.loc["a", "diff_high"] == pytest.approx(0.05)
    assert out.loc["a", "best"]


def test_only_common_seeds_are_paired():
    frame = _frame({"a": [0.9, 0.8, 0.7], "b": [0.85, 0.70]})  # b lacks seed 2
    out = paired_comparison(frame).set_index("method")
    assert out.loc["a", "n_seeds"] == 3 and out.loc["a", "n_pairs"] == 2
    assert out.loc["a", "diff"] == pytest.approx(np.mean([0.05, 0.10]))


def test_one_seed_gives_no_interval_and_no_best():
    out = paired_comparison(_frame({"a": [0.9], "b": [0.1]})).set_index("method")
    assert out.loc["a", "diff"] == pytest.approx(0.8)
    assert math.isnan(out.loc["a", "diff_low"]) and math.isnan(out.loc["a", "diff_high"])
    assert math.isnan(out.loc["a", "std"])
    assert not out["best"].any()


def test_groups_are_compared_separately_and_a_lone_method_has_no_other():
    frame = pd.concat([
        _frame({"a": [0.9, 0.91, 0.92], "b": [0.5, 0.52, 0.51]}, mode="class-unaware"),
        _frame({"b": [0.95, 0.96, 0.97], "a": [0.2, 0.3, 0.25]}, mode="class-aware"),
        _frame({"teacher": [1.0]}, mode="-"),
    ])
    out = paired_comparison(frame)
    assert list(out.columns) == ["student", "mode", *COMPARISON_COLUMNS]
    best = out[out["best"]]
    assert list(zip(best["mode"], best["method"])) == [("class-unaware", "a"), ("class-aware", "b")]
    teacher = out[out["method"] == "teacher"].iloc[0]
    assert pd.isna(teacher["other"]) and teacher["n_pairs"] == 0 and not teacher["best"]
    # by=("student",) pools the modes: a run per (method, seed) twice, which cannot be paired.
    with pytest.raises(ValueError, match="got two with student='s', method='b', seed=0"):
        paired_comparison(frame, by=("student",))


def test_nan_metric_rows_are_left_out():
    frame = _frame({"a": [0.9, 0.91, 0.92], "b": [0.5, 0.52, 0.51], "c": [np.nan, np.nan, np.nan]})
    out = paired_comparison(frame)
    assert list(out["method"]) == ["a", "b"]


seeds_st = st.integers(min_value=2, max_value=6)


@st.composite
def _runs(draw):
    n_methods = draw(st.integers(min_value=2, max_value=4))
    n_seeds = draw(seeds_st)
    vals = draw(st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
                         min_size=n_methods * n_seeds, max_size=n_methods * n_seeds))
    values = np.asarray(vals).reshape(n_methods, n_seeds)
    return {f"m{i}": values[i] for i in range(n_methods)}


def _tied(values) -> bool:
    means = np.sort([np.mean(v) for v in values.values()])
    return bool(np.isclose(np.diff(means), 0, atol=1e-9).any())


def _comparable(out: pd.DataFrame) -> pd.DataFrame:
    return out.set_index("method").sort_index()[["other", "diff", "diff_low", "diff_high", "best"]]


@settings(max_examples=40, deadline=None)
@given(_runs(), st.randoms(use_true_random=False))
def test_relabelling_methods_relabels_the_result(values, rnd):
    names = list(values)
    new = names[:]
    rnd.shuffle(new)
    rename = dict(zip(names, new))
    out = paired_comparison(_frame(values))
    out2 = paired_comparison(_frame({rename[m]: v for m, v in values.items()}))
    # Tied means may pick a different (equally good) other; compare only untied cases.
    if _tied(values):
        return
    expected = out.assign(method=out["method"].map(rename), other=out["other"].map(rename))
    pd.testing.assert_frame_equal(_comparable(out2), _comparable(expected))


@settings(max_examples=40, deadline=None)
@given(_runs(), st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False), min_size=6, max_size=6))
def test_a_shift_per_seed_leaves_the_differences_unchanged(values, shifts):
    # Whatever a seed does to every method alike cancels in the paired differences.
    shifted = {m: v + np.asarray(shifts[: len(v)]) for m, v in values.items()}
    a, b = paired_comparison(_frame(values)), paired_comparison(_frame(shifted))
    if _tied(values):  # the shift's rounding may then break a tie the other way
        return
    assert list(a["other"]) == list(b["other"])
    for col in ("diff", "diff_low", "diff_high"):
        np.testing.assert_allclose(a[col], b[col], atol=1e-9)
    if not np.isclose(a["diff_low"], 0, atol=1e-9).any():
        assert list(a["best"]) == list(b["best"])


def test_format_comparison_table():
    frame = _frame({"a": [0.95, 0.97, 0.99], "b": [0.88, 0.91, 0.91]})
    frame = pd.concat([frame, _frame({"teacher": [1.0]}, mode="-")])
    out = paired_comparison(frame)
    text = format_comparison(out, metric="pc_n", digits=3)
    lines = text.splitlines()
    assert lines[0] == ("| student | mode | method | seeds | pc_n (mean ± std) | diff to best other [95% CI] "
                        "| MDD | verdict | best |")
    assert len(lines) == 2 + len(out)
    row_a = out.set_index("method").loc["a"]
    assert lines[2] == (f"| s | class-unaware | a | 3 | 0.970 ± 0.020 | +{row_a['diff']:.3f} "
                        f"[+{row_a['diff_low']:.3f}, +{row_a['diff_high']:.3f}] vs b | {row_a['mdd']:.3f} "
                        "| better | **best** |")
    assert lines[3].startswith("| s | class-unaware | b | 3 | 0.900 ± 0.017 | -0.070 [")
    assert lines[3].endswith(" vs a | 0.031 | worse |  |")
    assert lines[4] == "| s | - | teacher | 1 | 1.000 | - | - | too few pairs |  |"


def test_bad_inputs():
    frame = _frame({"a": [0.9, 0.91], "b": [0.5, 0.52]})
    with pytest.raises(TypeError, match="results must be a pandas DataFrame"):
        paired_comparison(frame.to_dict())
    with pytest.raises(ValueError, match="metric names column 'nope'"):
        paired_comparison(frame, "nope")
    with pytest.raises(ValueError, match="by names column 'student_x'"):
        paired_comparison(frame, by=("student_x",))
    with pytest.raises(TypeError, match="by must be a column name"):
        paired_comparison(frame, by=3)
    with pytest.raises(TypeError, match="metric must be a column name"):
        paired_comparison(frame, metric=1)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        paired_comparison(frame, level=1.5)
    with pytest.raises(TypeError, match="level must be a number"):
        paired_comparison(frame, level="0.95")
    with pytest.raises(ValueError, match="must be numeric"):
        paired_comparison(frame.assign(pc_n="x"))
    with pytest.raises(ValueError, match="infinite"):
        paired_comparison(frame.assign(pc_n=[0.1, np.inf, 0.2, 0.3]))
    with pytest.raises(ValueError, match="one run per .group, method, seed., got two with .*method='a', seed=0"):
        paired_comparison(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(TypeError, match="comparison must be a pandas DataFrame"):
        format_comparison([1, 2])
    with pytest.raises(ValueError, match="lacks the columns"):
        format_comparison(frame)
    with pytest.raises(ValueError, match=r"digits must be an integer in \[0, inf\]"):
        format_comparison(paired_comparison(frame), digits=-1)


def test_minimum_detectable_difference_by_hand():
    # a - b = 0.02 0.01 0.03: sd 0.01; MDD = (t(0.975, 2) + t(0.80, 2)) * 0.01 / sqrt(3).
    frame = _frame({"a": [0.90, 0.92, 0.94], "b": [0.88, 0.91, 0.91]})
    out = paired_comparison(frame).set_index("method")
    t975, t80 = sps.t.ppf(0.975, 2), sps.t.ppf(0.80, 2)
    assert t80 == pytest.approx(1.0607, abs=1e-4)  # from a t table
    assert out.loc["a", "mdd"] == pytest.approx((t975 + t80) * 0.01 / math.sqrt(3))
    assert out.loc["a", "mdd"] == pytest.approx(0.0310, abs=1e-4)
    # 0.02 < MDD (and the interval holds 0): no difference detected, both ways.
    assert list(out["verdict"]) == ["no difference detected"] * 2
    assert paired_comparison(frame, power=0.5).set_index("method").loc["a", "mdd"] == pytest.approx(
        t975 * 0.01 / math.sqrt(3))  # t(0.5) = 0: at power 1/2 the MDD is the half-width


def test_interval_clear_of_zero_but_below_the_mdd_is_no_difference():
    # A lead of 0.02 with a small spread: the interval clears 0, and |diff| against the MDD decides.
    diffs = np.array([0.010, 0.030, 0.012, 0.028, 0.020])
    frame = _frame({"a": list(0.5 + diffs), "b": [0.5] * 5})
    out = paired_comparison(frame).set_index("method")
    assert out.loc["a", "diff_low"] > 0
    se = diffs.std(ddof=1) / math.sqrt(5)
    mdd = (sps.t.ppf(0.975, 4) + sps.t.ppf(0.8, 4)) * se
    assert out.loc["a", "mdd"] == pytest.approx(mdd)
    assert (out.loc["a", "verdict"] == "better") == (round(diffs.mean(), 3) >= round(mdd, 3))
    # More spread: the interval still clears 0 (barely), the MDD is above the difference.
    diffs = np.array([0.005, 0.035, 0.010, 0.030, 0.020])  # diff / se = 3.5: above t(0.975, 4), below 3.72
    out = paired_comparison(_frame({"a": list(0.5 + diffs), "b": [0.5] * 5})).set_index("method")
    assert out.loc["a", "diff_low"] > 0 and out.loc["a", "mdd"] > out.loc["a", "diff"]
    assert out.loc["a", "verdict"] == "no difference detected" and not out["best"].any()


def test_verdicts_ignore_noise_below_the_printed_precision():
    rng = np.random.default_rng(5)
    base = rng.normal(size=8)
    values = {"a": base + 0.05 + rng.normal(scale=0.01, size=8), "b": base + rng.normal(scale=0.01, size=8),
              "c": base + 0.049 + rng.normal(scale=0.01, size=8), "d": base - 0.2}
    frame = _frame(values)
    reference = verdicts(paired_comparison(frame))
    for trial in range(20):
        noisy = frame.assign(pc_n=frame["pc_n"] + np.random.default_rng(trial).normal(scale=1e-7, size=len(frame)))
        pd.testing.assert_frame_equal(verdicts(paired_comparison(noisy)), reference)
    assert list(reference.columns) == ["student", "mode", "method", "other", "verdict", "best"]
    assert set(reference["verdict"]) <= set(VERDICTS)


def test_best_other_is_chosen_on_rounded_means_in_order_of_appearance():
    # b and c have the same mean to 3 decimals (c higher by 1e-5): b, first, is the best other.
    frame = _frame({"a": [0.70, 0.72, 0.74], "b": [0.80, 0.81, 0.82], "c": [0.80001, 0.81001, 0.82001]})
    out = paired_comparison(frame).set_index("method")
    assert out.loc["a", "other"] == "b" and out.loc["c", "other"] == "b" and out.loc["b", "other"] == "c"


def test_two_level_interval_by_brute_force_and_properties():
    rng = np.random.default_rng(0)
    reps = [rng.normal(0.01 * r, 0.1, size=50) for r in range(4)]
    mean, low, high = two_level_interval(reps, n_boot=500, seed=3)
    assert mean == pytest.approx(np.mean([r.mean() for r in reps]))
    assert low < mean < high
    # The same draws by hand: replicates, then images within each drawn replicate.
    g = np.random.default_rng(3)
    picks = g.integers(0, 4, size=(500, 4))
    stats = [np.mean([reps[r][g.integers(0, 50, size=50)].mean() for r in row]) for row in picks]
    assert (low, high) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])))
    # No spread anywhere: a degenerate interval.
    assert two_level_interval([np.full(5, 0.2), np.full(7, 0.2)]) == pytest.approx((0.2, 0.2, 0.2))
    # The image part counts: wider than resampling replicate means alone when images vary.
    noisy = [np.r_[np.ones(5), -np.ones(5), np.zeros(90)] for _ in range(3)]
    m, lo, hi = two_level_interval(noisy, n_boot=400)
    assert m == 0 and hi - lo > 0.02  # replicate means are all 0: only the images give width
    with pytest.raises(ValueError, match="at least two replicates"):
        two_level_interval([np.ones(3)])
    with pytest.raises(ValueError, match=r"diffs\[1\] must be a non-empty 1-d array"):
        two_level_interval([np.ones(3), np.ones((2, 2))])
    with pytest.raises(ValueError, match="NaN"):
        two_level_interval([np.ones(3), np.array([np.nan])])
    with pytest.raises(TypeError, match="sequence of 1-d arrays"):
        two_level_interval(np.ones(3))



def _runs(values: dict, mode="class-unaware") -> pd.DataFrame:
    """{method: [(pc_n, knn) per seed]} -> results rows."""
    return pd.DataFrame([{"student": "s", "mode": mode, "method": m, "seed": s, "pc_n": v[0], "knn_accuracy": v[1]}
                         for m, vs in values.items() for s, v in enumerate(vs)])


def test_compare_runs_tolerances_and_changed_verdicts():
    from pcoh.stats import TOLERANCE_FLOOR, compare_runs

    ref = _runs({"a": [(0.90, 0.98), (0.91, 0.99), (0.92, 0.98)], "b": [(0.80, 0.98), (0.82, 0.99), (0.81, 0.98)]})
    numbers, changed = compare_runs(ref, ref, ["pc_n", "knn_accuracy"])
    assert numbers["ok"].all() and (numbers["difference"] == 0).all() and changed.empty
    # Tolerance: 4 standard errors of the difference of the means, or the floor.
    row = numbers.set_index(["method", "metric"]).loc[("a", "pc_n")]
    assert row["tolerance"] == pytest.approx(max(4 * math.sqrt(2 * 0.01 ** 2 / 3), TOLERANCE_FLOOR))
    # A run whose a falls to b's level: means outside tolerance, and the verdicts change (named).
    run = _runs({"a": [(0.80, 0.98), (0.81, 0.99), (0.82, 0.98)], "b": [(0.80, 0.98), (0.82, 0.99), (0.81, 0.98)]})
    numbers, changed = compare_runs(run, ref, ["pc_n"])
    assert not numbers.set_index("method").loc["a", "ok"]
    assert list(changed["method"]) == ["a", "b"]
    a = changed.set_index("method").loc["a"]
    assert (a["verdict"], a["verdict_reference"], a["best_reference"]) == ("no difference detected", "better", True)
    with pytest.raises(ValueError, match="run lacks the columns"):
        compare_runs(run.drop(columns="pc_n"), ref, ["pc_n"])
    with pytest.raises(TypeError, match="reference must be a pandas DataFrame"):
        compare_runs(run, None, ["pc_n"])
