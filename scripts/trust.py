"""Sign (trust) the project's own notebooks, and only those: ``make trust``.

    python scripts/trust.py                    # notebooks/*.ipynb
    python scripts/trust.py notebooks/03-transfer.ipynb

A signed notebook shows its saved outputs as they are on opening, its HTML and scripts included, so
signing one is trusting whoever wrote it. A notebook is signed here only when its bytes are those
committed in the repository at ``HEAD`` (``git``): a notebook received from someone else (not
committed) or changed since the last commit (edited, re-executed, replaced) is left unsigned, with
a line saying why. Such a notebook opens untrusted (its outputs as text, its controls as text such
as ``interactive(...)``); read it first, then trust it yourself (``jupyter trust FILE``, or *Trust
Notebook* in JupyterLab) if you mean to. Signatures go to your own Jupyter data folder
(``jupyter --data-dir``), as ``jupyter trust`` writes them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def why_not_own(notebook: Path, repository: Path = ROOT) -> str | None:
    """None when ``notebook`` holds exactly what is committed at ``HEAD`` in ``repository``;
    otherwise why it is not the project's own."""
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        return "no such file" if not notebook.exists() else "not a file"
    try:
        relative = notebook.relative_to(Path(repository).resolve())
    except ValueError:
        return f"outside the repository {repository}"
    top = _git("rev-parse", "--show-toplevel", cwd=repository)
    if top.returncode != 0:
        return "not in a git checkout, so its content cannot be checked against the project's"
    committed = _git("rev-parse", "--verify", "--quiet", f"HEAD:{relative.as_posix()}", cwd=repository)
    if committed.returncode != 0:
        return "not committed in this repository (received from elsewhere?)"
    current = _git("hash-object", "--no-filters", "--", str(notebook), cwd=repository)
    if current.returncode != 0 or current.stdout.strip() != committed.stdout.strip():
        return "changed since the last commit (edited, re-executed or replaced)"
    return None


def sign(notebooks, repository: Path = ROOT, notary=None, out=sys.stdout, err=sys.stderr) -> tuple:
    """Sign each of ``notebooks`` that is the project's own; returns (signed, refused) paths."""
    import nbformat
    from nbformat.sign import NotebookNotary

    notary = notary or NotebookNotary()
    signed, refused = [], []
    for path in notebooks:
        reason = why_not_own(path, repository)
        if reason:
            print(f"not signed: {path}: {reason}; read it, then `jupyter trust {path}` if you trust it",
                  file=err)
            refused.append(path)
            continue
        nb = nbformat.read(path, as_version=4)
        if notary.check_signature(nb):
            print(f"already signed: {path}", file=out)
        else:
            notary.sign(nb)
            print(f"signed: {path}", file=out)
        signed.append(path)
    return signed, refused


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to sign (default: notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found", file=sys.stderr)
        return 1
    sign(notebooks)
    # A notebook left unsigned is not an error: it opens untrusted, as any notebook from elsewhere.
    return 0


if __name__ == "__main__":
    sys.exit(main())
