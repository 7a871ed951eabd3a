"""One "is this process running" answer: this process yes, a finished one no (reaped or a
zombie its parent has not reaped yet)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from quintet.core.processes import pid_alive


def test_running_finished_and_zombie_processes() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
    deadline = time.time() + 10
    while pid_alive(child.pid) and time.time() < deadline:  # killed, not yet reaped: a zombie
        time.sleep(0.05)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
