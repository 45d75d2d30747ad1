"""The run cache: folders, keys, atomic writes, safe loading, quarantine, locks, interruptions.

A training run lives in ``<root>/runs/<kind>-<key>/`` (:func:`run_dir`), ``key`` a hash of
everything that defines the run (:func:`run_key`). The folder holds

- ``config.json``: the run's settings, for people to read;
- ``checkpoint.pt``: model, transfer-loss state, optimiser, scheduler, random state and
  learning curves after the last finished epoch, replaced after every epoch;
- ``final.pt`` and ``history.json`` once the run has finished (``checkpoint.pt`` is then removed);
- ``.lock``: the file locked by the process that trains the run.

Rules this module keeps:

- **Nothing half-written.** :func:`atomic_save` and :func:`write_json` write a temporary file in
  the same folder, flush it to disk and rename it over the target, so a crash, a full disk or a
  signal leaves either the old file or the new one, never a mix.
- **Nothing executed.** :func:`load_checkpoint` reads with ``torch.load(weights_only=True)``:
  tensors, numbers, strings and containers only. A file that needs any other pickled object
  raises :class:`UnsafeCheckpointError` and runs none of it; a damaged file raises
  :class:`CorruptFileError`.
- **Nothing deleted.** A cache file that fails to load is renamed ``<name>.corrupt``
  (:func:`quarantine`) with a one-line :class:`CacheWarning`, and the run resumes or retrains.
- **One trainer per run.** :func:`run_lock` holds an exclusive lock on ``<run>/.lock``; a
  second process asking for the same run waits, then finds the finished run and reuses it.
- **Interruptions are clean.** :class:`Interrupts` turns SIGINT and SIGTERM into
  :class:`TrainingInterrupted` (held back while a checkpoint is being written); a loss that
  stops being finite raises :class:`TrainingDiverged`. Both say which run and which epoch the
  checkpoint on disk holds.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import io
import os
import pickle
import pickletools
import signal
import sys
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from . import distributed as _distributed

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = [
    "CacheWarning",
    "CorruptFileError",
    "UnsafeCheckpointError",
    "TrainingInterrupted",
    "TrainingDiverged",
    "Interrupts",
    "run_dir",
    "run_key",
    "atomic_save",
    "write_bytes",
    "write_files",
    "write_json",
    "output_lock",
    "OutputInUseError",
    "OUTPUT_LOCK",
    "read_json",
    "load_checkpoint",
    "quarantine",
    "run_lock",
    "CHECKPOINT_KEYS",
    "resume",
    "load_final",
    "repair_json",
    "finish",
    "cached_run",
]

_FORMAT = 1  # bump to invalidate every cached run when the checkpoint layout changes


class CacheWarning(UserWarning):
    """A cache file could not be read and was moved aside."""


class CorruptFileError(ValueError):
    """A file is damaged (truncated, overwritten) or is not the kind of file expected."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds pickled objects other than tensors and plain containers; refused."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during training.

    Attributes
    ----------
    signum : int
        The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
    path : pathlib.Path or None
        The run folder, when the signal came during a run.
    epoch : int
        Epochs finished and saved in ``path / "checkpoint.pt"`` (0: none).
    """

    def __init__(self, signum: int, *, path: Optional[Path] = None, epoch: int = 0, epochs: int = 0,
                 desc: str = ""):
        self.signum, self.path, self.epoch, self.epochs, self.desc = signum, path, epoch, epochs, desc
        super().__init__(str(self))

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + int(self.signum)

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        if self.path is None:
            return f"interrupted by {name}"
        if self.epoch == 0:
            saved = "no epoch had finished, so the run will start again from the beginning"
        else:
            saved = f"the checkpoint of epoch {self.epoch} of {self.epochs} is saved in {self.path}"
        return f"{self.desc}: interrupted by {name}; {saved}"


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
            f"run {path.name} ({desc}): the loss became NaN or infinite in epoch {epoch} ({_one_line(detail, 120)}); "
            f"{kept}. Try a lower learning rate or loss weight (a changed setting starts a new run)"
        )


# ----------------------------------------------------------------------------- folders and keys
def _path(value, name: str = "path") -> Path:
    """``value`` (a str or os.PathLike) as a Path; TypeError naming the argument otherwise."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    return Path(value)


