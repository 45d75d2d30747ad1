"""docs/architecture.md describes the package as it is, and the code keeps its layering.

The page names every module file of ``pcoh/`` once, under the heading of its layer; the headings
of its "Modules" section, in their order, are the layers, lowest first (this is the one place the
order is written). From that and the imports of every module (read with ``ast``, nothing is
imported) the tests below check that

- no module imports a module of a higher layer;
- no modules import each other in a cycle;
- no private name (``_name``) is imported from a module of another sub-package (within one
  sub-package, such as ``pcoh/plots/``, its modules share private helpers); a private *module*
  (``pcoh/_checks.py``, ``pcoh/models/_base.py``) is open to the package that holds it.

Every failure names the file and line of the offending import.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
MODULE_RE = r"pcoh/[\w/]+\.py"


def _named():
    return set(re.findall(MODULE_RE, DOC.read_text(encoding="utf-8")))


def _modules():
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "pcoh").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_every_module_is_described():
    missing = sorted(_modules() - _named())
    assert not missing, f"modules not described in docs/architecture.md: {missing}"


def test_every_described_module_exists():
    stale = sorted(_named() - _modules())
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


# ----------------------------------------------------------------------------- the layers
def layers(text: str) -> tuple[list, dict]:
    """The layer headings of the "Modules" section in order, and file -> layer index (the heading
    under which the file is described first)."""
    section = text.split("\n## Modules", 1)[1].split("\n## ", 1)[0]
    names, where = [], {}
    for line in section.splitlines():
        if line.startswith("### "):
            names.append(line[4:].strip())
        elif names:
            for path in re.findall(MODULE_RE, line):
                where.setdefault(path, len(names) - 1)
    return names, where


def module_name(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(path: str, where: dict) -> int:
    """The layer a file is described under; a file the page does not name inherits the layer of
    its sub-package's ``__init__.py``."""
    probe = path
    while probe not in where:
        folder = probe.rsplit("/", 1)[0] if not probe.endswith("__init__.py") else probe.rsplit("/", 2)[0]
        if folder == "pcoh" or "/" not in folder:
            raise KeyError(path)
        probe = folder + "/__init__.py"
    return where[probe]


def imports(path: str, modules: dict) -> list:
    """``(line, target module, imported name or None)`` for every import of a pcoh module in
    ``path``, module level or inside functions; a relative import is resolved."""
    name = module_name(path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "pcoh":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:  # `from . import losses`: the module itself
                    found.append((node.lineno, sub, None))
                else:
                    found.append((node.lineno, source, alias.name))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "pcoh")
    return found


def _graph():
    modules = {module_name(p): p for p in sorted(_modules())}
    return modules, {path: imports(path, modules) for path in modules.values()}


def _package(module: str) -> str:
    return module.rpartition(".")[0]


def test_the_page_gives_every_module_a_layer():
    names, where = layers(DOC.read_text(encoding="utf-8"))
    assert len(names) >= 3, f"docs/architecture.md: expected the layer headings under '## Modules', got {names}"
    for path in _modules():
        try:
            layer_of(path, where)
        except KeyError:
            pytest.fail(f"{path} has no layer: name it under a heading of '## Modules' in docs/architecture.md")


def test_no_import_runs_up_a_layer():
    names, where = layers(DOC.read_text(encoding="utf-8"))
    modules, graph = _graph()
    up = []
    for path, found in graph.items():
        low = layer_of(path, where)
        for line, target, _ in found:
            if target == "pcoh" or target not in modules:
                continue
            high = layer_of(modules[target], where)
            if high > low:
                up.append(f"{path}:{line} imports {target} ({names[high]}) from the layer {names[low]!r}")
    assert not up, "imports from a lower layer to a higher one:\n" + "\n".join(dict.fromkeys(up))


def test_no_import_cycle():
    modules, graph = _graph()
    edges = {}
    for path, found in graph.items():
        for line, target, _ in found:
            inside = module_name(path).startswith(target + ".")
            if target in modules and modules[target] != path and not inside:
                edges.setdefault(path, {}).setdefault(modules[target], line)
    # An import of a package by one of its own modules is left out: Python has started the
    # package's __init__.py before the module, so that arrow closes no loop of its own.
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt, line in sorted(edges.get(node, {}).items()):
            if state.get(nxt) == "open":
                loop = stack[stack.index(nxt):] + [nxt]
                cycles.append(" -> ".join(f"{a} (line {edges[a][b]})" for a, b in zip(loop, loop[1:])) + f" -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "modules that import each other in a cycle:\n" + "\n".join(cycles)


def test_no_private_name_crosses_a_sub_package():
    modules, graph = _graph()
    crossing = []
    for path, found in graph.items():
        importer = module_name(path)
        own = importer if path.endswith("__init__.py") else _package(importer)
        for line, target, name in found:
            parts = target.split(".")
            for i, part in enumerate(parts):  # a private module is open to the package holding it
                holder = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__") and not (own + ".").startswith(holder + "."):
                    crossing.append(f"{path}:{line} imports the private module {target}")
            if name and name.startswith("_") and not name.startswith("__"):
                holder = target if modules.get(target, "").endswith("__init__.py") else _package(target)
                if holder == "pcoh" or own != holder:
                    crossing.append(f"{path}:{line} imports the private name {name} from {target}")
    assert not crossing, "private names used across modules:\n" + "\n".join(dict.fromkeys(crossing))


# ----------------------------------------------------------------------------- the checkers
def _write(tmp_path, files: dict) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")


def test_layers_read_from_the_page():
    text = ("# x\n## Modules\n### Low\n- `pcoh/a.py`: a.\n- `pcoh/sub/__init__.py`: sub.\n"
            "### High\n- `pcoh/b.py`: b, uses `pcoh/a.py`.\n## Other\n- `pcoh/c.py`\n")
    names, where = layers(text)
    assert names == ["Low", "High"]
    assert where == {"pcoh/a.py": 0, "pcoh/sub/__init__.py": 0, "pcoh/b.py": 1}
    assert layer_of("pcoh/sub/new.py", where) == 0  # a sub-package's module inherits its layer
    with pytest.raises(KeyError):
        layer_of("pcoh/c.py", where)


def test_imports_are_resolved(monkeypatch, tmp_path):
    _write(tmp_path, {"pcoh/__init__.py": "", "pcoh/a.py": "x = 1\n", "pcoh/sub/__init__.py": "",
                      "pcoh/sub/m.py": "import os\nfrom .. import a\nfrom ..a import x as _y\nfrom . import n\n"
                                       "def f():\n    from pcoh.a import _z\n",
                      "pcoh/sub/n.py": ""})
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    modules = {"pcoh": 0, "pcoh.a": 0, "pcoh.sub": 0, "pcoh.sub.m": 0, "pcoh.sub.n": 0}
    assert imports("pcoh/sub/m.py", modules) == [
        (2, "pcoh.a", None), (3, "pcoh.a", "x"), (4, "pcoh.sub.n", None), (6, "pcoh.a", "_z")]
