"""Whether a process is still running: one answer for the store, runs and the builder."""

from __future__ import annotations

import psutil


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not finished.

    A zombie (finished, not yet reaped by its parent) counts as finished: it will never
    write again. A process of another user counts as running.
    """
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
