"""Plot helpers of the experiment notebooks: each draws what it says, takes ``ax`` and returns it."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pcoh import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    with matplotlib.rc_context():  # the presentation style, as the notebooks and the main job set it
        plots.style()
        yield
    plt.close("all")


@pytest.fixture
def clustered():
    """30 samples of 3 classes: features close to a class centre, so neighbours share the class."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    centres = np.eye(3, 6) * 5
    features = centres[labels] + 0.1 * rng.normal(size=(30, 6))
    return features.astype(np.float32), labels


def _history(n=4, start=2.0):
    return [{"epoch": e + 1, "loss": start / (e + 1), "transfer": start / (e + 1), "test_accuracy": 0.5 + 0.1 * e}
            for e in range(n)]


def _results():
    rows = [{"student": "t", "method": "teacher", "mode": "-", "seed": 0, "pc_n": 1.0, "global_spearman": 1.0,
             "knn_accuracy": 0.99, "accuracy": 0.98}]
    for mode in ("class-unaware", "class-aware"):
        for k, method in enumerate(("pc", "rkd", "sp")):
            for seed in range(2):
                rows.append({"student": "s", "method": method, "mode": mode, "seed": seed,
                             "pc_n": 0.8 - 0.1 * k + 0.01 * seed, "global_spearman": 0.7 - 0.05 * k,
                             "knn_accuracy": 0.9 + 0.02 * k, "accuracy": np.nan if mode == "class-unaware" else 0.9})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- learning curves
def test_plot_learning_curves_draws_one_line_per_run_with_the_key():
    fig, ax = plt.subplots()
    histories = {"pc": _history(), "rkd": _history(start=5.0), "ce": [{"epoch": 1, "loss": 1.0}], "untrained": []}
    assert plots.plot_learning_curves(histories, "transfer", normalise=True, ax=ax) is ax
    assert [line.get_label() for line in ax.lines] == ["pc", "rkd"]
    for line in ax.lines:
        assert line.get_ydata()[0] == pytest.approx(1.0)
    assert ax.lines[0].get_color() == plots.METHOD_COLORS["pc"]


def test_plot_learning_curves_takes_one_history_and_makes_its_axes():
    ax = plots.plot_learning_curves(_history(5), "test_accuracy")
    assert len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.5, 0.6, 0.7, 0.8, 0.9])


def test_plot_learning_curves_rejects_a_missing_key():
    with pytest.raises(ValueError, match="no history holds 'transfer'"):
        plots.plot_learning_curves({"ce": [{"epoch": 1, "loss": 1.0}]}, "transfer")


# ----------------------------------------------------------------------------- dissimilarity matrix
def test_plot_class_dissimilarities_sorts_by_class_and_marks_boundaries(clustered):
    features, labels = clustered
    order = np.random.default_rng(1).permutation(len(labels))
    fig, ax = plt.subplots()
    assert plots.plot_class_dissimilarities(features[order], labels[order], ax=ax) is ax
    image = [a for a in ax.get_children() if isinstance(a, AxesImage)][0].get_array()
    assert image.shape == (30, 30)
    block = np.kron(np.eye(3), np.ones((10, 10))).astype(bool)
    assert image[block].max() < image[~block].min()  # sorted: classes are diagonal blocks
    assert len(ax.lines) == 2 * 2  # two class boundaries, each horizontal and vertical
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]


def test_plot_class_dissimilarities_rejects_mismatched_labels(clustered):
    features, labels = clustered
    with pytest.raises(ValueError, match="one label per row"):
        plots.plot_class_dissimilarities(features, labels[:-1])


