"""Paired comparisons over seeds: hand computations, scipy's paired t-test, properties, bad inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pcoh.stats import COMPARISON_COLUMNS, format_comparison, paired_comparison


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
                        "| best |")
    assert len(lines) == 2 + len(out)
    row_a = out.set_index("method").loc["a"]
    assert lines[2] == (f"| s | class-unaware | a | 3 | 0.970 ± 0.020 | +{row_a['diff']:.3f} "
                        f"[+{row_a['diff_low']:.3f}, +{row_a['diff_high']:.3f}] vs b | **best** |")
    assert lines[3].startswith("| s | class-unaware | b | 3 | 0.900 ± 0.017 | -0.070 [")
    assert lines[3].endswith(" vs a |  |")
    assert lines[4] == "| s | - | teacher | 1 | 1.000 | - |  |"


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
