"""Speed and memory of the perception-coherence (PC) loss and of the coherence measures.

Table 1 -- forward + backward of the PC loss (``pcoh.losses.PerceptionCoherenceLoss``) on random
features (student width 32 with ``requires_grad``, teacher width 128, float32, CPU) for
n in {64, ..., 1024}, beside

- ``naive``: the same loss structure (pairwise cosine dissimilarities, self pairs removed, per-row
  z-standardisation, Pearson with hard teacher ranks) but with the O(n^3) pairwise-sigmoid soft
  rank :func:`soft_rank_naive`, built as an (n, n-1, n-1) tensor;
- ``RKD`` and ``PKT`` (``pcoh.losses.RKDLoss`` / ``PKTLoss``) on the same features;
- ``torchsort.soft_rank`` in the PC structure, when ``import torchsort`` works.

Times are medians of repeats after warm-ups. Peak memory is *measured*: each (method, n) runs in
a fresh subprocess with glibc's dynamic mmap threshold disabled (``MALLOC_MMAP_THRESHOLD_``), so
large buffers are returned to the OS when freed and the resident set follows live memory. After
one warm-up pass at the same n the child resets its resident-set high-water mark
(``/proc/self/clear_refs``), reads ``VmRSS``, runs one forward + backward and reads ``VmHWM``;
the reported peak is ``VmHWM - VmRSS``: every byte touched during the pass (autograd graph,
temporaries, numpy buffers of the PAV kernel), the input features excluded. A calibration row
(a tensor of known size) is printed with it.

Table 2 -- the coherence measures of :mod:`pcoh.coherence` on N = 10,000 points.

Usage::

    .venv/bin/python benchmarks/bench_loss.py            # full run
    .venv/bin/python benchmarks/bench_loss.py --quick    # reduced sizes, fewer repeats
    .venv/bin/python benchmarks/bench_loss.py --profile  # also profile the PC loss at the largest n

The checks print PASS/FAIL and never change the exit status.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from pcoh import coherence  # noqa: E402
from pcoh.dissimilarity import pairwise  # noqa: E402
from pcoh.losses import PerceptionCoherenceLoss, PKTLoss, RKDLoss, off_diagonal  # noqa: E402
from pcoh.ranking import rank  # noqa: E402

try:  # optional comparison; not a dependency of the project
    import torchsort  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    torchsort = None

STUDENT_DIM = 32
TEACHER_DIM = 128
MIB = 1024.0 * 1024.0

# Targets (brief of the benchmark).
TARGET_NAIVE_OVER_PC_AT_256 = 15.0
TARGET_SCALING_1024_OVER_256 = 20.0
TARGET_PC_1024_MS = 200.0
TARGET_COHERENCE_S = 10.0


# ----------------------------------------------------------------------------- reference
def soft_rank_naive(z: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Pairwise-sigmoid soft ranks of each row: ``0.5 + sum_k sigmoid((z_j - z_k) / tau)``.

    The ``k = j`` term is ``sigmoid(0) = 1/2``, so a row's ranks approach ``1, ..., m`` as
    ``tau -> 0``. Materialises the (rows, m, m) tensor of differences: O(m^2) time and memory
    per row, O(n^3) for the n rows of a batch.
    """
    diff = (z.unsqueeze(-1) - z.unsqueeze(-2)) / tau  # (rows, m, m): [r, j, k] = z_j - z_k
    return 0.5 + torch.sigmoid(diff).sum(dim=-1)


def _row_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    tiny = torch.finfo(a.dtype).eps
    return (a * b).sum(dim=1) / (a.norm(dim=1).clamp_min(tiny) * b.norm(dim=1).clamp_min(tiny))


def _pc_structure(student: torch.Tensor, teacher: torch.Tensor, soft, tau: float) -> torch.Tensor:
    """The PC loss of ``pcoh.losses`` with the soft rank ``soft(z, tau)`` swapped in."""
    d_s = off_diagonal(pairwise(student, "cosine"))
    with torch.no_grad():
        target = rank(off_diagonal(pairwise(teacher, "cosine"))).to(d_s.dtype)
    centred = d_s - d_s.mean(dim=1, keepdim=True)
    scale = centred.pow(2).mean(dim=1, keepdim=True).sqrt()
    z = centred / scale.clamp_min(torch.finfo(d_s.dtype).eps)
    return (1.0 - _row_pearson(soft(z, tau), target)).mean()


