"""An exclusive lock on a folder vaseg writes into, held for the life of one run.

Two runs pointed at one folder (two precomputes into one dataset folder, two trainings
into one run folder) would otherwise delete or overwrite each other's files. The lock is
an OS advisory lock (`fcntl.flock`) on a small file inside the folder: the kernel drops
it when the holding process exits, however it exits (Ctrl-C, ``kill -9``, a crash), so a
killed run never leaves a stale lock behind. The lock file itself is never deleted:
deleting it would let a third run lock a fresh inode while the second still holds the old.

A folder that cannot be created or locked (a path under a regular file, under ``/proc``,
a name too long, a read-only disk) is reported by `folder_error` as one paragraph naming
the path and the operating system's reason.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from visionassist_seg.errors import VasegError

LOCK_FILE = ".vaseg.lock"
_HINTS = {
    errno.ENOTDIR: "part of the path is a regular file, not a folder",
    errno.EEXIST: "a regular file already has that name",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (usually 255 bytes, 4096 for the whole path)",
    errno.EACCES: "you have no permission to write there",
    errno.EPERM: "the operating system does not allow writing there",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "its parent folder does not exist and cannot be created there",
    errno.ENOSPC: "the disk is full",
}


@contextmanager
def folder_lock(folder: Path, purpose: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` body; yield the lock file.

    ``purpose`` says what the run does ("precompute", "training"); it is written into the
    lock file so that a second run can say who holds the folder.

    Raises:
        VasegError: another live process holds the lock on ``folder``, or the folder cannot
            be created or written (one paragraph from `folder_error`).
    """
    folder = make_folder(folder)
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise folder_error(folder, err) from None
    try:
        if not _try_lock(fd):
            holder = _read_holder(fd)
            raise VasegError(
                f"Another vaseg run ({holder}) is using {folder}: two runs in one folder would overwrite "
                f"each other's files. Wait for it to finish, stop it, or choose another folder."
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{purpose}, process {os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def make_folder(folder: Path, *, what: str = "", option: str = "") -> Path:
    """Create ``folder`` and its parents if missing; return it.

    ``what`` ("the run folder") and ``option`` ("--output-dir") make the error name the folder's
    role and the option that chose it.

    Raises:
        VasegError: the folder cannot be created (see `folder_error`).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise folder_error(folder, err, what=what, option=option) from None
    return folder


def folder_error(folder: Path, err: OSError, *, what: str = "", option: str = "") -> VasegError:
    """Return the one-paragraph error for an OS error met while creating or using ``folder``."""
    failed = f" ({err.filename})" if err.filename and str(err.filename) != str(folder) else ""
    reason = err.strerror or str(err)
    hint = _HINTS.get(err.errno or 0, "the operating system refused it")
    lead = f"Cannot create {what} {folder}" if what else f"Cannot use the folder {folder}"
    fix = f"Pass {option} a folder you can write to" if option else "Choose another folder, one you can write to"
    return VasegError(f"{lead}: {reason}{failed}; {hint}. {fix}.")


def _try_lock(fd: int) -> bool:
    """Return False when another process holds the lock; True when this one now holds it.

    A filesystem that has no locks at all (some network and FUSE mounts, such as a Modal
    Volume, answer ENOLCK, ENOSYS or EOPNOTSUPP) cannot be locked: the run goes on unlocked
    rather than failing, since refusing would make the folder unusable for every run.
    """
    import errno
    import fcntl  # POSIX (Linux, macOS): the platforms vaseg supports

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            return True
        raise
    return True


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "process unknown"
