"""The run cache: run folders and their keys, one trainer per run, resuming and finishing a run.

A training run lives in ``<root>/runs/<kind>-<key>/`` (:func:`run_dir`), ``key`` a hash of
everything that defines the run (:func:`run_key`). The folder holds

- ``config.json``: the run's settings, for people to read;
- ``checkpoint.pt``: model, transfer-loss state, optimiser, scheduler, random state and
  learning curves after the last finished epoch, replaced after every epoch;
- ``final.pt`` and ``history.json`` once the run has finished (``checkpoint.pt`` is then removed);
  ``final.pt`` holds the run's configuration too, and is loaded only when that is the configuration
  asked for (a folder holding another run is trained again, never loaded);
- ``.lock``: the file locked by the process that trains the run.

Rules this module keeps:

- **Files are safe.** Every file is written atomically and read without executing code, and a
  damaged one is set aside, not deleted (:mod:`pcoh.files`).
- **One trainer per run.** :func:`run_lock` holds an exclusive lock on ``<run>/.lock``; a
  second process asking for the same run waits, then finds the finished run and reuses it. One
  job per output folder: :func:`output_lock`.
- **Stops are clean.** SIGINT and SIGTERM raise :class:`pcoh.interrupts.TrainingInterrupted`
  (held back while a checkpoint is being written); a loss that stops being finite raises
  :class:`TrainingDiverged`. Both say which run and which epoch the checkpoint on disk holds.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from . import distributed as _distributed
from ._checks import as_path, check_module, one_line
from .files import CorruptFileError, atomic_save, load_checkpoint, quarantine, read_json, recover, write_json

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = [
    "TrainingDiverged",
    "run_dir",
    "run_key",
    "output_lock",
    "OutputInUseError",
    "OUTPUT_LOCK",
    "run_lock",
    "CHECKPOINT_KEYS",
    "resume",
    "load_final",
    "repair_json",
    "finish",
    "cached_run",
]

_FORMAT = 1  # bump to invalidate every cached run when the checkpoint layout changes


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite; the checkpoint on disk is the last finite epoch's.

    Attributes
    ----------
    path : pathlib.Path
        The run folder.
    epoch : int
        The epoch whose loss was not finite (1-based).
    last_finite : int
        The last epoch with a finite loss, the one ``path / "checkpoint.pt"`` holds (0: none).
    """

    def __init__(self, desc: str, path: Path, epoch: int, last_finite: int, record: Optional[dict] = None,
                 detail: str = ""):
        self.desc, self.path, self.epoch, self.last_finite = desc, path, epoch, last_finite
        self.record = record or {}
        if not detail:
            detail = ", ".join(f"{k}={v:.4g}" for k, v in self.record.items() if k != "epoch")
        if last_finite:
            kept = f"the last finite epoch is {last_finite}, whose checkpoint is kept in {path / 'checkpoint.pt'}"
        else:
            kept = f"no epoch ended with a finite loss, so nothing was saved in {path}"
        super().__init__(
            f"run {path.name} ({desc}): the loss became NaN or infinite in epoch {epoch} ({one_line(detail, 120)}); "
            f"{kept}. Try a lower learning rate or loss weight (a changed setting starts a new run)"
        )


# ----------------------------------------------------------------------------- folders and keys
def run_dir(root, kind: str, key: str) -> Path:
    """Folder of a cached run: ``<root>/runs/<kind>-<key>``."""
    root = as_path(root, "root")
    for name, value in (("kind", kind), ("key", key)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r}")
        if not value or "/" in value or os.sep in value:
            raise ValueError(f"{name} must be a non-empty name without slashes, got {value!r}")
    return root / "runs" / f"{kind}-{key}"