# ----------------------------------------------------------------------------- images
def test_plot_images_undoes_the_normalisation_and_writes_titles():
    rng = np.random.default_rng(0)
    raw = rng.uniform(size=(6, 1, 8, 8))
    mean, std = (0.3,), (0.2,)
    fig, ax = plt.subplots()
    assert plots.plot_images((raw - 0.3) / 0.2, titles=list("abcdef"), ncols=3, mean=mean, std=std, ax=ax) is ax
    canvas = [a for a in ax.get_children() if isinstance(a, AxesImage)][0].get_array()
    np.testing.assert_allclose(canvas[:8, :8], raw[0, 0])
    assert [t.get_text() for t in ax.texts] == list("abcdef")


def test_plot_images_shows_colour_images():
    ax = plots.plot_images(np.random.default_rng(0).uniform(size=(4, 3, 5, 5)))
    assert [a for a in ax.get_children() if isinstance(a, AxesImage)][0].get_array().shape[-1] == 3


@pytest.mark.parametrize("images, kwargs, match", [
    (np.zeros((2, 2, 8, 8)), {}, "C in"),
    (np.zeros((0, 8, 8)), {}, "at least one"),
    (np.zeros((2, 8, 8)), {"titles": ["a"]}, "one entry per image"),
])
def test_plot_images_rejects_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_images(images, **kwargs)


# ----------------------------------------------------------------------------- neighbours
def test_plot_neighbors_one_row_per_model_and_frames_other_classes(clustered):
    features, labels = clustered
    images = np.random.default_rng(0).uniform(size=(30, 1, 8, 8))
    scrambled = np.random.default_rng(1).normal(size=(30, 6))
    fig, ax = plt.subplots()
    out = plots.plot_neighbors(images, {"teacher": features, "random": scrambled}, 0, k=5, labels=labels,
                               shared_with="teacher", ax=ax)
    assert out is ax
    assert [t.get_text() for t in ax.get_yticklabels()] == ["teacher", "random"]
    assert len(ax.get_xticklabels()) == 6  # the reference and k = 5 neighbours
    notes = [t.get_text() for t in ax.texts]
    assert notes[0] == "5/5 same class"
    same = int(notes[1].split("/")[0])
    frames = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_edgecolor()[0] > 0.8]
    assert len(frames) == 5 - same  # only the random model's other-class neighbours are framed
    # Brute force: how many of the random model's 5 nearest are among the teacher's 5 nearest.
    def nearest(f):
        d = np.linalg.norm(f / np.linalg.norm(f, axis=1, keepdims=True) - f[0] / np.linalg.norm(f[0]), axis=1)
        return set(np.argsort(d)[1:6].tolist())
    assert notes[1].endswith(f"{len(nearest(scrambled) & nearest(features))}/5 teacher's")


def test_plot_neighbors_rejects_bad_input(clustered):
    features, _ = clustered
    images = np.zeros((30, 8, 8))
    with pytest.raises(ValueError, match="k must be"):
        plots.plot_neighbors(images, {"t": features}, 0, k=30)
    with pytest.raises(ValueError, match="one row per image"):
        plots.plot_neighbors(images, {"t": features[:10]}, 0)
    with pytest.raises(ValueError, match="reference"):
        plots.plot_neighbors(images, {"t": features}, 30)
    with pytest.raises(ValueError, match="shared_with"):
        plots.plot_neighbors(images, {"t": features}, 0, shared_with="teacher")


# ----------------------------------------------------------------------------- rank vs rank
def test_plot_rank_hexbin_draws_all_pairs_and_the_reference(clustered):
    features, _ = clustered
    fig, ax = plt.subplots()
    assert plots.plot_rank_hexbin(2 * features, features, reference=3, ax=ax) is ax
    hexes = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(hexes) == 1 and hexes[0].get_array().sum() == 30 * 29  # every (reference, point) pair
    points = [c for c in ax.collections if c not in hexes][0].get_offsets()
    assert len(points) == 29
    np.testing.assert_allclose(points[:, 0], points[:, 1])  # a rescaled teacher ranks like the teacher
    assert "1.00" in ax.get_title()  # the reference's rho, under the title, never over the points


