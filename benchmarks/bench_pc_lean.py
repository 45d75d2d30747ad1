"""The PC loss against a frozen copy of its previous implementation, forward + backward.

Student width 32 (with gradient), teacher width 128, float32, cosine on both sides, random
features. The previous implementation (``previous_loss`` below, the loss as it was before the
lean rewrite: full masked dissimilarity matrices, standardisation and Pearson correlation with
separate passes) runs in the same process, alternating call by call with the current
``PerceptionCoherenceLoss`` so that machine noise hits both alike. Both use the same soft rank
(``pcoh.ranking.soft_rank``); the previous one at its old default strength 0.03 on z, the current
one at its default on the rank scale (at n = 128 the two are about the same softness).

Prints the median time of each and the median of the per-pair ratios previous / current.

Usage::

    python benchmarks/bench_pc_lean.py --device cpu --sizes 256 512 1024
    python benchmarks/bench_pc_lean.py --device cpu --sizes 256 512 1024 --cpu-time   # shared machine
    python benchmarks/bench_pc_lean.py --device cuda --sizes 1024 4096
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pcoh.dissimilarity import pairwise  # noqa: E402
from pcoh.losses import PerceptionCoherenceLoss, off_diagonal  # noqa: E402
from pcoh.ranking import rank, soft_rank  # noqa: E402


def _row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    tiny = torch.finfo(a.dtype).eps
    return (a * b).sum(dim=1) / (a.norm(dim=1).clamp_min(tiny) * b.norm(dim=1).clamp_min(tiny))


def previous_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 0.03) -> torch.Tensor:
    """The PC loss before the lean rewrite (frozen copy)."""
    d_s = off_diagonal(pairwise(student, "cosine"))
    with torch.no_grad():
        target = rank(off_diagonal(pairwise(teacher, "cosine"))).to(d_s.dtype)
    centred = d_s - d_s.mean(dim=1, keepdim=True)
    var = centred.pow(2).mean(dim=1, keepdim=True)
    ok = var > torch.finfo(d_s.dtype).eps ** 2
    z = torch.where(ok, centred / torch.where(ok, var, torch.ones_like(var)).sqrt(), torch.zeros_like(centred))
    return (1.0 - _row_pearson(soft_rank(z, eps), target)).mean()


def _once(fn, s, t, sync, clock=time.perf_counter) -> float:
    x = s.clone().requires_grad_()
    sync()
    t0 = clock()
    fn(x, t).backward()
    sync()
    return clock() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--repeats", type=int, default=0, help="timed pairs per size (default: 40 / 24 / 14 by size)")
    p.add_argument("--cpu-time", action="store_true",
                   help="CPU only: one thread (torch and numba), timed by the process's CPU time instead of the "
                        "wall clock, which a machine shared with other jobs distorts far less")
    args = p.parse_args(argv)
    clock = time.perf_counter
    if args.cpu_time:
        import numba

        torch.set_num_threads(1)
        numba.set_num_threads(1)
        clock = time.process_time
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    current = PerceptionCoherenceLoss()
    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'process CPU time' if args.cpu_time else 'wall clock'}; "
          f"current default strength {current.regularization_strength}")
    print("| n | previous (ms) | current (ms) | previous / current (median of pairs) |")
    print("|---|---|---|---|")
    res = {}
    for n in args.sizes:
        g = torch.Generator().manual_seed(n)
        s = torch.randn(n, 32, generator=g).to(dev)
        t = torch.randn(n, 128, generator=g).to(dev)
        reps = args.repeats or {256: 40, 512: 24}.get(n, 14)
        a, b = [], []
        for r in range(reps + 2):
            ta, tb = _once(previous_loss, s, t, sync, clock), _once(current, s, t, sync, clock)
            if r >= 2:  # warm-up pairs
                a.append(ta)
                b.append(tb)
        res[n] = (statistics.median(a) * 1e3, statistics.median(b) * 1e3)
        ratio = statistics.median([x / y for x, y in zip(a, b)])
        print(f"| {n} | {res[n][0]:.2f} | {res[n][1]:.2f} | {ratio:.2f} |", flush=True)
    lo, hi = min(res), max(res)
    if lo != hi:
        print(f"growth {lo} -> {hi}: previous {res[hi][0] / res[lo][0]:.1f}x, current {res[hi][1] / res[lo][1]:.1f}x")


if __name__ == "__main__":
    main()
