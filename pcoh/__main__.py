"""Command line: ``python -m pcoh`` (or ``pcoh``) runs the main job.

With no arguments: the embedded digits data, the ``digits_resnet`` teacher, ``digits_cnn``
students trained with every method in both modes and five seeds (each seed on its own held-out
split with its own teacher, ``--split per-seed``); tables and figures go to
``results/latest/digits/`` (not tracked by git). ``--compare results/reference`` checks the run
against the committed reference results (numbers within tolerance, the same verdicts). ``--config FILE`` reads a YAML/TOML file (or a
shipped config by name, e.g. ``cifar100_resnet32x4_resnet8x4``); options given on the command line
override it.

Everything that can be checked before training is checked first (``--check`` stops there): a
mistake ends with exit status 2 and one line on stderr. Ctrl-C or SIGTERM during training keeps
the last finished epoch's checkpoint and says how to resume (run the same command again); the
exit status is 130 or 143. A loss that turns NaN ends with status 1, naming the run and the last
finite epoch.

``torchrun --nproc_per_node N -m pcoh ...`` runs the same job on N processes (GPUs, or CPU
processes with gloo); ``--batch-size`` stays the global batch. See :mod:`pcoh.distributed`.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import shlex
import signal
import sys
import threading
import time
import warnings

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of the usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import data, methods, models
    from .config import STUDENT_TRAIN as S
    from .config import TEACHER_TRAIN as T
    from .specs import MODES

    p = _Parser(
        prog="pcoh",
        description="Train a teacher, transfer it to students with every method, evaluate how well "
        "each keeps the teacher's rankings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", help="YAML or TOML file (or a shipped config name) with ExperimentConfig fields")
    p.add_argument("--dataset", choices=data.available(), help="data set (default digits)")
    p.add_argument("--root", help="folder of the data files (for image_folder: the folder of images; only read) "
                   "(default data)")
    p.add_argument("--cache", help="folder of cached runs, evaluations and statistics (default data)")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    names = f"one of {', '.join(models.available())}, or tv:NAME[@LAYER] for a torchvision model (e.g. tv:resnet18)"
    p.add_argument("--teacher", metavar="MODEL", help=f"teacher architecture: {names} (default digits_resnet)")
    p.add_argument("--teacher-checkpoint", help="load the teacher's weights from this file instead of training")
    p.add_argument("--teacher-weights", metavar="NAME",
                   help="torchvision's published weights of a tv: teacher (DEFAULT, IMAGENET1K_V1, ...), read from "
                   "torch.hub's folder or downloaded; image folders get their preprocessing")
    # Lists given twice add up (`--methods pc --methods rkd` is `--methods pc rkd`).
    p.add_argument("--students", nargs="+", action="extend", metavar="MODEL",
                   help=f"student architectures: {names} (default digits_cnn)")
    p.add_argument("--methods", nargs="+", action="extend", choices=methods.available(),
                   help="transfer methods (default: all)")
    p.add_argument("--modes", nargs="+", action="extend", choices=list(MODES), help="training modes (default: both)")
    p.add_argument("--seeds", type=int, help="replicates: student seeds 0..N-1, each on its own held-out split "
                   "with its own teacher under --split per-seed (default 5)")
    p.add_argument("--split", choices=["per-seed", "fixed"],
                   help="per-seed: each seed draws its own stratified split and trains its own teacher (the repeated "
                   "hold-out); fixed: one split and one teacher for every seed (default per-seed)")
    p.add_argument("--compare", metavar="REF",
                   help="after the job, check its results against a reference folder (its results.csv, or "
                   "REF/DATASET/results.csv): numbers within the stated tolerances, every verdict the same; "
                   "exit status 1 if not (e.g. --compare results/reference)")
    p.add_argument("--epochs", type=int, help=f"student epochs (default {S.epochs})")
    p.add_argument("--teacher-epochs", type=int, help=f"teacher epochs (default {T.epochs})")
    p.add_argument("--batch-size", type=int, help=f"batch size of the students (default {S.batch_size})")
    p.add_argument("--teacher-batch-size", type=int, help=f"batch size of the teacher (default {T.batch_size})")
    p.add_argument("--lr", type=float, help=f"student learning rate (default {S.lr:g}, {S.optimizer})")
    p.add_argument("--strength", type=float, help="soft-rank regularization strength of the pc loss")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--output", help="folder for the tables (default results)")
    p.add_argument("--figures", help="folder for the figures (default figures; OUTPUT/DATASET, beside the "
                   "tables, when --output names another folder)")
    p.add_argument("--no-cache", action="store_true", help="retrain even when a finished run is cached")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--estimate", action="store_true",
                   help="time a few steps of each kind of run and print the projected training time; train nothing")
    p.add_argument("--amp", action="store_true", help="bf16 autocast of the models on CUDA (part of the cache key there; on a CPU it changes nothing, the key neither)")
    p.add_argument("--channels-last", action="store_true", help="channels-last layout of models and batches")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (CUDA graphs on CUDA)")
    p.add_argument("--num-workers", type=int,
                   help="worker processes for data read from files item by item (default: cores - 1, at most 8)")
    p.add_argument("--threads", type=int,
                   help="threads of torch, numba and BLAS each (default: OMP_NUM_THREADS if set, else the cores "
                   "this process may use, from its CPU affinity)")
    p.add_argument("--jobs", type=int,
                   help="processes that train runs side by side on a CPU, sharing the threads (default: as many as "
                   "the threads, at most 4; 1 on CUDA)")
    p.add_argument("--check", action="store_true",
                   help="check the settings, data, teacher checkpoint and folders, then stop without training")
    return p


def _section(table: dict, section: str) -> dict:
    """``table[section]`` as a dict of the fields set so far (created empty)."""
    value = table.setdefault(section, {})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = table[section] = dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise TypeError(f"{section} must be a table of settings, got {type(value).__name__}")
    return value


def _config(args: argparse.Namespace):
    """The configuration: the config file's fields, then the options given on the command line.

    Only what is given is set; every other field keeps the job's default (``ExperimentConfig``
    resolves a partial ``student_train`` / ``teacher_train`` table against its own defaults).
    """
    from .config import ExperimentConfig, load_config

    given = vars(args)
    table = load_config(given.pop("config")) if "config" in given else {}
    for name in ("dataset", "root", "cache", "download", "teacher", "teacher_checkpoint", "teacher_weights",
                 "students", "methods", "modes", "seeds", "split", "device", "output", "figures", "threads",
                 "jobs"):
        if name in given:
            table[name] = given[name]
    options = {"student_train": {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr"},
               "teacher_train": {"teacher_epochs": "epochs", "teacher_batch_size": "batch_size"}}
    for section, names in options.items():
        for option, name in names.items():
            if option in given:
                _section(table, section)[name] = given[option]
    for option in ("amp", "channels_last", "compile", "num_workers"):  # speed options: teacher and students
        if option in given:
            for section in ("teacher_train", "student_train"):
                _section(table, section)[option] = given[option]
    if "strength" in given:
        kwargs = table.setdefault("loss_kwargs", {})
        if not isinstance(kwargs, dict) or not isinstance(kwargs.setdefault("pc", {}), dict):
            raise TypeError("loss_kwargs must be a table of tables (method -> settings)")
        kwargs["pc"]["regularization_strength"] = given["strength"]
    return ExperimentConfig(**table)


def _estimate(cfg, data, quiet: bool) -> int:
    import torch

    from .experiment import estimate
    from .tables import estimate_table
    from .devices import resolve_device

    dev = resolve_device(cfg.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(estimate_table(estimate(cfg, quiet=quiet, data=data), device=name))
    return 0


#: Write errors that pass once the disk is freed or the mount is back: resuming helps there.
_PASSING = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE}


def _fail(err: BaseException, status: int = 2) -> int:
    print(f"pcoh: error: {' '.join(str(err).split())}", file=sys.stderr)
    return status


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"pcoh: warning: {' '.join(str(message).split())}", file=sys.stderr)


@contextlib.contextmanager
def _signals_and_warnings():
    """SIGTERM raises like Ctrl-C does; warnings take one line each."""
    from .interrupts import TrainingInterrupted

    def on_sigterm(signum, frame):
        raise TrainingInterrupted(signum)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _distributed_setup(cfg) -> None:
    """Join torchrun's process group (if any), each process on its own GPU; check batch sizes."""
    from . import distributed as _dist
    from .devices import resolve_device

    dev = resolve_device(cfg.device)
    if not _dist.init(dev):
        return
    if dev.type == "cuda":
        cfg.device = f"cuda:{_dist.local_rank()}"
    try:
        _dist.check_batch_size(cfg.student_train.batch_size, "--batch-size")
        _dist.check_batch_size(cfg.teacher_train.batch_size, "--teacher-batch-size")
    except ValueError:
        _dist.teardown()
        raise


