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


def test_digits_image_folder(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pcoh").mkdir()
    monkeypatch.chdir(tmp_path)
    folder = notebook.digits_image_folder(True, size=16)
    assert folder == tmp_path / "data" / "digits-png-smoke"
    assert sorted(p.name for p in folder.iterdir()) == [str(k) for k in range(10)]
    assert all(len(list((folder / str(k)).iterdir())) == notebook.SMOKE_DIGITS_PER_CLASS for k in range(10))
    times = {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")}
    assert notebook.digits_image_folder(True, size=16) == folder
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")} == times  # not written again
    from PIL import Image

    with Image.open(next(folder.rglob("*.png"))) as img:
        assert img.size == (16, 16) and img.mode == "L"


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
    # Rounded to 2 decimals: the first reference at the rounded median, whatever noise below it.
    values = np.array([0.812, 0.301, 0.8149, 0.9, 0.1, 0.811, 0.95])
    assert notebook.median_reference(values) == 0  # 0.81 (indices 0, 2, 5), the first
    rng = np.random.default_rng(0)
    spread = np.random.default_rng(1).uniform(0.5, 0.95, size=360)
    base = notebook.median_reference(spread)
    same = [notebook.median_reference(spread + rng.normal(scale=1e-6, size=360)) == base for _ in range(50)]
    assert sum(same) >= 48  # the exact median reference would change with almost every draw
    assert notebook.median_reference([0.3, 0.8, 0.1, 0.6], decimals=6) == 3  # exact values: the upper median
    with pytest.raises(ValueError, match="decimals"):
        notebook.median_reference(values, decimals=-1)


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


def test_draw_controls_and_log_slider(monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    seen = []
    panel = notebook.draw_controls(lambda reference: seen.append(reference), show=False,
                                   reference=widgets.IntSlider(value=3, min=0, max=9))
    assert panel.children[0].value == 3 and any(getattr(c, "description", "") == "Draw" for c in panel.children)
    assert seen == []  # manual: nothing is drawn until Draw is pressed
    live = notebook.draw_controls(lambda x: seen.append(x), manual=False, show=False, x=widgets.IntSlider(value=2))
    assert seen == [2] and live.children[0].value == 2

    def figure(n=1):  # draws and returns its figure, as the static cells use it
        fig, ax = plt.subplots()
        ax.plot(range(n))
        return fig

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(len(plt.gcf().axes[0].lines[0].get_xdata())))
    panel = notebook.draw_controls(figure, manual=False, show=False, n=widgets.IntSlider(value=3))
    assert shown == [3]  # drawn, then shown inside the widget's output area
    assert panel.result is None  # the returned figure is not echoed
    plt.close("all")
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


def test_describe_focus_study_quotes_the_differences_and_the_leader():
    import pandas as pd

    from pcoh.notebook import describe_focus_study

    rows = pd.DataFrame({"method": ["pkt", "pc focus 0", "pc exp-sym 4", "pc exp-sym 8"],
                         "family": ["baseline", "plain", "exp-sym", "exp-sym"],
                         "pc_n_mean": [0.85, 0.84, 0.83, 0.82], "topk_overlap_mean": [0.5, 0.52, 0.55, 0.56],
                         "knn_accuracy_mean": [0.95, 0.94, 0.945, 0.94]}).assign(data="digits", batch=64,
                                                                                   mode="class-unaware")
    text = describe_focus_study(rows)
    assert "`pc exp-sym 4` top-k +0.030, kNN +0.005" in text
    assert "`pkt` leads every pc setting in $PC_n$ (0.850 against 0.840)" in text
    with pytest.raises(ValueError, match="mode"):
        describe_focus_study(rows, mode="class-aware")


def _embedding_scores():
    # Hand-made scores of three embeddings: A > B > C by pc_n; trustworthiness orders C above B.
    return pd.DataFrame({"pc_n": [0.9, 0.5, 0.4], "pc_n_low": [0.85, 0.45, 0.30], "pc_n_high": [0.95, 0.55, 0.46],
                         "trustworthiness": [0.99, 0.80, 0.90]}, index=["A", "B", "C"])


def test_order_by():
    s = _embedding_scores()
    assert notebook.order_by(s, "pc_n") == "A > B > C"
    assert notebook.order_by(s, "trustworthiness") == "A > C > B"
    with pytest.raises(ValueError, match="column"):
        notebook.order_by(s, "nope")
    with pytest.raises(TypeError, match="scores"):
        notebook.order_by(s.to_dict(), "pc_n")


def test_agreeing_pairs_splits_every_pair_once():
    s = _embedding_scores()
    same, differ = notebook.agreeing_pairs(s, "pc_n", "trustworthiness")
    assert sorted(same) == ["A above B", "A above C"]
    assert differ == ["B above C"]
    same, differ = notebook.agreeing_pairs(s, "pc_n", "pc_n")  # a measure agrees with itself
    assert len(same) == 3 and differ == []
    with pytest.raises(ValueError, match="b must be one of"):
        notebook.agreeing_pairs(s, "pc_n", "nope")


def test_intervals_overlap():
    s = _embedding_scores()
    assert notebook.intervals_overlap(s, "B", "C")      # [0.45, 0.55] and [0.30, 0.46]
    assert notebook.intervals_overlap(s, "C", "B")
    assert not notebook.intervals_overlap(s, "A", "B")  # [0.85, 0.95] and [0.45, 0.55]
    with pytest.raises(ValueError, match="z must be one of"):
        notebook.intervals_overlap(s, "A", "D")


def test_format_interval():
    s = _embedding_scores()
    assert notebook.format_interval(s, "C") == "0.400 [0.300, 0.460]"
    assert notebook.format_interval(s, "A", digits=2) == "0.90 [0.85, 0.95]"
    with pytest.raises(ValueError, match="name must be one of"):
        notebook.format_interval(s, "D")


def test_describe_transfer_quotes_the_computed_numbers():
    results = _result().results.copy()
    cka = {"untrained": 0.1, "pc": 0.55, "pkt": 0.61, "rkd": 0.72, "ce": 0.3, "teacher": 1.0}
    results["cka"] = results["method"].map(cka)
    results["knn_accuracy"] = results["method"].map({**cka, "pkt": 0.97})
    results["linear_probe"] = results["method"].map({**cka, "rkd": 0.93})
    text = notebook.describe_transfer(results, seeds=3, epochs=7)
    assert text.startswith("**Reading** (this run: 3 seed(s), 7 epochs per student).")
    unaware = results[results["mode"] == "class-unaware"].groupby("method")["pc_n"].mean()
    # the other methods in order of mean PC_n, then the untrained floor
    assert f"`pkt` {unaware['pkt']:.3f}, `rkd` {unaware['rkd']:.3f}; the untrained student " \
           f"{unaware['untrained']:.3f}." in text
    assert "`pc` 0.550, the other trained methods 0.610 to 0.720" in text
    assert "kNN accuracies range from 0.550 to 0.970, linear probes from 0.550 to 0.930" in text
    for mode in ("class-unaware", "class-aware"):
        assert f"*{mode}*: " + notebook.describe_versus(notebook.versus_best_baseline(results, mode=mode)) in text
    assert notebook.describe_transfer(results).startswith("**Reading** (this run). ")
    with pytest.raises(ValueError, match="columns"):
        notebook.describe_transfer(results.drop(columns="cka"))
    with pytest.raises(ValueError, match="class-unaware"):
        notebook.describe_transfer(results, modes=("class-aware",))
    with pytest.raises(TypeError, match="DataFrame"):
        notebook.describe_transfer(results.to_dict())


def test_parameter_count_and_describe_sizes():
    import torch

    teacher, student = torch.nn.Linear(10, 20), torch.nn.Linear(3, 4)   # 220 and 16 parameters
    assert notebook.parameter_count(teacher) == 10 * 20 + 20
    result = SimpleNamespace(teacher=SimpleNamespace(model=teacher),
                             students={("tiny", "pc", "class-unaware", 0): SimpleNamespace(model=student)},
                             features={"teacher": {"train": np.zeros((1437, 2)), "test": np.zeros((360, 2))}})
    text = notebook.describe_sizes(result)
    assert text == ("The `tiny` student has 16 parameters, the teacher 220: 14× fewer. Students are trained on "
                    "the 1,437 training digits and evaluated on the 360 held-out digits.")
    with pytest.raises(ValueError, match="no run of student"):
        notebook.describe_sizes(result, student="other")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        notebook.parameter_count([1, 2])


def test_focus_loss_kwargs():
    assert notebook.focus_loss_kwargs(0) == {}
    assert notebook.focus_loss_kwargs(4) == {"focus": 4.0, "focus_kind": "exp", "focus_symmetric": True}
    with pytest.raises(ValueError, match="focus must be >= 0"):
        notebook.focus_loss_kwargs(-1)
    with pytest.raises(TypeError, match="focus must be a finite number"):
        notebook.focus_loss_kwargs("4")


def test_focus_students_runs_one_pc_experiment_per_focus(monkeypatch):
    calls = []

    def fake_run_experiment(config, quiet, write):
        calls.append(config)
        key = (config.students[0], "pc", "class-unaware", config.seeds - 1)
        focus = config.loss_kwargs.get("pc", {}).get("focus", 0.0)
        return SimpleNamespace(features={key: {"test": np.full((5, 2), focus)}})

    monkeypatch.setattr(notebook.focus, "run_experiment", fake_run_experiment)
    out = notebook.focus_students((0, 4, 8), seed=1, smoke_mode=True)
    assert list(out) == [0, 4, 8] and [float(v[0, 0]) for v in out.values()] == [0.0, 4.0, 8.0]
    base = notebook.experiment_config(True)
    for config, focus in zip(calls, (0, 4, 8)):
        assert config.methods == ("pc",) and config.modes == ("class-unaware",) and config.seeds == 2
        # (the config drops arguments equal to the loss's defaults, such as focus_kind="exp")
        pc = config.loss_kwargs.get("pc", {})
        assert pc == ({"focus": float(focus), "focus_symmetric": True} if focus else {})
        assert config.student_train == base.student_train and config.teacher == base.teacher
    calls.clear()
    main = _result()
    out = notebook.focus_students((0, 4), result=main, smoke_mode=True)  # focus 0 from the main experiment
    assert [c.loss_kwargs["pc"]["focus"] for c in calls] == [4.0]
    assert out[0] is main.features[("net", "pc", "class-unaware", 0)]["test"]


def test_focus_neighbors_rows_are_teacher_focus_student_and_baseline():
    result = _result()
    n = len(result.features["teacher"]["test"])
    images = np.random.default_rng(1).random((n, 8, 8))
    labels = np.arange(n) % 3
    result.data = SimpleNamespace(tensors=lambda split: (images, labels), mean=None, std=None)
    focus = {0: result.features[("net", "pc", "class-unaware", 0)]["test"],
             4: np.random.default_rng(2).normal(size=(n, 3))}
    ax = notebook.focus_neighbors(result, focus, 4, reference=2, k=3)
    # the same rows as plot_neighbors draws from the three feature sets, the best baseline being pkt
    features = {"teacher": result.features["teacher"]["test"], "pc, focus 4": focus[4],
                "pkt": result.features[("net", "pkt", "class-unaware", 0)]["test"]}
    reference_ax = plots.plot_neighbors(images, features, 2, k=3, labels=labels, shared_with="teacher")
    assert [t.get_text() for t in ax.texts] == [t.get_text() for t in reference_ax.texts]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["teacher", "pc, focus 4", "pkt"]
    assert len(ax.images) == len(reference_ax.images) and all(
        np.array_equal(a.get_array(), b.get_array()) for a, b in zip(ax.images, reference_ax.images))
    with pytest.raises(ValueError, match="focus must be one of"):
        notebook.focus_neighbors(result, focus, 8, reference=2)
    with pytest.raises(ValueError, match="baseline must be one of"):
        notebook.focus_neighbors(result, focus, 4, reference=2, baseline="pc")
    plt.close("all")


def test_uniformity_departure_finds_a_pile_up():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(size=20_000)
    flat = notebook.uniformity_departure(uniform, bins=20)
    assert flat["ks"] < 0.02 and 0.9 < flat["deficit"] <= flat["excess"] < 1.1
    # 1000 extra values at u = 0.12: the fullest of 20 bins is [0.10, 0.15), centre 0.125, density
    # (1000 + 1000) / 21000 * 20 = 1.90 (about 1000 uniform values per bin)
    piled = notebook.uniformity_departure(np.r_[uniform, np.full(1000, 0.12)], bins=20)
    assert piled["excess_at"] == pytest.approx(0.125)
    assert piled["excess"] == pytest.approx(20 * (np.sum((uniform >= 0.10) & (uniform < 0.15)) + 1000) / 21000)
    # the distribution function's largest gap against an independent computation (scipy's KS statistic
    # is sup|F - id| over both sides of each step; ours takes the upper side, i/n)
    assert piled["ks"] <= sps.kstest(np.r_[uniform, np.full(1000, 0.12)], "uniform").statistic + 1e-12
    assert piled["ks"] > 0.04 and abs(piled["ks_at"] - 0.12) < 0.05
    with pytest.raises(ValueError, match=r"u must hold probabilistic ranks in \[0, 1\]"):
        notebook.uniformity_departure([0.5, 1.5])


def test_describe_uniformity_says_where():
    rng = np.random.default_rng(1)
    uniform = rng.uniform(size=5000)
    text = notebook.describe_uniformity({"flat": uniform, "piled": np.r_[uniform, np.full(500, 0.9)]},
                                        bins=10, class_step=0.1)
    assert text.index("`flat`") < text.index("`piled`")  # the most uniform first
    piled = text[text.index("`piled`"):]
    assert "fullest bin at u = 0.95" in piled and "away from the class step (u = 0.10)" in piled
    near = notebook.describe_uniformity({"m": np.r_[uniform, np.full(500, 0.12)]}, bins=10, class_step=0.1)
    assert "fullest bin at u = 0.15" in near and "at the class step" in near and "away" not in near