def test_plot_rank_hexbin_rejects_bad_input(clustered):
    features, _ = clustered
    with pytest.raises(ValueError, match="as many rows"):
        plots.plot_rank_hexbin(features[:10], features)
    with pytest.raises(ValueError, match="reference"):
        plots.plot_rank_hexbin(features, features, reference=-1)


# ----------------------------------------------------------------------------- per-reference values
def _per_reference():
    rng = np.random.default_rng(0)
    out = {"teacher": np.ones(20)}
    for mode in ("class-unaware", "class-aware"):
        for method in ("pc", "rkd"):
            for seed in range(2):
                out[("s", method, mode, seed)] = rng.uniform(0.2, 0.9, size=20)
    return out


def test_per_reference_frame_is_long_and_leaves_out_the_teacher():
    frame = plots.per_reference_frame(_per_reference())
    assert list(frame.columns) == ["student", "method", "mode", "seed", "reference", "spearman"]
    assert len(frame) == 8 * 20 and "teacher" not in set(frame["method"])
    assert len(plots.per_reference_frame(_per_reference(), include_teacher=True)) == 9 * 20
    with pytest.raises(ValueError, match="no student"):
        plots.per_reference_frame({"teacher": np.ones(3)})


@pytest.mark.parametrize("kind", ["violin", "box"])
def test_plot_per_reference_distributions_one_shape_and_mean_per_method(kind):
    frame = plots.per_reference_frame(_per_reference())
    frame = frame[frame["mode"] == "class-unaware"]
    fig, ax = plt.subplots()
    assert plots.plot_per_reference_distributions(frame, kind=kind, ax=ax) is ax
    means = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(means[:, 1], frame.groupby("method", sort=False)["spearman"].mean().values)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pc", "rkd"]


def test_plot_per_reference_distributions_rejects_bad_input():
    frame = plots.per_reference_frame(_per_reference())
    with pytest.raises(ValueError, match="kind"):
        plots.plot_per_reference_distributions(frame, kind="strip")
    with pytest.raises(ValueError, match="'rho' column"):
        plots.plot_per_reference_distributions(frame, value="rho")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_per_reference_distributions(frame.iloc[:0])


def test_plot_global_vs_per_reference_one_point_per_run_without_the_teacher():
    results = _results()
    fig, ax = plt.subplots()
    assert plots.plot_global_vs_per_reference(results, ax=ax) is ax
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(results) - 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["pc", "rkd", "sp", "class-unaware", "class-aware"]
    with pytest.raises(ValueError, match="no rows besides"):
        plots.plot_global_vs_per_reference(results.iloc[:1])


def test_plot_global_vs_per_reference_leaves_out_excluded_methods():
    results = _results()
    ax = plots.plot_global_vs_per_reference(results, exclude=("teacher", "sp"))
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(results) - 1 - 4
    assert "sp" not in [t.get_text() for t in ax.get_legend().get_texts()]


# ----------------------------------------------------------------------------- embeddings
def test_plot_embedding_colours_by_class_and_names_each_class(clustered):
    features, labels = clustered
    fig, ax = plt.subplots()
    assert plots.plot_embedding(features[:, :2], labels, ax=ax, highlight=[0, 1, 2]) is ax
    assert len(ax.collections[0].get_offsets()) == 30
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "2"]
    np.testing.assert_allclose(ax.texts[0].xy, np.median(features[labels == 0, :2], axis=0))
    assert len(ax.collections) == 3  # the points, the highlighted neighbours, the reference star
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plots.plot_embedding(features, labels)


