"""What :func:`pcoh.data.load` raises when a data set's files are missing or damaged."""
from __future__ import annotations

import os
from typing import Sequence

from .split import PathLike

__all__ = ["DatasetNotFoundError", "DatasetIntegrityError"]


# --------------------------------------------------------------------------- errors
class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are not where :func:`load` looked for them.

    Attributes
    ----------
    path : str
        The folder that was searched (the exact folder torchvision checks).
    missing : list of str
        File names expected in ``path`` and not found there.
    """

    def __init__(self, message: str, path: PathLike, missing: Sequence[str] = ()):
        super().__init__(message)
        self.path = os.fspath(path)
        self.missing = list(missing)

    def __str__(self) -> str:  # FileNotFoundError's str would drop the message otherwise
        return str(self.args[0])


class DatasetIntegrityError(RuntimeError):
    """The files of a data set exist but fail torchvision's md5 check.

    Attributes
    ----------
    path : str
        The folder that holds the files.
    corrupted : list of str
        File names whose md5 sum is not the official one.
    """

    def __init__(self, message: str, path: PathLike, corrupted: Sequence[str] = ()):
        super().__init__(message)
        self.path = os.fspath(path)
        self.corrupted = list(corrupted)