def _check_module(model, name: str = "model") -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")


def run_dir(root, kind: str, key: str) -> Path:
    """Folder of a cached run: ``<root>/runs/<kind>-<key>``."""
    root = _path(root, "root")
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


# ----------------------------------------------------------------------------- writing
def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a folder be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _stage(path: Path, write) -> str:
    """Call ``write(file)`` on a new temporary file next to ``path``, flushed to disk; its name.

    On failure the temporary file is removed and the error raised: ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return tmp


def _atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it over ``path``."""
    path = _path(path)
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_save(obj: Any, path) -> None:
    """``torch.save(obj)`` to ``path`` atomically: after a failure the previous file is intact.

    Parameters
    ----------
    obj : object
        Anything :func:`load_checkpoint` can read back: tensors, numbers, strings, and lists,
        tuples and dicts of them (state dicts of modules and optimisers are).
    path : path-like
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def write_bytes(data: bytes, path) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old file or the new one, never a part."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    _atomic_write(path, lambda f: f.write(data))


def write_files(contents: dict) -> None:
    """Write several files as one: every ``path -> bytes`` is staged in a temporary file first,
    then all are renamed into place with SIGINT/SIGTERM deferred.

    A failure or an interruption while staging leaves every previous file as it was; the renames
    themselves take microseconds, so a results table is never left beside the summary of
    another run.
    """
    if not isinstance(contents, dict):
        raise TypeError(f"contents must be a dict of path -> bytes, got {type(contents).__name__}")
    for path, data in contents.items():
        _path(path, "contents' paths")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"contents must map each path to bytes, got {type(data).__name__} for {path}")
    staged = []
    try:
        for path, data in contents.items():
            path = Path(path)
            staged.append((_stage(path, lambda f, data=data: f.write(data)), path))
        with Interrupts() as signals, signals.hold():
            for tmp, path in staged:
                os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise
    for folder in {path.parent for _, path in staged}:
        _fsync_dir(folder)


def write_json(obj: Any, path) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    _path(path)
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    _atomic_write(path, lambda f: f.write(text.encode()))


# ----------------------------------------------------------------------------- reading
def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(path) -> Any:
    """Read a JSON file; a damaged one raises :class:`CorruptFileError` naming it."""
    path = _path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{path}: damaged or not JSON ({_one_line(err, 120)})") from None


def _pickle_bytes(path: Path) -> Optional[bytes]:
    """The pickle stream of a checkpoint: ``data.pkl`` inside a zip file, else the whole file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                return zf.read(names[0]) if names else None
        return path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return None


def _callables_in(data: bytes) -> Optional[list]:
    """Names the pickles in ``data`` would import (``module.name``), read without running them.

    A legacy torch file is several pickles in a row followed by raw bytes, so pickles are read
    one after another until one fails to parse. ``None`` when not even the first one parses.
    """
    names: list = []
    stream = io.BytesIO(data)
    for count in range(8):
        strings: list = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL":
                    names.append(".".join(strings[-2:]) if len(strings) >= 2 else "?")
                if isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # any parse failure means: no (further) pickle stream
            return names if count else None
        if stream.tell() >= len(data):
            break
    return names


def _unsafe_or_corrupt(path: Path, err: Exception) -> ValueError:
    """Tell a refused (unsafe) file from a damaged one after ``weights_only`` loading failed."""
    message = str(err)
    if "Unsupported global" in message:
        start = message.find("GLOBAL ") + len("GLOBAL ")
        what = message[start:].split(" ", 1)[0] if "GLOBAL " in message else "a Python object"
        return _unsafe(path, what)
    data = _pickle_bytes(path)
    names = _callables_in(data) if data is not None else None
    if names:  # a readable pickle that imports something torch does not allow
        allowed = ("torch.", "collections.OrderedDict", "collections.Counter", "builtins.set")
        bad = [n for n in names if not n.startswith(allowed)]
        return _unsafe(path, bad[0] if bad else names[0])
    return _corrupt(path, "its bytes are not a pickle stream")


