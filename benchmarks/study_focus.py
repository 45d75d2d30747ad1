"""Study: the neighbourhood emphasis (``focus``) of ``PerceptionCoherenceLoss`` against the baselines.

The plain PC loss weighs every rank displacement alike; from each reference most compared points
are far, so the few near neighbours, which kNN accuracy and top-k overlap read, carry little of the
loss. ``focus`` > 0 weighs compared point j of reference i by g(u^T_ij), g decreasing on the
teacher's probabilistic rank (docs/method.md, "Neighbourhood emphasis (ours)"). This study asks
whether some setting keeps the teacher's neighbourhoods better (kNN, top-k overlap) without giving
up the lead in PC_n, measured only by measures not built like the loss.

Protocol:

- data: ``digits`` and ``digits-deformed`` (``benchmarks/_studies.py``); teacher ``digits_resnet``
  per data set, cross-entropy, ``--teacher-epochs`` epochs, batch 128 (cached under
  ``<root>/runs``);
- students: ``digits_cnn`` trained by the main job's loop (``pcoh.train.train_student``, Adam 1e-3,
  ``--epochs`` epochs, batch 64 and 256, seeds 0 ..), class-unaware (the transfer loss alone) and
  class-aware (CE + weight x loss), each baseline at its defaults (rkd, pkt, sp, cc, fitnet, crd, rrd;
  class-aware also kd, dist and ce), and pc over a grid of focus settings (``--focus``), all in the same
  run, every run cached under ``<root>/runs`` (an interrupted run resumes from its last epoch);
- evaluation on the held-out split, with ``pcoh.evaluate`` / ``pcoh.coherence`` as the main job:
  PC_n (plain mean per-reference Spearman, cosine both sides), kNN accuracy (k = 5, cosine),
  top-k overlap (k = 10), trustworthiness and continuity (k = 10), linear probe, and class-aware
  the student's accuracy;
- one row per run is appended to ``<output>/runs.csv`` as soon as it is evaluated; a rerun skips
  the runs already there (keyed by the run's cache key), so the study can be stopped and resumed.

A focus setting is written ``KIND:FOCUS[:FRACTION]``, KIND one of ``exp``, ``top``, ``exp-sym``,
``top-sym`` (``-sym``: ``focus_symmetric=True``), FRACTION the ``focus_fraction`` q of ``top``;
e.g. ``exp:4``, ``top:9:0.1``, ``exp-sym:2``. ``exp:0`` is the plain loss (focus 0).

DECISION RULE (fixed before the study was run):

    focus setting F becomes the default only if, on both data sets and at both batch sizes,
    class-unaware, its mean kNN accuracy and mean top-k overlap are >= those of focus 0 and its
    mean PC_n stays above every baseline's mean PC_n; among such settings the one with the highest
    mean kNN (ties: higher PC_n). Otherwise the default stays 0.

("mean" is the mean over seeds of a cell; "the highest mean kNN" among qualifying settings is
their kNN averaged over the four class-unaware cells.)

Printed: mean +- std over seeds per data set x batch x mode x method/setting; paired 95%
intervals (``pcoh.stats.paired_comparison``, seeds paired) of each pc setting against the best
other method (the best baseline, pc settings excluded) and against focus 0, for pc_n,
knn_accuracy and topk_overlap, each with its minimum detectable difference and verdict (a
difference below the MDD is "no difference detected"); the decision with its reasons. Written to ``--output``:
``runs.csv`` (raw, one row per run), ``summary.csv`` (means, stds, 95% half-widths per cell and
method) and ``frontier.csv`` / ``frontier.png`` (PC_n against kNN accuracy: baselines as points
with intervals, pc as a curve over focus, per family).

Usage::

    python benchmarks/study_focus.py --root /work/study_focus --output /work/study_focus/results \\
        --epochs 12 --seeds 5 --aware-seeds 5
    python benchmarks/study_focus.py --root ... --output ... --report-only   # tables from runs.csv
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(Path(__file__).resolve().parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _studies import DATASETS, SMOKE_HELP, prepare_teacher, smoke_root  # noqa: E402

from pcoh import coherence  # noqa: E402
from pcoh import evaluate as peval  # noqa: E402
from pcoh.stats import paired_comparison  # noqa: E402
from pcoh.train import StudentSpec, TrainConfig, method_allows_mode, predict, train_student  # noqa: E402

BASELINES = ("rkd", "pkt", "sp", "cc", "fitnet", "crd", "rrd", "kd", "dist", "ce")
MODES = ("class-unaware", "class-aware")
DEFAULT_FOCUS = ("exp:0", "exp:1", "exp:2", "exp:4", "exp:8", "top:9:0.1", "top:9:0.25", "exp-sym:2", "exp-sym:4",
                 "exp-sym:8")
METRICS = ("pc_n", "knn_accuracy", "topk_overlap", "trustworthiness", "continuity", "linear_probe", "accuracy")
COMPARED = ("pc_n", "knn_accuracy", "topk_overlap")
FIELDS = ("run", "data", "batch", "mode", "method", "family", "focus", "fraction", "symmetric", "seed", "epochs",
          *METRICS, "train_s", "eval_s")


# ----------------------------------------------------------------------------- settings
def parse_focus(token: str) -> dict:
    """``KIND:FOCUS[:FRACTION]`` -> {label, family, focus, fraction, symmetric, loss_kwargs}."""
    parts = token.split(":")
    kinds = ("exp", "top", "exp-sym", "top-sym")
    if len(parts) not in (2, 3) or parts[0] not in kinds:
        raise ValueError(f"focus setting {token!r}: expected KIND:FOCUS[:FRACTION] with KIND one of {list(kinds)}")
    family = parts[0]
    kind, symmetric = family.split("-")[0], family.endswith("-sym")
    focus = float(parts[1])
    if kind == "exp" and len(parts) == 3:
        raise ValueError(f"focus setting {token!r}: a fraction is for 'top' only")
    fraction = float(parts[2]) if len(parts) == 3 else 0.1
    if not focus:
        return {"label": "pc focus 0", "family": "plain", "focus": 0.0, "fraction": math.nan, "symmetric": False,
                "loss_kwargs": {}}
    kwargs = {"focus": focus, "focus_kind": kind}
    label = f"pc {family} {focus:g}"
    if kind == "top":
        kwargs["focus_fraction"] = fraction
        label += f" q{fraction:g}"
    if symmetric:
        kwargs["focus_symmetric"] = True
    return {"label": label, "family": family, "focus": focus, "fraction": fraction if kind == "top" else math.nan,
            "symmetric": symmetric, "loss_kwargs": kwargs}


def make_jobs(args, settings: list) -> list:
    """Runs in the order they are trained: class-unaware first, seeds outermost, so that a study
    cut short holds every cell at the seeds it reached. Class-unaware cells (those the decision
    reads) get ``--seeds`` seeds, class-aware cells ``--aware-seeds``."""
    jobs = []
    for mode in args.modes:
        for seed in range(args.seeds):
            for data in args.data:
                for batch in args.batches:
                    if seed >= (args.seeds if mode == "class-unaware" else args.aware_seeds):
                        continue
                    for method in args.baselines:
                        if method_allows_mode(method, mode):
                            jobs.append({"data": data, "batch": batch, "mode": mode, "seed": seed, "method": method,
                                         "setting": {"label": method, "family": "baseline", "focus": math.nan,
                                                     "fraction": math.nan, "symmetric": False, "loss_kwargs": {}}})
                    for setting in settings:
                        jobs.append({"data": data, "batch": batch, "mode": mode, "seed": seed, "method": "pc",
                                     "setting": setting})
    return jobs


# ----------------------------------------------------------------------------- runs
def prepare(name: str, args) -> dict:
    """Data, cached teacher, its test features and cache key, for one data set."""
    ctx = prepare_teacher(name, args.teacher_epochs, args.root, args.device)
    return {"split": ctx["split"], "teacher": ctx["teacher"], "key": ctx["spec"].key(), "t_test": ctx["t_test"]}


def student_spec(job: dict, epochs: int) -> StudentSpec:
    return StudentSpec("digits_cnn", job["method"], job["mode"], loss_kwargs=dict(job["setting"]["loss_kwargs"]),
                       train=TrainConfig(epochs=epochs, batch_size=job["batch"], seed=job["seed"]))


def measures(model, split, t_test, class_aware: bool) -> dict:
    """The held-out measures of one student, with the main job's functions."""
    f_train, _, y_train = predict(model, split.train)
    f_test, logits, y_test = predict(model, split.test)
    return {
        "pc_n": float(coherence.per_reference_spearman(f_test, t_test).mean()),
        "knn_accuracy": peval.knn_accuracy(f_train, y_train, f_test, y_test, k=5),
        "topk_overlap": float(coherence.neighbor_overlap(f_test, t_test, k=10).mean()),
        "trustworthiness": peval.trustworthiness(f_test, t_test, k=10),
        "continuity": peval.continuity(f_test, t_test, k=10),
        "linear_probe": peval.linear_probe_accuracy(f_train, y_train, f_test, y_test),
        "accuracy": float((logits.argmax(1) == y_test).float().mean()) if class_aware else math.nan,
    }


