"""One process at a time in a run folder: ``<run_dir>/.lock`` holds the pid of the process that
trains there, locked with ``flock``. The kernel drops the lock when that process ends, however it
ends (SIGKILL included), so a lock left by a killed run is stale and simply taken over."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from vae_gjs.errors import RunError
from vae_gjs.io import storage_error

LOCK_FILE = ".lock"


def holder(folder: str | os.PathLike[str]) -> str | None:
    """The pid of the live process that holds ``folder``'s lock (training there), or ``None``
    when no process does (no lock file, or a stale one). Looks without creating anything."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock, or raises a one-line :class:`RunError`
    naming the folder and the pid of the process that holds it."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise storage_error(self.path, error) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise storage_error(self.path, error) from error
            raise RunError(
                f"{self.folder} is in use by another process (pid {holder}) training in it; "
                f"wait for it to end, stop it (kill {holder}), or use another folder (hydra.run.dir=...)"
            ) from None
        try:  # the holder's pid, for the message of the next process refused
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as error:  # a full disk: no run can start here
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise storage_error(self.path, error) from error
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