def _corrupt(path: Path, reason: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: damaged or not a PyTorch checkpoint ({reason})")


def _unsafe(path: Path, what: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path}: refused to load: it holds pickled Python objects (it would call {what}), and loading "
        "them can run arbitrary code. Only tensors, numbers, strings and containers are accepted; if you "
        "trust the file, save its state dict alone (torch.save(model.state_dict(), 'weights.pt'))"
    )


def load_checkpoint(path, *, map_location="cpu") -> Any:
    """Read a file written by ``torch.save`` without executing anything from it.

    Uses ``torch.load(path, weights_only=True)``: only tensors, numbers, strings, ``None`` and
    lists, tuples, dicts (and ordered dicts, counters) of them can come back. No callable
    stored in the file is ever called.

    Parameters
    ----------
    path : path-like
    map_location : str or torch.device, default "cpu"

    Returns
    -------
    object

    Raises
    ------
    FileNotFoundError
        No such file.
    UnsafeCheckpointError
        (a :class:`ValueError`) The file needs other pickled objects (a whole pickled model, a
        custom class, a function): refused, nothing from it ran.
    CorruptFileError
        (a :class:`ValueError`) The file is truncated, overwritten, empty or not a checkpoint.
    """
    path = _path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise CorruptFileError(f"{path}: a folder, expected a checkpoint file")
    with warnings.catch_warnings():
        # torch warns about pickle protocols before refusing a file; our error says it better
        warnings.simplefilter("ignore", UserWarning)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _unsafe_or_corrupt(path, err) from None
        except (PermissionError, FileNotFoundError):
            raise
        except (RuntimeError, OSError, EOFError, KeyError, ValueError, IndexError, TypeError, AttributeError,
                UnicodeDecodeError, OverflowError, MemoryError, zipfile.BadZipFile) as err:
            # torch's reader fails with many types on damaged bytes; none of them ran file content
            if isinstance(err, EOFError):
                reason = "the file ends too early"
            elif isinstance(err, (RuntimeError, OSError)) and str(err):
                reason = _one_line(str(err).split(". ")[0], 120)  # torch's first sentence says what failed
            else:
                reason = f"unreadable content, {type(err).__name__}"
            raise _corrupt(path, reason) from None


# ----------------------------------------------------------------------------- quarantine
def quarantine(path, reason: str = "") -> Path:
    """Move a damaged cache file aside, as ``<name>.corrupt`` (``.corrupt.1``, ... if taken).

    Never deletes anything. Issues one :class:`CacheWarning` naming the file and the new name.

    Returns
    -------
    pathlib.Path
        Where the file now is.
    """
    path = _path(path)
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a string, got {type(reason).__name__}")
    target = path.with_name(path.name + ".corrupt")
    count = 0
    while target.exists():
        count += 1
        target = path.with_name(f"{path.name}.corrupt.{count}")
    os.replace(path, target)
    reason = _one_line(reason, 200)
    if reason.startswith(f"{path}: "):
        reason = reason[len(f"{path}: "):]
    warnings.warn(f"{path}: {reason or 'unreadable'}; moved aside to {target.name}", CacheWarning, stacklevel=2)
    return target


