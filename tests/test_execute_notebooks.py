"""scripts/execute_notebooks.py keeps the widgets' state, so that their controls show on opening."""
import importlib.util
from pathlib import Path

import nbformat

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
    nb.metadata["language_info"] = {"name": "python", "version": "3.12.1"}
    return nb


def test_normalise_keeps_widget_state_and_views():
    nb = _notebook({"abc": {"model_name": "IntSliderModel", "state": {"value": 3}}})
    execute_notebooks.normalise(nb)
    assert nb.metadata["widgets"][STATE]["state"]["abc"]["state"]["value"] == 3
    out = nb.cells[0].outputs[0]
    assert out["data"][VIEW]["model_id"] == "abc" and "execution" not in out["metadata"]
    assert "execution" not in nb.cells[0].metadata and nb.cells[0].id == "cell-00"
    assert nb.metadata["language_info"] == {"name": "python"}  # versions dropped
    nbformat.validate(nb)


def test_normalise_drops_empty_widget_state():
    nb = _notebook({})
    execute_notebooks.normalise(nb)
    assert "widgets" not in nb.metadata