def run_job(job: dict, ctx: dict, args) -> dict:
    spec = student_spec(job, args.epochs)
    t0 = time.perf_counter()
    trained = train_student(spec, ctx["teacher"], ctx["split"], teacher_key=ctx["key"], root=args.root,
                            device=args.device, quiet=True)
    t1 = time.perf_counter()
    row = measures(trained.model, ctx["split"], ctx["t_test"], job["mode"] == "class-aware")
    s = job["setting"]
    return {"run": spec.key(ctx["key"]), "data": job["data"], "batch": job["batch"], "mode": job["mode"],
            "method": s["label"], "family": s["family"], "focus": s["focus"], "fraction": s["fraction"],
            "symmetric": s["symmetric"], "seed": job["seed"], "epochs": args.epochs, **row,
            "train_s": round(t1 - t0, 2), "eval_s": round(time.perf_counter() - t1, 2)}


def read_runs(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=list(FIELDS))
    return pd.read_csv(path, dtype={"run": str})


def append_run(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FIELDS))
        if new:
            writer.writeheader()
        writer.writerow(row)
        fh.flush()
        os.fsync(fh.fileno())


# ----------------------------------------------------------------------------- report
def _half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the t-interval of a mean (NaN below two values)."""
    from scipy.stats import t

    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan
    return float(t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (data, batch, mode, method): seeds, and mean / std / 95% half-width of each metric."""
    rows = []
    keys = ["data", "batch", "mode", "method"]
    for key, group in runs.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        row.update(family=group["family"].iloc[0], focus=group["focus"].iloc[0], fraction=group["fraction"].iloc[0],
                   symmetric=group["symmetric"].iloc[0], seeds=len(group))
        for m in METRICS:
            v = group[m].to_numpy(dtype=float)
            ok = v[~np.isnan(v)]
            row[f"{m}_mean"] = float(ok.mean()) if len(ok) else math.nan
            row[f"{m}_std"] = float(ok.std(ddof=1)) if len(ok) > 1 else math.nan
            row[f"{m}_ci"] = _half_width(v)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def print_tables(summary: pd.DataFrame) -> None:
    for (data, batch, mode), group in summary.groupby(["data", "batch", "mode"], sort=False):
        metrics = [m for m in METRICS if group[f"{m}_mean"].notna().any()]
        print(f"\n### {data}, batch {batch}, {mode}: mean ± std over seeds (held-out split)\n")
        print("| method | seeds | " + " | ".join(metrics) + " |")
        print("|---|---|" + "---|" * len(metrics))
        for r in group.to_dict("records"):
            print(f"| {r['method']} | {r['seeds']} | "
                  + " | ".join(_cell(r[f'{m}_mean'], r[f'{m}_std']) for m in metrics) + " |")