# ----------------------------------------------------------------------------- locks
def run_lock(path):
    """Hold the run folder's lock (``<path>/.lock``) for the duration of the block.

    A second process (or a second lock in this one) asking for the same folder prints one line
    to stderr and waits until the first releases it; the lock is released on exit, also when the
    holder crashes or is killed (the operating system drops it with the process).
    """
    return _run_lock(_path(path))  # the path is checked at the call, not when the block starts


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
    The lock (``<folder>/.pcoh.lock``) is dropped when the block ends or the process dies.
    """
    return _output_lock([_path(f, "folders") for f in folders])  # checked at the call


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
        yield
    finally:
        for fd in fds:
            os.close(fd)


# ----------------------------------------------------------------------------- signals
class Interrupts:
    """Context manager: SIGINT and SIGTERM raise :class:`TrainingInterrupted` inside the block.

    Within :meth:`hold` (around a checkpoint write) a signal is remembered and raised once the
    write has finished, so the epoch just saved is not lost. Handlers are installed only in the
    main thread (Python allows no other) and the previous ones are restored on exit.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self._pending: Optional[int] = None
        self._holding = False
        #: Epochs saved so far; the training loop keeps it up to date for the error message.
        self.checkpointed = 0
        self._previous: dict = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in self._SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self._holding:
            self._pending = signum
            return
        raise TrainingInterrupted(signum)

    @contextlib.contextmanager
    def hold(self):
        """Defer signals until the block has finished (then raise the first one that came)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending is not None:
            signum, self._pending = self._pending, None
            raise TrainingInterrupted(signum)


# ----------------------------------------------------------------------------- run folders
CHECKPOINT_KEYS = ("model", "loss", "optimizer", "scheduler", "rng", "history", "epoch")


def resume(ckpt_path: Path, model: nn.Module, transfer: Optional[nn.Module], opt, sched) -> tuple:
    """``(history, first epoch)`` from ``checkpoint.pt``; ``([], 0)`` when there is none.

    A checkpoint that cannot be read or applied is moved aside (:func:`pcoh.runs.quarantine`)
    and every object is put back in its initial state, so the run restarts exactly as a fresh one.
    """
    ckpt_path = _path(ckpt_path, "ckpt_path")
    _check_module(model)
    if transfer is not None:
        _check_module(transfer, "transfer")
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


def load_final(path: Path, model: nn.Module, device) -> Optional[list]:
    """Load a finished run's weights into ``model``; its history, or ``None`` when there is no
    usable ``final.pt`` (a damaged one is moved aside and ``model`` keeps its initial weights)."""
    _check_module(model)
    final = _path(path) / "final.pt"
    if not final.exists():
        return None
    initial = copy.deepcopy(model.state_dict())
    try:
        state = load_checkpoint(final, map_location="cpu")  # saved anywhere, loads anywhere
        if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("history"), list):
            found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
            raise CorruptFileError(f"not a finished run (expected 'model' and 'history', found {found})")
        model.load_state_dict(state["model"])
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        model.load_state_dict(initial)
        quarantine(final, str(err))
        return None
    repair_json(path / "history.json", state["history"])
    return state["history"]


def repair_json(path: Path, content, *, overwrite: bool = False) -> None:
    """Write ``content`` to a JSON file that is missing or damaged (moved aside first), or always
    with ``overwrite``."""
    path = _path(path)
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
    path = _path(path)
    _check_module(model)
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
    path = _path(path)
    _check_module(model)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of the run's settings, got {type(config).__name__}")
    if not isinstance(cache, bool):
        raise TypeError(f"cache must be True or False, got {type(cache).__name__}")
    if not callable(train):
        raise TypeError(f"train must be a callable () -> history, got {type(train).__name__}")
    with _rank0_lock(path):  # a second process waits here, then finds the finished run
        if cache:
            history = load_final(path, model, dev)
            if history is not None:
                if _distributed.is_main():
                    repair_json(path / "config.json", config)
                return history, True
        if _distributed.is_main():
            repair_json(path / "config.json", config, overwrite=True)
        _distributed.barrier()  # nobody trains before rank 0 has written the run's config
        history = train()
        if _distributed.is_main():
            finish(path, model, history)
        _distributed.barrier()  # the next run's cache check sees final.pt on every process
    return history, False


def _rank0_lock(path: Path):
    """The run folder's lock (:func:`run_lock`), held by rank 0 alone under torchrun:
    the other processes follow rank 0 through barriers and must not wait for its lock."""
    return run_lock(path) if _distributed.is_main() else contextlib.nullcontext()
