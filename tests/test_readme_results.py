"""README's results are the committed reference's: the block between its markers is what
scripts/readme_results.py makes from results/reference/digits/summary.md, and the check finds a
stale block."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "readme_results.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_readme_holds_the_reference_results():
    done = _run("--check")
    assert done.returncode == 0, done.stderr


def test_a_stale_block_is_named(tmp_path):
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("| digits_cnn | pc | class-unaware |"))
    readme.write_text(text.replace(line, line.replace("| 10 |", "| 9 |", 1)), encoding="utf-8")
    done = _run("--check", "--readme", str(readme))
    assert done.returncode == 1 and "differ" in done.stderr and "| 9 |" in done.stderr
    assert _run("--readme", str(readme)).returncode == 0  # rewritten from the reference
    assert _run("--check", "--readme", str(readme)).returncode == 0
    readme.write_text("no markers\n", encoding="utf-8")
    assert _run("--check", "--readme", str(readme)).returncode == 2
