"""Study: the default ``regularization_strength`` of ``PerceptionCoherenceLoss`` across batch sizes.

The loss scales each standardised row of student dissimilarities to the spread of the ranks,
``sqrt((m^2 - 1) / 12)`` for a compared set of m samples, before the soft rank, so that one
strength should mean the same at every batch size. This study checks that, and picks the default:

- data: the embedded digits (``pcoh.data.load("digits")``, 1,437 train / 360 test) and, as a
  second data set held out from the choice, ``digits-deformed``: the same images, each warped by
  a random affine map (rotation +-25 degrees, scale 0.85-1.15, shear +-0.2, bilinear) plus
  Gaussian noise (sd 0.05), from a fixed seed; the teacher is trained on it anew (both in
  ``benchmarks/_studies.py``, whose teacher specs name the data set, so the two teachers are
  cached apart);
- teacher: ``digits_resnet``, cross-entropy (``pcoh.train.train_teacher``, cached under
  ``<root>/runs``), ``--teacher-epochs`` epochs;
- students: class-unaware ``digits_cnn`` trained on the PC loss alone (no label), Adam 1e-3,
  for each strength x batch size x seed, with the teacher's train features precomputed (no
  augmentation on these data). The loop is a plain one (shuffle per epoch from the seed, last
  incomplete batch dropped when it has fewer than 3 samples) that hands the batch's
  training-set positions to the loss (``indices=``), as the queue study needs;
- evaluation on the test split: ``PC_n`` (``pcoh.coherence.perception_coherence``, cosine on
  both sides) and kNN accuracy (k = 5, cosine, fitted on the student's train features).

Runs are independent; ``--jobs`` runs them in parallel processes (one thread each). Tables give
mean +- std over seeds (ddof 1). The best strength per batch size is the one with the highest
mean PC_n; the default should be best, or within noise of the best, at every batch size.

Usage::

    python benchmarks/study_strength.py --epochs 6 --seeds 0 1 --batches 64 128 256 \\
        --strengths 0.1 0.3 1 3 10 --data digits digits-deformed --jobs 2
"""
from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _studies import SMOKE_HELP, prepare_teacher, smoke_root  # noqa: E402

from pcoh import models as pmodels  # noqa: E402
from pcoh.coherence import perception_coherence  # noqa: E402
from pcoh.losses import PerceptionCoherenceLoss  # noqa: E402
from pcoh.train import predict  # noqa: E402

DEFAULT_STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(train_x.numpy(), train_y.numpy())
    return float(clf.score(test_x.numpy(), test_y.numpy()))


# ----------------------------------------------------------------------------- teacher, students
def prepare(name: str, args) -> dict:
    """Data, cached teacher and its features (train and test) of one data set."""
    ctx = prepare_teacher(name, args.teacher_epochs, args.root, args.device)
    t_train, _, _ = predict(ctx["teacher"].model, ctx["split"].train)
    return {"name": name, "split": ctx["split"], "t_train": t_train, "t_test": ctx["t_test"]}


