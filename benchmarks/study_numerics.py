"""Study: do the main job's verdicts survive different numerics on one machine?

Another machine runs the same code with other floating-point reductions (another instruction set,
another thread count); over hundreds of optimiser steps training amplifies their last bits, so
every network differs. This study makes that happen on one machine: it runs the main job's
comparison twice, each time from an empty run cache of its own, once with ``torch`` on 1 thread
and once on 2 (intra-op reductions are split differently), and optionally (``--perturb EPS``) with
every input pixel of the second run moved by a relative ``EPS`` (1e-6: far below any image's
information, larger than a float32 rounding step, so at least as large as what another machine
changes in the first step); ``--threads 1 1 --perturb 1e-6`` tries the perturbation alone. It prints, per compared measure, both
verdict tables (``pcoh.stats.verdicts``: best other method, verdict, best mark), how far the
numbers moved, and whether the verdict tables are equal; exit status 1 if any verdict differs.

The first run is the reference: ``pcoh.stats.compare_runs`` checks the second against it, as
``python -m pcoh --compare`` does for a user's run against the committed results.

Usage (the full main job twice: about twice its cost)::

    python benchmarks/study_numerics.py --work /tmp/numerics
    python benchmarks/study_numerics.py --work /tmp/numerics --methods pc pkt fitnet --seeds 3   # smaller
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pcoh import methods as _methods  # noqa: E402
from pcoh.experiment import ExperimentConfig, run_experiment  # noqa: E402
from pcoh.stats import compare_runs, paired_comparison, verdicts  # noqa: E402
from pcoh.tables import CHECKED_METRICS, COMPARED_METRICS, compare_report  # noqa: E402


def _run(cfg: ExperimentConfig, threads: int, perturb: float) -> pd.DataFrame:
    torch.set_num_threads(threads)
    if perturb:
        # The inputs, moved by a relative perturb: a different machine's numerics at the very start.
        from pcoh import data as _data

        original = _data.load

        def load(*args, **kwargs):
            split = original(*args, **kwargs)
            gen = torch.Generator().manual_seed(12345)
            for ds in (split.train, split.test):
                x = ds.tensors[0]
                x.mul_(1 + perturb * (2 * torch.rand(x.shape, generator=gen) - 1))
            return split

        _data.load = load
        try:
            return run_experiment(cfg, quiet=True, write=False).results
        finally:
            _data.load = original
    return run_experiment(cfg, quiet=True, write=False).results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", help="folder of the two runs' caches (each starts empty; required but with --smoke)")
    p.add_argument("--smoke", action="store_true", help="does it still start? two methods, two seeds, one epoch, "
                   "class-unaware, in a temporary folder")
    p.add_argument("--methods", nargs="+", default=None, help="methods (default: the main job's)")
    p.add_argument("--seeds", type=int, default=None, help="seeds (default: the main job's)")
    p.add_argument("--modes", nargs="+", default=None, help="modes (default: both)")
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: the main job's)")
    p.add_argument("--teacher-epochs", type=int, default=None, help="teacher epochs (default: the main job's)")
    p.add_argument("--split", choices=["per-seed", "fixed"], default=None)
    p.add_argument("--perturb", type=float, default=0.0, help="relative input perturbation of the second run")
    p.add_argument("--threads", type=int, nargs=2, default=[1, 2], metavar=("FIRST", "SECOND"),
                   help="torch threads of the two runs (default 1 2; 1 1 with --perturb: the perturbation alone)")
    args = p.parse_args(argv)
    if args.smoke:
        import tempfile

        args.work = args.work or tempfile.mkdtemp(prefix="pcoh-study-numerics-")
        args.methods, args.seeds, args.modes = ["pc", "pkt"], 2, ["class-unaware"]
        args.epochs, args.teacher_epochs = 1, 1
    if args.work is None:
        p.error("--work is required (or --smoke)")
    work = Path(args.work)
    changes = {}
    if args.methods:
        changes["methods"] = tuple(args.methods)
    if args.seeds:
        changes["seeds"] = args.seeds
    if args.split:
        changes["split"] = args.split
    if args.modes:
        changes["modes"] = tuple(args.modes)
    base = ExperimentConfig(**changes)
    if args.epochs:
        base = dataclasses.replace(base, student_train=dataclasses.replace(base.student_train, epochs=args.epochs))
    if args.teacher_epochs:
        base = dataclasses.replace(base, teacher_train=dataclasses.replace(base.teacher_train,
                                                                           epochs=args.teacher_epochs))
    frames, times = [], []
    labels = [f"run {i} ({t} thread{'s' if t > 1 else ''}{', perturbed' if i and args.perturb else ''})"
              for i, t in enumerate(args.threads)]
    for i, (threads, perturb) in enumerate([(args.threads[0], 0.0), (args.threads[1], args.perturb)]):
        cfg = dataclasses.replace(base, cache=str(work / f"cache-{i}"), output=str(work / f"out-{i}"))
        start = time.perf_counter()
        frames.append(_run(cfg, threads, perturb))
        times.append(time.perf_counter() - start)
        print(f"run {i}: torch threads {threads}, input perturbation {perturb:g}: {times[-1]:.0f} s", flush=True)
    a, b = frames
    metrics = [m for m in CHECKED_METRICS if m in a.columns and a[m].notna().any()]
    numbers, _ = compare_runs(b, a, metrics)
    students = [f[~f["method"].isin(list(_methods.REFERENCES))] for f in frames]
    equal = True
    for metric in COMPARED_METRICS:
        va, vb = (verdicts(paired_comparison(f, metric)) for f in students)
        same = va.equals(vb)
        equal &= same
        print(f"\n### {metric}: verdict tables {'equal' if same else 'DIFFERENT'}\n")
        both = va.merge(vb, on=["student", "mode", "method"], suffixes=(f" [{labels[0]}]", f" [{labels[1]}]"))
        print(both.to_string(index=False))
    moved = numbers.groupby("metric")["difference"].apply(lambda d: d.abs().max())
    print("\nlargest |difference| of a mean between the two runs, per measure:")
    print(moved.round(4).to_string())
    _, changed = compare_runs(students[1], students[0], [m for m in COMPARED_METRICS if m in metrics])
    print()
    print(compare_report(numbers, changed, reference=labels[0]))
    print(f"\nverdict tables {'equal' if equal else 'DIFFERENT'} under different numerics")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