def _signed(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:+.4f}"


def _verdict(r) -> str:
    """`` (MDD m: verdict)`` of one paired comparison (pcoh.stats.paired_comparison's rule)."""
    return "" if math.isnan(r["mdd"]) else f" (MDD {r['mdd']:.3f}: {r['verdict']})"


def print_comparisons(runs: pd.DataFrame) -> None:
    """Each pc setting against the best baseline of its cell and against focus 0, paired by seed."""
    for (data, batch, mode), cell in runs.groupby(["data", "batch", "mode"], sort=False):
        baselines = cell[cell["family"] == "baseline"]
        settings = [m for m in cell["method"].unique() if m.startswith("pc ")]
        print(f"\n### {data}, batch {batch}, {mode}: paired 95% intervals (seeds paired), pc setting minus the best "
              "baseline (highest mean) and minus focus 0\n")
        head = ["setting"] + [f"{m}: vs best baseline" for m in COMPARED] + [f"{m}: vs focus 0" for m in COMPARED[1:]]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for setting in settings:
            own = cell[cell["method"] == setting]
            cells = [setting]
            for metric in COMPARED:
                frame = pd.concat([own, baselines])
                frame = frame[frame[metric].notna()]
                if baselines.empty or own.empty:
                    cells.append("-")
                    continue
                c = paired_comparison(frame, metric, by=())
                r = c[c["method"] == setting].iloc[0]
                cells.append(f"{_signed(r['diff'])} [{_signed(r['diff_low'])}, {_signed(r['diff_high'])}] vs {r['other']}"
                             f"{_verdict(r)}")
            for metric in COMPARED[1:]:
                if setting == "pc focus 0" or "pc focus 0" not in settings:
                    cells.append("-")
                    continue
                frame = cell[cell["method"].isin([setting, "pc focus 0"])]
                c = paired_comparison(frame, metric, by=())
                r = c[c["method"] == setting].iloc[0]
                cells.append(f"{_signed(r['diff'])} [{_signed(r['diff_low'])}, {_signed(r['diff_high'])}]{_verdict(r)}")
            print("| " + " | ".join(cells) + " |")


