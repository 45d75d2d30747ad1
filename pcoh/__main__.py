"""Command line: ``python -m pcoh`` (or ``pcoh``) runs the main job.

With no arguments: the embedded digits data, the ``digits_resnet`` teacher, ``digits_cnn``
students trained with every method in both modes and three seeds; tables go to
``results/digits/`` and figures to ``figures/``. ``--config FILE`` reads a YAML/TOML file (or a
shipped config by name, e.g. ``cifar100_resnet32x4_resnet8x4``); options given on the command line
override it.

``torchrun --nproc_per_node N -m pcoh ...`` runs the same job on N processes (GPUs, or CPU
processes with gloo); ``--batch-size`` stays the global batch. See :mod:`pcoh.distributed`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from . import data, losses, models
    from .train import MODES

    p = argparse.ArgumentParser(
        prog="pcoh",
        description="Train a teacher, transfer it to students with every method, evaluate how well "
        "each keeps the teacher's rankings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", help="YAML or TOML file (or a shipped config name) with ExperimentConfig fields")
    p.add_argument("--dataset", choices=data.available(), help="data set (default digits)")
    p.add_argument("--root", help="folder of data files and cached runs (default data)")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set")
    p.add_argument("--teacher", choices=models.available(), help="teacher architecture (default digits_resnet)")
    p.add_argument("--teacher-checkpoint", help="load the teacher's weights from this file instead of training")
    p.add_argument("--students", nargs="+", choices=models.available(), help="student architectures (default digits_cnn)")
    p.add_argument("--methods", nargs="+", choices=sorted(losses.available() + ["ce"]),
                   help="transfer methods (default: all)")
    p.add_argument("--modes", nargs="+", choices=list(MODES), help="training modes (default: both)")
    p.add_argument("--seeds", type=int, help="number of student seeds (default 3)")
    p.add_argument("--epochs", type=int, help="student epochs (default 20)")
    p.add_argument("--teacher-epochs", type=int, help="teacher epochs (default 20)")
    p.add_argument("--batch-size", type=int, help="batch size of the students (default 64)")
    p.add_argument("--teacher-batch-size", type=int, help="batch size of the teacher (default 128)")
    p.add_argument("--lr", type=float, help="student learning rate (default 1e-3, Adam)")
    p.add_argument("--strength", type=float, help="soft-rank regularization strength of the pc loss")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--output", help="folder for the tables (default results)")
    p.add_argument("--figures", help="folder for the figures (default figures)")
    p.add_argument("--no-cache", action="store_true", help="retrain even when a finished run is cached")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _config(args: argparse.Namespace):
    from .experiment import ExperimentConfig, load_config

    given = vars(args)
    table = load_config(given.pop("config")) if "config" in given else {}
    for name in ("dataset", "root", "download", "teacher", "teacher_checkpoint", "students", "methods",
                 "modes", "seeds", "device", "output", "figures"):
        if name in given:
            table[name] = given[name]
    for section, options in (("student_train", {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr"}),
                             ("teacher_train", {"teacher_epochs": "epochs", "teacher_batch_size": "batch_size"})):
        for option, name in options.items():
            if option in given:
                table.setdefault(section, {})
                if not isinstance(table[section], dict):
                    table[section] = dataclasses.asdict(table[section])
                table[section][name] = given[option]
    if "strength" in given:
        table.setdefault("loss_kwargs", {}).setdefault("pc", {})["regularization_strength"] = given["strength"]
    return ExperimentConfig(**table)


def _distributed_setup(cfg) -> None:
    """Join torchrun's process group (if any), each process on its own GPU; check batch sizes."""
    from . import distributed as _dist
    from .train import resolve_device

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
    """Entry point; returns the exit status (2 for bad options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    cache = not getattr(args, "no_cache", False)
    for flag in ("quiet", "no_cache"):
        if hasattr(args, flag):
            delattr(args, flag)
    from . import distributed as _dist

    try:
        cfg = _config(args)
        # Under torchrun: join the process group (one process per GPU, or gloo on CPUs).
        _distributed_setup(cfg)
    except (ValueError, TypeError) as err:
        parser.error(str(err))  # exits with status 2
    from .data import DatasetNotFoundError
    from .experiment import run_experiment, summary_table

    start = time.perf_counter()
    try:
        result = run_experiment(cfg, quiet=quiet or not _dist.is_main(), cache=cache)
    except DatasetNotFoundError as err:
        print(f"pcoh: error: {err}", file=sys.stderr)
        return 2
    finally:
        _dist.teardown()
    if result is None:  # a process of rank > 0: rank 0 evaluates and reports
        return 0
    elapsed = time.perf_counter() - start
    print(summary_table(result.results))
    print()
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    print(f"finished in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
