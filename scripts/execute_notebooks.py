"""Execute notebooks top to bottom (full budget unless PCOH_SMOKE is set) and normalise them.

    python scripts/execute_notebooks.py notebooks/*.ipynb

Outputs are kept (so the notebooks read well on a code-hosting page), and so is the widgets'
state (``store_widget_state``), so that their controls show when the notebook is opened (in a
trusted notebook: ``make trust``), before any cell runs. The notebook metadata are those JupyterLab
writes itself, so that opening a notebook does not mark it modified: the kernelspec of ipykernel's
``python3`` kernel (display name "Python 3 (ipykernel)") and ``language_info`` as the kernel
reports it; the notebook's own metadata (``title``, ``authors``, ...) are kept. What changes from
run to run without meaning is removed (execution timestamps, editors' and papermill's metadata) or
numbered in the order it appears (the widgets' model ids, the ids of pandas' styled
tables, memory addresses in reprs), so that re-executing a notebook whose outputs are the same
leaves the file the same. Run from the project root; each notebook runs with its own folder as
working directory. A notebook that fails is left as it was on disk and the others still run; the
failures are listed at the end, one line each, and the exit status is 1.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

KERNEL_NAME = "python3"
#: The kernelspec JupyterLab writes for ipykernel's kernel.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
#: The entries of ``language_info`` that ipykernel reports (JupyterLab fills them in on opening).
LANGUAGE_INFO_KEYS = ("codemirror_mode", "file_extension", "mimetype", "name", "nbconvert_exporter",
                      "pygments_lexer", "version")
#: Notebook metadata that editors and runners write and that change without meaning (dropped).
VOLATILE_METADATA = ("papermill", "execution", "vscode", "interpreter", "colab", "toc-autonumbering")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_MODEL_REF = "IPY_MODEL_"
_STYLER_TABLE = re.compile(r'<table id="T_([0-9a-f]+)"')
_ADDRESS_REPR = re.compile(r"^<([\w.]+) at 0x[0-9a-f]+>$")


def _stable_id(kind: str, *index) -> str:
    return hashlib.sha256(f"{kind}:{index}".encode()).hexdigest()


def _refs(value):
    """The model ids that ``value`` refers to (its ``IPY_MODEL_<id>`` strings), in order."""
    if isinstance(value, str) and value.startswith(_MODEL_REF):
        yield value[len(_MODEL_REF):]
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)
    elif isinstance(value, dict):
        for k in sorted(value):
            yield from _refs(value[k])


def _map_refs(value, new: dict):
    """``value`` with every ``IPY_MODEL_<id>`` string renamed by ``new``."""
    if isinstance(value, str) and value.startswith(_MODEL_REF) and value[len(_MODEL_REF):] in new:
        return _MODEL_REF + new[value[len(_MODEL_REF):]]
    if isinstance(value, list):
        return [_map_refs(v, new) for v in value]
    if isinstance(value, dict):
        return {k: _map_refs(v, new) for k, v in value.items()}
    return value


def stable_widget_ids(nb) -> None:
    """Rename the widgets' model ids (random UUIDs) by their order of appearance: the views in
    the outputs, cell by cell, each followed by the models it refers to, then any other model."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    state = widgets.get("state") or {}
    order, seen = [], set()

    def visit(model_id):
        if model_id in seen:
            return
        seen.add(model_id)
        order.append(model_id)
        for ref in _refs(state.get(model_id, {})):
            visit(ref)

    views = [out["data"][WIDGET_VIEW] for cell in nb.cells for out in cell.get("outputs", [])
             if WIDGET_VIEW in out.get("data", {})]
    for view in views:
        visit(view["model_id"])
    for model_id in state:
        visit(model_id)
    new = {old: _stable_id("widget", i)[:32] for i, old in enumerate(order)}
    for view in views:
        view["model_id"] = new[view["model_id"]]
    if state:
        widgets["state"] = {new[k]: _map_refs(state[k], new) for k in order if k in state}


