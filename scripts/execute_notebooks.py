"""Execute notebooks top to bottom (full budget unless PCOH_SMOKE is set) and normalise them.

    python scripts/execute_notebooks.py notebooks/*.ipynb

Outputs are kept (so the notebooks read well on a code-hosting page), and so is the widgets'
state (``store_widget_state``), so that their controls show when the notebook is opened, before
any cell runs; what changes from run to run without meaning is removed: execution timestamps,
kernel and language versions. Run from the project root; each notebook runs with its own folder
as working directory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KEEP_NOTEBOOK_METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                          "language_info": {"name": "python"}}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def normalise(nb) -> None:
    widgets = nb.metadata.get("widgets")
    nb.metadata = nbformat.from_dict(KEEP_NOTEBOOK_METADATA)
    if widgets and widgets.get(WIDGET_STATE, {}).get("state"):
        nb.metadata["widgets"] = widgets
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--no-execute", action="store_true", help="only normalise metadata")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if not args.no_execute:
            start = time.perf_counter()
            NotebookClient(nb, timeout=args.timeout, kernel_name="python3", store_widget_state=True,
                           resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
            print(f"{path}: executed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        normalise(nb)
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
