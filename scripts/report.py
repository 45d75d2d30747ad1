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

Pages are inert: whatever a notebook holds (it may come from someone else), its page runs no code
and loads nothing from another host. The HTML of Markdown cells, of HTML and Markdown outputs and of
raw HTML cells goes through an allow-list sanitiser (``nh3``): tables, text, figures as ``data:``
images and MathML are kept; scripts, event handlers (``on...``), ``javascript:`` addresses, frames,
forms, ``<base>``, ``<meta http-equiv>``, ``srcset`` and style sheets that load anything (``url()``
to another address, ``@import``) are dropped. JavaScript outputs are dropped. Links (``<a href>``)
to other pages stay: they load nothing until clicked. The finished page is then checked as a whole
(:func:`hazards`), and a page that still holds a script, a handler or a reference to another host
in any attribute or style is refused. ``make report`` runs this script.
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


#: Tags kept in a notebook's own HTML: text, lists, tables, figures, details; MathML (what
#: latex2mathml writes). Everything else is removed (its text kept), scripts and styles with content.
_HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
}
_MATHML_TAGS = {
    "math", "maction", "menclose", "merror", "mfenced", "mfrac", "mi", "mmultiscripts", "mn", "mo", "mover",
    "mpadded", "mphantom", "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub",
    "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "none", "semantics",
}
_MATHML_ATTRIBUTES = {
    "accent", "accentunder", "columnalign", "columnlines", "columnspacing", "depth", "display", "displaystyle",
    "fence", "form", "frame", "height", "largeop", "linethickness", "lspace", "mathbackground", "mathcolor",
    "mathsize", "mathvariant", "maxsize", "minsize", "movablelimits", "notation", "rowalign", "rowlines",
    "rowspacing", "rspace", "scriptlevel", "separator", "separators", "stretchy", "symmetric", "width",
    "xmlns",
}
_ATTRIBUTES = {
    "*": {"class", "id", "title", "lang", "dir", "style", "align", "valign"},
    "a": {"href", "name"}, "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan", "scope"}, "table": {"border"},
    "col": {"span"}, "colgroup": {"span"}, "ol": {"start", "type"}, "details": {"open"},
    **{tag: set(_MATHML_ATTRIBUTES) for tag in _MATHML_TAGS},
}
#: The CSS properties a ``style`` attribute keeps (none of them loads anything).
_STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-right", "border-spacing", "border-style", "border-top", "border-width", "color", "display",
    "font-family", "font-size", "font-style", "font-weight", "height", "line-height", "margin",
    "margin-bottom", "margin-left", "margin-right", "margin-top", "max-height", "max-width", "min-height",
    "min-width", "opacity", "padding", "padding-bottom", "padding-left", "padding-right", "padding-top",
    "text-align", "text-decoration", "vertical-align", "white-space", "width",
}
#: Images a page may hold inline.
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$", re.I)
#: A scheme (``http:``, ``javascript:``, ...) or a protocol-relative ``//`` at the start of an address.
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*:|//|\\\\)", re.I)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)


def _unescape_css(css: str) -> str:
    """CSS with its comments removed and its escapes (``\\75 rl(`` is ``url(``) decoded."""
    css = re.sub(r"/\*.*?(\*/|$)", " ", css, flags=re.S)
    css = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(min(int(m.group(1), 16), 0x10FFFF) or 0xFFFD), css)
    return re.sub(r"\\(.)", r"\1", css, flags=re.S)


def css_hazards(css: str) -> list:
    """What a piece of CSS (a style sheet or a ``style`` attribute) would load or run: ``@import``,
    ``url()``/``image-set()`` of anything but an inline ``data:`` image, ``expression()``, bindings."""
    text = _unescape_css(css)
    found = [f"@import {m.strip()[:60]}" for m in re.findall(r"@import([^;]*)", text, re.I)]
    for target in re.findall(r"url\(\s*(['\"]?)(.*?)\1\s*\)", text, re.I | re.S):
        address = re.sub(r"\s", "", target[1])
        if not _DATA_IMAGE.match(address) and not address.startswith("#"):
            found.append(f"url({address[:60]})")
    if re.search(r"url\(\s*['\"]?[^)]*$", text, re.I):
        found.append("an unclosed url(")
    for word in ("image-set(", "expression(", "-moz-binding", "behavior:", "@font-face", "@namespace", "</"):
        if word in re.sub(r"\s", "", text).lower():
            found.append(word)
    return found


def _attribute_filter(tag: str, attribute: str, value: str):
    """nh3's per-attribute hook: an image only as an inline ``data:`` image, a link only to a page
    (``http(s)``, ``mailto``, this page or a relative one), a style only when it loads nothing."""
    bare = re.sub(r"[\x00-\x20]", "", value)
    if tag == "img" and attribute == "src":
        return value if _DATA_IMAGE.match(bare) else None
    if attribute == "href":
        scheme = _SCHEME.match(bare)
        return value if not scheme or scheme.group(1).lower() in ("http:", "https:", "mailto:") else None
    if attribute == "style":
        return value if not css_hazards(value) else None
    return value


