"""Files named by their content: SHA-256 digests of files, computed once per version of a file.

The run cache keys a teacher checkpoint and the images of an image folder by their bytes
(:mod:`pcoh.specs`, :mod:`pcoh.data.image_folder`), so a file replaced at the same path, or files
swapped between class folders with their names, sizes and times kept (``cp -p``, ``rsync -a``),
give new keys. Hashing a large file or folder at every start would be slow, so a digest is
remembered with the file's *stat signature*: device, inode, size, modification time and
status-change time (``st_ctime_ns``, which no program can set back: every write, rename or
``touch`` moves it). A file whose signature is unchanged is not read again:

- in this process, for every file (:data:`_MEMO`);
- across processes, in a table ``<cache>/digests/<name>.json`` when a cache folder is given.

A signature that changed means the file is read and hashed again; it can only cost time, never
give an old digest for new bytes (short of a file system that does not keep ``st_ctime_ns``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Optional

from . import files as _files
from ._checks import as_path

__all__ = ["file_sha256", "files_sha256"]

_CHUNK = 1 << 20
_MEMO: dict = {}  # (real path, signature) -> hex digest, for this process


def _signature(st: os.stat_result) -> list:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def files_sha256(paths: Iterable, cache: Optional[os.PathLike] = None, name: str = "files") -> list:
    """The SHA-256 (hex) of each file's bytes, in order; links are followed.

    Parameters
    ----------
    paths : iterable of path-like
    cache : path-like, optional
        A folder; the digests are kept in ``<cache>/digests/<name>-<hash of the paths' folder>.json``
        with the files' stat signatures, and a file whose signature has not changed is not read.
    name : str
        The table's name (letters, digits, ``_``, ``-``).

    Raises
    ------
    FileNotFoundError, PermissionError
        A file cannot be read (the message names it).
    """
    if isinstance(paths, (str, bytes, os.PathLike)) or not hasattr(paths, "__iter__"):
        raise TypeError(f"paths must be an iterable of paths (a list), got {type(paths).__name__}")
    if cache is not None:
        as_path(cache, "cache")
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be letters, digits, '_' and '-', got {name!r}")
    reals = [os.path.realpath(os.fspath(as_path(p, "paths"))) for p in paths]
    table, table_path = {}, None
    if cache is not None:
        base = os.path.commonpath(reals) if reals else ""
        where = hashlib.sha256(os.fsencode(base)).hexdigest()[:16]
        table_path = Path(cache) / "digests" / f"{name}-{where}.json"
        if table_path.exists():
            try:
                stored = _files.read_json(table_path)
                table = stored if isinstance(stored, dict) else {}
            except (_files.CorruptFileError, OSError) as err:
                _files.quarantine(table_path, str(err))
    out, changed, seen = [], False, {}
    for real in reals:
        st = os.stat(real)
        sig = _signature(st)
        memo = (real, tuple(sig))
        digest = _MEMO.get(memo)
        if digest is None:
            entry = table.get(real)
            if isinstance(entry, list) and len(entry) == 2 and entry[0] == sig and isinstance(entry[1], str):
                digest = entry[1]
            else:
                digest = _hash_file(real)
            _MEMO[memo] = digest
        if table_path is not None and table.get(real) != [sig, digest]:
            table[real], changed = [sig, digest], True
        seen[real] = None
        out.append(digest)
    if table_path is not None and changed:
        _files.write_json({k: v for k, v in table.items() if k in seen}, table_path)
    return out


def file_sha256(path, cache: Optional[os.PathLike] = None) -> str:
    """The SHA-256 (hex) of one file's bytes (see :func:`files_sha256`)."""
    path = as_path(path, "path")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return files_sha256([path], cache, name="file")[0]