def _text(value) -> str:
    """A notebook's multi-line string, which may be stored as a list of lines."""
    return value if isinstance(value, str) else "".join(value)


def stable_output_ids(nb) -> None:
    """Number the ids of pandas' styled tables by cell and output, and drop memory addresses from
    reprs such as ``<pandas.io.formats.style.Styler at 0x7f...>``."""
    for i, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            data = out.get("data", {})
            html = data.get("text/html")
            if html is not None:
                text = _text(html)
                for k, uuid in enumerate(dict.fromkeys(_STYLER_TABLE.findall(text))):
                    stable = _stable_id("table", i, j, k)[:len(uuid)]
                    text = re.sub(rf"\bT_{uuid}(?![0-9a-f])", f"T_{stable}", text)
                data["text/html"] = text
            plain = data.get("text/plain")
            if plain is not None:
                data["text/plain"] = _ADDRESS_REPR.sub(r"<\1>", _text(plain))


def kernel_language_info(kernel_name: str = KERNEL_NAME) -> dict:
    """``language_info`` as the kernel reports it (its kernel_info reply); starts and stops a kernel."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name=kernel_name)
    try:
        return dict(client.kernel_info(reply=True, timeout=60)["content"]["language_info"])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def normalise(nb, language_info: dict | None = None) -> None:
    """Keep the metadata JupyterLab writes, the widgets' state and the outputs; drop the rest.

    ``language_info`` is the kernel's (default: the one the execution left in ``nb``, else a
    kernel is asked).
    """
    widgets = nb.metadata.get("widgets")
    info = language_info or nb.metadata.get("language_info") or {}
    if not all(key in info for key in LANGUAGE_INFO_KEYS):
        info = kernel_language_info()
    own = {k: v for k, v in nb.metadata.items()
           if k not in ("kernelspec", "language_info", "widgets") and k not in VOLATILE_METADATA}
    nb.metadata = nbformat.from_dict({**own, "kernelspec": dict(KERNELSPEC), "language_info": dict(info)})
    if widgets and widgets.get(WIDGET_STATE, {}).get("state"):
        nb.metadata["widgets"] = widgets
    stable_widget_ids(nb)
    stable_output_ids(nb)
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
    known = None  # language_info of a kernel, asked once for --no-execute
    os.environ["PCOH_SAVED_COPY"] = "1"  # the kernels' controls say they answer once the notebook runs
    failed = []
    for path in args.notebooks:
        nb = None
        try:
            nb = nbformat.read(path, as_version=4)
            if not args.no_execute:
                start = time.perf_counter()
                NotebookClient(nb, timeout=args.timeout, kernel_name=KERNEL_NAME, store_widget_state=True,
                               resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
                print(f"{path}: executed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            else:
                known = known or kernel_language_info()
                nb.metadata["language_info"] = known
            normalise(nb)
            nbformat.validate(nb)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - any failure of one notebook; the others still run
            failed.append(f"{path}: {failure(err, nb)}")
            print(f"{path}: failed, left as it was", file=sys.stderr)
            continue
        nbformat.write(nb, path)
    if failed:
        print(f"{len(failed)} of {len(args.notebooks)} notebooks failed (each left as it was on disk):",
              file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def failure(err: BaseException, nb=None) -> str:
    """One line on why a notebook failed: the cell (numbered from 1) and the error it raised."""
    where = ""
    for i, cell in enumerate(getattr(nb, "cells", None) or []):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            where = f"cell {i + 1}: "
            break
    name, value = getattr(err, "ename", None), getattr(err, "evalue", None)
    text = f"{name}: {value}" if name else f"{type(err).__name__}: {err}"
    text = " ".join(text.split())
    return where + (text if len(text) <= 200 else text[:197] + "...")


if __name__ == "__main__":
    sys.exit(main())
