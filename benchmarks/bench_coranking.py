"""Speed of the R_NX curve (:func:`pcoh.coranking.rnx_curve`) on the CPU, beside a reference.

The reference ranks each chunk of rows with ``torch.sort(..., stable=True)`` (the same ties, by
index) and builds the same histogram of the larger rank; both compute the same dissimilarities.
The two are checked to give the same curve, and the ratio ``reference / rnx_curve`` of their
median times is printed (a ratio, never a pass/fail time).

Usage::

    python benchmarks/bench_coranking.py               # N = 10,000, widths 64 and 128, float32
    python benchmarks/bench_coranking.py --n 2000 --repeats 5
    python benchmarks/bench_coranking.py --smoke       # a few hundred points: does it still start?
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pcoh import coranking
from pcoh.rowwise import Rows, chunks, drop_self


def reference_curve(student, teacher, chunk: int = 400) -> np.ndarray:
    """R_NX(K), K = 1..N-2, with torch's stable sort instead of the radix sort."""
    s, t = torch.as_tensor(student), torch.as_tensor(teacher)
    n = len(s)
    rows_s, rows_t = Rows(s, "cosine", "student_metric"), Rows(t, "cosine", "teacher_metric")
    hist = torch.zeros(n, dtype=torch.int64)
    ranks = torch.arange(1, n, dtype=torch.int64)
    for lo, hi in chunks(n, chunk):
        larger = None
        for rows in (rows_s, rows_t):
            order = torch.sort(drop_self(rows(lo, hi), lo), dim=1, stable=True).indices
            r = torch.empty_like(order).scatter_(1, order, ranks.expand(hi - lo, n - 1))
            larger = r if larger is None else torch.maximum(larger, r)
        hist += torch.bincount(larger.ravel(), minlength=n)
    k = np.arange(1, n - 1)
    q_nx = np.cumsum(hist.numpy())[1:n - 1] / (k * float(n))
    return ((n - 1) * q_nx - k) / (n - 1 - k)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few hundred points, one repeat")
    args = parser.parse_args(argv)
    n, repeats = (300, 1) if args.smoke else (args.n, args.repeats)
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(n, 128)).astype(np.float32)
    student = (teacher[:, :64] + 0.5 * rng.normal(size=(n, 64))).astype(np.float32)
    coranking.rnx_curve(student[:50], teacher[:50])  # compile (cached on disk after the first run)
    ours = coranking.rnx_curve(student, teacher).r_nx
    ref = reference_curve(student, teacher)
    same = np.array_equal(ours, ref)
    print(f"N = {n}, torch threads {torch.get_num_threads()}: same curve as the reference: {'PASS' if same else 'FAIL'}")
    t_ours = _median_time(lambda: coranking.rnx_curve(student, teacher), repeats)
    t_ref = _median_time(lambda: reference_curve(student, teacher), repeats)
    print(f"rnx_curve {t_ours:.2f} s, reference (torch.sort) {t_ref:.2f} s, reference/rnx_curve {t_ref / t_ours:.2f} "
          f"(medians of {repeats})")


if __name__ == "__main__":
    main()