def make_method(name: str):
    """``fn(student, teacher) -> scalar loss`` for a method name of table 1."""
    if name == "pc":
        return PerceptionCoherenceLoss()
    tau = PerceptionCoherenceLoss().regularization_strength  # same strength on the same z
    if name == "naive":
        return lambda s, t: _pc_structure(s, t, soft_rank_naive, tau)
    if name == "torchsort":
        return lambda s, t: _pc_structure(s, t, lambda z, e: torchsort.soft_rank(z, regularization_strength=e), tau)
    if name == "rkd":
        return RKDLoss()
    if name == "pkt":
        return PKTLoss()
    raise ValueError(name)


def make_features(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(n, TEACHER_DIM, generator=g)
    student = torch.randn(n, STUDENT_DIM, generator=g).requires_grad_(True)
    return student, teacher


# ----------------------------------------------------------------------------- timing
def _step(fn, s, t) -> float:
    s.grad = None
    t0 = time.perf_counter()
    loss = fn(s, t)
    loss.backward()
    return time.perf_counter() - t0


def time_methods(fns: dict, s, t, repeats: int, warmup: int, slow_s: float = 1.0, slow_repeats: int = 3) -> dict:
    """Interleaved timing of several methods on the same inputs.

    Each method gets ``warmup`` passes, except that one whose first pass takes more than ``slow_s``
    seconds gets only that one and ``min(repeats, slow_repeats)`` timed passes. The timed passes
    run in rounds, one pass of each method per round (order rotated), so that a burst of load
    from other processes hits all methods alike. Returns {name: list of seconds}.
    """
    reps = {}
    for name, fn in fns.items():
        first = _step(fn, s, t)
        if first > slow_s:
            reps[name] = min(repeats, slow_repeats)
            continue
        reps[name] = repeats
        for _ in range(warmup - 1):
            _step(fn, s, t)
    out: dict = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if len(out[name]) < reps[name]:
                out[name].append(_step(fns[name], s, t))
    return out


# ----------------------------------------------------------------------------- memory
def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # Linux >= 4.0: reset the peak resident set size (VmHWM) to the current one


def _memory_child(method: str, n: int, seed: int) -> dict:
    """Run inside a fresh process: resident-set growth of one forward + backward."""
    if method == "calibrate":
        # A known allocation: a float32 tensor of n MiB, written (so its pages are resident).
        torch.ones(1 << 16).sum()  # warm-up: first-op initialisation, as for the methods
        gc.collect()
        _reset_hwm()
        base = _proc_status_kib("VmRSS")
        x = torch.ones(n * 262144)  # n * 2^18 floats = n MiB
        peak = _proc_status_kib("VmHWM")
        del x
        return {"peak_bytes": (peak - base) * 1024}
    fn = make_method(method)
    s, t = make_features(n, seed)
    s.grad = None
    fn(s, t).backward()  # warm-up: lazy imports, numba cache load, OpenMP threads
    s.grad = None
    gc.collect()
    _reset_hwm()
    base = _proc_status_kib("VmRSS")
    loss = fn(s, t)
    loss.backward()
    peak = _proc_status_kib("VmHWM")
    return {"peak_bytes": (peak - base) * 1024}


def measure_memory(method: str, n: int, seed: int, timeout: float = 900.0) -> float | None:
    """Peak MiB of one forward + backward of ``method`` at ``n``, in a fresh subprocess."""
    env = dict(os.environ)
    # Fixed thresholds disable glibc's dynamic mmap threshold: every buffer above 64 KiB is its own
    # mapping and goes back to the OS on free, so VmRSS follows the live allocations.
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["MALLOC_TRIM_THRESHOLD_"] = "131072"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_memory-child", method, str(n), "--seed", str(seed)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        print(f"  [memory {method} n={n} failed: {type(err).__name__}: {getattr(err, 'stderr', '')!s:.300}]")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"] / MIB


# ----------------------------------------------------------------------------- table 1
def _fmt(x, spec: str = ".1f", width: int = 9) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}{spec}}"


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"
    except OSError:  # pragma: no cover
        return "?"


def machine_info() -> str:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    load = _load()
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    try:
        import numba

        numba_v = numba.__version__
    except ImportError:  # pragma: no cover
        numba_v = "not installed (PAV runs in pure Python)"
    return (
        f"machine : {platform.platform()} | {cpu}\n"
        f"cpus    : os.cpu_count()={os.cpu_count()}, usable={affinity}, load average={load}\n"
        f"software: python {platform.python_version()}, torch {torch.__version__} "
        f"(intra-op threads {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}), "
        f"numpy {np.__version__}, numba {numba_v}"
    )


