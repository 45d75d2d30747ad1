"""The helpers the notebooks share (pcoh.notebook) and the per-mode violin figure."""
import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats as sps  # noqa: E402

from pcoh import notebook, plots  # noqa: E402

METHODS = {"class-unaware": ["untrained", "pc", "pkt", "rkd"], "class-aware": ["pc", "pkt", "rkd", "ce"]}


def _result(n=12, seeds=3):
    """A small stand-in of ExperimentResult: features, per-reference values and a results frame."""
    rng = np.random.default_rng(0)
    features = {"teacher": {"test": rng.normal(size=(n, 4)), "train": rng.normal(size=(2 * n, 4))}}
    per_reference = {"teacher": np.ones(n)}
    rows = [{"student": "net", "method": "teacher", "mode": "-", "seed": 0, "pc_n": 1.0,
             "trustworthiness": 1.0, "continuity": 1.0}]
    level = {"untrained": 0.2, "pc": 0.9, "pkt": 0.88, "rkd": 0.80, "ce": 0.7}
    for seed in range(seeds):
        shift = rng.normal(scale=0.01)
        for mode, methods in METHODS.items():
            for method in methods:
                key = ("net", method, mode, seed)
                features[key] = {"test": rng.normal(size=(n, 3)), "train": rng.normal(size=(2 * n, 3))}
                per_reference[key] = np.clip(level[method] + rng.normal(scale=0.05, size=n), -1, 1)
                rows.append({"student": "net", "method": method, "mode": mode, "seed": seed,
                             "pc_n": level[method] + shift + rng.normal(scale=0.002),
                             "trustworthiness": 0.9 + 0.01 * seed, "continuity": 0.8 + 0.01 * seed})
    return SimpleNamespace(features=features, per_reference=per_reference, results=pd.DataFrame(rows))


def test_figures_folder_is_scratch_in_smoke_mode(tmp_path, monkeypatch):
    scratch = notebook.figures_folder(True)
    assert scratch.is_dir() and scratch.name.startswith("pcoh-smoke-figures-") and not list(scratch.iterdir())
    assert notebook.figures_folder(True) != scratch  # a new one each time
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pcoh").mkdir()
    monkeypatch.chdir(tmp_path)
    assert notebook.figures_folder(False) == tmp_path / "figures" and (tmp_path / "figures").is_dir()


