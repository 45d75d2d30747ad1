"""Safe files: atomic writes, loading checkpoints without executing code, damaged files set aside.

The run cache (:mod:`pcoh.runs`), the evaluation cache, the tables and the figures all write and
read through this module. Its rules:

- **Nothing half-written.** :func:`atomic_save`, :func:`write_bytes`, :func:`write_json` and
  :func:`write_files` write a temporary file in the same folder, flush it to disk and rename it
  over the target, so a crash, a full disk or a signal leaves either the old file or the new one,
  never a mix. A set of files (:func:`write_files`) has one commit point, a journal written
  before the renames, so that a process killed between two renames leaves a set that
  :func:`recover` completes, never two half sets.
- **Nothing executed.** :func:`load_checkpoint` reads with ``torch.load(weights_only=True)``:
  tensors, numbers, strings and containers only. A file that needs any other pickled object
  raises :class:`UnsafeCheckpointError` and runs none of it; a damaged file raises
  :class:`CorruptFileError`.
- **Nothing deleted.** A cache file that fails to load is renamed ``<name>.corrupt``
  (:func:`quarantine`) with a one-line :class:`CacheWarning`.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import pickletools
import secrets
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from ._checks import as_path, one_line
from .interrupts import Interrupts

__all__ = [
    "CacheWarning",
    "CorruptFileError",
    "UnsafeCheckpointError",
    "atomic_save",
    "write_bytes",
    "write_files",
    "write_json",
    "read_json",
    "load_checkpoint",
    "quarantine",
    "recover",
    "JOURNAL_PREFIX",
]


class CacheWarning(UserWarning):
    """A cache file could not be read and was moved aside."""


class CorruptFileError(ValueError):
    """A file is damaged (truncated, overwritten) or is not the kind of file expected."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds pickled objects other than tensors and plain containers; refused."""



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
    path = as_path(path)
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


#: The journal of a set of files being renamed into place: ``<folder>/.pcoh-commit-<id>.json``.
JOURNAL_PREFIX = ".pcoh-commit-"


def write_files(contents: dict) -> None:
    """Write several files as one, with one commit point: every ``path -> bytes`` is staged in a
    temporary file, then a journal naming every (temporary file, target) pair is written
    atomically next to the first target: the set is committed. Then the files are renamed into
    place (SIGINT/SIGTERM deferred) and the journal removed.

    A failure or an interruption before the journal exists leaves every previous file as it was.
    A process killed after it (``kill -9`` between two renames) leaves the journal, and
    :func:`recover` (which every write of a set and :func:`pcoh.runs.output_lock` run first)
    finishes its renames: the folders then hold the new set whole, never a results table of one
    run beside the summary of another.
    """
    if not isinstance(contents, dict):
        raise TypeError(f"contents must be a dict of path -> bytes, got {type(contents).__name__}")
    for path, data in contents.items():
        as_path(path, "contents' paths")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"contents must map each path to bytes, got {type(data).__name__} for {path}")
    if not contents:
        return
    targets = [Path(os.path.abspath(p)) for p in contents]
    for folder in dict.fromkeys(t.parent for t in targets):
        if folder.is_dir():
            recover(folder)
    journal = targets[0].parent / f"{JOURNAL_PREFIX}{os.getpid()}-{secrets.token_hex(8)}.json"
    staged, committed = [], False
    try:
        for path, data in zip(targets, contents.values()):
            staged.append((_stage(path, lambda f, data=data: f.write(data)), path))
        record = json.dumps({"renames": [[os.fspath(tmp), os.fspath(path)] for tmp, path in staged]}).encode()
        _atomic_write(journal, lambda f: f.write(record))  # the commit point
        committed = True
    except BaseException:
        if not committed:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
        raise
    with Interrupts() as signals, signals.hold():
        _finish(journal, [(str(tmp), str(path)) for tmp, path in staged])


def _finish(journal: Path, renames: list) -> None:
    """Rename every staged file of a committed set into place, then drop the journal."""
    for tmp, path in renames:
        if os.path.exists(tmp):  # gone: renamed already, before a crash
            os.replace(tmp, path)
    for folder in dict.fromkeys(os.path.dirname(p) for _, p in renames):
        _fsync_dir(Path(folder))
    with contextlib.suppress(FileNotFoundError):
        os.remove(journal)
    _fsync_dir(journal.parent)


def recover(folder) -> int:
    """Finish the sets of files committed in ``folder`` whose renames a crash cut short (see
    :func:`write_files`); returns how many there were. A journal that cannot be read was never
    committed (it is written atomically) and is moved aside."""
    folder = as_path(folder, "folder")
    count = 0
    for journal in sorted(Path(folder).glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            renames = read_json(journal)["renames"]
            renames = [(str(tmp), str(path)) for tmp, path in renames]
        except (ValueError, KeyError, TypeError, OSError) as err:
            quarantine(journal, f"not a journal of a set of files ({one_line(err, 80)})")
            continue
        _finish(journal, renames)
        count += 1
    return count


def write_json(obj: Any, path) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    as_path(path)
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    _atomic_write(path, lambda f: f.write(text.encode()))


# ----------------------------------------------------------------------------- reading
def read_json(path) -> Any:
    """Read a JSON file; a damaged one raises :class:`CorruptFileError` naming it."""
    path = as_path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(f"{path}: damaged or not JSON ({one_line(err, 120)})") from None


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
    path = as_path(path)
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
                reason = one_line(str(err).split(". ")[0], 120)  # torch's first sentence says what failed
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
    path = as_path(path)
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a string, got {type(reason).__name__}")
    target = path.with_name(path.name + ".corrupt")
    count = 0
    while target.exists():
        count += 1
        target = path.with_name(f"{path.name}.corrupt.{count}")
    os.replace(path, target)
    reason = one_line(reason, 200)
    if reason.startswith(f"{path}: "):
        reason = reason[len(f"{path}: "):]
    warnings.warn(f"{path}: {reason or 'unreadable'}; moved aside to {target.name}", CacheWarning, stacklevel=2)
    return target
