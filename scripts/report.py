"""Write every executed notebook as one self-contained HTML page that works offline, for people who
present without running Jupyter.

    python scripts/report.py                       # notebooks/*.ipynb -> reports/*.html
    python scripts/report.py notebooks/05-umap.ipynb --output /tmp/slides

Nothing is executed: the committed outputs are converted as they are (run
``scripts/execute_notebooks.py`` first to refresh them). A page loads nothing from any other host:

- figures are embedded (output images are inline already; images linked from Markdown cells are
  embedded too);
- maths is converted to MathML when the page is written (``latex2mathml``), which browsers draw
  themselves, so no MathJax is loaded;
- a widget output is replaced by what it drew (the outputs held by its saved state) or, for
  controls that draw nothing until a kernel runs (the notebooks' Draw buttons), by a note naming
  the controls and their values: the figure above it is the one they draw at those values. So no
  require.js or widget manager is loaded either.

A page that would still reference a script, style sheet or image on another host is refused.
``make report`` runs this script.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

#: TeX that latex2mathml does not know, rewritten to TeX it does (same meaning).
_TEX_FIXES = ((re.compile(r"\\(?:big|Big|bigg|Bigg)?\\\|"), r"\\Vert "),
              (re.compile(r"\\arg(?![a-zA-Z])"), r"\\operatorname{arg}"))


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """TeX maths as a MathML ``<math>`` element (block with ``display``).

    Raises
    ------
    ValueError
        The TeX uses a command the converter does not know (it would show as raw TeX).
    """
    from latex2mathml.converter import convert

    source = tex.strip()
    for pattern, replacement in _TEX_FIXES:
        source = pattern.sub(replacement, source)
    mathml = convert(source, display="block" if display else "inline")
    unknown = re.findall(r"\\[A-Za-z]+|\\[|{}]", re.sub(r"<[^>]*>", "", mathml))
    if unknown:
        raise ValueError(f"cannot convert the TeX {tex!r} to MathML: unknown {sorted(set(unknown))}")
    return mathml


def _math_renderer():
    from nbconvert.filters.markdown_mistune import IPythonRenderer

    class MathMLRenderer(IPythonRenderer):
        """Markdown to HTML with the maths as MathML instead of TeX for MathJax."""

        def block_math(self, body: str) -> str:
            return tex_to_mathml(body, display=True)

        def inline_math(self, body: str) -> str:
            return tex_to_mathml(body)

        def latex_environment(self, name: str, body: str) -> str:
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

    return MathMLRenderer


def _exporter():
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    renderer_class = _math_renderer()

    class OfflineHTMLExporter(HTMLExporter):
        """The lab template without any script from another host, maths as MathML."""

        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            path = context.get("resources", {}).get("metadata", {}).get("path", "")
            renderer = renderer_class(escape=False, attachments=cell.get("attachments", {}),
                                      embed_images=self.embed_images, path=path,
                                      anchor_link_text=self.anchor_link_text,
                                      exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    return OfflineHTMLExporter(embed_images=True, template_name="offline", extra_template_basedirs=[str(TEMPLATES)])


def _control_text(model: dict) -> str | None:
    """``description = value`` of one control's saved state; None for what is not a control."""
    state = model.get("state", {})
    name = model.get("model_name", "")
    if name in ("ButtonModel", "OutputModel") or "description" not in state:
        return None
    if "_options_labels" in state and isinstance(state.get("index"), int):
        value = state["_options_labels"][state["index"]]
    elif "value" in state:
        value = state["value"]
    else:
        return None
    return f"{state['description'] or name} = {value}"


def _widget_outputs(model_id: str, states: dict):
    """What a widget view drew (its Output models' outputs) and the controls under it."""
    drawn, controls, seen = [], [], set()
    stack = [model_id]
    while stack:
        key = stack.pop(0)
        if key in seen or key not in states:
            continue
        seen.add(key)
        model = states[key]
        state = model.get("state", {})
        if model.get("model_name") == "OutputModel":
            drawn.extend(state.get("outputs", []))
        text = _control_text(model)
        if text:
            controls.append(text)
        children = state.get("children", [])
        stack.extend(c.replace("IPY_MODEL_", "") for c in children if isinstance(c, str))
    return drawn, controls


def replace_widgets(nb) -> int:
    """Replace every widget output of ``nb`` by what it drew, or by a note on its controls.

    The notebook's saved widget state is dropped afterwards, so that the page loads no widget
    manager. Returns the number of widget outputs replaced.
    """
    import nbformat

    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW) if out.get("output_type") in ("display_data",
                                                                                     "execute_result") else None
            if view is None:
                outputs.append(out)
                continue
            replaced += 1
            drawn, controls = _widget_outputs(view.get("model_id", ""), states)
            if drawn:
                outputs.extend(nbformat.from_dict(o) for o in drawn)
                continue
            what = "; ".join(html.escape(c) for c in controls) or "interactive controls"
            note = (f'<p class="pcoh-controls">Controls (interactive in JupyterLab with a running kernel): '
                    f"{what}. The figure above is drawn at these values.</p>")
            outputs.append(nbformat.v4.new_output("display_data", data={"text/html": note, "text/plain": note}))
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)
    return replaced


class _Sources(HTMLParser):
    """Collects what a page would load: script, style sheet, image, frame and media sources."""

    _LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "audio": "src", "video": "src",
                "source": "src", "embed": "src", "object": "data"}

    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        attribute = self._LOADING.get(tag)
        for name, value in attrs:
            if name == attribute and value:
                self.sources.append(value)


def external_references(page: str) -> list:
    """Every address on another host that ``page`` would load (script/link/img/... sources and CSS
    ``url()``/``@import``): ``http://``, ``https://`` or protocol-relative ``//``."""
    parser = _Sources()
    parser.feed(page)
    found = [s for s in parser.sources if re.match(r"^\s*(https?:)?//", s, re.I)]
    for block in re.findall(r"<style[^>]*>(.*?)</style>", page, re.S | re.I):
        found += re.findall(r"""url\(\s*['"]?((?:https?:)?//[^'")\s]+)""", block, re.I)
        found += re.findall(r"""@import\s+['"]((?:https?:)?//[^'"]+)""", block, re.I)
    return found


def notebook_to_html(notebook: Path, output_dir: Path) -> Path:
    """Convert one notebook to ``output_dir/<notebook stem>.html``, working offline; returns the path.

    Raises
    ------
    FileNotFoundError
        ``notebook`` does not exist.
    ValueError
        ``notebook`` is not a ``.ipynb`` file, holds no executed output, or its page would load
        something from another host.
    """
    import nbformat

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} does not exist")
    if notebook.suffix != ".ipynb":
        raise ValueError(f"notebook must be a .ipynb file, got {notebook.name}")
    nb = nbformat.read(notebook, as_version=4)
    if not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
        raise ValueError(f"{notebook.name} holds no outputs: execute it first (scripts/execute_notebooks.py)")
    replace_widgets(nb)
    # Markdown images are resolved against the notebook's own folder, as Jupyter does.
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"path": str(notebook.parent),
                                                                          "name": notebook.stem}})
    outside = external_references(body)
    if outside:
        raise ValueError(f"{notebook.name}: the page would load from other hosts: {sorted(set(outside))[:5]}")
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
