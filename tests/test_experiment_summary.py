"""The main job's summary: mean ± std table and the paired comparisons over seeds."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pcoh.experiment import comparison_tables, summary_table


def _results(seed_effect=True):
    """A small results frame: teacher, untrained, three methods x two modes x four seeds."""
    rng = np.random.default_rng(0)
    rows = [{"student": "net", "method": "teacher", "mode": "-", "seed": 0, "pc_n": 1.0, "knn_accuracy": 1.0,
             "accuracy": 1.0}]
    offsets = {"pc": 0.05, "pkt": 0.0, "sp": -0.002}
    for mode in ("class-unaware", "class-aware"):
        for seed in range(4):
            shared = rng.normal(scale=0.02) if seed_effect else 0.0  # what a seed does to every method
            rows.append({"student": "net", "method": "untrained", "mode": "class-unaware", "seed": seed,
                         "pc_n": 0.2 + shared, "knn_accuracy": 0.8, "accuracy": np.nan}) if mode == "class-unaware" else None
            for method, offset in offsets.items():
                noise = rng.normal(scale=0.001)
                rows.append({"student": "net", "method": method, "mode": mode, "seed": seed,
                             "pc_n": 0.8 + offset + shared + noise,
                             # kNN: pkt and pc tie up to noise, so no best
                             "knn_accuracy": 0.98 + rng.normal(scale=0.003) + (0.0 if method != "sp" else -0.02),
                             "accuracy": 0.97 if mode == "class-aware" else np.nan})
    return pd.DataFrame(rows)


def _line(text, section, mode, method):
    block = text.split(f"### {section}")[1].split("###")[0]
    return next(line for line in block.splitlines() if line.startswith(f"| net | {mode} | {method} |"))


def test_comparison_marks_best_only_with_an_interval_above_zero():
    frame = _results()
    text = comparison_tables(frame)
    assert "### pc_n" in text and "### knn_accuracy" in text
    for mode in ("class-unaware", "class-aware"):
        pc = _line(text, "pc_n", mode, "pc")
        assert pc.endswith("**best** |") and "vs pkt" in pc
        assert not _line(text, "pc_n", mode, "pkt").endswith("**best** |")
    # The references are not candidates.
    assert "untrained" not in text and "teacher" not in text


def test_comparison_interval_matches_scipy_paired_t():
    frame = _results()
    text = comparison_tables(frame, metrics=("pc_n",))
    sub = frame[frame["mode"] == "class-unaware"]
    a = sub[sub["method"] == "pc"].sort_values("seed")["pc_n"].to_numpy()
    b = sub[sub["method"] == "pkt"].sort_values("seed")["pc_n"].to_numpy()
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    line = _line(text, "pc_n", "class-unaware", "pc")
    assert f"{(a - b).mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}] vs pkt" in line
    assert f"{a.mean():.3f} ± {a.std(ddof=1):.3f}" in line


def test_pairing_removes_the_seed_effect():
    # The seed moves every method alike by ~0.02, far more than the 0.002 gap of pkt over sp: paired,
    # the gap is still resolved; the interval of sp against pkt lies below 0.
    text = comparison_tables(_results(seed_effect=True), metrics=("pc_n",))
    line = _line(text, "pc_n", "class-unaware", "sp")
    low, high = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert high < 0 and "vs pc" in line


def test_no_best_for_a_tie_or_a_single_seed():
    frame = _results()
    # Two methods whose paired differences are +0.01 and -0.01 alternately: the highest mean, no best.
    tie = frame[frame["method"].isin(["pc", "pkt"]) & (frame["mode"] == "class-aware")].copy()
    tie["knn_accuracy"] = np.where(tie["method"] == "pc", 0.98 + np.where(tie["seed"] % 2, 0.011, -0.009), 0.98)
    text = comparison_tables(tie, metrics=("knn_accuracy",))
    line = _line(text, "knn_accuracy", "class-aware", "pc")
    assert "+0.001 [" in line and "vs pkt" in line and "**best**" not in text
    one_seed = frame[frame["seed"] == 0]
    assert "**best**" not in comparison_tables(one_seed)


def test_missing_or_empty_metrics_are_skipped():
    frame = _results().drop(columns="knn_accuracy")
    text = comparison_tables(frame, metrics=("knn_accuracy", "pc_n", "accuracy"))
    assert "### knn_accuracy" not in text and "### pc_n" in text
    # accuracy only exists class-aware: only that group is compared.
    assert "| net | class-aware | pc |" in text.split("### accuracy")[1]
    assert "class-unaware" not in text.split("### accuracy")[1]
    assert comparison_tables(frame, metrics=("no_such_metric",)) == ""


def test_summary_table_mean_and_std():
    frame = _results()
    table = summary_table(frame, columns=("pc_n",))
    sub = frame[(frame["method"] == "pc") & (frame["mode"] == "class-aware")]["pc_n"]
    assert f"| net | pc | class-aware | 4 | {sub.mean():.3f} ± {sub.std():.3f} |" in table
    assert "| net | teacher | - | 1 | 1.000 |" in table


def test_comparison_rejects_bad_input():
    with pytest.raises(TypeError):
        comparison_tables("not a frame")
    frame = _results()
    with pytest.raises(ValueError, match="level"):
        comparison_tables(frame, level=1.5)
