"""Study: which evaluation design decides the main job's comparisons with the narrowest honest interval.

For the ``pc`` rows (against the best other method of each mode) and the measures that are means
over held-out images (``pc_n``: per-reference Spearman; ``knn_accuracy``: kNN correctness), this
splits the variance of a paired difference into its two sources, measured on the runs of one
configuration (read from the run cache; missing runs are trained):

- ``sd_rep``: the standard deviation over replicates (seeds) of the per-replicate paired
  difference; under ``--split per-seed`` it carries training randomness *and* the split's images,
  under ``--split fixed`` training randomness alone (the images are always the same);
- ``se_img``: within one replicate, the standard error of the mean of the per-image paired
  differences (the same images for both methods), averaged over replicates: what the choice of
  360 held-out images adds.

From them, the half-width of the 95% interval the designs of docs/method.md §7 give with ``R``
replicates at the same training cost:

- fixed split, t over seeds: ``t(R-1) sd_train / sqrt(R)``, conditional on the images (not honest
  about them; ``sd_train`` is ``sd_rep`` of a fixed-split run);
- fixed split, two-level: ``1.96 sqrt(sd_train^2 / R + se_img^2)``: the image part does not shrink;
- repeated hold-out (per-seed splits): ``t(R-1) sqrt(sd_train^2 + se_img^2) / sqrt(R)``.

It also prints, for the runs at hand, the measured half-width (``pcoh.stats.paired_comparison``)
and the two-level bootstrap interval (``pcoh.stats.two_level_interval``).

Usage::

    python benchmarks/study_protocol.py --cache /tmp/c --methods pc pkt fitnet --seeds 3 --split per-seed
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pcoh import evaluate as _eval  # noqa: E402
from pcoh import methods as _methods  # noqa: E402
from pcoh.experiment import ExperimentConfig, run_experiment  # noqa: E402
from pcoh.specs import TrainConfig  # noqa: E402
from pcoh.stats import paired_comparison, two_level_interval  # noqa: E402


def knn_correct(f: dict, k: int = _eval.KNN_K) -> np.ndarray:
    """Per-image kNN correctness (1 or 0), exactly as pcoh.evaluate.knn_accuracy counts it (cosine)."""
    from sklearn.neighbors import KNeighborsClassifier

    xtr = _eval._for_euclidean(np.asarray(f["train"], dtype=np.float64), "cosine")
    xte = _eval._for_euclidean(np.asarray(f["test"], dtype=np.float64), "cosine")
    clf = KNeighborsClassifier(n_neighbors=k).fit(xtr, f["y_train"])
    return (clf.predict(xte) == f["y_test"]).astype(np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", help="the run cache (required but with --smoke)")
    p.add_argument("--smoke", action="store_true", help="does it still start? two methods, two seeds, one epoch, "
                   "class-unaware, in a temporary cache")
    p.add_argument("--methods", nargs="+", default=None)
    p.add_argument("--modes", nargs="+", default=None)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--split", choices=["per-seed", "fixed"], default="per-seed")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--replicates", type=int, nargs="+", default=[3, 5, 8, 10])
    args = p.parse_args(argv)
    if args.smoke:
        import tempfile

        args.cache = args.cache or tempfile.mkdtemp(prefix="pcoh-study-protocol-")
        args.methods, args.seeds, args.modes = ["pc", "pkt"], 2, ["class-unaware"]
        args.epochs, args.teacher_epochs, args.replicates = 1, 1, [2, 3]
    if args.cache is None:
        p.error("--cache is required (or --smoke)")
    changes = {"seeds": args.seeds, "split": args.split, "cache": args.cache, "output": str(Path(args.cache) / "out")}
    if args.methods:
        changes["methods"] = tuple(args.methods)
    if args.modes:
        changes["modes"] = tuple(args.modes)
    if args.epochs:
        changes["student_train"] = TrainConfig(epochs=args.epochs)
    if args.teacher_epochs:
        changes["teacher_train"] = TrainConfig(epochs=args.teacher_epochs, batch_size=128)
    cfg = ExperimentConfig(**changes)
    result = run_experiment(cfg, quiet=True, write=False)
    frame = result.results[~result.results["method"].isin(list(_methods.REFERENCES))]
    print(f"split {cfg.split}, {cfg.seeds} seeds, methods {list(cfg.methods)}\n")
    print("| mode | measure | pc vs | diff | measured half-width | two-level [95%] | sd_rep | se_img | "
          + " | ".join(f"R={r}: fixed t / fixed two-level / repeated hold-out" for r in args.replicates) + " |")
    print("|" + "---|" * (8 + len(args.replicates)))
    for mode in cfg.modes:
        rows = frame[frame["mode"] == mode]
        for metric in ("pc_n", "knn_accuracy"):
            c = paired_comparison(rows, metric, by=("student",)).set_index("method")
            if "pc" not in c.index:
                continue
            other = c.loc["pc", "other"]
            per_image = []
            for seed in range(cfg.seeds):
                a = (cfg.students[0], "pc", mode, seed)
                b = (cfg.students[0], other, mode, seed)
                if metric == "pc_n":
                    per_image.append(np.asarray(result.per_reference[a]) - np.asarray(result.per_reference[b]))
                else:
                    per_image.append(knn_correct(result.features[a]) - knn_correct(result.features[b]))
            reps = np.array([d.mean() for d in per_image])
            sd_rep = float(reps.std(ddof=1)) if len(reps) > 1 else math.nan
            se_img = float(np.mean([d.std(ddof=1) / math.sqrt(len(d)) for d in per_image]))
            # Under per-seed splits sd_rep already holds the image part; the training part alone:
            sd_train = (math.sqrt(max(sd_rep ** 2 - se_img ** 2, 0.0)) if cfg.split == "per-seed" else sd_rep)
            half = (c.loc["pc", "diff_high"] - c.loc["pc", "diff_low"]) / 2
            two = two_level_interval(per_image) if len(per_image) > 1 else (math.nan,) * 3
            cells = []
            for r in args.replicates:
                t = float(sps.t.ppf(0.975, r - 1))
                fixed = t * sd_train / math.sqrt(r)
                two_level = 1.96 * math.sqrt(sd_train ** 2 / r + se_img ** 2)
                repeated = t * math.sqrt(sd_train ** 2 + se_img ** 2) / math.sqrt(r)
                cells.append(f"{fixed:.4f} / {two_level:.4f} / {repeated:.4f}")
            print(f"| {mode} | {metric} | {other} | {c.loc['pc', 'diff']:+.4f} | {half:.4f} | "
                  f"[{two[1]:+.4f}, {two[2]:+.4f}] | {sd_rep:.4f} | {se_img:.4f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
