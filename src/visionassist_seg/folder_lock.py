"""An exclusive lock on a folder vaseg writes into, held for the life of one run.

Two runs pointed at one folder (two precomputes into one dataset folder, two trainings
into one run folder) would otherwise delete or overwrite each other's files. The lock is
an OS advisory lock (`fcntl.flock`) on a small file inside the folder: the kernel drops
it when the holding process exits, however it exits (Ctrl-C, ``kill -9``, a crash), so a
killed run never leaves a stale lock behind. The lock file itself is never deleted:
deleting it would let a third run lock a fresh inode while the second still holds the old.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from visionassist_seg.errors import VasegError

LOCK_FILE = ".vaseg.lock"


@contextmanager
def folder_lock(folder: Path, purpose: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` body; yield the lock file.

    ``purpose`` says what the run does ("precompute", "training"); it is written into the
    lock file so that a second run can say who holds the folder.

    Raises:
        VasegError: another live process holds the lock on ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def _try_lock(fd: int) -> bool:
    import fcntl  # POSIX (Linux, macOS): the platforms vaseg supports

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "process unknown"