def table_loss(args) -> dict:
    methods = ["pc", "naive", "rkd", "pkt"] + (["torchsort"] if torchsort is not None else [])
    times: dict = {m: {} for m in methods}
    passes: dict = {m: {} for m in methods}
    mins: dict = {m: {} for m in methods}
    mem: dict = {m: {} for m in methods}
    notes: list[str] = []
    budget_mib = args.max_mem_gib * 1024.0
    print(f"\nTable 1: loss forward + backward, student {STUDENT_DIM}-d (requires_grad), teacher {TEACHER_DIM}-d, "
          f"float32, CPU, random N(0, 1) features; soft-rank strength {PerceptionCoherenceLoss().regularization_strength} "
          f"for PC and naive")
    print(f"  time: median of {args.repeats} passes after {args.warmup} warm-ups (methods whose first pass "
          f"exceeds 1 s: median of 3 after 1 warm-up); passes of the methods interleaved round by round")
    if torchsort is None:
        print("  torchsort: not importable (ImportError), column omitted")

    if args.memory:
        cal = measure_memory("calibrate", 64, args.seed)
        print(f"  memory: peak resident-set growth of one forward + backward in a fresh subprocess per (method, n) "
              f"(VmHWM - VmRSS after a warm-up pass and a /proc/self/clear_refs reset, glibc mmap threshold fixed "
              f"at 64 KiB); inputs excluded. Calibration: a 64 MiB tensor measures {_fmt(cal, '.1f', 0)} MiB.")

    for n in args.sizes:
        s, t = make_features(n, args.seed)
        fns = {}
        for m in methods:
            cubic = m in ("naive", "rkd")
            skip = None
            if m == "naive" and n > args.naive_max_n:
                skip = f"naive skipped for n > {args.naive_max_n} (--naive-max-n): its (n, n-1, n-1) float32 tensor " \
                       f"alone is {n * (n - 1) ** 2 * 4 / 2**30:.1f} GiB at n={n}, several live at once in backward"
            if skip is None and cubic:
                # O(n^3) memory: extrapolate the largest measured peak cubically and skip over budget.
                known = [(k, v) for k, v in mem[m].items() if v is not None and k < n]
                if known:
                    k, v = max(known)
                    estimate = v * (n / k) ** 3
                    if estimate > budget_mib:
                        skip = (f"{m} skipped at n={n}: peak extrapolated from n={k} ({v:.0f} MiB x (n/{k})^3) "
                                f"is {estimate / 1024:.1f} GiB > --max-mem-gib {args.max_mem_gib:g}")
            if skip is not None:
                notes.append(skip)
                times[m][n] = mem[m][n] = None
                continue
            fns[m] = make_method(m)
        samples = time_methods(fns, s, t, args.repeats, args.warmup)
        del s, t
        gc.collect()
        for m, ts in samples.items():
            times[m][n] = statistics.median(ts)
            mins[m][n] = min(ts)
            passes[m][n] = len(ts)
            mem[m][n] = measure_memory(m, n, args.seed) if args.memory else None
            print(f"  n={n:5d} {m:9s} median {times[m][n] * 1e3:9.2f} ms, min {min(ts) * 1e3:9.2f} ms, "
                  f"max {max(ts) * 1e3:9.2f} ms ({len(ts)} passes)"
                  + (f", peak {mem[m][n]:.1f} MiB" if mem[m][n] is not None else ""), flush=True)

    print()
    head = f"{'n':>5} | {'PC ms':>9} {'naive ms':>9} {'naive/PC':>9} {'RKD ms':>9} {'PKT ms':>9}"
    if torchsort is not None:
        head += f" {'tsort ms':>9}"
    head += f" | {'PC MiB':>9} {'naive MiB':>9} {'RKD MiB':>9} {'PKT MiB':>9}"
    print(head)
    print("-" * len(head))
    for n in args.sizes:
        ratio = times["naive"][n] / times["pc"][n] if times["naive"].get(n) else None
        ms = lambda m: times[m][n] * 1e3 if times[m].get(n) is not None else None  # noqa: E731
        row = f"{n:>5} | {_fmt(ms('pc'), '.2f')} {_fmt(ms('naive'), '.1f')} {_fmt(ratio, '.1f')} {_fmt(ms('rkd'), '.1f')} {_fmt(ms('pkt'), '.2f')}"
        if torchsort is not None:
            row += f" {_fmt(ms('torchsort'), '.2f')}"
        row += f" | {_fmt(mem['pc'].get(n), '.1f')} {_fmt(mem['naive'].get(n), '.1f')} {_fmt(mem['rkd'].get(n), '.1f')} {_fmt(mem['pkt'].get(n), '.1f')}"
        print(row)
    if not args.memory:
        print("(memory columns '-': --no-memory)")
    for note in notes:
        print(f"'-': {note}")

    print("\nChecks (table 1), on the medians of the table, then (min) on the fastest pass of each method "
          "(less sensitive to load from other processes):")
    for label, stat in (("median", times), ("min", mins)):
        pc = stat["pc"]
        tag = "" if label == "median" else "  (min) "
        if pc.get(256) and stat["naive"].get(256):
            r = stat["naive"][256] / pc[256]
            print(f"  {tag}[{'PASS' if r >= TARGET_NAIVE_OVER_PC_AT_256 else 'FAIL'}] n=256: PC is {r:.1f}x faster than "
                  f"naive (target >= {TARGET_NAIVE_OVER_PC_AT_256:g}x)")
        else:
            print(f"  {tag}[SKIP] n=256 PC vs naive: not measured")
        if pc.get(1024) and pc.get(256):
            r = pc[1024] / pc[256]
            print(f"  {tag}[{'PASS' if r < TARGET_SCALING_1024_OVER_256 else 'FAIL'}] PC time(1024)/time(256) = {r:.1f} "
                  f"(target < {TARGET_SCALING_1024_OVER_256:g}; n^2 would give 16, n^2 log n 20)")
        else:
            print(f"  {tag}[SKIP] PC time(1024)/time(256): not measured")
        if pc.get(1024):
            v = pc[1024] * 1e3
            print(f"  {tag}[{'PASS' if v < TARGET_PC_1024_MS else 'FAIL'}] PC at n=1024: {v:.1f} ms "
                  f"(target < {TARGET_PC_1024_MS:g} ms)")
        else:
            print(f"  {tag}[SKIP] PC at n=1024: not measured")
    return {"times": times, "mem": mem}


