"""make report: an executed notebook becomes one self-contained HTML page (figures embedded)."""
import base64
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
