"""The committed figures (figures/*.png, *.svg, and the main job's under results/reference/) are made
for slides, read back from the files.

Independent of pcoh.plots.savefig's own check: the PNG's pixel size and the SVG's size in points give
the aspect; the SVG's text groups give every text's size (matplotlib writes each text as glyph
paths under ``scale(size / 100)``), scaled to a 1920 x 1080 slide (13.33 x 7.5 in, 960 x 540 pt)
the figure fills.
"""
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The notebooks' figures and the main job's committed reference figures (beside its tables).
FIGURES = sorted((ROOT / "figures").glob("*.svg")) + sorted((ROOT / "results" / "reference").glob("*/*.svg"))
SLIDE_PT = (960.0, 540.0)
MIN_FONT_PT = 14.0
SIZES_PX = {(1920, 1080), (960, 1080)}

_TEXT = re.compile(r'<g id="text_\d+">\s*<!--(?P<text>.*?)-->\s*<g transform="translate\([^)]*\)\s*'
                   r'(?:rotate\([^)]*\)\s*)?scale\((?P<scale>[\d.]+) -[\d.]+\)"', re.S)


def _svg_size(svg: str):
    m = re.search(r'<svg[^>]*\bwidth="([\d.]+)pt"[^>]*\bheight="([\d.]+)pt"', svg)
    return float(m.group(1)), float(m.group(2))


def _png_size(path: Path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def texts_and_sizes(svg: str):
    """(text, size in points on the figure) of every text of a matplotlib SVG."""
    return [(m.group("text").strip(), 100 * float(m.group("scale"))) for m in _TEXT.finditer(svg)]


def test_the_svg_reader_against_a_figure_drawn_here(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcoh import plots

    with matplotlib.rc_context():
        plots.style()
        fig, ax = plots.slide_figure()
        ax.plot([0, 1], [0, 1])
        ax.set_title("a title", fontsize=21)
        ax.set_ylabel("rotated label", fontsize=17)
        svg = plots.savefig(fig, tmp_path / "f", formats=("svg",))[0].read_text()
        plt.close(fig)
    found = dict(texts_and_sizes(svg))
    assert found["a title"] == pytest.approx(21) and found["rotated label"] == pytest.approx(17)
    assert min(found.values()) == pytest.approx(14)  # the tick labels of the style
    assert _svg_size(svg) == pytest.approx(SLIDE_PT)


def test_there_are_exported_figures():
    assert len(FIGURES) >= 20
    for svg in FIGURES:
        assert svg.with_suffix(".png").exists(), f"{svg.name} has no PNG beside it"


@pytest.mark.parametrize("svg_path", FIGURES, ids=lambda p: p.stem)
def test_exported_figure_is_a_slide_with_text_of_at_least_14_pt(svg_path):
    svg = svg_path.read_text()
    width, height = _svg_size(svg)
    aspect = width / height
    assert any(abs(aspect / target - 1) < 0.02 for target in (16 / 9, 8 / 9)), \
        f"{svg_path.name}: {width:.0f} x {height:.0f} pt is neither 16:9 nor 8:9"
    assert _png_size(svg_path.with_suffix(".png")) in SIZES_PX
    scale = min(SLIDE_PT[0] / width, SLIDE_PT[1] / height)
    texts = texts_and_sizes(svg)
    assert texts, f"{svg_path.name}: no text found"
    small = [(t, round(size * scale, 1)) for t, size in texts if size * scale < MIN_FONT_PT - 1e-6]
    assert not small, f"{svg_path.name}: text below {MIN_FONT_PT} pt on a 1920 x 1080 slide: {small[:5]}"
