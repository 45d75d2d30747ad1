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
    (tmp_path / "folder.ipynb").mkdir()
    with pytest.raises(ValueError, match="is a folder"):  # was "does not exist"
        report.notebook_to_html(tmp_path / "folder.ipynb", tmp_path)


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


# ----------------------------------------------------------------------------- inert pages
EVIL = "evil.example"
HOSTILE_MARKDOWN = [
    "<script>alert(1)</script>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    f'<img src="https://{EVIL}/pixel.png">',
    f'<img srcset="https://{EVIL}/a.png 2x" src="data:image/png;base64,{PIXEL}">',
    f'<p style="background: url(https://{EVIL}/bg.png)">styled</p>',
    f'<p style="background: u\\72l(//{EVIL}/bg.png)">escaped</p>',
    f"<style>@import 'https://{EVIL}/a.css';</style>",
    f"<style>body {{ background: url('//{EVIL}/b.png') }}</style>",
    f'<svg><image xlink:href="https://{EVIL}/c.png"/></svg>',
    f'<svg onload="alert(1)"><script>alert(2)</script></svg>',
    f'<meta http-equiv="refresh" content="0; url=https://{EVIL}/">',
    f'<base href="https://{EVIL}/">',
    f'<form action="https://{EVIL}/post"><input name="q"><button formaction="https://{EVIL}/x">go</button></form>',
    f'<iframe src="https://{EVIL}/"></iframe><object data="https://{EVIL}/o"></object><embed src="https://{EVIL}/e">',
    f'<link rel="stylesheet" href="https://{EVIL}/l.css">',
    f'<video poster="https://{EVIL}/p.png"><source src="https://{EVIL}/v.mp4"></video>',
    '<details open ontoggle="alert(1)"><summary>s</summary></details>',
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)"><mi>x</mi></maction></math>',
    f'![linked](https://{EVIL}/md.png)',
    "[the paper](https://arxiv.org/abs/2505.06595)",
]
HOSTILE_OUTPUTS = [
    {"text/html": "<b>table</b><script>alert(3)</script><img src=x onerror=alert(4)>"},
    {"text/html": f"<style>.x {{ background-image: url(https://{EVIL}/o.png) }}</style><div class='x'>o</div>"},
    {"application/javascript": "alert(5)", "text/plain": "js"},
    {"text/markdown": "<script>alert(6)</script>*md*", "text/plain": "md"},
    {"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(7)"><script>alert(8)</script>'
                      f'<image href="https://{EVIL}/s.png"/></svg>', "text/plain": "svg"},
]


def _hostile_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = "</title><script>alert(9)</script>"
    nb.cells = [nbformat.v4.new_markdown_cell(f"## Case {i}\n\n{case}\n\nkept text {i}")
                for i, case in enumerate(HOSTILE_MARKDOWN)]
    nb.cells.append(nbformat.v4.new_raw_cell(f"<script>alert(10)</script><img src='https://{EVIL}/raw.png'>",
                                             metadata={"raw_mimetype": "text/html"}))
    code = nbformat.v4.new_code_cell("show()")
    code.outputs = [nbformat.v4.new_output("display_data", data=data) for data in HOSTILE_OUTPUTS]
    code.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "fig"},
                                               metadata={"filenames": {"image/png": f"https://{EVIL}/f.png"}}))
    nb.cells.append(code)
    path = folder / "99-hostile.ipynb"
    nbformat.write(nb, path)
    return path


def _loads_or_runs(page: str) -> list:
    """An independent look at a finished page: every element, attribute and style that runs or
    loads, found by the standard library's parser (not by report.py's own check)."""
    from html.parser import HTMLParser

    found = []

    class Look(HTMLParser):
        style = False

        def handle_starttag(self, tag, attrs):
            self.style = tag == "style"
            if tag in {"script", "iframe", "object", "embed", "base", "form", "link", "svg", "video", "source"}:
                found.append(tag)
            for name, value in attrs:
                value = re.sub(r"\s", "", value or "").lower()
                if name.startswith("on") or "javascript:" in value or EVIL in value:
                    found.append(f"{tag} {name}={value[:50]}")
                if name in ("srcset", "xlink:href", "action", "formaction", "poster") or (
                        name == "http-equiv"):
                    found.append(f"{tag} {name}")
                if name == "style" and "url(" in value:
                    found.append(f"{tag} style url")

        def handle_data(self, data):
            if self.style and (EVIL in data or "@import" in data):
                found.append("style sheet")

    Look().feed(page)
    return found


