"""make report: an executed notebook becomes one self-contained HTML page (figures embedded)."""
import base64
import re
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

# A 1x1 PNG, so the test needs no notebook run.
PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


def _notebook(folder: Path, with_outputs: bool = True) -> Path:
    (folder / "pic.png").write_bytes(base64.b64decode(PIXEL))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\n![linked](pic.png)"),
                nbformat.v4.new_code_cell("plot()")]
    if with_outputs:
        nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "<Figure>"})]
    path = folder / "01-demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_converts_a_notebook_with_every_image_inline(tmp_path):
    page = report.notebook_to_html(_notebook(tmp_path), tmp_path / "reports")
    assert page == tmp_path / "reports" / "01-demo.html"
    html = page.read_text()
    assert "<h1" in html and "Title" in html
    assert html.count(f"data:image/png;base64,{PIXEL}") == 2  # the output and the Markdown image
    assert 'src="pic.png"' not in html


def test_refuses_an_unexecuted_notebook_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="holds no outputs"):
        report.notebook_to_html(_notebook(tmp_path, with_outputs=False), tmp_path)
    with pytest.raises(FileNotFoundError):
        report.notebook_to_html(tmp_path / "nope.ipynb", tmp_path)


def test_a_committed_notebook_converts(tmp_path):
    page = report.notebook_to_html(ROOT / "notebooks" / "02-teacher.ipynb", tmp_path)
    assert page.stat().st_size > 10_000 and "data:image/png;base64," in page.read_text()


# ----------------------------------------------------------------------------- offline pages
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": state}


def _widget_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Inline $\\rho_i$ and a block\n\n$$\nPC_n = \\frac1n \\sum_i \\rho_i\n$$"),
                nbformat.v4.new_code_cell("controls()"), nbformat.v4.new_code_cell("drawn()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "interactive(...)", VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}})]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "Output()", VIEW: {"model_id": "out2", "version_major": 2, "version_minor": 0}})]
    nb.metadata["widgets"] = {STATE: {"version_major": 2, "version_minor": 0, "state": {
        "box": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_mode", "IPY_MODEL_button", "IPY_MODEL_out"]),
        "slider": _model("IntSliderModel", description="reference", value=204),
        "mode": _model("DropdownModel", description="mode", _options_labels=["class-unaware", "class-aware"], index=1),
        "button": _model("ButtonModel", description="Draw"),
        "out": _model("OutputModel", outputs=[]),
        "out2": _model("OutputModel", outputs=[{"output_type": "display_data", "metadata": {},
                                                  "data": {"image/png": PIXEL, "text/plain": "<Figure>"}}]),
    }}}
    path = folder / "02-widgets.ipynb"
    nbformat.write(nb, path)
    return path


def test_widgets_become_what_they_drew_or_a_note_on_their_controls(tmp_path):
    html = report.notebook_to_html(_widget_notebook(tmp_path), tmp_path / "reports").read_text()
    assert "reference = 204; mode = class-aware" in html  # the manual controls, at their saved values
    assert f"data:image/png;base64,{PIXEL}" in html  # the Output widget's figure, drawn in the page
    assert VIEW not in html and STATE not in html and "<script" not in html


def test_maths_is_mathml_and_nothing_comes_from_another_host(tmp_path):
    html = report.notebook_to_html(_widget_notebook(tmp_path), tmp_path / "reports").read_text()
    assert html.count("<math") == 2 and 'display="block"' in html
    assert "\\rho" not in html and "\\frac" not in html and "mathjax" not in html.lower()  # no TeX left
    assert report.external_references(html) == []


def test_tex_to_mathml_against_hand_written_mathml_and_refuses_unknown_tex():
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in report.tex_to_mathml("x^2")
    assert 'display="block"' in report.tex_to_mathml("x", display=True)
    assert "&#x02016;" in report.tex_to_mathml(r"\big\| x \big\|")  # rewritten to \Vert
    assert ">arg<" in report.tex_to_mathml(r"\arg\min_x f")
    with pytest.raises(ValueError, match="cannot convert"):
        report.tex_to_mathml(r"\notacommand x")


def test_external_references_finds_every_kind_of_load():
    page = ('<html><head><script src="https://cdn.example/require.js"></script>'
            '<link rel="stylesheet" href="//cdn.example/a.css"><style>@import "http://x.example/b.css";'
            ' .a { background: url(https://x.example/i.png) } /* see https://not.a.load */</style></head>'
            '<body><a href="https://arxiv.org/abs/2505.06595">paper</a><img src="data:image/png;base64,AA">'
            '<script src="local.js"></script></body></html>')
    assert sorted(report.external_references(page)) == sorted([
        "https://cdn.example/require.js", "//cdn.example/a.css", "http://x.example/b.css", "https://x.example/i.png"])


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_committed_notebook_gives_an_offline_page(tmp_path, notebook):
    from html.parser import HTMLParser

    page = report.notebook_to_html(notebook, tmp_path).read_text()

    class Loads(HTMLParser):
        found = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "script" and attrs.get("src") or tag == "link" and attrs.get("href"):
                self.found.append(attrs.get("src") or attrs.get("href"))

    parser = Loads()
    parser.feed(page)
    assert not [s for s in parser.found if s.startswith(("http://", "https://", "//"))]
    assert VIEW not in page and "require.js" not in page and "MathJax" not in page
    body = re.sub(r"<style.*?</style>|<pre.*?</pre>|<code.*?</code>", "", page.split("<body", 1)[1], flags=re.S)
    assert "$$" not in body and not re.search(r"\$\\[a-zA-Z]", body)  # no raw TeX left for MathJax
