"""Fair threads: one small main job alone against two of the same started together.

Each job is ``python -m pcoh`` on the embedded digits with its own empty cache and output
folder (so the two do the same work: train the teacher, train and evaluate the students), with
the package's thread settings (:mod:`pcoh.threads`: ``--threads``, else ``OMP_NUM_THREADS``, else
the cores in the CPU affinity) and with ``--threads 1``. For each setting the script times one
job alone, then two started together, and prints each concurrent job's time over the time
alone: 2 is the ideal when the two share the cores one job had, the goal is at most 2.2.

Usage::

    python benchmarks/bench_threads.py                 # tiny jobs: pc, 1 seed, 1 + 1 epochs
    python benchmarks/bench_threads.py --size main     # the main job's size (all methods, 3 seeds)
    python benchmarks/bench_threads.py --smoke         # the jobs stop after their checks (--check)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):  # run as a script from anywhere
    if path not in sys.path:
        sys.path.insert(0, path)

from bench_loss import machine_info  # noqa: E402

from pcoh.threads import choose_threads, set_threads  # noqa: E402

SIZES = {
    "tiny": ["--methods", "pc", "--seeds", "1", "--epochs", "1", "--teacher-epochs", "1"],
    "main": [],
}
TARGET_RATIO = 2.2


def _job(folder: Path, args: list) -> list:
    return [sys.executable, "-m", "pcoh", "--quiet", "--cache", str(folder / "cache"), "--output",
            str(folder / "out"), *args]


def run_jobs(k: int, args: list, workdir: Path) -> list:
    """Start ``k`` jobs at once, each in its own fresh folder; their wall times in seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    procs = []
    for _ in range(k):
        folder = Path(tempfile.mkdtemp(dir=workdir))
        procs.append((time.perf_counter(), subprocess.Popen(_job(folder, args), cwd=ROOT, env=env,
                                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    times = []
    for t0, proc in procs:
        out, _ = proc.communicate()
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"bench_threads: a job failed (exit {proc.returncode}):\n{out.decode()[-2000:]}")
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=list(SIZES), default="tiny", help="the jobs' size (default tiny)")
    p.add_argument("--settings", nargs="+", default=["package", "1"],
                   help="thread settings to compare: 'package' (no --threads) or a count (default: package 1)")
    p.add_argument("--smoke", action="store_true", help="jobs that stop after their checks: checks that it runs")
    args = p.parse_args(argv)
    set_threads(choose_threads())  # the header shows the counts a job gets by default
    print(machine_info())
    job_args = SIZES[args.size] + (["--check"] if args.smoke else [])
    print(f"jobs: python -m pcoh {' '.join(job_args) or '(the main job)'}, each with its own empty cache")
    print(f"{'threads':>10} | {'alone s':>8} | {'two together s':>16} | {'ratios':>12} | check (each <= {TARGET_RATIO:g})")
    with tempfile.TemporaryDirectory(prefix="pcoh-threads-") as tmp:
        for setting in args.settings:
            extra = [] if setting == "package" else ["--threads", str(int(setting))]
            alone = run_jobs(1, job_args + extra, Path(tmp))[0]
            pair = run_jobs(2, job_args + extra, Path(tmp))
            ratios = [t / alone for t in pair]
            verdict = "PASS" if max(ratios) <= TARGET_RATIO else "FAIL"
            print(f"{setting:>10} | {alone:8.1f} | {pair[0]:7.1f} {pair[1]:8.1f} | "
                  f"{ratios[0]:5.2f} {ratios[1]:5.2f} | [{verdict}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
