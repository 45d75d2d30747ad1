"""docs/architecture.md names every module file of pcoh/ and no module that does not exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def _named():
    return set(re.findall(r"pcoh/[\w/]+\.py", DOC.read_text(encoding="utf-8")))


def _modules():
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "pcoh").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_every_module_is_described():
    missing = sorted(_modules() - _named())
    assert not missing, f"modules not described in docs/architecture.md: {missing}"


def test_every_described_module_exists():
    stale = sorted(_named() - _modules())
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
