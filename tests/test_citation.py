"""CITATION.cff is valid Citation File Format 1.2.0 in its essentials and agrees with the README."""
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AUTHORS = ["Nguyen", "Gamboa", "Zhang", "Chhaibi", "Gratton", "Giaccone"]


def _cff():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_required_keys_and_types():
    cff = _cff()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff[key], key
    assert all(isinstance(a, dict) and ("name" in a or "family-names" in a) for a in cff["authors"])
    assert cff["type"] in ("software", "dataset")
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(cff["version"]))


def test_preferred_citation_is_the_paper_and_matches_the_readme():
    paper = _cff()["preferred-citation"]
    assert paper["type"] == "article" and isinstance(paper["year"], int)
    assert [a["family-names"] for a in paper["authors"]] == AUTHORS
    assert all(a["given-names"] for a in paper["authors"])
    readme = (ROOT / "README.md").read_text()
    assert paper["title"] in readme and "2505.06595" in readme
    bibtex = re.search(r"```bibtex\n(.*?)```", readme, re.S).group(1)
    assert [a.split(",")[0].strip() for a in re.search(r"author\s*=\s*\{(.*?)\}", bibtex, re.S).group(1).split(" and ")] \
        == AUTHORS
    assert "2505.06595" in paper["url"]


def test_version_matches_the_package():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert str(_cff()["version"]) == project["version"]