def main(argv=None) -> int:
    """Entry point; returns the exit status.

    0: done; 1: the training failed (a NaN loss, a write error); 2: bad options, settings, data
    or files, found before any training; 130 / 143: interrupted by SIGINT / SIGTERM.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    cache = not getattr(args, "no_cache", False)
    estimate = getattr(args, "estimate", False)
    check_only = getattr(args, "check", False)
    compare = getattr(args, "compare", None)
    for flag in ("quiet", "no_cache", "estimate", "check", "compare"):
        if hasattr(args, flag):
            delattr(args, flag)
    from . import distributed as _dist

    try:
        cfg = _config(args)
        from .threads import choose_threads, set_threads

        set_threads(choose_threads(cfg.threads))  # one count for every thread pool of the process
        reference = _reference(compare, cfg.dataset) if compare is not None else None
        # Under torchrun: join the process group (one process per GPU, or gloo on CPUs).
        _distributed_setup(cfg)
    except (ValueError, TypeError) as err:
        return _fail(err)
    from .data import DatasetIntegrityError
    from .experiment import check_experiment, run_experiment
    from .tables import comparison_tables, summary_table
    from .interrupts import TrainingInterrupted
    from .runs import OutputInUseError, TrainingDiverged

    resume = "python -m pcoh" + ("" if not argv else " " + shlex.join(argv))
    with _signals_and_warnings():
        try:
            try:
                data = check_experiment(cfg)
            except (ValueError, TypeError, OSError, DatasetIntegrityError) as err:
                return _fail(err)
            if estimate:
                return _estimate(cfg, data, quiet)
            if check_only:
                print("pcoh: all checks passed; nothing was trained (drop --check to run)")
                return 0
            start = time.perf_counter()
            try:
                result = run_experiment(cfg, quiet=quiet or not _dist.is_main(), cache=cache, data=data)
            except TrainingDiverged as err:
                return _fail(err, 1)
            except OutputInUseError as err:
                return _fail(err)
            except OSError as err:
                if err.errno in _PASSING:  # a full disk, a lost mount: once fixed, resuming helps
                    return _fail(f"{err}; finished epochs and runs are kept, run the same command to resume", 1)
                return _fail(f"{err}; fix this and run again (finished epochs and runs are kept)", 1)
        except TrainingInterrupted as err:
            print(f"pcoh: {' '.join(str(err).split())}; to resume, run the same command: {resume}", file=sys.stderr)
            return err.exit_status
        except KeyboardInterrupt:
            print(f"pcoh: interrupted; finished runs are kept, to resume run the same command: {resume}",
                  file=sys.stderr)
            return 128 + signal.SIGINT
        finally:
            _dist.teardown()
    if result is None:  # a process of rank > 0: rank 0 evaluates and reports
        return 0
    elapsed = time.perf_counter() - start
    print(summary_table(result.results))
    print()
    comparisons = comparison_tables(result.results)
    if comparisons:
        print(comparisons)
        print()
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    print(f"finished in {elapsed:.0f} s")
    if reference is not None:
        return _compare(result.results, reference)
    return 0


def _reference(folder: str, dataset: str):
    """The reference results table of ``--compare``: ``folder/results.csv`` or
    ``folder/<dataset>/results.csv``; ValueError naming the paths when neither is there."""
    from pathlib import Path

    import pandas as pd

    base = Path(folder)
    for path in (base / "results.csv", base / dataset / "results.csv"):
        if path.is_file():
            try:
                return str(path), pd.read_csv(path)
            except (OSError, ValueError) as err:
                raise ValueError(f"--compare: cannot read {path}: {err}") from None
    raise ValueError(f"--compare: no results.csv in {base} or {base / dataset}")


def _compare(results, reference) -> int:
    from .stats import compare_runs
    from .tables import CHECKED_METRICS, COMPARED_METRICS, compare_report

    path, frame = reference
    students = results[~results["method"].isin(["teacher", "untrained"])]
    ref_students = frame[~frame["method"].isin(["teacher", "untrained"])]
    metrics = [m for m in CHECKED_METRICS if m in results.columns and m in frame.columns
               and results[m].notna().any() and frame[m].notna().any()]
    numbers, _ = compare_runs(results, frame, metrics, by=("student", "mode"))
    verdicts = [m for m in COMPARED_METRICS if m in metrics]
    _, changed = compare_runs(students, ref_students, verdicts, by=("student", "mode"))
    print()
    print(compare_report(numbers, changed, reference=path))
    return 0 if len(changed) == 0 and bool(numbers["ok"].all()) else 1


if __name__ == "__main__":
    sys.exit(main())
