"""Study: the default ``regularization_strength`` of ``PerceptionCoherenceLoss``.

On the embedded digits data (``pcoh.data.load("digits")``): one ``digits_resnet`` teacher
(15 epochs, cross-entropy), then class-unaware ``digits_cnn`` students trained with the PC loss
alone (method ``"pc"``, no label used) for each strength x seed, 20 epochs, batch 128, Adam 1e-3.
Every run is cached under ``<root>/runs/`` (``pcoh.train``), so a second invocation only
evaluates.

Evaluation, on the test split:

- ``PC_n``: ``pcoh.coherence.perception_coherence(student_test_features, teacher_test_features)``,
  cosine dissimilarity on both sides (the mean per-reference Spearman correlation);
- kNN accuracy: ``sklearn.neighbors.KNeighborsClassifier(n_neighbors=5, metric="cosine")`` fitted
  on the student's train features and labels, scored on its test features.

The best strength is the one with the highest mean ``PC_n`` over seeds (the quantity the loss is
meant to transfer); the one with the best kNN accuracy is printed too. ``--batch-sizes`` then
trains the best strength at other batch sizes.

Usage::

    .venv/bin/python benchmarks/study_strength.py                  # the full study
    .venv/bin/python benchmarks/study_strength.py --batch-sizes    # without the batch-size runs
    .venv/bin/python benchmarks/study_strength.py --quick          # smoke run (2 strengths, 1 seed, 3 epochs)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pcoh import data as pdata  # noqa: E402
from pcoh.coherence import perception_coherence  # noqa: E402
from pcoh.dissimilarity import pairwise  # noqa: E402
from pcoh.losses import PerceptionCoherenceLoss, off_diagonal  # noqa: E402
from pcoh.ranking import soft_rank  # noqa: E402
from pcoh.train import StudentSpec, TeacherSpec, TrainConfig, predict, train_student, train_teacher  # noqa: E402

DEFAULT_STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
TIMES_FILE = "study_strength_times.json"  # wall-clock training times of the runs, kept beside the cache


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, k: int) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    clf.fit(train_x.numpy(), train_y.numpy())
    return float(clf.score(test_x.numpy(), test_y.numpy()))


class _Times:
    """Training times of finished runs, by run folder, in ``<root>/study_strength_times.json``.

    A cached run is loaded in a fraction of a second; this file keeps the time it took to train.
    """

    def __init__(self, root: Path):
        self.path = Path(root) / TIMES_FILE
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def get(self, run_path) -> float | None:
        return self.data.get(str(Path(run_path).name))

    def set(self, run_path, seconds: float) -> None:
        self.data[str(Path(run_path).name)] = seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def rank_active_fraction(features: torch.Tensor, strength: float, batch: int, n_batches: int = 20, seed: int = 0) -> float:
    """Fraction of references whose soft rank in the PC loss is *not* an affine function of z.

    The loss standardises each reference's row of student dissimilarities (z, unit variance) and
    projects ``z / strength`` onto the permutahedron of (m, ..., 1), m = batch - 1. When
    ``z / strength`` already lies inside it (after centring), the projection is
    ``z / strength + const``, PAV pools nothing, and ``corr(soft_rank, teacher ranks)`` is the
    Pearson correlation of z itself: the strength then has no effect at all. Measured on random
    batches of ``features`` (float64, cosine), as in training.
    """
    g = torch.Generator().manual_seed(seed)
    x = features.double()
    batch = min(batch, x.shape[0])
    active = []
    for _ in range(n_batches):
        idx = torch.randperm(x.shape[0], generator=g)[:batch]
        d = off_diagonal(pairwise(x[idx], "cosine"))
        c = d - d.mean(dim=1, keepdim=True)
        z = c / c.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        m = z.shape[1]
        affine = z / strength - (z / strength).mean(dim=1, keepdim=True) + (m + 1) / 2
        active.append(((soft_rank(z, strength) - affine).abs().amax(dim=1) > 1e-9 * m).double().mean())
    return float(torch.stack(active).mean())


def evaluate(model, teacher_test: torch.Tensor, split, k: int, strength: float | None = None, batch: int | None = None):
    """(PC_n on the test split, kNN accuracy train -> test, rank-active fraction) of a student."""
    f_train, _, y_train = predict(model, split.train)
    f_test, _, y_test = predict(model, split.test)
    pc = perception_coherence(f_test, teacher_test)  # cosine on both sides (the default)
    active = rank_active_fraction(f_train, strength, batch) if strength is not None else float("nan")
    return pc, knn_accuracy(f_train, y_train, f_test, y_test, k), active


def run_group(label, strength: float, batch_size: int, seeds, args, teacher, teacher_key, teacher_test, split, times):
    """Train (or load) the students of one setting over the seeds; returns the row of results."""
    pcs, knns, actives, secs, cached = [], [], [], [], 0
    for seed in seeds:
        spec = StudentSpec(
            model="digits_cnn",
            method="pc",
            mode="class-unaware",
            loss_kwargs={"regularization_strength": strength},
            train=TrainConfig(epochs=args.epochs, batch_size=batch_size, seed=seed),
        )
        t0 = time.perf_counter()
        student = train_student(spec, teacher, split, teacher_key=teacher_key, root=args.root,
                                device=args.device, quiet=True, cache=not args.retrain)
        elapsed = time.perf_counter() - t0
        if student.cached:
            cached += 1
            elapsed = times.get(student.path)
        else:
            times.set(student.path, elapsed)
        pc, knn, active = evaluate(student.model, teacher_test, split, args.k, strength, batch_size)
        last = student.history[-1] if student.history else {}
        print(f"    {label:>16}  strength {strength:<5g} batch {batch_size:<4d} seed {seed}: PC_n {pc:.4f}  kNN {knn:.4f}  rank-active {100 * active:5.1f}%  "
              f"final train loss {last.get('transfer', float('nan')):.4f}  "
              f"{'(cached) ' if student.cached else ''}train {('%.1f s' % elapsed) if elapsed is not None else '?'}",
              flush=True)
        pcs.append(pc)
        knns.append(knn)
        actives.append(active)
        if elapsed is not None:
            secs.append(elapsed)
    return {
        "strength": strength,
        "batch": batch_size,
        "pc": np.array(pcs),
        "knn": np.array(knns),
        "active": float(np.mean(actives)),
        "time": float(np.mean(secs)) if secs else None,
        "cached": cached,
        "seeds": len(pcs),
    }


def _pm(a: np.ndarray) -> str:
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.4f} +- {sd:.4f}"


def print_table(rows, title: str) -> None:
    print(f"\n{title}")
    head = (f"{'strength':>8} {'batch':>5} | {'PC_n (test) mean +- std':>24} | {'kNN acc mean +- std':>22} | "
            f"{'rank-active':>11} | {'train s/run':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        t = f"{r['time']:.1f}" if r["time"] is not None else "?"
        print(f"{r['strength']:>8g} {r['batch']:>5d} | {_pm(r['pc']):>24} | {_pm(r['knn']):>22} | "
              f"{100 * r['active']:>10.1f}% | {t:>11}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="data", help="folder of the cached runs (<root>/runs/), default 'data'")
    p.add_argument("--strengths", type=float, nargs="+", default=list(DEFAULT_STRENGTHS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=20, help="student epochs (default 20)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size of the strength sweep (default 128)")
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[64, 256],
                   help="batch sizes tried at the best strength afterwards (default 64 256; give none to skip)")
    p.add_argument("--teacher-epochs", type=int, default=15)
    p.add_argument("--k", type=int, default=5, help="neighbours of the kNN classifier (default 5)")
    p.add_argument("--device", default=None, help="'cpu', 'cuda' or None (auto)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--retrain", action="store_true", help="ignore cached runs (cache=False)")
    p.add_argument("--quick", action="store_true", help="smoke run: strengths 0.03 0.3, seed 0, 3 epochs, teacher 3 epochs")
    args = p.parse_args(argv)
    if args.quick:
        args.strengths, args.seeds, args.epochs, args.teacher_epochs = [0.03, 0.3], [0], 3, 3
        args.batch_sizes = [256] if args.batch_sizes else []
    if args.threads:
        torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), device {args.device or 'auto'}")
    print(f"current default regularization_strength of PerceptionCoherenceLoss: "
          f"{PerceptionCoherenceLoss().regularization_strength} (every run below passes its strength explicitly)")
    split = pdata.load("digits")
    print(f"data: {split}")

    teacher_spec = TeacherSpec(model="digits_resnet", train=TrainConfig(epochs=args.teacher_epochs))
    t0 = time.perf_counter()
    teacher = train_teacher(teacher_spec, split, root=args.root, device=args.device, quiet=True, cache=not args.retrain)
    t_train, _, y_train = predict(teacher.model, split.train)
    t_test, t_logits, y_test = predict(teacher.model, split.test)
    t_acc = float((t_logits.argmax(1) == y_test).float().mean())
    t_knn = knn_accuracy(t_train, y_train, t_test, y_test, args.k)
    print(f"teacher digits_resnet ({args.teacher_epochs} epochs, {'cached' if teacher.cached else 'trained'} in "
          f"{time.perf_counter() - t0:.1f} s, {teacher.path}): test accuracy {t_acc:.4f}, kNN (k={args.k}, cosine) {t_knn:.4f}")

    # Reference: the untrained students (their initial weights), PC_n and kNN at the start.
    ref = []
    for seed in args.seeds:
        spec = StudentSpec(model="digits_cnn", method="untrained", mode="class-unaware", train=TrainConfig(seed=seed))
        st = train_student(spec, teacher, split, teacher_key=teacher_spec.key(), root=args.root,
                           device=args.device, quiet=True, cache=not args.retrain)
        ref.append(evaluate(st.model, t_test, split, args.k)[:2])
    ref = np.array(ref)
    print(f"reference, untrained digits_cnn over seeds {args.seeds}: PC_n {_pm(ref[:, 0])}, kNN {_pm(ref[:, 1])}")

    times = _Times(Path(args.root))
    print(f"\nstudents: digits_cnn, method 'pc', class-unaware, {args.epochs} epochs, Adam lr 1e-3, seeds {args.seeds}")
    rows = []
    for s in args.strengths:
        rows.append(run_group("sweep", s, args.batch_size, args.seeds, args, teacher, teacher_spec.key(), t_test, split, times))

    print_table(rows, f"Strength sweep (batch {args.batch_size}, {len(args.seeds)} seeds, std over seeds with ddof=1; "
                      f"train s/run = mean wall-clock seconds per student when it was trained, CPU, shared machine)")
    print("rank-active = % of references (random training-size batches of the trained student's train features) whose "
          "soft rank is not an affine function of z;\n  at 0% the loss is exactly 1 - Pearson(z, teacher ranks), "
          "the same for every strength (see rank_active_fraction)")
    best = max(rows, key=lambda r: r["pc"].mean())
    best_knn = max(rows, key=lambda r: r["knn"].mean())
    print(f"\nbest strength by mean PC_n: {best['strength']:g} (PC_n {_pm(best['pc'])}, kNN {_pm(best['knn'])})")
    print(f"best strength by mean kNN : {best_knn['strength']:g} (PC_n {_pm(best_knn['pc'])}, kNN {_pm(best_knn['knn'])})")
    ranked = sorted(rows, key=lambda r: -r["pc"].mean())
    if len(ranked) > 1:
        a, b = ranked[0], ranked[1]
        gap = a["pc"].mean() - b["pc"].mean()
        pooled = np.sqrt((a["pc"].var(ddof=1) + b["pc"].var(ddof=1)) / 2) if len(a["pc"]) > 1 else float("nan")
        print(f"gap to the runner-up ({b['strength']:g}): {gap:.4f} in PC_n (pooled seed std {pooled:.4f})")

    if args.batch_sizes:
        brow = [r for r in rows if r["batch"] == args.batch_size and r["strength"] == best["strength"]]
        for b in args.batch_sizes:
            if b == args.batch_size:
                continue
            brow.append(run_group("batch", best["strength"], b, args.seeds, args, teacher, teacher_spec.key(), t_test, split, times))
        brow.sort(key=lambda r: r["batch"])
        print_table(brow, f"Batch sizes at the best strength {best['strength']:g} ({len(args.seeds)} seeds)")
    print(f"\ntotal study time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
