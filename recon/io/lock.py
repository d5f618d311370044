"""An exclusive lock on a folder (``fcntl.flock`` on ``<folder>/.recon.lock``), so two recon processes never write
one run folder at once.

The lock is taken without waiting: a second process fails at once with a one-line :class:`ReconError` naming the
folder and the holder's pid. Within one process the lock is re-entrant (the CLI takes it before building the
trainer, the trainer takes it again around its loop). The OS drops the lock when the holder exits, however it
exits, so a killed run never leaves a stale lock; the lock file itself stays (deleting it would race).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from recon.errors import ReconError

LOCK_NAME = ".recon.lock"

# resolved folder -> [file descriptor, hold count] for the locks this process holds
_HELD: dict[str, list[int]] = {}


def _holder_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


class FolderLock:
    """Hold the lock of ``folder`` from :meth:`acquire` to :meth:`release` (or the end of a ``with`` block)."""

    def __init__(self, folder: str | Path, what: str = "run folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self._key = str(self.folder.resolve())
        self._held = False

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> FolderLock:
        if self._held:
            return self
        entry = _HELD.get(self._key)
        if entry is not None:
            entry[1] += 1
            self._held = True
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ReconError(f"{self.folder}: cannot write to this {self.what} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder_pid(fd)
            os.close(fd)
            raise ReconError(f"{self.folder}: {self.what} is in use by another recon process (pid {pid}); wait "
                             "for it to finish or choose another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[self._key] = [fd, 1]
        self._held = True
        return self

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        entry = _HELD.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _HELD[self._key]
            os.close(entry[0])  # closing the descriptor drops the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the OS drops the lock anyway
            self.release()