def test_smoke_figures_folder_is_removed_when_the_process_exits(tmp_path):
    import os
    import subprocess
    import sys

    code = ("from pcoh import notebook; f = notebook.figures_folder(True); (f / 'x.png').write_bytes(b'x'); "
            "print(f)")
    env = {**os.environ, "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = out.stdout.strip().splitlines()[-1]
    assert folder.startswith(str(tmp_path)) and "pcoh-smoke-figures-" in folder
    assert not os.path.exists(folder) and not list(tmp_path.iterdir())


def test_a_killed_smoke_run_leaves_a_folder_that_the_next_one_removes(tmp_path):
    """nbval kills its kernels (no exit handler runs): the next smoke run cleans up after them."""
    import os
    import signal
    import subprocess
    import sys

    code = ("import time; from pcoh import notebook; print(notebook.figures_folder(True), flush=True); "
            "time.sleep(60)")
    env = {**os.environ, "TMPDIR": str(tmp_path), "MPLBACKEND": "Agg"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        folder = proc.stdout.readline().strip()
        assert os.path.isdir(folder) and f"pcoh-smoke-figures-{proc.pid}-" in folder
        assert notebook.remove_stale_smoke_folders(tmp_path) == []  # its process still runs: kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert os.path.isdir(folder)  # killed: nothing removed it
    other = tmp_path / "pcoh-smoke-figures-notapid"  # not a smoke folder of ours: left alone
    other.mkdir()
    assert [str(p) for p in notebook.remove_stale_smoke_folders(tmp_path)] == [folder]
    assert not os.path.exists(folder) and other.is_dir()


def test_pick_runs_and_run_features():
    result = _result()
    runs = notebook.pick_runs(result, "class-aware", 1)
    assert list(runs) == METHODS["class-aware"]
    assert all(k == ("net", m, "class-aware", 1) for m, k in runs.items())
    feats = notebook.run_features(result, "class-unaware", 2, teacher=True, split="train")
    assert list(feats) == ["teacher", *METHODS["class-unaware"]]
    assert feats["pc"] is result.features[("net", "pc", "class-unaware", 2)]["train"]
    assert feats["teacher"] is result.features["teacher"]["train"]
    with pytest.raises(ValueError, match="seed"):
        notebook.pick_runs(result, "class-unaware", 7)
    with pytest.raises(ValueError, match="mode"):
        notebook.pick_runs(result, "both", 0)
    with pytest.raises(ValueError, match="split"):
        notebook.run_features(result, split="valid")


def test_median_reference():
    assert notebook.median_reference([0.5, 0.1, 0.9]) == 0
    values = np.array([0.3, 0.8, 0.1, 0.6])
    ref = notebook.median_reference(values)  # upper median of an even count
    assert values[ref] == np.sort(values)[2]
    with pytest.raises(ValueError):
        notebook.median_reference([])
    with pytest.raises(ValueError, match="NaN"):
        notebook.median_reference([0.1, np.nan])


def test_versus_best_baseline_is_the_paired_comparison():
    result = _result()
    v = notebook.versus_best_baseline(result.results, mode="class-unaware")
    assert v["baseline"] == "pkt" and v["n_pairs"] == 3  # untrained is a reference, not a baseline
    frame = result.results.set_index(["method", "mode", "seed"])["pc_n"]
    a = np.array([frame["pc", "class-unaware", s] for s in range(3)])
    b = np.array([frame["pkt", "class-unaware", s] for s in range(3)])
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert v["diff"] == pytest.approx((a - b).mean()) and v["low"] == pytest.approx(ci.low)
    assert v["high"] == pytest.approx(ci.high)
    assert v["verdict"] == "ahead"
    text = notebook.describe_versus(v)
    assert "`pkt`" in text and f"{v['diff']:+.3f}" in text and "is best" in text
    # rkd is behind the best other method (pc).
    behind = notebook.versus_best_baseline(result.results, method="rkd", mode="class-aware")
    assert behind["baseline"] == "pc" and behind["verdict"] == "behind"
    assert notebook.ranked_baselines(result.results, mode="class-aware") == ["pkt", "rkd", "ce"]
    # One seed: no interval, never best.
    one = notebook.versus_best_baseline(result.results[result.results["seed"] == 0])
    assert math.isnan(one["low"]) and one["verdict"] == "not separated"
    assert "one seed" in notebook.describe_versus(one) and "no method is called best" in notebook.describe_versus(one)
    with pytest.raises(ValueError, match="kd"):
        notebook.versus_best_baseline(result.results, method="kd")
    with pytest.raises(TypeError):
        notebook.versus_best_baseline(result.results.to_dict())


def test_sample_rows_and_embedding_titles():
    assert np.array_equal(notebook.sample_rows(5), np.arange(5))
    rows = notebook.sample_rows(100, 10, seed=1)
    assert len(rows) == 10 and np.all(np.diff(rows) > 0) and rows.max() < 100
    assert np.array_equal(rows, notebook.sample_rows(100, 10, seed=1))
    with pytest.raises(ValueError):
        notebook.sample_rows(0)
    result = _result()
    titles = notebook.embedding_titles(result.results, ["teacher", "pc"], seed=2)
    assert titles == {"teacher": "teacher\n(reference)", "pc": "pc\nT = 0.920\nC = 0.820"}
    with pytest.raises(ValueError, match="kd"):
        notebook.embedding_titles(result.results, ["kd"])


def test_umap_panels_align_every_student_to_the_teacher():
    pytest.importorskip("umap")
    result = _result(n=40)
    emb, rows, titles = notebook.umap_panels(result, ["pc", "rkd"], n_points=30, n_neighbors=5, n_epochs=20,
                                             random_state=0)
    assert list(emb) == ["teacher", "pc", "rkd"] and list(titles) == list(emb)
    assert len(rows) == 30 and all(e.shape == (30, 2) for e in emb.values())
    with pytest.raises(ValueError, match="kd"):
        notebook.umap_panels(result, ["kd"])


def test_draw_controls_and_log_slider():
    widgets = pytest.importorskip("ipywidgets")
    seen = []
    panel = notebook.draw_controls(lambda reference: seen.append(reference), show=False,
                                   reference=widgets.IntSlider(value=3, min=0, max=9))
    assert panel.children[0].value == 3 and any(getattr(c, "description", "") == "Draw" for c in panel.children)
    assert seen == []  # manual: nothing is drawn until Draw is pressed
    live = notebook.draw_controls(lambda x: seen.append(x), manual=False, show=False, x=widgets.IntSlider(value=2))
    assert seen == [2] and live.children[0].value == 2
    with pytest.raises(TypeError):
        notebook.draw_controls("not callable", show=False)
    slider = notebook.log_slider(1.0, 1e-3, 100, per_decade=4)
    assert slider.value == 1.0  # exactly the static figure's value
    values = [v for _, v in slider.options]
    assert values[0] == pytest.approx(1e-3) and values[-1] == pytest.approx(100) and len(values) == 21
    odd = notebook.log_slider(0.03, 1e-3, 100)
    assert odd.value == 0.03 and 0.03 in [v for _, v in odd.options]
    with pytest.raises(ValueError):
        notebook.log_slider(1e3, 1e-3, 100)
    with pytest.raises(TypeError):
        notebook.log_slider("1", 1e-3, 100)


def test_plot_per_reference_by_mode_one_panel_per_mode():
    result = _result()
    fig = plots.plot_per_reference_by_mode(result.per_reference)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["class-unaware", "class-aware"]
    assert [len(ax.get_xticklabels()) for ax in axes] == [4, 4]
    plt.close(fig)
    fig = plots.plot_per_reference_by_mode(result.per_reference, modes=("class-aware",))
    assert len(fig.axes) == 1
    plt.close(fig)
    with pytest.raises(ValueError, match="modes"):
        plots.plot_per_reference_by_mode({"teacher": np.ones(3), ("n", "pc", "class-aware", 0): np.ones(3)},
                                         modes=("class-unaware",))
    with pytest.raises(TypeError):
        plots.plot_per_reference_by_mode(result.per_reference, modes="class-aware")