def run_key(obj: dict) -> str:
    """12 hex digits of the SHA-256 of a run's settings (JSON, keys sorted, with the format)."""
    if not isinstance(obj, dict):
        raise TypeError(f"obj must be a dict of a run's settings, got {type(obj).__name__}")
    text = json.dumps({"format": _FORMAT, **obj}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- locks
def run_lock(path):
    """Hold the run folder's lock (``<path>/.lock``) for the duration of the block.

    A second process (or a second lock in this one) asking for the same folder prints one line
    to stderr and waits until the first releases it; the lock is released on exit, also when the
    holder crashes or is killed (the operating system drops it with the process).
    """
    return _run_lock(as_path(path))  # the path is checked at the call, not when the block starts


@contextlib.contextmanager
def _run_lock(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"pcoh: waiting for another process that is training the run in {path}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class OutputInUseError(RuntimeError):
    """Another process is writing the same output folder."""


#: The lock file an output folder holds while a run writes it.
OUTPUT_LOCK = ".pcoh.lock"


def output_lock(*folders):
    """Hold the lock of each output folder for the duration of the block, or fail at once.

    Two runs writing one folder would leave tables of one run beside figures of the other: the
    second run raises :class:`OutputInUseError` naming the folder, before it trains anything.
    The lock (``<folder>/.pcoh.lock``) is dropped when the block ends or the process dies. Once
    locked, a folder's set of files that a killed run committed is completed (:func:`pcoh.files.recover`).
    """
    return _output_lock([as_path(f, "folders") for f in folders])  # checked at the call


@contextlib.contextmanager
def _output_lock(folders: list):
    fds = []
    try:
        for folder in dict.fromkeys(f.resolve() for f in folders):
            folder.mkdir(parents=True, exist_ok=True)
            lock = folder / OUTPUT_LOCK
            if lock.is_dir():
                raise NotADirectoryError(f"{lock} is a folder; remove it (it is the lock file of {folder})")
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            fds.append(fd)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise OutputInUseError(
                        f"{folder} is being written by another pcoh run; wait until it ends, or choose "
                        f"another --output / --figures folder") from None
            recover(folder)  # a set of files a killed run committed but did not finish renaming
        yield
    finally:
        for fd in fds:
            os.close(fd)


# ----------------------------------------------------------------------------- run folders
#: What every checkpoint.pt holds: the training loop writes these entries, resuming checks them.
CHECKPOINT_KEYS = ("model", "loss", "optimizer", "scheduler", "rng", "history", "epoch")


def resume(ckpt_path: Path, model: nn.Module, transfer: Optional[nn.Module], opt, sched) -> tuple:
    """``(history, first epoch)`` from ``checkpoint.pt``; ``([], 0)`` when there is none.

    A checkpoint that cannot be read or applied is moved aside (:func:`pcoh.files.quarantine`)
    and every object is put back in its initial state, so the run restarts exactly as a fresh one.
    """
    ckpt_path = as_path(ckpt_path, "ckpt_path")
    check_module(model)
    if transfer is not None:
        check_module(transfer, "transfer")
    for name, obj in (("opt", opt), ("sched", sched)):
        if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
            raise TypeError(f"{name} must have state_dict and load_state_dict (an optimiser, a scheduler), "
                            f"got {type(obj).__name__}")
    if not ckpt_path.exists():
        return [], 0
    objects = [obj for obj in (model, transfer, opt, sched) if obj is not None]
    initial = [copy.deepcopy(obj.state_dict()) for obj in objects]
    try:
        # Read on the CPU: a run saved on any device resumes on any other (load_state_dict copies).
        state = load_checkpoint(ckpt_path, map_location="cpu")
        if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= set(state):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise CorruptFileError(f"not a training checkpoint of this version (found {found})")
        history, epoch = state["history"], state["epoch"]
        if not isinstance(history, list) or not isinstance(epoch, int) or len(history) != epoch:
            raise CorruptFileError(f"inconsistent history and epoch ({type(history).__name__}, {epoch!r})")
        model.load_state_dict(state["model"])
        if transfer is not None:
            transfer.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"].cpu())
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        for obj, saved in zip(objects, initial):
            obj.load_state_dict(saved)
        quarantine(ckpt_path, str(err))
        return [], 0
    return history, epoch


def load_final(path: Path, model: nn.Module, device, config: Optional[dict] = None) -> Optional[list]:
    """Load a finished run's weights into ``model``; its history, or ``None`` when there is no
    usable ``final.pt`` (a damaged one is moved aside and ``model`` keeps its initial weights).

    With ``config``, the run must be that one: the configuration ``final.pt`` holds (or, for a run
    written before final.pt held one, its ``config.json``) must equal ``config``; a folder holding
    another run is not loaded: its ``final.pt`` is moved aside, with a warning, and ``None`` returned.
    """
    check_module(model)
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict of the run's settings or None, got {type(config).__name__}")
    final = as_path(path) / "final.pt"
    if not final.exists():
        return None
    initial = copy.deepcopy(model.state_dict())
    try:
        state = load_checkpoint(final, map_location="cpu")  # saved anywhere, loads anywhere
        if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("history"), list):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise CorruptFileError(f"not a finished run (expected 'model' and 'history', found {found})")
        if config is not None:
            _check_same_run(path, state.get("config"), config)
        model.load_state_dict(state["model"])
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        model.load_state_dict(initial)
        quarantine(final, str(err))
        return None
    repair_json(path / "history.json", state["history"])
    return state["history"]


def _check_same_run(path: Path, stored, config: dict) -> None:
    """Raise :class:`CorruptFileError` unless the run in ``path`` is the one ``config`` describes."""
    where = "final.pt"
    if stored is None:  # a run finished before final.pt held its configuration: its config.json
        where = "config.json"
        try:
            stored = read_json(path / "config.json")
        except (ValueError, OSError):
            raise CorruptFileError("holds no configuration of its own and config.json cannot be read, so it "
                                   "cannot be checked to be the run asked for; it is trained again") from None
    if _canonical_json(stored) != _canonical_json(config):
        differ = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k)) \
            if isinstance(stored, dict) else ["the whole configuration"]
        raise CorruptFileError(f"holds another run (its {where} differs in {', '.join(map(str, differ[:5]))}); "
                               "its weights are not used and the run asked for is trained")


