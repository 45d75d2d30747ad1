"""make trust: only the project's own notebooks (their bytes those committed at HEAD) are signed."""
import importlib.util
import io
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.sign import NotebookNotary

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("trust", ROOT / "scripts" / "trust.py")
trust = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(trust)


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True)


def _write(path: Path, html: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "x"})]
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    _git(repo, "init", "-q")
    own = _write(repo / "notebooks" / "01-own.ipynb", "<b>ours</b>")
    changed = _write(repo / "notebooks" / "02-changed.ipynb", "<b>ours too</b>")
    _git(repo, "add", "notebooks")
    _git(repo, "commit", "-q", "-m", "notebooks")
    _write(changed, "<script>alert('edited after the commit')</script>")
    received = _write(repo / "notebooks" / "03-received.ipynb", "<script>alert('from someone')</script>")
    return repo, own, changed, received


def test_signs_only_the_committed_unchanged_notebooks(repo, tmp_path):
    repo, own, changed, received = repo
    notary = NotebookNotary(db_file=str(tmp_path / "signatures.db"), secret=b"test secret")
    out, err = io.StringIO(), io.StringIO()
    signed, refused = trust.sign([own, changed, received], repository=repo, notary=notary, out=out, err=err)
    assert signed == [own] and refused == [changed, received]
    trusted = {p.name: notary.check_signature(nbformat.read(p, as_version=4)) for p in (own, changed, received)}
    assert trusted == {"01-own.ipynb": True, "02-changed.ipynb": False, "03-received.ipynb": False}
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert "02-changed.ipynb: changed since the last commit" in lines[0]
    assert "03-received.ipynb: not committed" in lines[1] and "jupyter trust" in lines[1]


def test_a_notebook_outside_a_git_checkout_or_the_repository_is_not_signed(tmp_path, repo):
    repo = repo[0]
    loose = _write(tmp_path / "loose.ipynb", "<b>x</b>")
    assert "outside the repository" in trust.why_not_own(loose, repo)
    plain = tmp_path / "plain"
    plain.mkdir()
    inside = _write(plain / "n.ipynb", "<b>x</b>")
    assert "not in a git checkout" in trust.why_not_own(inside, plain)
    assert trust.why_not_own(plain / "missing.ipynb", plain) == "no such file"


def test_the_committed_notebooks_of_this_project_are_its_own():
    # In a checkout where they are unchanged; skipped where a notebook is being edited.
    changed = subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=ROOT,
                             capture_output=True, text=True)
    if changed.returncode != 0 or changed.stdout.strip():
        pytest.skip("not a git checkout, or its notebooks are being changed")
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and {p.name: trust.why_not_own(p) for p in notebooks} == {p.name: None for p in notebooks}