def test_plot_embedding_grid_one_panel_per_embedding(clustered):
    features, labels = clustered
    emb = {"teacher": features[:, :2], "pc": features[:, 2:4], "rkd": features[:, 4:]}
    axes = plots.plot_embedding_grid(emb, labels, titles={"pc": "pc: T = 0.9"}, ncols=2)
    assert len(axes) == 3
    assert [a.get_title() for a in axes] == ["teacher", "pc: T = 0.9", "rkd"]
    assert len(axes[0].figure.axes) == 3  # no hidden, empty panel: 2 + 1, the last row centred
    assert plots.slide_problems(axes[0].figure) == []
    fig, given = plt.subplots(1, 3)
    assert list(plots.plot_embedding_grid(emb, labels, axes=given)) == list(given)
    with pytest.raises(ValueError, match="at least 3 axes"):
        plots.plot_embedding_grid(emb, labels, axes=given[:2])


# ----------------------------------------------------------------------------- results table
def test_style_results_marks_the_best_student_per_column_within_each_mode():
    styler = plots.style_results(_results(), columns=("pc_n", "knn_accuracy", "accuracy", "missing"))
    table = styler.data
    assert list(table.columns) == ["seeds", "pc_n", "knn_accuracy", "accuracy"]
    assert table.index[0] == ("-", "teacher") and table["seeds"].tolist() == [1] + [2] * 6
    assert table.loc[("class-unaware", "pc"), "pc_n"] == pytest.approx(0.805)
    styler._compute()
    bold = {(table.index[r], table.columns[c]) for (r, c), css in styler.ctx.items()
            if ("font-weight", "bold") in css}
    assert bold == {
        (("class-unaware", "pc"), "pc_n"), (("class-aware", "pc"), "pc_n"),
        (("class-unaware", "sp"), "knn_accuracy"), (("class-aware", "sp"), "knn_accuracy"),
        (("class-aware", "pc"), "accuracy"), (("class-aware", "rkd"), "accuracy"), (("class-aware", "sp"), "accuracy"),
    }
    assert "–" in styler.to_html()  # class-unaware accuracy is not applicable


def test_style_results_rejects_tables_without_metrics():
    with pytest.raises(ValueError, match="none of columns"):
        plots.style_results(_results(), columns=("nope",))
    with pytest.raises(ValueError, match="'mode' column"):
        plots.style_results(_results().drop(columns="mode"))


def _focus_summary():
    rows = [dict(method="pkt", family="baseline", focus=float("nan")), dict(method="pc focus 0", family="plain", focus=0.0),
            dict(method="pc exp 4", family="exp", focus=4.0), dict(method="pc exp-sym 4", family="exp-sym", focus=4.0),
            dict(method="pc exp-sym 8", family="exp-sym", focus=8.0)]
    frame = pd.DataFrame(rows).assign(data="digits", batch=256, mode="class-unaware")
    frame["pc_n_mean"] = [0.78, 0.81, 0.80, 0.82, 0.815]
    frame["knn_accuracy_mean"] = [0.97, 0.976, 0.975, 0.978, 0.979]
    return frame.assign(pc_n_ci=0.01, knn_accuracy_ci=0.005)


def test_plot_frontier_draws_baselines_and_one_curve_per_family_from_focus_0():
    summary = _focus_summary()
    ax = plots.plot_frontier(summary)
    lines = {line.get_label(): line for line in ax.get_lines()}
    sym = next(c.lines[0] for c in ax.containers if c.get_label().startswith("pc, exp-sym"))
    assert list(sym.get_xdata()) == [0.976, 0.978, 0.979] and list(sym.get_ydata()) == [0.81, 0.82, 0.815]
    star = lines["pc, focus 0 (default)"]
    assert list(star.get_xdata()) == [0.976] and star.get_marker() == "*"
    assert "pkt" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(ax.figure)


def test_plot_frontier_rejects_an_empty_cell_and_an_unknown_family():
    summary = _focus_summary()
    with pytest.raises(ValueError, match="batch=64"):
        plots.plot_frontier(summary, batch=64)
    with pytest.raises(ValueError, match="families"):
        plots.plot_frontier(summary, families=("top",))
    with pytest.raises(ValueError, match="summary"):
        plots.plot_frontier(summary.drop(columns="pc_n_ci"))
