"""Copy the committed reference results into README's results section, or check that they are there.

README's numbers are not typed by hand: the block between ``<!-- reference:begin -->`` and
``<!-- reference:end -->`` is made from ``results/reference/digits/summary.md`` (what
``make reference`` wrote): the table of every method, the ``pc`` rows of each comparison table and
the R_NX sentences. ``--check`` exits with status 1, naming the first line that differs, when
README's block is not the one the reference makes (a test runs it).

Usage::

    python scripts/readme_results.py            # rewrite README's block from the reference
    python scripts/readme_results.py --check    # exit 1 when README's block is stale
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- reference:begin -->", "<!-- reference:end -->"
SUMMARY = ROOT / "results" / "reference" / "digits" / "summary.md"
README = ROOT / "README.md"


def _sections(text: str) -> dict:
    """``{heading: lines}`` of a summary's ``#``/``##``/``###`` sections (the first under '')."""
    sections, name = {"": []}, ""
    for line in text.splitlines():
        if line.startswith("#"):
            name = line.lstrip("#").strip()
            sections[name] = []
        else:
            sections[name].append(line)
    return sections


def _table(lines: list) -> list:
    return [line for line in lines if line.startswith("|")]


def block(summary: str) -> str:
    """README's block made from a summary's text."""
    sections = _sections(summary)
    title = next(k for k in sections if k.startswith("pcoh main job"))
    intro = [line for line in sections[title] if line and not line.startswith("|")]
    out = [BEGIN, "", intro[0] if intro else "", ""]
    out += _table(sections[title])
    out += [""]
    for name, lines in sections.items():
        if not name.endswith(": paired difference to the best other method"):
            continue
        measure = name.split(":")[0]
        rows = _table(lines)
        header, rule, body = rows[0], rows[1], rows[2:]
        mine = [r for r in body if r.split("|")[3].strip() == "pc"]
        out += [f"`{measure}`:", "", header, rule, *mine, ""]
    ranges = sections.get("R_NX by neighbourhood size", [])
    out += ["R_NX by neighbourhood size, `pc` against the method with the best `rnx_auc`:", ""]
    out += [line for line in ranges if line.startswith("- ")]
    out += ["", END]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 when README's block is not the reference's")
    p.add_argument("--summary", type=Path, default=SUMMARY, help=f"the reference summary (default {SUMMARY})")
    p.add_argument("--readme", type=Path, default=README, help="the README to check or rewrite")
    args = p.parse_args(argv)
    readme = args.readme.read_text(encoding="utf-8")
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        print(f"readme_results: {args.readme} must hold {BEGIN} and {END} once each", file=sys.stderr)
        return 2
    head, rest = readme.split(BEGIN)
    old, tail = rest.split(END)
    new = block(args.summary.read_text(encoding="utf-8"))
    if args.check:
        have = (BEGIN + old + END).splitlines()
        want = new.splitlines()
        for i, (a, b) in enumerate(zip(have, want)):
            if a != b:
                print(f"readme_results: README's results differ from {args.summary} at line {i + 1} of the block:\n"
                      f"  README:    {a}\n  reference: {b}\n(run python scripts/readme_results.py)", file=sys.stderr)
                return 1
        if len(have) != len(want):
            print(f"readme_results: README's block has {len(have)} lines, the reference's {len(want)}", file=sys.stderr)
            return 1
        print("readme_results: README's results are the reference's")
        return 0
    args.readme.write_text(head + new + tail, encoding="utf-8")
    print(f"readme_results: wrote the reference results into {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
