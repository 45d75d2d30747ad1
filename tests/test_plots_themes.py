"""The figure modules of pcoh.plots by theme, savefig's determinism, and the helpers they moved out
(pcoh.diagnostics: dissimilarity_matrix, reference_ranks, soft_rank_path; pcoh.tables)."""
import hashlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

from pcoh import diagnostics, plots, tables  # noqa: E402
from pcoh.dissimilarity import pairwise  # noqa: E402
from pcoh.ranking import soft_rank  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    with matplotlib.rc_context():  # the presentation style, as the notebooks and the main job set it
        plots.style()
        yield
    plt.close("all")


def _figure():
    fig, ax = plots.slide_figure()
    ax.plot([0, 1, 2], [1, 0, 2], label="a")
    ax.scatter([0, 1], [1, 2])
    ax.set_title("same bytes")
    ax.legend()
    return fig


# ----------------------------------------------------------------------------- savefig
def test_savefig_twice_gives_identical_bytes(tmp_path):
    fig = _figure()
    first = plots.savefig(fig, tmp_path / "a" / "fig", formats=("png", "svg", "pdf"))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in first]
    second = plots.savefig(fig, tmp_path / "b" / "fig", formats=("png", "svg", "pdf"))
    assert [p.name for p in second] == ["fig.png", "fig.svg", "fig.pdf"]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in second] == digests
    # A new figure drawn the same way gives the same bytes too (fresh ids, same salt).
    third = plots.savefig(_figure(), tmp_path / "c" / "fig", formats=("png", "svg"))
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in third] == digests[:2]


def test_savefig_metadata_hold_no_date_and_no_version(tmp_path):
    import matplotlib as mpl

    with mpl.rc_context({"svg.hashsalt": None}):  # savefig fixes the salt whatever the rcParams say
        svg, png = plots.savefig(_figure(), tmp_path / "fig", formats=("svg", "png"))
    text = svg.read_text()
    assert "<dc:date>" not in text and mpl.__version__ not in text
    assert mpl.__version__.encode() not in png.read_bytes()


def test_savefig_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="formats must be one of"):
        plots.savefig(_figure(), tmp_path / "fig", formats=("gif",))


# ----------------------------------------------------------------------------- moved helpers
def test_reference_ranks_match_scipy_without_the_diagonal():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(6, 6)).round(1)  # ties on purpose
    ranks = diagnostics.reference_ranks(d)
    for i in range(6):
        np.testing.assert_allclose(ranks[i], scipy.stats.rankdata(np.delete(d[i], i)))
    with pytest.raises(ValueError, match="matrix must be square"):
        diagnostics.reference_ranks(np.ones((3, 4)))


def test_soft_rank_path_and_dissimilarity_matrix():
    v = np.array([0.3, -1.0, 2.0, 0.5])
    path = diagnostics.soft_rank_path(v, [0.01, 1.0, 100.0])
    for row, eps in zip(path, (0.01, 1.0, 100.0)):
        np.testing.assert_allclose(row, soft_rank(torch.tensor(v)[None], eps)[0].numpy())
    with pytest.raises(ValueError, match="strengths must all be positive"):
        diagnostics.soft_rank_path(v, [0.0])
    x = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(diagnostics.dissimilarity_matrix(x, "euclidean"),
                               pairwise(torch.tensor(x), "euclidean").numpy())


def test_tables_module_and_plots_reexport_are_the_same_functions():
    assert plots.per_reference_frame is tables.per_reference_frame
    assert plots.style_results is tables.style_results
    with pytest.raises(TypeError, match="per_reference must be a dict"):
        tables.per_reference_frame([1, 2])


# ----------------------------------------------------------------------------- toy and ranks
def test_plot_points_marks_the_reference():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    ax = plots.plot_points(pts, reference=1)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), pts)
    np.testing.assert_allclose(ax.collections[1].get_offsets(), pts[[1]])
    with pytest.raises(ValueError, match=r"points must have 2 columns"):
        plots.plot_points(np.ones((3, 3)))


def test_plot_dissimilarity_matrix_shows_the_matrix():
    d = np.arange(9.0).reshape(3, 3)
    ax = plots.plot_dissimilarity_matrix(d)
    np.testing.assert_array_equal(ax.images[0].get_array(), d)
    with pytest.raises(ValueError, match=r"matrix must be 2-D \(n, n\)"):
        plots.plot_dissimilarity_matrix(np.ones(3))


def test_plot_rank_vs_rank_draws_the_reference_ranks():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 2))
    dt = pairwise(torch.tensor(x), "euclidean").numpy()
    ds = dt ** 2 + 0.3 * rng.random((7, 7))
    ax = plots.plot_rank_vs_rank(dt, ds, reference=3)
    line = ax.lines[-1]
    rt = scipy.stats.rankdata(np.delete(dt[3], 3))
    rs = scipy.stats.rankdata(np.delete(ds[3], 3))
    order = np.argsort(rt)
    np.testing.assert_allclose(line.get_xdata(), rt[order])
    np.testing.assert_allclose(line.get_ydata(), rs[order])
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_rank_vs_rank(dt, ds[:5, :5])


