"""Two Ray nodes on loopback, as a user would start them: ``ray start --head`` and a second
``ray start --address``, separate processes with their own temp dirs, always torn down.

The drivers are separate processes too (this test process may hold its own Ray session):
the batches spread over both nodes with results equal to one process, and a
``quintet classify --ray`` killed with SIGKILL mid-file resumes without redoing its rows.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from quintet.core.testing import CORPUS

pytestmark = pytest.mark.slow  # two Ray nodes start and stop: well over a minute here

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(extra: list[str], temp_dir: Path) -> tuple[subprocess.Popen, Path]:
    """``ray start --block`` in its own process group (torn down as one by its id)."""
    # Every agent port chosen here: two nodes on one host would collide on the defaults.
    ports = []
    for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port", "--runtime-env-agent-port"):  # fmt: skip
        ports += [flag, str(_free_port())]
    log = temp_dir.with_suffix(".log")
    command = [str(RAY), "start", "--block", "--num-cpus", "1", "--disable-usage-stats",
               "--object-store-memory", str(100 * 2**20), "--temp-dir", str(temp_dir),
               *ports, *extra]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=_env()
        )
    return process, log


def _wait_started(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ray start did not come up:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the node's process group (only what this test started), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            time.sleep(1)  # the group's other processes leave right after
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group
        return


@pytest.fixture(scope="module")
def two_nodes():
    # Short: Ray's socket paths under it must fit AF_UNIX's 107 bytes (pytest's do not).
    root = Path(tempfile.mkdtemp(prefix="qray-"))
    port = _free_port()
    nodes = []
    try:
        head = _start_node(["--head", "--port", str(port), "--include-dashboard", "false"],
                           root / "head")  # fmt: skip
        nodes.append(head[0])
        _wait_started(*head)
        worker = _start_node(["--address", f"127.0.0.1:{port}"], root / "worker")
        nodes.append(worker[0])
        _wait_started(*worker)
        yield f"127.0.0.1:{port}"
    finally:
        for process in reversed(nodes):
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _env(address: str = "") -> dict[str, str]:
    """A loopback test cluster: no auth token (ray start's nodes would each want one)."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled", OMP_NUM_THREADS="1")
    if address:
        env["RAY_ADDRESS"] = address
    return env


DRIVER = """
import os, sys, time
import ray
from quintet.core.cluster import ClusterOptions, run_batches

ray.init(address=os.environ["RAY_ADDRESS"])
deadline = time.monotonic() + 60
while sum(n["Alive"] for n in ray.nodes()) < 2:
    assert time.monotonic() < deadline, "the second node never joined"
    time.sleep(0.5)

class Classify:
    def __init__(self, rendezvous):
        self.rendezvous = rendezvous

    # Each actor checks in under its node id; batches wait until both have, so the work
    # is shared even when one actor would be fast enough to take it all.
    def __call__(self):
        from pathlib import Path
        from quintet.apps.classification import Classifier
        clf = Classifier("minilm-l6", labels=["sports", "business"])
        node = ray.get_runtime_context().get_node_id()
        rendezvous = Path(self.rendezvous)
        (rendezvous / node).touch()

        def run(texts):
            deadline = time.monotonic() + 120
            while len(list(rendezvous.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            return [r.scores for r in clf.classify(texts)], node

        return run

texts = [f"text number {i} about the match and the market" for i in range(48)]
batches = [texts[i : i + 4] for i in range(0, 48, 4)]
results = list(run_batches(batches, Classify(sys.argv[1]), ClusterOptions(workers=2)))
from quintet.apps.classification import Classifier
clf = Classifier("minilm-l6", labels=["sports", "business"])
assert [b for b, _ in results] == batches
assert [r[0] for _, r in results] == [[x.scores for x in clf.classify(b)] for b in batches]
print("nodes used:", len({r[1] for _, r in results}))
"""


def test_batches_spread_over_both_nodes_with_local_results(
    two_nodes, real_store, tmp_path: Path
) -> None:
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], env=_env(two_nodes),
                          text=True,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "nodes used: 2" in done.stdout


def test_a_killed_driver_resumes_without_redoing_rows(two_nodes, real_store, tmp_path) -> None:
    rows = tmp_path / "in.csv"
    with rows.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([[f"{CORPUS[i % len(CORPUS)]} {i}"] for i in range(3000)])
    quintet = [sys.executable, "-m", "quintet.apps.cli", "classify", "--model", "minilm-l6",
               "--labels", "sports,business", "--input", str(rows)]  # fmt: skip
    local = tmp_path / "local.csv"
    subprocess.run([*quintet, "--output", str(local)], check=True, timeout=300,
                   env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)  # fmt: skip
    out = tmp_path / "ray.csv"
    driver = subprocess.Popen([*quintet, "--output", str(out), "--ray"], env=_env(two_nodes),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        # Kill once some batches are written (64 rows each) and most are not.
        while not out.is_file() or out.read_text().count("\n") < 1 + 3 * 64:
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    kept = out.read_text().count("\n") - 1
    assert 3 * 64 <= kept < 3000
    again = subprocess.run([*quintet, "--output", str(out), "--ray"], env=_env(two_nodes),
                           text=True, capture_output=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "kept from an earlier run" in again.stderr
    assert f"{3000 - kept} rows classified" in again.stderr  # done rows not redone
    assert out.read_bytes() == local.read_bytes()