def decide(summary: pd.DataFrame, data_sets, batches) -> tuple:
    """The decision rule of the module docstring: (chosen label or None, list of reason lines)."""
    unaware = summary[summary["mode"] == "class-unaware"]
    cells = [(d, b) for d in data_sets for b in batches]
    reasons, qualified = [], {}

    def get(d, b, method, metric):
        row = unaware[(unaware["data"] == d) & (unaware["batch"] == b) & (unaware["method"] == method)]
        return float(row[f"{metric}_mean"].iloc[0]) if len(row) else math.nan

    settings = [m for m in unaware["method"].unique() if m.startswith("pc ") and m != "pc focus 0"]
    for setting in settings:
        failures, knn, pcn = [], [], []
        for d, b in cells:
            base = unaware[(unaware["data"] == d) & (unaware["batch"] == b) & (unaware["family"] == "baseline")]
            f_knn, z_knn = get(d, b, setting, "knn_accuracy"), get(d, b, "pc focus 0", "knn_accuracy")
            f_top, z_top = get(d, b, setting, "topk_overlap"), get(d, b, "pc focus 0", "topk_overlap")
            f_pc = get(d, b, setting, "pc_n")
            if any(math.isnan(v) for v in (f_knn, z_knn, f_top, z_top, f_pc)) or base.empty:
                failures.append(f"{d} b{b}: missing runs")
                continue
            best_base = base.loc[base["pc_n_mean"].idxmax()]
            if f_knn < z_knn:
                failures.append(f"{d} b{b}: kNN {f_knn:.4f} < focus 0's {z_knn:.4f}")
            if f_top < z_top:
                failures.append(f"{d} b{b}: top-k {f_top:.4f} < focus 0's {z_top:.4f}")
            if not f_pc > best_base["pc_n_mean"]:
                failures.append(f"{d} b{b}: PC_n {f_pc:.4f} <= {best_base['method']}'s {best_base['pc_n_mean']:.4f}")
            knn.append(f_knn)
            pcn.append(f_pc)
        if failures:
            reasons.append(f"- {setting}: fails ({'; '.join(failures)})")
        else:
            qualified[setting] = (float(np.mean(knn)), float(np.mean(pcn)))
            reasons.append(f"- {setting}: qualifies (mean kNN over the cells {qualified[setting][0]:.4f}, "
                           f"mean PC_n {qualified[setting][1]:.4f})")
    if not qualified:
        return None, reasons
    chosen = max(qualified, key=lambda s: qualified[s])
    return chosen, reasons


def frontier(summary: pd.DataFrame) -> pd.DataFrame:
    """PC_n against kNN per cell: baselines as points, pc settings ordered by family and focus."""
    cols = ["data", "batch", "mode", "method", "family", "focus", "fraction", "symmetric", "seeds",
            "pc_n_mean", "pc_n_ci", "knn_accuracy_mean", "knn_accuracy_ci", "topk_overlap_mean", "topk_overlap_ci"]
    out = summary[cols].copy()
    out["kind"] = np.where(out["family"] == "baseline", "baseline", "pc")
    return out.sort_values(["data", "batch", "mode", "kind", "family", "fraction", "focus"], kind="stable")


