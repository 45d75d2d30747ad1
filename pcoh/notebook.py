"""What every notebook needs: the smoke switch, project paths, and the shared digits experiment.

The notebooks call :func:`experiment`; the first call trains (or loads from ``data/runs/``) the
teacher and every student, later calls and later notebooks load them from the cache. Under the
smoke switch (``PCOH_SMOKE=1``, set by ``make test`` and CI) budgets shrink and the same code runs.
The full configuration is the main job's (``python -m pcoh`` with no options), so after
``make run`` the notebooks only evaluate.
"""
from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
from pathlib import Path

from .experiment import ExperimentConfig, ExperimentResult, run_experiment
from .train import TrainConfig

__all__ = ["SMOKE", "smoke", "project_root", "experiment_config", "experiment", "figures_dir"]


def smoke() -> bool:
    """True when ``PCOH_SMOKE`` is set to anything but ``""``/``"0"``: shrink every budget."""
    return os.environ.get("PCOH_SMOKE", "") not in ("", "0")


SMOKE = smoke()


def project_root() -> Path:
    """The folder holding ``pyproject.toml``, searched upwards from the working directory.

    Falls back to the working directory (e.g. for an installed, non-editable package).
    """
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() and (folder / "pcoh").is_dir():
            return folder
    return here


def figures_dir() -> Path:
    """``<project>/figures``, created if missing."""
    path = project_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def experiment_config(smoke_mode: bool | None = None) -> ExperimentConfig:
    """The notebooks' experiment: the main job's settings, or a tiny budget in smoke mode."""
    smoke_mode = SMOKE if smoke_mode is None else smoke_mode
    root = project_root()
    cfg = ExperimentConfig(root=str(root / "data"), output=str(root / "results"), figures=str(root / "figures"))
    if smoke_mode:
        cfg = dataclasses.replace(
            cfg,
            seeds=1,
            teacher_train=TrainConfig(epochs=3),
            student_train=TrainConfig(epochs=2),
        )
    return cfg


@lru_cache(maxsize=2)
def experiment(smoke_mode: bool | None = None) -> ExperimentResult:
    """Train or load the teacher and every student of :func:`experiment_config`, evaluated.

    Nothing is written to ``results/`` (the main job owns it); cached runs go to ``data/runs``.
    """
    return run_experiment(experiment_config(smoke_mode), quiet=True, write=False)