def train_and_evaluate(ctx: dict, strength: float, batch: int, seed: int, queue_size: int, epochs: int, device) -> dict:
    """Train one class-unaware digits_cnn on the PC loss; PC_n and kNN on the test split."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    split = ctx["split"]
    x, y = split.train.tensors
    n_train = x.shape[0]
    model = pmodels.create("digits_cnn", num_classes=split.num_classes, in_channels=split.in_channels or 1,
                           image_size=split.image_size or 8, seed=seed).to(dev)
    loss_fn = PerceptionCoherenceLoss(regularization_strength=strength, queue_size=queue_size,
                                      num_samples=n_train).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xd, td = x.to(dev), ctx["t_train"].to(dev)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=g)
        for lo in range(0, n_train, batch):
            idx = order[lo:lo + batch]
            if idx.numel() < 3:
                continue
            idx = idx.to(dev)
            loss = loss_fn(model(xd[idx]).features, td[idx], indices=idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    f_train, _, y_train = predict(model, split.train)
    f_test, _, y_test = predict(model, split.test)
    return {
        "data": ctx["name"], "strength": strength, "batch": batch, "seed": seed, "queue": queue_size,
        "pc": perception_coherence(f_test, ctx["t_test"]),
        "knn": knn_accuracy(f_train, y_train, f_test, y_test),
        "seconds": seconds,
    }


_CTX: dict = {}


def _init(contexts: dict) -> None:
    torch.set_num_threads(1)
    _CTX.update(contexts)


def _worker(job):
    name, strength, batch, seed, queue, epochs, device = job
    return train_and_evaluate(_CTX[name], strength, batch, seed, queue, epochs, device)


def run_jobs(jobs, contexts: dict, n_jobs: int) -> list:
    """Run (data, strength, batch, seed, queue, epochs, device) jobs, in parallel when n_jobs > 1."""
    results = []
    if n_jobs <= 1:
        _CTX.update(contexts)
        it = map(_worker, jobs)
    else:
        import multiprocessing as mp

        # spawn, not fork: a forked child of a process that already ran torch's thread pool can hang.
        pool = mp.get_context("spawn").Pool(n_jobs, initializer=_init, initargs=(contexts,))
        it = pool.imap_unordered(_worker, jobs)
    for r in it:
        print(f"  {r['data']:>15} strength {r['strength']:<6g} batch {r['batch']:<4d} queue {r['queue']:<5d} "
              f"seed {r['seed']}: PC_n {r['pc']:.4f}  kNN {r['knn']:.4f}  ({r['seconds']:.0f} s)", flush=True)
        results.append(r)
    if n_jobs > 1:
        pool.close()
        pool.join()
    return results


def _pm(a) -> str:
    a = np.asarray(a, dtype=float)
    return f"{a.mean():.4f} +- {a.std(ddof=1) if a.size > 1 else 0.0:.4f}"


def table(results, row_key: str, col_key: str, data: str, metric: str) -> str:
    rows = sorted({r[row_key] for r in results if r["data"] == data})
    cols = sorted({r[col_key] for r in results if r["data"] == data})
    lines = [f"| {row_key} \\ {col_key} | " + " | ".join(str(c) for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for rv in rows:
        cells = []
        for cv in cols:
            vals = [r[metric] for r in results if r["data"] == data and r[row_key] == rv and r[col_key] == cv]
            cells.append(_pm(vals) if vals else "-")
        lines.append(f"| {rv:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def common_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default=None, help="'cpu', 'cuda' or None (auto)")
    p.add_argument("--epochs", type=int, default=6, help="student epochs (default 6)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--strengths", type=float, nargs="+", default=list(DEFAULT_STRENGTHS))
    p.add_argument("--data", nargs="+", default=["digits", "digits-deformed"], choices=["digits", "digits-deformed"])
    p.add_argument("--teacher-epochs", type=int, default=15)
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes, one thread each (default 1)")
    p.add_argument("--root", default="data", help="folder of the cached teachers (<root>/runs/), default 'data'")
    p.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    return p


def apply_smoke(args) -> None:
    """Shrink the study to a smoke run (``--smoke``): see :data:`SMOKE_HELP`."""
    if args.smoke:
        args.data, args.epochs, args.teacher_epochs = ["digits"], 1, 1
        args.seeds, args.batches, args.strengths, args.jobs = [0], [64], args.strengths[:1], 1
        smoke_root(args)


def header(args) -> None:
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"device {args.device or 'auto'}, {args.jobs} job(s)", flush=True)
    print(f"students: digits_cnn, PC loss alone (class-unaware), {args.epochs} epochs, Adam 1e-3, seeds {args.seeds}")


def main(argv=None) -> None:
    args = common_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    apply_smoke(args)
    header(args)
    t_start = time.perf_counter()
    contexts = {name: prepare(name, args) for name in args.data}
    jobs = [(d, s, b, seed, 0, args.epochs, args.device)
            for d in args.data for b in args.batches for s in args.strengths for seed in args.seeds]
    results = run_jobs(jobs, contexts, args.jobs)
    for d in args.data:
        for metric, label in (("pc", "PC_n (test)"), ("knn", "kNN accuracy (k=5, test)")):
            print(f"\n[{d}] {label}, mean +- std over seeds {args.seeds}, strength (rows) x batch (columns)")
            print(table(results, "strength", "batch", d, metric))
        for b in args.batches:
            rows = [r for r in results if r["data"] == d and r["batch"] == b]
            means = {s: np.mean([r["pc"] for r in rows if r["strength"] == s]) for s in args.strengths}
            best = max(means, key=means.get)
            print(f"[{d}] batch {b}: best strength by mean PC_n {best:g} ({means[best]:.4f}); "
                  + ", ".join(f"{s:g}: {means[s] - means[best]:+.4f}" for s in args.strengths))
    print(f"\ntotal study time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
