"""Study: the feature queue of ``PerceptionCoherenceLoss`` (``queue_size`` K).

Same data, teachers, students, loop and evaluation as ``benchmarks/study_strength.py`` (read
its docstring): class-unaware ``digits_cnn`` students on the PC loss alone, for each K x batch
size x seed, at one strength (``--strengths``, default: the loss's default). The loop passes the
batch's training-set positions (``indices=``), so a sample is never compared with its own queued
copy, and the loss is told the training-set size (``num_samples``): K larger than the training
set (K = 4096 on the 1,437 digits) is capped at the training set, with a warning.

Usage::

    python benchmarks/study_queue.py --epochs 6 --seeds 0 1 --batches 128 \\
        --queues 0 256 1024 4096 --data digits digits-deformed --jobs 2
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_strength import apply_smoke, common_parser, header, prepare, run_jobs, table  # noqa: E402

from pcoh.losses import PerceptionCoherenceLoss  # noqa: E402


def main(argv=None) -> None:
    p = common_parser(__doc__.split("\n\n")[0])
    p.add_argument("--queues", type=int, nargs="+", default=[0, 256, 1024, 4096])
    p.set_defaults(strengths=[PerceptionCoherenceLoss().regularization_strength], batches=[128])
    args = p.parse_args(argv)
    apply_smoke(args)
    if args.smoke:
        args.queues = [0, 128]
    header(args)
    warnings.filterwarnings("ignore", message="queue_size=.* is larger than the training set")
    print(f"strength {args.strengths}; queue sizes {args.queues} (capped at the training set)")
    t_start = time.perf_counter()
    contexts = {name: prepare(name, args) for name in args.data}
    jobs = [(d, s, b, seed, k, args.epochs, args.device)
            for d in args.data for s in args.strengths for b in args.batches for k in args.queues for seed in args.seeds]
    results = run_jobs(jobs, contexts, args.jobs)
    for d in args.data:
        for s in args.strengths:
            rs = [r for r in results if r["strength"] == s]
            for metric, label in (("pc", "PC_n (test)"), ("knn", "kNN accuracy (k=5, test)")):
                print(f"\n[{d}] strength {s:g}: {label}, mean +- std over seeds {args.seeds}, queue K (rows) x batch (columns)")
                print(table(rs, "queue", "batch", d, metric))
            secs = {k: np.mean([r["seconds"] for r in rs if r["data"] == d and r["queue"] == k]) for k in args.queues}
            print(f"[{d}] mean training seconds per run by K: " + ", ".join(f"{k}: {v:.0f}" for k, v in secs.items()))
    print(f"\ntotal study time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
