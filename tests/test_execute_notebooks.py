"""scripts/execute_notebooks.py keeps the widgets' state, so that their controls show on opening, and
writes the metadata JupyterLab writes, so that opening a notebook does not mark it modified."""
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
execute_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute_notebooks)

STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"


def _notebook(state):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(slider)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "IntSlider(value=3)", VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}},
        metadata={"execution": {"x": 1}})]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    nb.cells = [cell]
    nb.metadata["widgets"] = {STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    nb.metadata["language_info"] = dict(KERNEL_INFO)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["authors"] = ["someone"]
    return nb


# What ipykernel reports in its kernel_info reply (and JupyterLab writes into a notebook it opens).
KERNEL_INFO = {"name": "python", "version": "3.12.1", "mimetype": "text/x-python",
               "codemirror_mode": {"name": "ipython", "version": 3}, "pygments_lexer": "ipython3",
               "nbconvert_exporter": "python", "file_extension": ".py"}
JUPYTERLAB_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def test_normalise_keeps_widget_state_and_views():
    nb = _notebook({"abc": {"model_name": "IntSliderModel", "state": {"value": 3}}})
    execute_notebooks.normalise(nb)
    (model_id, model), = nb.metadata["widgets"][STATE]["state"].items()
    assert model["state"]["value"] == 3
    out = nb.cells[0].outputs[0]
    assert out["data"][VIEW]["model_id"] == model_id and "execution" not in out["metadata"]
    assert "execution" not in nb.cells[0].metadata and nb.cells[0].id == "cell-00"
    assert nb.metadata["language_info"] == KERNEL_INFO  # as the kernel reported it
    assert nb.metadata["kernelspec"] == JUPYTERLAB_KERNELSPEC
    assert nb.metadata["authors"] == ["someone"]  # the notebook's own metadata are kept
    nbformat.validate(nb)


def _random_ids_notebook(rng):
    """A notebook as one execution leaves it: two widgets (a box holding a slider, its layout)
    under random model ids, a styled table under a random id and a repr with an address."""
    box, slider, layout = (rng.hex() for _ in range(3))
    state = {
        slider: {"model_name": "IntSliderModel", "state": {"layout": f"IPY_MODEL_{layout}", "value": 3}},
        layout: {"model_name": "LayoutModel", "state": {}},
        box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{slider}"]}},
    }
    nb = _notebook(state)
    nb.cells[0].outputs[0]["data"][VIEW]["model_id"] = box
    uuid = rng.hex()[:5]
    html = (f'<style type="text/css">\n#T_{uuid}_row0_col0 {{ font-weight: bold; }}\n</style>\n'
            f'<table id="T_{uuid}">\n<thead><tr><th id="T_{uuid}_level0_col0" class="col_heading">a</th>'
            f'</tr></thead><tbody><tr><td id="T_{uuid}_row0_col0" class="data">1</td></tr></tbody></table>\n')
    table = nbformat.v4.new_output("execute_result", execution_count=2, data={
        "text/html": html, "text/plain": f"<pandas.io.formats.style.Styler at 0x7f{rng.hex()[:10]}>"})
    nb.cells.append(nbformat.v4.new_code_cell("table.style", outputs=[table]))
    return nb, uuid


def test_normalise_gives_the_same_file_for_the_same_outputs_under_new_random_ids():
    import secrets

    class Rng:
        hex = staticmethod(lambda: secrets.token_hex(16))

    first, uuid = _random_ids_notebook(Rng)
    second, _ = _random_ids_notebook(Rng)
    assert nbformat.writes(first) != nbformat.writes(second)
    for nb in (first, second):
        execute_notebooks.normalise(nb)
        nbformat.validate(nb)
    assert nbformat.writes(first) == nbformat.writes(second)
    # The references still resolve: the view shows the box, which holds the slider and its layout.
    state = first.metadata["widgets"][STATE]["state"]
    box = first.cells[0].outputs[0]["data"][VIEW]["model_id"]
    slider = state[box]["state"]["children"][0].removeprefix("IPY_MODEL_")
    assert state[slider]["model_name"] == "IntSliderModel"
    assert state[slider]["state"]["layout"].removeprefix("IPY_MODEL_") in state
    assert list(state) == [box, slider, state[slider]["state"]["layout"].removeprefix("IPY_MODEL_")]
    # The table's id is renamed everywhere it occurs, and nowhere left behind.
    out = first.cells[1].outputs[0]["data"]
    assert uuid not in out["text/html"]
    new = re.search(r'<table id="T_([0-9a-f]{5})"', out["text/html"]).group(1)
    assert out["text/html"].count(f"T_{new}_row0_col0") == 2 and f'id="T_{new}_level0_col0"' in out["text/html"]
    assert out["text/plain"] == "<pandas.io.formats.style.Styler>"


def test_normalise_drops_empty_widget_state():
    nb = _notebook({})
    execute_notebooks.normalise(nb)
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_hold_the_metadata_jupyterlab_writes(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"] == JUPYTERLAB_KERNELSPEC
    info = nb.metadata["language_info"]
    assert set(info) == set(KERNEL_INFO)
    assert {k: v for k, v in info.items() if k != "version"} == {k: v for k, v in KERNEL_INFO.items() if k != "version"}
    assert re.fullmatch(r"3\.\d+\.\d+", info["version"])
    assert set(nb.metadata) <= {"kernelspec", "language_info", "widgets"}


def test_the_kernel_reports_the_language_info_the_notebooks_hold():
    info = execute_notebooks.kernel_language_info()
    assert set(info) == set(KERNEL_INFO) and info["name"] == "python" and info["pygments_lexer"] == "ipython3"


def test_make_trust_signs_every_notebook_in_the_users_jupyter_data_folder(tmp_path):
    """`make trust` (which `make lab` runs first) signs the notebooks, so JupyterLab renders their
    saved widget state and styled tables on opening."""
    import os
    import shutil
    import subprocess
    import sys

    from nbformat.sign import NotebookNotary

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    notary = NotebookNotary(data_dir=str(tmp_path))
    assert not any(notary.check_signature(nbformat.read(p, as_version=4)) for p in notebooks)
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path)}
    # The test's own environment stands in for .venv; STAMP= skips the install step.
    subprocess.run(["make", "--no-print-directory", "trust", f"VENV={sys.prefix}", "STAMP="], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    notary = NotebookNotary(data_dir=str(tmp_path))
    assert all(notary.check_signature(nbformat.read(p, as_version=4)) for p in notebooks)


def test_a_failing_notebook_leaves_the_others_running_and_is_reported_in_a_few_lines(tmp_path, capsys):
    good, bad, worse = (tmp_path / f"{name}.ipynb" for name in ("good", "bad", "worse"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7\nx")]
    nb.metadata.update({"title": "A good one", "authors": [{"name": "Ada"}],
                        "papermill": {"duration": 1.5}})
    nbformat.write(nb, good)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("def f():\n    return 1 / 0\nf()")]
    nbformat.write(nb, bad)
    before = bad.read_bytes()
    worse.write_text("{ not a notebook")
    status = execute_notebooks.main([str(bad), str(worse), str(good)])
    err = capsys.readouterr().err
    assert status == 1
    assert bad.read_bytes() == before and worse.read_text() == "{ not a notebook"  # left as they were
    done = nbformat.read(good, as_version=4)
    assert done.cells[0].outputs[0]["data"]["text/plain"] == "42"  # ran after the failures
    assert done.metadata["title"] == "A good one" and done.metadata["authors"] == [{"name": "Ada"}]
    assert "papermill" not in done.metadata
    summary = err[err.index("2 of 3 notebooks failed"):].splitlines()
    assert len(summary) == 3
    assert "bad.ipynb: cell 2: ZeroDivisionError: division by zero" in summary[1]
    assert "worse.ipynb" in summary[2]
    assert len(err.splitlines()) <= 8 and "Traceback" not in err
