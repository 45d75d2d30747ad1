"""Every script under benchmarks/ starts and finishes in its smoke mode (``--smoke``: tiny sizes,
one repetition), so that a benchmark that no longer runs fails the suite instead of rotting.

Smoke runs measure nothing; the studies and the multi-process benchmarks train small models and
are marked ``slow``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# script -> whether its smoke run is slow (trains models or starts several processes)
SCRIPTS = {
    "bench_loss.py": False,
    "bench_crd.py": False,
    "device_check.sh": False,
    "bench_train.py": True,
    "bench_threads.py": True,
    "study_strength.py": True,
    "study_queue.py": True,
    "study_focus.py": True,
    "bench_coranking.py": False,
    "study_protocol.py": True,
    "study_numerics.py": True,
}


def test_every_benchmark_script_has_a_smoke_test():
    """A script added to benchmarks/ (helpers start with '_') must be listed above."""
    found = {p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh") and not p.name.startswith("_")}
    assert found == set(SCRIPTS)


@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if slow else s
                                    for s, slow in SCRIPTS.items()])
def test_benchmark_smoke_run_exits_0(script, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg", PYTHON=sys.executable, OUT=str(tmp_path / "logs"))
    path = BENCHMARKS / script
    cmd = ["bash", str(path), "--smoke"] if script.endswith(".sh") else [sys.executable, str(path), "--smoke"]
    if script in ("study_strength.py", "study_queue.py", "study_focus.py"):  # caches and tables to the test's folder
        cmd += ["--root", str(tmp_path / "root")]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{script} --smoke exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
