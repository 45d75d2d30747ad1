"""Step time of the CRD loss (``pcoh.losses.CRDLoss``) beside the PC and PKT losses.

One forward + backward on random features (student width 256 with ``requires_grad``, teacher
width 256: the benchmark's resnet8x4 / resnet32x4 pair), the memory update included, for a
training set of N samples and K negatives. Rows:

- ``crd``: CRDLoss at the benchmark's settings (embed 128, K = 16,384), N = 50,000 (CIFAR-100),
  batch n in {64, 128, 256}; the scores come from one (n, N) matrix product;
- ``crd gathered``: the same loss with N = 2,200,000, larger than (K + 1) * 128, so that the
  (n, K + 1, 128) memory rows are gathered instead (the reference's way);
- ``crd counted``: N = 1,437 (the digits training split) < K + 1, so the sums run over the N
  memory rows weighted by how often each was drawn;
- ``pc`` and ``pkt`` at the same n, for scale.

Times are medians over repeats after warm-ups (CUDA synchronised). Usage::

    python benchmarks/bench_crd.py [--device cuda] [--repeats 20]
    python benchmarks/bench_crd.py --quick    # n = 64 only, no 2.2M-sample memory, 3 repeats
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from pcoh import losses


def _time(fn, device, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _step(loss, n: int, num_samples: int, device):
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(n, 256, generator=gen).to(device).requires_grad_()
    t = torch.randn(n, 256, generator=gen).to(device)
    idx = torch.randperm(num_samples, generator=gen)[:n].to(device)

    def run():
        value = loss(s, t, indices=idx) if loss.needs_indices else loss(s, t)
        value.backward()

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="--quick with one repetition: checks that it runs")
    args = parser.parse_args(argv)
    if args.quick or args.smoke:
        args.quick, args.repeats = True, 1 if args.smoke else 3
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'loss':<14} {'N':>9} {'n':>5} {'ms / step':>10}")
    for n in (64,) if args.quick else (64, 128, 256):
        rows = [("crd", 50_000), ("crd gathered", 2_200_000), ("crd counted", 1_437)]
        if args.quick:
            rows.pop(1)
        for label, num_samples in rows:
            torch.manual_seed(0)
            loss = losses.get("crd", student_dim=256, teacher_dim=256, num_samples=num_samples).to(device)
            ms = 1e3 * _time(_step(loss, n, num_samples, device), device, args.repeats)
            print(f"{label:<14} {num_samples:>9,} {n:>5} {ms:>10.2f}")
            del loss
        for label in ("pc", "pkt"):
            loss = losses.get(label).to(device)
            ms = 1e3 * _time(_step(loss, n, 1, device), device, args.repeats)
            print(f"{label:<14} {'':>9} {n:>5} {ms:>10.2f}")


if __name__ == "__main__":
    main()