# ----------------------------------------------------------------------------- table 2
def table_coherence(args) -> None:
    N = args.coherence_n
    g = torch.Generator().manual_seed(args.seed)
    teacher = torch.randn(N, TEACHER_DIM, generator=g)
    # A student related to the teacher (a random linear map plus noise), so correlations are non-trivial.
    proj = torch.randn(TEACHER_DIM, STUDENT_DIM, generator=g) / TEACHER_DIM**0.5
    student = teacher @ proj + 0.5 * torch.randn(N, STUDENT_DIM, generator=g)
    refs = np.arange(0, N, max(1, N // 100))[:100]
    values = {}

    def spearman():
        values["rho"] = coherence.per_reference_spearman(student, teacher)
        return values["rho"]

    cases = [
        ("per_reference_spearman", spearman),
        ("per_reference_kendall (n_pairs='auto')", lambda: coherence.per_reference_kendall(student, teacher)),
        ("concordance_probability (n_pairs='auto')", lambda: coherence.concordance_probability(student, teacher)),
        ("global_spearman (n_pairs='auto')", lambda: coherence.global_spearman(student, teacher)),
        ("neighbor_overlap (k=10)", lambda: coherence.neighbor_overlap(student, teacher)),
        (f"probabilistic_ranks ({len(refs)} references, teacher)", lambda: coherence.probabilistic_ranks(teacher, references=refs)),
        ("bootstrap_ci (mean of the N rhos, 2000 resamples)",
         lambda: coherence.bootstrap_ci(values["rho"] if "rho" in values else coherence.per_reference_spearman(student, teacher))),
    ]
    print(f"\nTable 2: coherence measures on N = {N:,} points, student {STUDENT_DIM}-d, teacher {TEACHER_DIM}-d, "
          f"float32, cosine both; median of {args.coherence_repeats} run(s)")
    print(f"{'measure':<52} {'seconds':>9}  check (< {TARGET_COHERENCE_S:g} s)")
    print("-" * 78)
    for name, fn in cases:
        ts = []
        for _ in range(args.coherence_repeats):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        sec = statistics.median(ts)
        print(f"{name:<52} {sec:9.2f}  {'PASS' if sec < TARGET_COHERENCE_S else 'FAIL'}", flush=True)
    if N != 10_000:
        print(f"(N = {N:,}, not the target's 10,000: the checks above are indicative only)")


# ----------------------------------------------------------------------------- profile
# Diagnostics for ``--profile``: where the time of the PC loss goes, and a prototype of a faster
# soft rank (benchmark-only code; the package does not use it).
def _median_ms(samples) -> str:
    return f"{statistics.median(samples) * 1e3:9.2f} ms (min {min(samples) * 1e3:8.2f})"


def _stage_breakdown(n: int, seed: int, repeats: int) -> None:
    """Median time of each step of PerceptionCoherenceLoss._loss at n, replayed step by step."""
    from pcoh.losses import _check_batch
    from pcoh.ranking import _block_mean, _check_2d_finite, _pav_decreasing

    strength = PerceptionCoherenceLoss().regularization_strength
    s, t = make_features(n, seed)
    loss_fn = make_method("pc")
    stages: dict = {}

    def lap(name, t0):
        now = time.perf_counter()
        stages.setdefault(name, []).append(now - t0)
        return time.perf_counter()

    for rep in range(repeats + 2):
        t0 = time.perf_counter()
        _check_batch(s, t, 3)
        t0 = lap("input checks (isfinite of both inputs)", t0)
        d_s = off_diagonal(pairwise(s, "cosine"))
        t0 = lap("student cosine pairwise + off_diagonal", t0)
        with torch.no_grad():
            d_t = off_diagonal(pairwise(t, "cosine"))
            t0 = lap("teacher cosine pairwise + off_diagonal", t0)
            target = rank(d_t).to(d_s.dtype)
            t0 = lap("teacher rank() (isfinite check, int-key sort, scatter)", t0)
        centred = d_s - d_s.mean(dim=1, keepdim=True)
        z = centred / centred.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(torch.finfo(d_s.dtype).eps)
        t0 = lap("per-row z-standardisation", t0)
        with torch.no_grad():
            _check_2d_finite(z, "values")
            t0 = lap("soft_rank: isfinite check of z", t0)
            scaled = z / strength
            sorted_vals, perm = torch.sort(scaled, dim=-1, descending=True)
            t0 = lap("soft_rank: float torch.sort (descending)", t0)
            m = z.shape[1]
            y = (sorted_vals.to(torch.float64) - torch.arange(m, 0, -1, dtype=torch.float64)).numpy()
            fit, start, end = np.empty_like(y), np.empty(y.shape, np.int64), np.empty(y.shape, np.int64)
            t0 = lap("soft_rank: float64 copy - rho, numpy buffers", t0)
            _pav_decreasing(np.ascontiguousarray(y), fit, start, end)
            t0 = lap("soft_rank: PAV kernel (numba, 1 thread)", t0)
            primal = sorted_vals - torch.from_numpy(fit).to(z.dtype)
            ranks = torch.empty_like(primal).scatter_(-1, perm, primal)
            t0 = lap("soft_rank: fit to float32, subtract, scatter", t0)
            corr = _row_pearson(ranks, target)
            (1.0 - corr).mean()
            t0 = lap("Pearson + mean", t0)
            g = torch.randn(n, m)
            start_t, end_t = torch.from_numpy(start), torch.from_numpy(end)
            t0 = time.perf_counter()
            gs = g.gather(-1, perm)
            gs = gs - _block_mean(gs, start_t, end_t)
            torch.empty_like(gs).scatter_(-1, perm, gs) / strength
            t0 = lap("soft_rank backward replica (gather, cumsum, 2 gathers, scatter)", t0)
        s.grad = None
        t0 = time.perf_counter()
        loss = loss_fn(s, t)
        t0 = lap("= whole forward (the real loss)", t0)
        loss.backward()
        lap("= whole backward (the real loss)", t0)
    print(f"\nStage breakdown of PerceptionCoherenceLoss forward/backward at n={n} "
          f"(steps replayed one by one; median of {repeats} after 2 warm-ups, {torch.get_num_threads()} threads)")
    for name, v in stages.items():
        print(f"  {name:<66} {_median_ms(v[2:])}")


try:
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

if _numba is not None:
    @_numba.njit(nogil=True, cache=False)
    def _proto_forward(scaled, perm_asc, out, block_start):  # pragma: no cover - numba
        """PAV on the values taken in decreasing order straight from ``scaled`` through ``perm_asc``
        (an ascending argsort, read backwards); writes the soft ranks in the original order.
        A descending permutation is passed reversed (``perm[:, ::-1]``, a view)."""
        rows, m = scaled.shape
        starts = np.empty(m, np.int64)
        sums = np.empty(m, np.float64)
        counts = np.empty(m, np.float64)
        for r in range(rows):
            top = -1
            for i in range(m):
                top += 1
                starts[top] = i
                sums[top] = np.float64(scaled[r, perm_asc[r, m - 1 - i]]) - (m - i)
                counts[top] = 1.0
                while top > 0 and sums[top - 1] * counts[top] <= sums[top] * counts[top - 1]:
                    sums[top - 1] += sums[top]
                    counts[top - 1] += counts[top]
                    top -= 1
            for b in range(top + 1):
                mean = sums[b] / counts[b]
                lo = starts[b]
                hi = starts[b + 1] if b < top else m
                for i in range(lo, hi):
                    p = perm_asc[r, m - 1 - i]
                    out[r, p] = scaled[r, p] - mean
                    block_start[r, i] = lo

    @_numba.njit(nogil=True, cache=False)
    def _proto_backward(g, perm_asc, block_start, inv_strength, grad):  # pragma: no cover - numba
        rows, m = g.shape
        for r in range(rows):
            i = 0
            while i < m:
                lo = block_start[r, i]
                j = i
                acc = 0.0
                while j < m and block_start[r, j] == lo:
                    acc += g[r, perm_asc[r, m - 1 - j]]
                    j += 1
                mean = acc / (j - i)
                for k in range(i, j):
                    p = perm_asc[r, m - 1 - k]
                    grad[r, p] = (g[r, p] - mean) * inv_strength
                i = j


class _ProtoSoftRank(torch.autograd.Function):
    """Prototype (CPU, float32/64): a sort + one fused numba pass forward and one backward.

    Same projection as ``pcoh.ranking._SoftRank``; saves an int64 permutation and an int32 block
    start per element (24 -> 12 bytes) and builds no float64 copies. ``sort``: ``"numpy"``
    (np.argsort, SIMD quicksort, 1 thread) or ``"intkey"`` (torch.sort of the integer keys of
    ``-values``, as ``pcoh.ranking.rank`` does).
    """

    @staticmethod
    def forward(ctx, values, strength, sort="intkey"):
        from pcoh.ranking import _order_keys

        scaled = (values / strength).contiguous()
        x = scaled.numpy()
        if sort == "numpy":
            perm = np.argsort(x, axis=-1)  # ascending
        else:
            perm = torch.sort(_order_keys(-scaled), dim=-1).indices.numpy()[:, ::-1]  # ascending view
        out = torch.empty_like(scaled)
        block_start = np.empty(x.shape, np.int32)
        _proto_forward(x, perm, out.numpy(), block_start)
        ctx.strength = strength
        ctx.perm, ctx.block_start = perm, block_start
        return out

    @staticmethod
    def backward(ctx, grad_output):
        g = grad_output.contiguous()
        grad = torch.empty_like(g)
        _proto_backward(g.numpy(), ctx.perm, ctx.block_start, 1.0 / ctx.strength, grad.numpy())
        return grad, None, None


def _sort_and_prototype(n: int, seed: int, repeats: int) -> None:
    from pcoh.ranking import _order_keys, soft_rank

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, n - 1, generator=g)
    w = torch.randn(n, n - 1, generator=g)
    x = z.numpy()
    sorts = {
        "torch.sort float32, descending (soft_rank today)": lambda: torch.sort(z, dim=-1, descending=True),
        "torch.sort of int keys (rank() today)": lambda: torch.sort(_order_keys(z), dim=-1),
        "np.argsort float32, axis=-1 (quicksort, SIMD)": lambda: np.argsort(x, axis=-1),
    }
    times: dict = {k: [] for k in sorts}
    for rep in range(repeats + 1):
        for k, f in sorts.items():
            t0 = time.perf_counter()
            f()
            if rep:
                times[k].append(time.perf_counter() - t0)
    print(f"\nSorting one ({n}, {n - 1}) float32 matrix row-wise (median of {repeats})")
    for k, v in times.items():
        print(f"  {k:<66} {_median_ms(v)}")
    if _numba is None:
        print("  (numba missing: prototype skipped)")
        return

    strength = PerceptionCoherenceLoss().regularization_strength

    def run(fn):
        v = z.clone().requires_grad_(True)
        t0 = time.perf_counter()
        out = fn(v)
        t1 = time.perf_counter()
        out.backward(w)
        return out.detach(), v.grad, t1 - t0, time.perf_counter() - t1

    variants = {
        "pcoh.ranking.soft_rank (today)": lambda v: soft_rank(v, strength),
        "prototype: int-key torch.sort + fused numba fwd/bwd": lambda v: _ProtoSoftRank.apply(v, strength, "intkey"),
        "prototype: np.argsort + fused numba fwd/bwd": lambda v: _ProtoSoftRank.apply(v, strength, "numpy"),
    }
    ref = run(variants["pcoh.ranking.soft_rank (today)"])
    rel = dgrad = 0.0
    for k in list(variants)[1:]:
        got = run(variants[k])
        rel = max(rel, ((got[0] - ref[0]).abs().max() / ref[0].abs().max()).item())
        dgrad = max(dgrad, (got[1] - ref[1]).abs().max().item())
    fwd: dict = {k: [] for k in variants}
    bwd: dict = {k: [] for k in variants}
    for _ in range(repeats):
        for k, f in variants.items():
            _, _, a, b = run(f)
            fwd[k].append(a)
            bwd[k].append(b)
    print(f"\nsoft rank of a ({n}, {n - 1}) float32 matrix, strength {strength}: forward / backward, median of {repeats}")
    for k in variants:
        print(f"  {k:<56} fwd {_median_ms(fwd[k])}  bwd {_median_ms(bwd[k])}")
    print(f"  prototypes vs today: max |diff| of soft ranks / max |rank| = {rel:.1e} (float32 rounding: today rounds "
          f"the float64 fit to float32 before subtracting), max |diff| of gradients = {dgrad:.1e}")


if _numba is not None:
    @_numba.njit(nogil=True, parallel=True, cache=False)
    def _proto_average_ranks(keys, perm, out):  # pragma: no cover - numba
        """Average ranks from row-sorted keys and their permutation: one pass, ties included."""
        rows, m = keys.shape
        for r in _numba.prange(rows):
            i = 0
            while i < m:
                j = i + 1
                while j < m and keys[r, j] == keys[r, i]:
                    j += 1
                value = 0.5 * (i + j + 1)  # mean of the positions i + 1 ... j
                for k in range(i, j):
                    out[r, perm[r, k]] = value
                i = j


def _coherence_breakdown(N: int, seed: int, repeats: int = 3) -> None:
    """Where per_reference_spearman and neighbor_overlap spend their time, on one chunk at N."""
    from pcoh.ranking import _order_keys

    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(N, TEACHER_DIM, generator=g)
    student = teacher @ (torch.randn(TEACHER_DIM, STUDENT_DIM, generator=g) / TEACHER_DIM**0.5)
    student = student + 0.5 * torch.randn(N, STUDENT_DIM, generator=g)
    chunk = coherence._check_chunk(None, N)
    n_chunks = -(-N // chunk)
    rows_s = coherence._Rows(student, "cosine", "student_metric")
    rows_t = coherence._Rows(teacher, "cosine", "teacher_metric")
    ds, dt = rows_s(0, chunk), rows_t(0, chunk)
    a, b = coherence._drop_self(ds, 0), coherence._drop_self(dt, 0)
    keys_t = torch.sort(_order_keys(b), dim=-1).values
    tie_rows = (keys_t[:, 1:] == keys_t[:, :-1]).any(dim=1).double().mean().item()
    cols = torch.arange(N - 1).expand(chunk, N - 1)
    gather_idx = cols + (cols >= torch.arange(chunk)[:, None])

    def proto_rank(v):
        keys, perm = torch.sort(_order_keys(v), dim=-1)
        out = torch.empty(v.shape, dtype=v.dtype)
        _proto_average_ranks(keys.numpy(), perm.numpy(), out.numpy())
        return out

    steps = {
        "dissimilarity rows, both sides (_Rows)": lambda: (rows_s(0, chunk), rows_t(0, chunk)),
        "_drop_self, both sides (boolean mask)": lambda: (coherence._drop_self(ds, 0), coherence._drop_self(dt, 0)),
        "  alternative: gather with a precomputed index": lambda: (ds.gather(1, gather_idx), dt.gather(1, gather_idx)),
        "rank(), both sides": lambda: (rank(a), rank(b)),
        "  of which: torch.sort of the int keys": lambda: (torch.sort(_order_keys(a), dim=-1), torch.sort(_order_keys(b), dim=-1)),
        "_row_pearson of the ranks": lambda: coherence._row_pearson(a, b),
        "neighbor_overlap: stable float sort, both sides": lambda: (torch.sort(ds, dim=1, stable=True), torch.sort(dt, dim=1, stable=True)),
        "  alternative: torch.topk(k=10), both sides": lambda: (torch.topk(ds, 10, dim=1, largest=False), torch.topk(dt, 10, dim=1, largest=False)),
    }
    if _numba is not None:
        assert torch.equal(proto_rank(b), rank(b))
        steps["  alternative rank: int-key sort + numba average-rank pass"] = lambda: (proto_rank(a), proto_rank(b))
    print(f"\nCoherence measures at N={N:,}: one chunk of {chunk} references ({n_chunks} chunks in all), "
          f"median of {repeats}; {100 * tie_rows:.0f}% of the teacher's rows have float32 ties (rank() takes its "
          f"tie-averaging path on those rows)")
    for name, fn in steps.items():
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        print(f"  {name:<62} {_median_ms(ts)}  x {n_chunks} chunks")


def profile_pc(n: int, seed: int, repeats: int = 7, top: int = 12) -> None:
    """Where the time of the PC loss goes at n: steps, sorts, a prototype, torch.profiler ops."""
    from torch.profiler import ProfilerActivity, profile, record_function

    _stage_breakdown(n, seed, repeats)
    _sort_and_prototype(n, seed, repeats)
    fn = make_method("pc")
    s, t = make_features(n, seed)
    for _ in range(2):
        _step(fn, s, t)
    runs = 5
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            s.grad = None
            with record_function("pc_forward"):
                loss = fn(s, t)
            with record_function("pc_backward"):
                loss.backward()
    print(f"\ntorch.profiler: PC loss forward + backward at n={n}, {runs} passes, top {top} ops by self CPU time "
          f"(totals over the passes; the numba PAV kernel shows up inside '_SoftRank', not as an aten op)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=36))


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="reduced set: n in {64, 256, 512}, 3 repeats, N = 2,000")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="batch sizes n of table 1 (default 64 ... 1024)")
    p.add_argument("--repeats", type=int, default=None, help="timed passes per (method, n) (default 7; quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up passes (default 2)")
    p.add_argument("--naive-max-n", type=int, default=512, help="largest n for the O(n^3) naive reference (default 512)")
    p.add_argument("--max-mem-gib", type=float, default=6.0,
                   help="skip an O(n^3) method (RKD) whose cubically extrapolated peak exceeds this (default 6)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory subprocesses")
    p.add_argument("--coherence-n", type=int, default=None, help="N of table 2 (default 10,000; quick 2,000)")
    p.add_argument("--coherence-repeats", type=int, default=None, help="runs per measure of table 2 (default 3; quick 1)")
    p.add_argument("--skip-loss", action="store_true", help="skip table 1")
    p.add_argument("--skip-coherence", action="store_true", help="skip table 2")
    p.add_argument("--profile", action="store_true", help="also profile the PC loss at the largest n and the coherence measures at N")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--_memory-child", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._memory_child:
        method, n = args._memory_child
        print(json.dumps(_memory_child(method, int(n), args.seed)))
        return

    if args.sizes is None:
        args.sizes = [64, 256, 512] if args.quick else [64, 128, 256, 512, 1024]
    args.sizes = sorted(set(args.sizes))
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.coherence_n is None:
        args.coherence_n = 2_000 if args.quick else 10_000
    if args.coherence_repeats is None:
        args.coherence_repeats = 1 if args.quick else 3

    print(machine_info())
    print("note: wall-clock timings on a shared machine; ratios are from the same run")
    t0 = time.perf_counter()
    if not args.skip_loss:
        table_loss(args)
    if not args.skip_coherence:
        table_coherence(args)
    if args.profile:
        profile_pc(max(args.sizes), args.seed)
        _coherence_breakdown(args.coherence_n, args.seed)
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.0f} s; load average now {_load()}")


if __name__ == "__main__":
    main()