def test_plot_soft_ranks_and_bars_draw_soft_rank():
    v = np.array([0.2, -0.5, 1.0])
    eps = np.array([0.01, 0.1, 10.0])
    ax = plots.plot_soft_ranks(v, eps)
    curves = [line for line in ax.lines if len(line.get_xdata()) == len(eps)]
    drawn = sorted(tuple(np.round(c.get_ydata(), 9)) for c in curves)
    expected = diagnostics.soft_rank_path(v, eps).T
    assert drawn == sorted(tuple(np.round(e, 9)) for e in expected)
    with pytest.raises(ValueError, match="strengths must all be positive"):
        plots.plot_soft_ranks(v, [0.1, -1.0])
    ax = plots.plot_soft_rank_bars(v, 0.5)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, soft_rank(torch.tensor(v)[None], 0.5)[0].numpy())
    with pytest.raises(TypeError, match="strength must be a real number"):
        plots.plot_soft_rank_bars(v, "0.5")
    with pytest.raises(ValueError, match="strength must be a number in"):
        plots.plot_soft_rank_bars(v, 0.0)


# ----------------------------------------------------------------------------- results
def _results():
    rows = []
    for mode in ("class-unaware", "class-aware"):
        for k, method in enumerate(("pc", "rkd")):
            for seed in range(2):
                rows.append({"method": method, "mode": mode, "seed": seed, "pc_n": 0.8 - 0.1 * k + 0.02 * seed})
    return pd.DataFrame(rows)


def test_plot_metric_bars_heights_are_the_means_over_seeds():
    res = _results()
    ax = plots.plot_metric_bars(res, "pc_n")
    heights = [p.get_height() for p in ax.patches]
    expected = [res[(res["mode"] == mode) & (res["method"] == m)]["pc_n"].mean()
                for mode in ("class-unaware", "class-aware") for m in ("pc", "rkd")]
    np.testing.assert_allclose(heights, expected)
    assert matplotlib.colors.to_hex(ax.patches[0].get_facecolor()) == plots.METHOD_COLORS["pc"]
    with pytest.raises(ValueError, match="metric must be one of"):
        plots.plot_metric_bars(res, "nope")
    with pytest.raises(TypeError, match="results must be a pandas.DataFrame"):
        plots.plot_metric_bars(res.to_dict(), "pc_n")


def test_plot_per_reference_one_box_per_label():
    ax = plots.plot_per_reference({"pc": [0.1, 0.5, 0.9], "rkd": [0.2, 0.3, 0.4]})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pc", "rkd"]
    with pytest.raises(TypeError, match="values must be a dict"):
        plots.plot_per_reference([0.1, 0.2])
    with pytest.raises(ValueError, match="at least one label"):
        plots.plot_per_reference({})


# ----------------------------------------------------------------------------- probabilistic form
def test_plot_reference_ecdfs_marks_mid_ranks():
    dt = np.array([0.5, 0.1, 0.9, 0.3])
    ds = np.array([2.0, 1.0, 4.0, 3.0])
    axes = plots.plot_reference_ecdfs(dt, ds, highlight=[0, 2])
    marks = [line for line in axes[0].lines if line.get_marker() == "o"]
    # Point 0 is the 3rd smallest of 4 teacher values: mid-rank height (2 + 3) / (2 * 4).
    assert [m.get_ydata()[0] for m in marks] == pytest.approx([5 / 8, 7 / 8])
    with pytest.raises(ValueError, match="one entry per compared point"):
        plots.plot_reference_ecdfs(dt, ds[:3])


def test_plot_probabilistic_ranks_and_uniformity():
    u = np.linspace(0.05, 0.95, 10)
    ax = plots.plot_probabilistic_ranks(u, u[::-1])
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[u, u[::-1]])
    ax = plots.plot_probabilistic_ranks(u, u, kind="hexbin")
    with pytest.raises(ValueError, match="kind must be one of"):
        plots.plot_probabilistic_ranks(u, u, kind="kde")
    with pytest.raises(ValueError, match="as many values"):
        plots.plot_probabilistic_ranks(u, u[:3])
    ax = plots.plot_uniformity(u, bins=5)
    assert ax.lines[0].get_ydata()[0] == 1.0  # the Uniform(0, 1) density


def test_plot_pc_vs_n_means_and_expected_curve():
    table = pd.DataFrame({"n": [5, 5, 10, 10], "pc_n": [0.1, 0.3, 0.5, 0.7]})
    ax = plots.plot_pc_vs_n(table, full=0.6, expected=([5, 10, np.inf], [0.2, 0.6, 0.8]), inverse=True)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1 / 5, 1 / 10])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.2, 0.6])
    np.testing.assert_allclose(sorted(ax.lines[1].get_xdata()), [0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="table must have a 'pc_n' column"):
        plots.plot_pc_vs_n(table.rename(columns={"pc_n": "x"}))


def test_plot_concordance_by_gap_and_per_class_heatmap():
    t = pd.DataFrame({"gap_center": [0.25, 0.75], "concordance": [0.6, 0.9], "se": [0.01, 0.01]})
    ax = plots.plot_concordance_by_gap({"pc": t, "rkd": t})
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["pc", "rkd"]
    with pytest.raises(TypeError, match="tables must be a dict"):
        plots.plot_concordance_by_gap([t])
    table = diagnostics.per_class_mean({"pc": [0.2, 0.4, 0.6, 0.8]}, [0, 1, 0, 1])
    ax = plots.plot_per_class_heatmap(table)
    np.testing.assert_allclose(ax.images[0].get_array(), table.to_numpy(dtype=float))
    with pytest.raises(TypeError, match="table must be a pandas.DataFrame"):
        plots.plot_per_class_heatmap(table.to_numpy())


def test_every_public_name_resolves_from_pcoh_plots():
    import importlib

    for name in plots.__all__:
        assert getattr(plots, name) is not None, name
    for module in ("toy", "ranks", "results", "training", "images", "embedding", "diagnostics"):
        mod = importlib.import_module(f"pcoh.plots.{module}")
        for name in mod.__all__:
            assert getattr(plots, name) is getattr(mod, name), name
