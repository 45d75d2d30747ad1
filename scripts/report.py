"""Write every executed notebook as one self-contained HTML page, for people who present without
running Jupyter.

    python scripts/report.py                       # notebooks/*.ipynb -> reports/*.html
    python scripts/report.py notebooks/05-umap.ipynb --output /tmp/slides

Nothing is executed: the committed outputs are converted as they are (run
``scripts/execute_notebooks.py`` first to refresh them). Figures are embedded in the page (output
images are inline already; images linked from Markdown cells are embedded too), so a page can be
mailed or opened offline on its own. ``make report`` runs this script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def notebook_to_html(notebook: Path, output_dir: Path) -> Path:
    """Convert one notebook to ``output_dir/<notebook stem>.html``, images embedded; returns the path.

    Raises
    ------
    FileNotFoundError
        ``notebook`` does not exist.
    ValueError
        ``notebook`` is not a ``.ipynb`` file or holds no executed output.
    """
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} does not exist")
    if notebook.suffix != ".ipynb":
        raise ValueError(f"notebook must be a .ipynb file, got {notebook.name}")
    nb = nbformat.read(notebook, as_version=4)
    if not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
        raise ValueError(f"{notebook.name} holds no outputs: execute it first (scripts/execute_notebooks.py)")
    exporter = HTMLExporter(embed_images=True)
    # Markdown images are resolved against the notebook's own folder, as Jupyter does.
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"path": str(notebook.parent),
                                                                       "name": notebook.stem}})
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{notebook.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to convert (default: notebooks/*.ipynb)")
    parser.add_argument("--output", type=Path, default=ROOT / "reports", help="folder of the pages")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found", file=sys.stderr)
        return 1
    failed = 0
    for nb in notebooks:
        try:
            page = notebook_to_html(nb, args.output)
        except (FileNotFoundError, ValueError) as err:
            print(f"skipped: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{page} ({page.stat().st_size / 1e6:.1f} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