def test_a_hostile_notebook_gives_an_inert_page(tmp_path):
    page = report.notebook_to_html(_hostile_notebook(tmp_path), tmp_path / "reports").read_text()
    assert _loads_or_runs(page) == []
    assert "<script" not in page.lower()
    assert report.hazards(page) == [] and report.external_references(page) == []
    body = page.split("<body", 1)[1]
    # what is harmless stays: the text, a link to a page, an inline figure, the output table text
    assert all(f"kept text {i}" in body for i in range(len(HOSTILE_MARKDOWN)))
    assert 'href="https://arxiv.org/abs/2505.06595"' in body and "<b>table</b>" in body
    assert f"data:image/png;base64,{PIXEL}" in body


def test_the_sanitiser_keeps_mathml_tables_and_styled_tables():
    math = report.tex_to_mathml(r"\frac{1}{n} \sum_i \rho_i", display=True)
    assert report.sanitize_html(math) == __import__("html").unescape(math)  # the same, entities decoded
    styled = ("<style type=\"text/css\">#T_1_row0_col0 { background-color: #08306b; color: #f1f1f1; }</style>"
              '<table id="T_1"><tr><td id="T_1_row0_col0" class="data row0 col0">0.887</td></tr></table>')
    clean = report.sanitize_html(styled)
    assert "#T_1_row0_col0 { background-color: #08306b" in clean and 'id="T_1_row0_col0"' in clean
    assert report.sanitize_html(f'<img src="data:image/png;base64,{PIXEL}" alt="f">') == \
        f'<img src="data:image/png;base64,{PIXEL}" alt="f">'


@pytest.mark.parametrize("css, bad", [
    ("a { color: red }", False),
    ("a { background: url(data:image/png;base64,AAAA) }", False),
    ("a { background: url(https://x.example/a.png) }", True),
    ("a { background: url( 'http://x.example/a.png' ) }", True),
    ("a { background: \\75\\72\\6c(//x.example/a.png) }", True),  # escaped url(
    ("a { background: ur/**/l(//x.example/a.png) }", False),  # not CSS: a comment splits the name
    ("@import 'local.css';", True),
    ("a { background: image-set('x.png' 1x) }", True),
    ("a { width: expression(alert(1)) }", True),
    ("a { background: url(a.png) }", True),  # a relative file: not inline, so not offline either
])
def test_css_hazards(css, bad):
    assert bool(report.css_hazards(css)) is bad


@pytest.mark.parametrize("page", [
    "<p onclick='x()'>a</p>", "<script>1</script>", "<img srcset='//x.example/a 2x'>",
    "<a href=' javascript:alert(1)'>a</a>", "<div style='background:url(https://x.example/a)'></div>",
    "<meta http-equiv='refresh' content='0;url=https://x.example'>", "<base href='https://x.example/'>",
    "<form action='https://x.example/'></form>", "<svg><a xlink:href='https://x.example/'>x</a></svg>",
    "<style>@import url(https://x.example/a.css);</style>", "<img src='https://x.example/a.png'>",
])
def test_hazards_finds_what_the_old_check_missed(page):
    assert report.hazards(page)


def test_a_page_still_unsafe_after_sanitising_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "sanitize_html", lambda fragment: fragment)  # a sanitiser that fails
    with pytest.raises(ValueError, match="not be inert|other hosts"):
        report.notebook_to_html(_hostile_notebook(tmp_path), tmp_path / "reports")
    assert not (tmp_path / "reports" / "99-hostile.html").exists()