def sanitize_html(fragment: str) -> str:
    """A notebook's own HTML made inert: an allow-list of tags and attributes (text, tables, inline
    ``data:`` images, MathML), nothing that runs or loads. ``<style>`` blocks that load nothing
    (pandas' styled tables) are kept, others dropped."""
    import nh3

    sheets = []
    for css in _STYLE_BLOCK.findall(fragment):
        if not css_hazards(css) and "<" not in css:
            sheets.append(f"<style>{css}</style>")
    rest = _STYLE_BLOCK.sub("", fragment)
    clean = nh3.clean(rest, tags=_HTML_TAGS | _MATHML_TAGS, attributes=_ATTRIBUTES,
                      attribute_filter=_attribute_filter, url_schemes={"http", "https", "mailto", "data"},
                      filter_style_properties=_STYLE_PROPERTIES, strip_comments=True,
                      link_rel="noopener noreferrer")
    return "".join(sheets) + clean


#: Output kinds a page shows; others (JavaScript, widget views left over, unknown kinds) are dropped.
_SHOWN = {"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg", "image/svg+xml"}


def make_inert(nb) -> None:
    """Sanitise in place everything of ``nb`` that the page would hold as HTML: HTML and Markdown
    outputs (Markdown cells are sanitised when they are converted), raw cells; drop JavaScript and
    unknown outputs, and output metadata naming image files (the page would load them)."""
    for cell in nb.cells:
        if cell.cell_type == "raw":
            cell.source = sanitize_html(cell.source)
        cell.metadata.pop("tags", None)
        for out in cell.get("outputs", []):
            if "data" not in out:
                continue
            for mime in list(out.data):
                if mime not in _SHOWN:
                    del out.data[mime]
            if "text/html" in out.data:
                out.data["text/html"] = sanitize_html(out.data["text/html"])
            if "image/svg+xml" in out.data and not isinstance(out.data["image/svg+xml"], str):
                del out.data["image/svg+xml"]
            out.get("metadata", {}).pop("filenames", None)


#: Attributes whose value is an address the browser may load (or go to).
_ADDRESS_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "xlink:href", "poster", "background",
                       "data", "codebase", "cite", "longdesc", "usemap", "ping", "manifest", "icon", "lowsrc",
                       "dynsrc", "archive", "classid", "profile", "imagesrcset"}
#: Elements an inert, offline page never holds.
_FORBIDDEN_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form",
                   "portal", "noscript", "template", "link", "svg", "foreignobject", "animate", "set", "use",
                   "input", "button", "textarea", "select", "audio", "video", "source", "track"}


class _Hazards(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        if tag in _FORBIDDEN_TAGS:
            self.found.append(f"<{tag}>")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.found.append("<meta http-equiv>")
        self._style = tag == "style"
        for name, value in attrs:
            value = value or ""
            bare = re.sub(r"[\x00-\x20]", "", value)
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            scheme = _SCHEME.match(bare)
            if scheme and scheme.group(1).lower() in ("javascript:", "vbscript:", "livescript:"):
                self.found.append(f"{name}={bare[:40]} on <{tag}>")
            if name == "style":
                self.found += [f"{h} in a style on <{tag}>" for h in css_hazards(value)]
            elif name in _ADDRESS_ATTRIBUTES and scheme:
                link = tag == "a" and name == "href" and scheme.group(1).lower() in ("http:", "https:", "mailto:")
                if not link and not _DATA_IMAGE.match(bare):
                    self.found.append(f"{name}={bare[:60]} on <{tag}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self._style = False

    def handle_data(self, data):
        if self._style:
            self.found += [f"{h} in a style sheet" for h in css_hazards(data)]


def hazards(page: str) -> list:
    """What in ``page`` would run or load from elsewhere: script and frame elements, forms,
    ``<base>``, ``<link>``, ``<meta http-equiv>``, event handlers, ``javascript:`` addresses, an
    address on another host (or of any kind but an inline ``data:`` image) in any loading attribute
    (``src``, ``srcset``, ``xlink:href``, ``action``, ``poster``, ...), CSS ``url()`` and ``@import``.
    A link (``<a href>``) to a page on another host is not a hazard: it loads nothing until clicked."""
    parser = _Hazards()
    parser.feed(page)
    parser.close()
    return parser.found


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
            return sanitize_html(MarkdownWithMath(renderer=renderer).render(source))

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
        ``notebook`` is a folder or not a ``.ipynb`` file, holds no executed output, or its page, sanitised,
        would still run a script or load something from another host (:func:`hazards`).
    """
    import nbformat

    notebook = Path(notebook)
    if notebook.is_dir():
        raise ValueError(f"notebook {notebook} is a folder; expected a .ipynb file")
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} does not exist")
    if notebook.suffix != ".ipynb":
        raise ValueError(f"notebook must be a .ipynb file, got {notebook.name}")
    nb = nbformat.read(notebook, as_version=4)
    if not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
        raise ValueError(f"{notebook.name} holds no outputs: execute it first (scripts/execute_notebooks.py)")
    replace_widgets(nb)
    make_inert(nb)
    # Markdown images are resolved against the notebook's own folder, as Jupyter does.
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"path": str(notebook.parent),
                                                                          "name": notebook.stem}})
    outside = external_references(body)
    if outside:
        raise ValueError(f"{notebook.name}: the page would load from other hosts: {sorted(set(outside))[:5]}")
    unsafe = hazards(body)
    if unsafe:
        raise ValueError(f"{notebook.name}: the page would not be inert: {sorted(set(unsafe))[:5]}")
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
