"""Figures made for slides (pcoh.plots._base): the slide rule, grids sized from what they draw, and
every figure of the main job's method sets drawn whole."""
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pcoh import methods, plots  # noqa: E402
from pcoh.experiment import ExperimentConfig  # noqa: E402
from pcoh.plots.ranks import HEXBIN_GREYS  # noqa: E402


@pytest.fixture(autouse=True)
def _slide_style():
    with matplotlib.rc_context():
        plots.style()
        yield
    plt.close("all")


def _method_sets():
    """Mode -> the runs of one seed of the main job's default configuration, in run order."""
    sets = defaultdict(list)
    for spec in ExperimentConfig().runs():
        if spec.train.seed == 0:
            sets[spec.mode].append(spec.method)
    return dict(sets)


MAIN_JOB = _method_sets()


def test_the_main_job_has_the_method_sets_the_figures_are_tested_with():
    assert set(MAIN_JOB) == set(methods.MODES)
    assert len(MAIN_JOB["class-aware"]) == 11 and "ce" in MAIN_JOB["class-aware"]  # the grid that lost `ce`
    assert MAIN_JOB["class-unaware"][0] == "untrained"


# ----------------------------------------------------------------------------- sizes and grids
@pytest.mark.parametrize("size, pixels", [("full", (1920, 1080)), ("half", (960, 1080))])
def test_slide_figure_is_a_slide_or_half_of_one(tmp_path, size, pixels):
    fig, ax = plots.slide_figure(size=size)
    ax.plot([0, 1], [0, 1])
    png = plots.savefig(fig, tmp_path / "f", formats=("png",))[0]
    assert matplotlib.image.imread(png).shape[:2] == pixels[::-1]
    with pytest.raises(ValueError, match="size must be one of"):
        plots.slide_figure(size="quarter")


@pytest.mark.parametrize("k", range(1, 17))
def test_grid_rows_fill_every_row_but_the_last(k):
    for size in ("full", "half"):
        rows = plots.grid_rows(k, size=size)
        assert sum(rows) == k and all(r == rows[0] for r in rows[:-1]) and 1 <= rows[-1] <= rows[0]


def test_grid_rows_by_hand():
    assert plots.grid_rows(8) == [4, 4]
    assert plots.grid_rows(9) == [5, 4]  # not 3 x 4 with three empty panels
    assert plots.grid_rows(3) == [3]
    assert plots.grid_rows(2, size="half") == [2]  # two tall panels side by side: bigger than two wide ones
    assert plots.grid_rows(4) == [4]  # four maps in a row: each 3.3 in wide, larger than in a 2 x 2 grid


@pytest.mark.parametrize("k", [1, 3, 7, 9, 11])
def test_slide_grid_has_exactly_k_panels_and_centres_the_last_row(k):
    fig, axes = plots.slide_grid(k)
    assert len(axes) == k and len(fig.axes) == k
    for ax in axes:
        ax.plot([0, 1], [1, 0])
    assert plots.slide_problems(fig) == []
    rows = plots.grid_rows(k)
    if len(rows) > 1:
        fig.draw_without_rendering()
        first = [ax.get_position() for ax in axes[:rows[0]]]
        last = [ax.get_position() for ax in axes[-rows[-1]:]]
        centre = lambda boxes: (boxes[0].x0 + boxes[-1].x1) / 2  # noqa: E731
        assert centre(last) == pytest.approx(centre(first), abs=0.02)


def test_slide_grid_rejects_rows_that_do_not_add_up():
    with pytest.raises(ValueError, match="rows must add up to k = 5"):
        plots.slide_grid(5, rows=[3, 3])
    with pytest.raises(ValueError, match="k must be"):
        plots.slide_grid(0)


# ----------------------------------------------------------------------------- the slide rule
def _good():
    fig, ax = plots.slide_figure()
    ax.plot([0, 1, 2], [1, 0, 2])
    ax.set_title("a title")
    return fig, ax


def test_a_slide_figure_passes_and_is_saved(tmp_path):
    fig, _ = _good()
    assert plots.slide_problems(fig) == []
    assert [p.suffix for p in plots.savefig(fig, tmp_path / "ok")] == [".png", ".svg"]


def test_wrong_aspect_is_reported():
    fig, ax = plt.subplots(figsize=(16, 4.4))
    ax.plot([0, 1], [0, 1])
    assert any("neither a 16:9 slide" in p for p in plots.slide_problems(fig))


def test_text_is_measured_at_slide_size():
    # 12 pt on a 16-inch-wide figure is 10 pt once it is scaled onto a 13.33-inch slide.
    fig, ax = plt.subplots(figsize=(16, 9))
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=16)
    ax.set_title("twelve", fontsize=12)
    problems = plots.slide_problems(fig)
    assert len(problems) == 1 and "'twelve' at 10 pt" in problems[0]
    fig, ax = _good()
    ax.set_xlabel("small", fontsize=13)
    assert "below 14 pt" in plots.slide_problems(fig)[0]


def test_text_outside_the_figure_is_reported():
    fig, ax = _good()
    fig.text(1.02, 0.5, "far right")
    assert any("outside the figure: ['far right']" in p for p in plots.slide_problems(fig))


def test_empty_and_hidden_panels_are_reported():
    fig, axes = plots.slide_figure(1, 3)
    axes[0].plot([0, 1], [0, 1])
    axes[1].set_title("nothing here")
    axes[2].set_visible(False)
    problems = plots.slide_problems(fig)
    assert any("'nothing here' draws nothing" in p for p in problems)
    assert any("hidden axes" in p for p in problems)


