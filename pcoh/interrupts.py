"""Interruptions: SIGINT and SIGTERM turned into an exception that says what was saved.

:class:`Interrupts` installs the handlers around training (and around the renames of
:func:`pcoh.files.write_files`); within :meth:`Interrupts.hold` a signal waits until the write in
progress has finished, so a file or an epoch just saved is never lost.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Optional

__all__ = ["TrainingInterrupted", "Interrupts"]


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

    def __reduce__(self):
        # Pickled whole: a worker process (pcoh.workers) raises it to the main job.
        return (type(self), (self.signum,), {"path": self.path, "epoch": self.epoch, "epochs": self.epochs,
                                             "desc": self.desc})

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
