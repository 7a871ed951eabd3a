"""One writer per output: the sidecar lock refuses a second writer and dies with its holder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quintet.core.errors import OutputInUseError
from quintet.core.locks import exclusive_output, lock_path

HOLD = """
import sys, time
from quintet.core.locks import exclusive_output
with exclusive_output(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_until_the_first_is_done(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.csv"
    with exclusive_output(out) as sidecar:
        assert sidecar == lock_path(out) == tmp_path / "sub" / "out.csv.lock"
        refused = pytest.raises(OutputInUseError, match=r"out\.csv is being written by another")
        with refused, exclusive_output(out):
            pass
    assert not sidecar.exists()  # removed when the writer is done
    with exclusive_output(out):  # and free again
        pass


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    out = tmp_path / "run-folder"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = pytest.raises(OutputInUseError, match="run-folder is being written")
        with refused, exclusive_output(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert lock_path(out).exists()  # a killed run cannot clean up, but its lock is gone
    with exclusive_output(out):
        pass