def test_overlapping_tick_labels_are_reported_and_slanted_ones_pass():
    names = ["untrained", "pc", "rkd", "pkt", "sp", "cc", "fitnet", "crd", "kd", "ce"] * 2
    fig, ax = plots.slide_figure(size="half")
    ax.bar(np.arange(len(names)), 1.0)
    ax.set_xticks(np.arange(len(names)), names)
    assert any("texts overlap" in p for p in plots.slide_problems(fig))
    fig, ax = plots.slide_figure()
    ax.bar(np.arange(10), 1.0)
    ax.set_xticks(np.arange(10), names[:10], rotation=35, ha="right", rotation_mode="anchor")
    assert plots.slide_problems(fig) == []


def test_titles_running_into_each_other_are_reported():
    fig, axes = plots.slide_figure(1, 4)
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_title("a title far too long for a quarter of a slide")
    assert any("texts overlap" in p for p in plots.slide_problems(fig))


def test_markers_cut_by_the_axes_are_reported():
    fig, ax = _good()
    ax.scatter([0.0, 1.0], [0.0, 1.0], s=60)
    ax.set_xlim(0, 1)
    ax.set_ylim(-1, 2)
    problems = plots.slide_problems(fig)
    assert any("2 marker(s) cut" in p for p in problems)
    ax.set_xlim(-0.1, 1.1)
    assert plots.slide_problems(fig) == []


def test_savefig_refuses_a_figure_that_breaks_the_rule(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    with pytest.raises(ValueError, match="not ready for a slide"):
        plots.savefig(fig, tmp_path / "bad")
    assert not (tmp_path / "bad.png").exists()
    assert len(plots.savefig(fig, tmp_path / "bad", check=False)) == 2
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        plots.slide_problems("figure")


def test_contrast_ratio_against_hand_values():
    assert plots.contrast_ratio("black", "white") == pytest.approx(21.0)
    assert plots.contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    # WCAG's own example: #767676 on white is 4.54:1.
    assert plots.contrast_ratio("#767676", "white") == pytest.approx(4.54, abs=0.01)
    assert plots.contrast_ratio("white", "#767676") == plots.contrast_ratio("#767676", "white")


# ----------------------------------------------------------------------------- rank figures
def _features(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5))


def test_rank_hexbin_dots_stand_out_on_the_greys_in_every_method_colour():
    teacher = _features()
    for name, color in methods.colors().items():
        fig, ax = plots.slide_figure(size="half")
        plots.plot_rank_hexbin(_features(seed=1), teacher, reference=0, color=color, ax=ax, title=name)
        dots = ax.collections[-1]
        edge = dots.get_edgecolor()[0]
        assert dots.get_linewidth()[0] > 0
        for background in (*HEXBIN_GREYS, "white"):
            assert plots.contrast_ratio(edge, background) >= 3.0, (name, background)
        assert plots.slide_problems(fig) == []  # no dot cut at ranks 1 and m, the label not over them
        plt.close(fig)


@pytest.mark.parametrize("mode", methods.MODES)
def test_rank_grid_draws_every_method_of_the_main_job(mode):
    names = MAIN_JOB[mode]
    teacher = _features()
    students = {m: _features(seed=k + 1) for k, m in enumerate(names)}
    axes = plots.plot_rank_hexbin_grid(students, teacher, reference=3)
    assert [ax.get_title().split("\n")[0] for ax in axes] == names
    assert len(axes[0].figure.axes) == len(names)
    assert plots.slide_problems(axes[0].figure) == []


@pytest.mark.parametrize("mode", methods.MODES)
def test_map_grid_draws_the_teacher_and_every_method_of_the_main_job(mode):
    names = ["teacher", *MAIN_JOB[mode]]
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    maps = {m: rng.normal(size=(30, 2)) for m in names}
    axes = plots.plot_embedding_grid(maps, labels, titles={m: f"{m}\nT = 0.9, C = 0.9" for m in names})
    assert [ax.get_title().split("\n")[0] for ax in axes] == names and len(axes[0].figure.axes) == len(names)
    assert all(ax.spines["top"].get_visible() and ax.spines["left"].get_visible() for ax in axes)  # framed
    assert plots.slide_problems(axes[0].figure) == []


def _results():
    rows = []
    for mode, names in MAIN_JOB.items():
        for method in names:
            for seed in range(2):
                rows.append({"student": "digits_cnn", "method": method, "mode": mode, "seed": seed,
                             "pc_n": 0.5 + 0.01 * seed, "knn_accuracy": 0.9})
    return pd.DataFrame(rows)


def test_metric_panels_show_every_method_of_the_main_job():
    fig = plots.plot_metric_panels(_results(), titles=["PC_n", "kNN accuracy"])
    every = list(dict.fromkeys(m for names in MAIN_JOB.values() for m in names))
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == every
    assert plots.slide_problems(fig) == []
    with pytest.raises(ValueError, match="titles must hold one entry per metric"):
        plots.plot_metric_panels(_results(), titles=["one"])


def test_per_reference_panels_show_every_method_of_the_main_job():
    rng = np.random.default_rng(0)
    per_reference = {("digits_cnn", m, mode, 0): rng.uniform(0, 1, 40)
                     for mode, names in MAIN_JOB.items() for m in names}
    fig = plots.plot_per_reference_by_mode(per_reference, methods.MODES)
    for ax, mode in zip(fig.axes, methods.MODES):
        assert [t.get_text() for t in ax.get_xticklabels()] == MAIN_JOB[mode]
    assert plots.slide_problems(fig) == []
