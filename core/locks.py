"""One writer per output: an exclusive lock on a sidecar ``<output>.lock`` file.

Two runs writing the same output at once interleave their rows (and each resumes from what
the other wrote), so the second one is refused at once instead of waiting or corrupting the
file. The lock is a :class:`filelock.FileLock` (``flock`` on POSIX, ``msvcrt`` locking on
Windows) on the sidecar, not on the output itself: the output is truncated, appended to and
renamed by the writers, and a folder (an evaluation run) cannot be locked portably. The OS
drops the lock when its process dies, so a killed run never leaves a stale lock behind; the
sidecar file is removed when the writer finishes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from quintet.core.errors import OutputInUseError


def lock_path(output: str | os.PathLike) -> Path:
    """The sidecar lock file of ``output``: ``<output>.lock`` next to it."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


@contextmanager
def exclusive_output(output: str | os.PathLike) -> Iterator[Path]:
    """Hold the write lock of ``output`` (a file or a folder) for the ``with`` block.

    Creates the parent folder if needed. Yields the lock file's path; the holder may write
    its own state into that file (it is never truncated by a process asking for the lock).

    Raises:
        OutputInUseError: another process (or another ``with`` block of this one) holds the
            lock: it is writing ``output`` now.
    """
    sidecar = lock_path(output)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    lock = _acquire(sidecar, Path(output))
    try:
        yield sidecar
    finally:
        # Unlink while still holding the lock: a process that opened the old file before
        # this sees it is gone (see _acquire) instead of locking an orphan.
        with suppress(OSError):  # Windows cannot remove an open file; it stays, unlocked
            sidecar.unlink(missing_ok=True)
        lock.release()


class _Orphan(Exception):
    """The lock was won on a sidecar that its previous holder had already removed."""


def _acquire(sidecar: Path, output: Path) -> FileLock:
    """Lock ``sidecar`` now or refuse; the returned lock is held."""

    def check(fd: int) -> None:
        if not _same_file(fd, sidecar):
            raise _Orphan  # filelock rolls the acquisition back

    while True:
        # A fresh, non-reentrant lock object each time: a second block on the same output in
        # this process is refused like another process would be. timeout=0: never wait.
        lock = FileLock(sidecar, timeout=0, thread_local=False, on_acquired=check)
        try:
            lock.acquire()
        except Timeout:
            raise OutputInUseError(
                f"{output} is being written by another quintet run (it holds {sidecar}): "
                "wait for that run to finish, or write to another output"
            ) from None
        except _Orphan:
            # The holder finished and removed the file between our open and lock: try again
            # on the current one, or two writers could each hold a lock on a different file.
            continue
        return lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