_CURVE_COLORS = ("#8b0000", "#ff6f61", "#4d4d4d", "#c71585", "#a0522d", "#999999")


def plot_frontier(front: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcoh import methods as pmethods

    cells = list(front.groupby(["mode", "data", "batch"], sort=False).groups)
    cols = max(1, len({(d, b) for _, d, b in cells}))
    modes = [m for m in MODES if m in set(front["mode"])]
    fig, axes = plt.subplots(len(modes), cols, figsize=(4.2 * cols, 3.8 * len(modes)), squeeze=False)
    col_of = {db: i for i, db in enumerate(dict.fromkeys((d, b) for _, d, b in cells))}
    for (mode, data, batch), group in front.groupby(["mode", "data", "batch"], sort=False):
        ax = axes[modes.index(mode)][col_of[(data, batch)]]
        base = group[group["kind"] == "baseline"]
        for r in base.to_dict("records"):
            ax.errorbar(r["knn_accuracy_mean"], r["pc_n_mean"], xerr=r["knn_accuracy_ci"], yerr=r["pc_n_ci"],
                        fmt="o", color=pmethods.color(r["method"]), ms=4, capsize=2, label=r["method"])
        pc = group[group["kind"] == "pc"]
        zero = pc[pc["family"] == "plain"]
        families = pc[pc["family"] != "plain"].groupby(["family", "fraction"], dropna=False, sort=False)
        for k, (family, fam) in enumerate(families):
            curve = pd.concat([zero, fam]).sort_values("focus")
            name = family[0] + ("" if pd.isna(family[1]) else f" q{family[1]:g}")
            # Reds and greys, so that no curve takes a baseline's colour.
            ax.errorbar(curve["knn_accuracy_mean"], curve["pc_n_mean"], xerr=curve["knn_accuracy_ci"],
                        yerr=curve["pc_n_ci"], fmt="-", marker="sDv^<>"[k % 6], ms=3, capsize=2,
                        color=_CURVE_COLORS[k % len(_CURVE_COLORS)], label=f"pc {name}")
        if len(zero):
            ax.plot(zero["knn_accuracy_mean"], zero["pc_n_mean"], "*", color="#d62728", ms=10, label="pc focus 0")
        ax.set_title(f"{data}, batch {batch}, {mode}", fontsize=9)
        ax.set_xlabel("kNN accuracy (k=5, test)")
        ax.set_ylabel("PC_n (test)")
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(runs: pd.DataFrame, args) -> None:
    if runs.empty:
        print("no runs yet")
        return
    runs = runs.copy()
    runs["batch"] = runs["batch"].astype(int)
    summary = summarise(runs)
    out = Path(args.output)
    summary.to_csv(out / "summary.csv", index=False)
    print_tables(summary)
    print_comparisons(runs)
    front = frontier(summary)
    front.to_csv(out / "frontier.csv", index=False)
    print("\n### Frontier data (PC_n against kNN accuracy; mean and 95% t half-width over seeds)\n")
    print("| data | batch | mode | method | seeds | PC_n | kNN | top-k |")
    print("|---|---|---|---|---|---|---|---|")
    for r in front.to_dict("records"):
        fmt = lambda m: f"{r[m + '_mean']:.4f} ± {r[m + '_ci']:.4f}"  # noqa: E731
        print(f"| {r['data']} | {r['batch']} | {r['mode']} | {r['method']} | {r['seeds']} | {fmt('pc_n')} | "
              f"{fmt('knn_accuracy')} | {fmt('topk_overlap')} |")
    try:
        plot_frontier(front, out / "frontier.png")
    except Exception as err:  # a figure must never cost the tables
        print(f"(frontier figure not written: {type(err).__name__}: {err})")
    data_sets = [d for d in args.data if d in set(runs["data"])]
    batches = [b for b in args.batches if b in set(runs["batch"])]
    chosen, reasons = decide(summary, args.data, args.batches)
    print("\n### Decision (rule in the docstring; class-unaware, "
          f"data {list(args.data)}, batch {list(args.batches)})\n")
    print("\n".join(reasons) if reasons else "- no pc setting with focus > 0 was run")
    if len(data_sets) < len(args.data) or len(batches) < len(args.batches):
        print("(some cells have no runs yet: no setting can qualify)")
    if chosen is None:
        print("\nDECISION: the default stays focus = 0.")
    else:
        print(f"\nDECISION: {chosen} qualifies with the highest mean kNN: it becomes the default.")
    print(f"\nwritten: {out / 'runs.csv'}, {out / 'summary.csv'}, {out / 'frontier.csv'}, {out / 'frontier.png'}")


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data", help="cache of teachers and students (<root>/runs), default 'data'")
    p.add_argument("--output", default="results/study_focus", help="folder of runs.csv and the summaries")
    p.add_argument("--device", default="cpu", help="'cpu' (default), 'cuda' or 'auto'")
    p.add_argument("--threads", type=int, default=1, help="torch and numba threads (default 1)")
    p.add_argument("--epochs", type=int, default=12, help="student epochs (default 12)")
    p.add_argument("--teacher-epochs", type=int, default=20, help="teacher epochs (default 20, as the main job)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. of the class-unaware cells (default 5)")
    p.add_argument("--aware-seeds", type=int, default=None, help="seeds of the class-aware cells (default: --seeds)")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--data", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    p.add_argument("--focus", nargs="+", default=list(DEFAULT_FOCUS), help="pc settings KIND:FOCUS[:FRACTION] "
                   f"(default {' '.join(DEFAULT_FOCUS)})")
    p.add_argument("--report-only", action="store_true", help="print the tables of runs.csv, train nothing")
    p.add_argument("--smoke", action="store_true", help=SMOKE_HELP + "; one mode, one baseline, two pc settings, "
                   "the output in the temporary folder too")
    args = p.parse_args(argv)
    if args.smoke:
        args.data, args.epochs, args.teacher_epochs, args.seeds, args.aware_seeds = ["digits"], 1, 1, 1, 1
        args.batches, args.modes, args.baselines, args.focus = [64], ["class-unaware"], ["pkt"], ["exp:0", "exp:4"]
        smoke_root(args)
        if args.output == "results/study_focus":
            args.output = str(Path(args.root) / "study_focus")
    args.aware_seeds = args.seeds if args.aware_seeds is None else args.aware_seeds
    settings = [parse_focus(tok) for tok in args.focus]
    if len({s["label"] for s in settings}) != len(settings):
        p.error("--focus names the same setting twice")

    torch.set_num_threads(args.threads)
    try:
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        pass
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "runs.csv"
    if args.report_only:
        report(read_runs(csv_path), args)
        return

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device}, "
          f"{args.threads} thread(s)", flush=True)
    print(f"students: digits_cnn, {args.epochs} epochs, Adam 1e-3; batches {args.batches}; modes {args.modes}; "
          f"seeds: {args.seeds} (class-unaware), {args.aware_seeds} (class-aware); baselines {args.baselines}; pc settings {[s['label'] for s in settings]}", flush=True)
    t_start = time.perf_counter()
    contexts = {name: prepare(name, args) for name in args.data}
    jobs = make_jobs(args, settings)
    done = set(read_runs(csv_path)["run"].astype(str))
    todo = []
    for job in jobs:
        key = student_spec(job, args.epochs).key(contexts[job["data"]]["key"])
        if key not in done:
            todo.append(job)
    print(f"{len(jobs)} runs in the study, {len(jobs) - len(todo)} already in {csv_path}, {len(todo)} to do", flush=True)
    for i, job in enumerate(todo, 1):
        row = run_job(job, contexts[job["data"]], args)
        append_run(csv_path, row)
        elapsed = time.perf_counter() - t_start
        print(f"[{i}/{len(todo)} {elapsed / 60:5.1f} min] {row['data']:>15} b{row['batch']:<3} {row['mode']:<13} "
              f"s{row['seed']} {row['method']:<20} PC_n {row['pc_n']:.4f} kNN {row['knn_accuracy']:.4f} top-k "
              f"{row['topk_overlap']:.4f} (train {row['train_s']:.0f} s, eval {row['eval_s']:.1f} s)", flush=True)
    report(read_runs(csv_path), args)
    print(f"\ntotal study time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
