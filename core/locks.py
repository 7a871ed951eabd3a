"""One writer per output: an exclusive lock on a sidecar ``<output>.lock`` file.

Two runs writing the same output at once interleave their rows (and each resumes from what
the other wrote), so the second one is refused at once instead of waiting or corrupting the
file. The lock is ``fcntl.flock`` on the sidecar, not on the output itself: the output is
truncated, appended to and renamed by the writers, and a folder (an evaluation run) cannot be
flocked portably. The kernel drops the lock when its process dies, so a killed run never
leaves a stale lock behind; the sidecar file is removed when the writer finishes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quintet.core.errors import OutputInUseError


def lock_path(output: str | os.PathLike) -> Path:
    """The sidecar lock file of ``output``: ``<output>.lock`` next to it."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


@contextmanager
def exclusive_output(output: str | os.PathLike) -> Iterator[Path]:
    """Hold the write lock of ``output`` (a file or a folder) for the ``with`` block.

    Creates the parent folder if needed. Yields the lock file's path.

    Raises:
        OutputInUseError: another process holds the lock (it is writing ``output`` now).
    """
    sidecar = lock_path(output)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(sidecar, Path(output))
    try:
        yield sidecar
    finally:
        # Unlink while still holding the lock: a process that opened the old file before
        # this sees it is gone (see _acquire) instead of locking an orphan.
        sidecar.unlink(missing_ok=True)
        os.close(fd)


def _acquire(sidecar: Path, output: Path) -> int:
    """Open and lock ``sidecar``; the open descriptor holds the lock."""
    while True:
        fd = os.open(sidecar, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputInUseError(
                f"{output} is being written by another quintet run (it holds {sidecar}): "
                "wait for that run to finish, or write to another output"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, sidecar):
            return fd
        # The holder finished and removed the file between our open and lock: try again
        # on the current one, or two writers could each hold a lock on a different file.
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