def repair_json(path: Path, content, *, overwrite: bool = False) -> None:
    """Write ``content`` to a JSON file that is missing or damaged (moved aside first), or always
    with ``overwrite``."""
    path = as_path(path)
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {type(overwrite).__name__}")
    if path.exists():
        try:
            found = read_json(path)
            if not overwrite:
                if _canonical_json(found) == _canonical_json(content):
                    return
                raise CorruptFileError(f"{path}: does not hold what the run's final.pt holds")
        except (ValueError, OSError) as err:
            quarantine(path, str(err))
    write_json(content, path)


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def finish(path: Path, model: nn.Module, history: list, extra: Optional[dict] = None) -> None:
    """Write a finished run: ``final.pt`` (weights and history), ``history.json``; drop the checkpoint."""
    path = as_path(path)
    check_module(model)
    if not isinstance(history, list):
        raise TypeError(f"history must be a list (one dict per epoch), got {type(history).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    atomic_save({"model": model.state_dict(), "history": history, **(extra or {})}, path / "final.pt")
    write_json(history, path / "history.json")
    ckpt = path / "checkpoint.pt"
    if ckpt.exists():
        ckpt.unlink()


def cached_run(path: Path, config: dict, model: nn.Module, dev, cache: bool, train) -> tuple:
    """The run cache around one training run: with the run folder locked, load the finished run
    (``cache``) or write its ``config.json``, call ``train() -> history`` and write ``final.pt``.
    Returns ``(history, cached)``.

    Under torchrun, rank 0 alone holds the lock and writes; the others follow through barriers.
    """
    path = as_path(path)
    check_module(model)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of the run's settings, got {type(config).__name__}")
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {type(cache).__name__}")
    if not callable(train):
        raise TypeError(f"train must be a callable () -> history, got {type(train).__name__}")
    with _rank0_lock(path):  # a second process waits here, then finds the finished run
        if cache:
            history = load_final(path, model, dev, config)
            if history is not None:
                if _distributed.is_main():
                    repair_json(path / "config.json", config)
                return history, True
        if _distributed.is_main():
            repair_json(path / "config.json", config, overwrite=True)
        _distributed.barrier()  # nobody trains before rank 0 has written the run's config
        history = train()
        if _distributed.is_main():
            finish(path, model, history, {"config": config})
        _distributed.barrier()  # the next run's cache check sees final.pt on every process
    return history, False


def _rank0_lock(path: Path):
    """The run folder's lock (:func:`run_lock`), held by rank 0 alone under torchrun:
    the other processes follow rank 0 through barriers and must not wait for its lock."""
    return run_lock(path) if _distributed.is_main() else contextlib.nullcontext()
