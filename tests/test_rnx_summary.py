"""R_NX in the main job's outputs: the K ranges of the summary (paired by seed), the figure, the
co-ranking figures (pcoh.tables.rnx_k_ranges, pcoh.plots.coranking, pcoh.experiment.write_outputs)."""
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

matplotlib.use("Agg")

from pcoh import coranking, plots
from pcoh.experiment import ExperimentConfig, ExperimentResult, write_outputs
from pcoh.tables import paired_verdicts_by_k, rnx_k_ranges

N_K = 50


def _curves(seed_effect=True):
    """pc above pkt for K <= 10, on par for 11..30 (differences of alternating sign), below after;
    sp far below everything. Four seeds, each moving every method alike."""
    rng = np.random.default_rng(0)
    k = np.arange(1, N_K + 1)
    curves, rows = {}, []
    for mode in ("class-unaware", "class-aware"):
        for seed in range(4):
            shared = rng.normal(scale=0.05, size=N_K) if seed_effect else 0.0
            base = 0.6 - 0.1 * np.log(k) + shared
            gap = np.where(k <= 10, 0.05, np.where(k <= 30, 0.02 * (-1) ** seed, -0.05))
            runs = {"pkt": base, "pc": base + gap + rng.normal(scale=0.002, size=N_K), "sp": base - 0.3}
            for method, r in runs.items():
                curves[("net", method, mode, seed)] = {"r_nx": r}
                rows.append({"student": "net", "method": method, "mode": mode, "seed": seed,
                             "rnx_auc": coranking.rnx_area(r), "pc_n": 0.5, "knn_accuracy": 0.9})
            curves[("net", "untrained", mode, seed)] = {"r_nx": base + 0.5}  # a reference: never the best other
            rows.append({"student": "net", "method": "untrained", "mode": mode, "seed": seed,
                         "rnx_auc": 0.99, "pc_n": 0.1, "knn_accuracy": 0.5})
    return pd.DataFrame(rows), curves


def _stack(curves, method, mode="class-unaware"):
    return np.vstack([curves[("net", method, mode, s)]["r_nx"] for s in range(4)])


def test_verdicts_per_k_follow_the_paired_interval():
    _, curves = _curves()
    a, b = _stack(curves, "pc"), _stack(curves, "pkt")
    verdict = paired_verdicts_by_k(a, b)
    np.testing.assert_array_equal(verdict[:10], 1)
    np.testing.assert_array_equal(verdict[10:30], 0)
    np.testing.assert_array_equal(verdict[30:], -1)
    # Each K's verdict is scipy's paired t-interval.
    for j in (0, 15, 40):
        ci = sps.ttest_rel(a[:, j], b[:, j]).confidence_interval(0.95)
        assert verdict[j] == (1 if ci.low > 0 else -1 if ci.high < 0 else 0)
    # One seed: no interval, so on par everywhere.
    np.testing.assert_array_equal(paired_verdicts_by_k(a[:1], b[:1]), 0)
    with pytest.raises(ValueError, match="one shape"):
        paired_verdicts_by_k(a, b[:, :3])


def test_k_ranges_sentence():
    results, curves = _curves()
    text = rnx_k_ranges(results, curves)
    lines = text.splitlines()
    assert len(lines) == 2
    for line, mode in zip(lines, ("class-unaware", "class-aware")):
        assert line.startswith(f"- `net`, {mode}: `pc` against `pkt`")  # untrained is a reference
        assert "4 paired seed(s)" in line
        assert f"above at K = 1–10; on par at K = 11–30; below at K = 31–{N_K}." in line
    one = results[results["seed"] == 0]
    assert "one seed: no interval" in rnx_k_ranges(one, curves)
    assert rnx_k_ranges(results[results["method"] != "pc"], curves) == ""
    with pytest.raises(ValueError, match="rnx_auc"):
        rnx_k_ranges(results.drop(columns="rnx_auc"), curves)
    with pytest.raises(TypeError, match="curves"):
        rnx_k_ranges(results, [1, 2])


def test_rnx_panels_draw_every_method_on_a_log_axis():
    _, curves = _curves()
    plots.style()
    fig = plots.plot_rnx_panels(curves)
    axes = fig.axes
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert labels == ["pkt", "pc", "sp", "untrained"]
    # The line is the mean over seeds.
    np.testing.assert_allclose(axes[0].get_lines()[1].get_ydata(), _stack(curves, "pc").mean(axis=0))
    assert plots.slide_problems(fig) == []
    # A method of the class-aware panel alone (as kd, dist and ce are) is in the one legend too.
    aware_only = dict(curves)
    for seed in range(4):
        aware_only[("net", "kd", "class-aware", seed)] = {"r_nx": _stack(curves, "pc")[seed] - 0.1}
    fig = plots.plot_rnx_panels(aware_only)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["pkt", "pc", "sp", "untrained", "kd"]
    with pytest.raises(ValueError, match="no run of mode"):
        plots.plot_rnx_curves(curves, mode="other")
    with pytest.raises(ValueError, match="have no curve"):
        plots.plot_rnx_curves(curves, methods=["crd"])


def test_coranking_and_point_score_figures():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(40, 4))
    s = t + 0.3 * rng.normal(size=t.shape)
    q = coranking.coranking_matrix(s, t)
    ax = plots.plot_coranking_matrix(q)
    assert ax.get_images()[0].get_array().shape == q.shape
    with pytest.raises(ValueError, match="square"):
        plots.plot_coranking_matrix(q[:, :5])
    scores = coranking.qnx_per_point(s, t, k=5)
    ax = plots.plot_point_scores(rng.normal(size=(40, 2)), scores)
    np.testing.assert_allclose(ax.collections[0].get_array(), scores)
    with pytest.raises(ValueError, match="one value per point"):
        plots.plot_point_scores(rng.normal(size=(40, 2)), scores[:5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.plot_point_scores(rng.normal(size=(40, 2)), scores + 2)


def test_write_outputs_has_the_column_the_sentence_and_the_figure(tmp_path):
    results, curves = _curves()
    teacher = pd.DataFrame([{"student": "big", "method": "teacher", "mode": "-", "seed": 0, "rnx_auc": 1.0,
                             "pc_n": 1.0, "knn_accuracy": 1.0}])
    results = pd.concat([teacher, results], ignore_index=True)
    per_ref = {k: np.linspace(0, 1, N_K + 2) for k in curves}
    result = ExperimentResult(results, None, {}, per_ref, {}, SimpleNamespace(test=range(N_K + 2)), curves=curves)
    cfg = ExperimentConfig(output=str(tmp_path / "results"), figures=str(tmp_path / "figures"))
    paths = write_outputs(result, cfg)
    summary = paths["summary"].read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| student | method | mode | seeds |"))
    assert " rnx_auc " in header
    assert "### rnx_auc: paired difference to the best other method" in summary
    assert "## R_NX by neighbourhood size" in summary and "above at K = 1–10" in summary
    assert paths["figure_rnx"] == tmp_path / "figures" / "digits-main-rnx.png"
    assert paths["figure_rnx"].exists() and paths["figure_rnx"].with_suffix(".svg").exists()
