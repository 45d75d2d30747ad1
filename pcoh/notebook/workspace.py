"""The notebooks' workspace: the smoke switch, the project's folders, the shared digits experiment.

The notebooks call :func:`experiment`; the first call trains (or loads from ``data/runs/``) the
teacher and every student, later calls and later notebooks load them from the cache. Under the
smoke switch (``PCOH_SMOKE=1``, set by ``make test`` and CI) budgets shrink and the same code runs.
The full configuration is the main job's (``python -m pcoh`` with no options), so after
``make run`` the notebooks only evaluate.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from .._checks import check_bool, check_int
from ..experiment import ExperimentConfig, ExperimentResult, run_experiment
from ..train import TrainConfig

__all__ = ["SMOKE", "UMAP_SETTINGS", "SMOKE_DIGITS_PER_CLASS", "smoke", "project_root", "figures_dir",
           "experiment_config", "experiment", "runs_to_train", "remove_stale_smoke_folders", "figures_folder", "digits_image_folder"]


def smoke() -> bool:
    """True when ``PCOH_SMOKE`` is set to anything but ``""``/``"0"``: shrink every budget."""
    return os.environ.get("PCOH_SMOKE", "") not in ("", "0")


SMOKE = smoke()


#: The UMAP settings of every notebook map (notebooks 05, 07 and 08), for
#: :func:`pcoh.embedding.umap_embedding(s) <pcoh.embedding.umap_embeddings>`: cosine geometry as the
#: teacher's dissimilarity, fixed seed; ``n_epochs=None`` is umap-learn's default (500 for these
#: sizes), 100 under the smoke switch.
UMAP_SETTINGS = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0,
                     n_epochs=100 if SMOKE else None)


def _smoke(smoke_mode) -> bool:
    """``smoke_mode``, or the smoke switch (:data:`SMOKE`) when it is None."""
    return SMOKE if smoke_mode is None else check_bool(smoke_mode, "smoke_mode")


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
    smoke_mode = _smoke(smoke_mode)
    root = project_root()
    cfg = ExperimentConfig(root=str(root / "data"), cache=str(root / "data"), output=str(root / "results"),
                           figures=str(root / "figures"))
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
    config = experiment_config(smoke_mode)
    return run_experiment(config, quiet=not runs_to_train(config), write=False)


def runs_to_train(config: ExperimentConfig, data=None) -> int:
    """How many of ``config``'s training runs (teacher and students) are not finished in its cache.

    The notebooks pass ``quiet=not runs_to_train(config)`` to :func:`pcoh.experiment.run_experiment`:
    progress bars (what it trains, the time left) when something is trained, none when everything
    is read from the cache (so that re-executing a notebook leaves its outputs the same).

    Parameters
    ----------
    config : ExperimentConfig
    data : DataSplit, optional
        The configuration's data, already loaded (else loaded here).
    """
    from ..experiment import load_data, teacher_spec
    from ..runs import run_dir
    from ..specs import UNTRAINED

    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    data = load_data(config) if data is None else data
    # Each seed's students go with the teacher of that seed's split (the repeated hold-out).
    tspecs = {ss: teacher_spec(config, data, ss) for ss in dict.fromkeys(map(config.split_seed, range(config.seeds)))}
    paths = [run_dir(config.cache, "teacher", t.key()) for t in tspecs.values() if t.checkpoint is None]
    paths += [run_dir(config.cache, "student", spec.key(tspecs[config.split_seed(spec.train.seed)].key()))
              for spec in config.runs() if spec.method != UNTRAINED]
    return sum(not (path / "final.pt").exists() for path in paths)


_SMOKE_PREFIX = "pcoh-smoke-figures-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: keep its folder
    return True


def remove_stale_smoke_folders(folder: Optional[Path] = None) -> list:
    """Remove the scratch figure folders of smoke runs whose process has ended.

    Each smoke run's folder is named ``pcoh-smoke-figures-<pid>-...`` after the process (the
    notebook's kernel) that made it. A kernel that exits normally removes its own folder; one that
    is killed (nbval stops its kernels so) cannot, so every later smoke run, and the notebook test
    session when it ends (``notebooks/conftest.py``), removes the folders of processes that are
    gone.

    Parameters
    ----------
    folder : pathlib.Path, optional
        Where the folders are; default the system's temporary folder.

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path or None, got {type(folder).__name__}")
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(_SMOKE_PREFIX + "*"):
        pid = path.name[len(_SMOKE_PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def figures_folder(smoke_mode: bool | None = None) -> Path:
    """Where a notebook exports its figures: :func:`figures_dir`, or a scratch folder in smoke mode.

    Smoke runs (``PCOH_SMOKE=1``, as in ``make test``) write to a new temporary folder, so that
    they never overwrite the committed full-run figures. The folder is removed when the Python
    process (the notebook's kernel) exits, or, if that process is killed, by the next smoke run
    or the end of the notebook tests (:func:`remove_stale_smoke_folders`).
    """
    smoke_mode = _smoke(smoke_mode)
    if smoke_mode:
        remove_stale_smoke_folders()
        folder = tempfile.mkdtemp(prefix=f"{_SMOKE_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return Path(folder)
    return figures_dir()


#: Digits of each class that the smoke switch keeps in :func:`digits_image_folder`'s folder.
SMOKE_DIGITS_PER_CLASS = 12


def digits_image_folder(smoke_mode: bool | None = None, *, size: int = 32) -> Path:
    """The digits as an image folder of PNG files, as a user's own images would be (notebook 09).

    ``<project>/data/digits-png/<digit>/<index>.png``: every image of scikit-learn's digits,
    ``size x size`` grey (:func:`pcoh.data.write_image_folder`, bilinear upsampling of the 8x8
    originals). Under the smoke switch, the first :data:`SMOKE_DIGITS_PER_CLASS` of each digit in
    ``data/digits-png-smoke/``. Files already written with the same bytes are left alone, so the
    folder, and the runs cached on it, stay valid from one call to the next.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from sklearn.datasets import load_digits

    from ..data import write_image_folder

    smoke_mode = _smoke(smoke_mode)
    size = check_int(size, "size", minimum=1)
    digits = load_digits()
    images, labels = digits.images / 16.0, digits.target
    folder = project_root() / "data" / "digits-png"
    if smoke_mode:
        keep = np.concatenate([np.flatnonzero(labels == k)[:SMOKE_DIGITS_PER_CLASS] for k in range(10)])
        images, labels, folder = images[keep], labels[keep], folder.with_name("digits-png-smoke")
    return write_image_folder(folder, images, labels, size=size)
