"""Atomic file writes: every file a run leaves behind is complete or absent, never half-written."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from vae_gjs.errors import StorageError

#: errno values that mean "this path cannot be written", with what the user sees.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "not writable (read-only file system)",
    errno.EACCES: "not writable (permission denied)",
    errno.EPERM: "not writable (operation not permitted)",
    errno.ENOTDIR: "not writable (a file is in the way of a folder)",
    errno.EEXIST: "not writable (a file is in the way of a folder)",
}

#: Free bytes under which a failed write is reported as a full disk.
LOW_SPACE = 64 * 2**20


def storage_error(path: str | os.PathLike[str], error: BaseException) -> StorageError:
    """A one-line :class:`StorageError` naming ``path`` and why it cannot be written: an
    ``OSError``'s errno, or (torch's ``RuntimeError: ... file write failed``) the free space left."""
    reason = STORAGE_ERRNOS.get(getattr(error, "errno", None) or -1)
    if reason is None:
        try:
            full = shutil.disk_usage(Path(path).parent).free < LOW_SPACE
        except OSError:
            full = False
        reason = "no space left on device" if full else f"write failed ({' '.join(str(error).split())})"
    return StorageError(
        f"cannot write {path}: {reason}; free space or fix the folder's permissions, then run the same "
        "command again (what was written before is intact)"
    )


#: What torch's zip writer raises when the disk refuses its bytes: an explicit failed write, or (a
#: full disk seen through its buffered writes) a file position that did not advance as written
#: (``[enforce fail at inline_container.cc:672] . unexpected pos ...``).
TORCH_WRITE_FAILURES = ("file write failed", "unexpected pos")


def is_storage_failure(error: BaseException) -> bool:
    """``error`` means the disk refused a write (not a bug): an errno of :data:`STORAGE_ERRNOS`, or
    torch's serializer reporting a failed write (:data:`TORCH_WRITE_FAILURES`)."""
    if isinstance(error, OSError):
        return error.errno in STORAGE_ERRNOS
    return isinstance(error, RuntimeError) and any(text in str(error) for text in TORCH_WRITE_FAILURES)


def temporaries(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[Path]:
    """The temporary files :func:`atomic_open` left in ``folder`` (for the targets ``names``, or
    for any target): a write cut by a kill leaves its ``.<name>.<random>.tmp`` behind."""
    patterns = [f".{name}.*.tmp" for name in names] if names is not None else [".*.tmp"]
    return sorted({path for pattern in patterns for path in Path(folder).glob(pattern)})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _staged(target: Path, mode: str) -> Iterator[tuple[IO[Any], Path]]:
    """A temporary file next to ``target`` (same folder, so the same device), flushed and fsynced
    when the block ends; removed on error. A write the disk refuses (full, read-only) is a
    :class:`StorageError` naming ``target``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise storage_error(target, error) from error
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle, Path(tmp)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if is_storage_failure(error):
            raise storage_error(target, error) from error
        raise


def _commit(staged: Sequence[tuple[Path, Path]]) -> None:
    """Rename each staged temporary file over its target (atomic on POSIX file systems)."""
    for tmp, target in staged:
        try:
            os.replace(tmp, target)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise storage_error(target, error) from error


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success flush, fsync and rename it over ``path``.

    The rename is atomic on POSIX file systems (same directory, so the same device): a reader or
    a crash sees either the old file or the new one. On error the temporary file is removed.
    A write the disk refuses (full, read-only) is a :class:`StorageError` naming ``path``.
    """
    target = Path(path)
    with _staged(target, mode) as (handle, tmp):
        yield handle
    _commit([(tmp, target)])


def write_atomic_together(
    writes: Sequence[tuple[str | os.PathLike[str], Callable[[IO[Any]], None]]], binary: bool = False
) -> None:
    """Write files that belong together (a fused group's checkpoints of one epoch): each through
    its temporary file, and only when all are written, rename them all. A write the disk refuses
    leaves every target as it was, so the files never tell different stories."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in writes:
            with _staged(Path(path), "wb" if binary else "w") as (handle, tmp):
                write(handle)
            staged.append((tmp, Path(path)))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    _commit(staged)


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], None], binary: bool = False
) -> None:
    """Call ``write(handle)`` on a temporary file and atomically move it to ``path``."""
    with atomic_open(path, "wb" if binary else "w") as handle:
        write(handle)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_atomic(path, lambda handle: json.dump(data, handle, indent=2, sort_keys=True, default=str))


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``sha256``, ``md5``, ...), read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def check_creatable(folder: str | os.PathLike[str]) -> None:
    """Check, writing nothing, that ``folder`` can be made (or, if it exists, written to): its
    nearest existing ancestor must be a writable folder on a writable file system; else a
    :class:`StorageError` naming ``folder``."""
    folder = Path(folder)
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise OSError(errno.ENOTDIR, "not a folder")
        if not os.access(existing, os.W_OK):
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
            raise OSError(errno.EROFS if read_only else errno.EACCES, "not writable")
    except OSError as error:
        raise storage_error(folder, error) from error


def check_writable(folder: str | os.PathLike[str], probe_bytes: int = 2**20) -> None:
    """Create ``folder`` and check that it can be written, or raise a :class:`StorageError`: a long
    computation checks first that it can save its result. With ``probe_bytes`` a file of that
    size is written (then deleted), so a full disk shows too; with 0 nothing is written (a folder
    another process may hold: the permission and the file system's read-only flag are checked)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not probe_bytes:
            if not os.access(folder, os.W_OK):
                read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
                raise OSError(errno.EROFS if read_only else errno.EACCES, "not writable")
            return
        with tempfile.TemporaryFile(dir=folder) as handle:
            handle.write(b"\0" * probe_bytes)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise storage_error(folder, error) from error
