"""A real `quintet serve` on a free loopback port, in a subprocess, for the server tests.

The server inherits QUINTET_BACKEND=transformers from the test session (see
tests/conftest.py), so greedy outputs are the reference engine's and nothing is converted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from quintet.core.store import ModelStore

REPO = Path(__file__).resolve().parents[3]
API_KEY = "test-key-0123456789"
CHAT_MODEL, EMBED_MODEL = "smollm2-135m-instruct", "minilm-l6"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_server(home: Path, log: Path, *extra: str) -> Server:
    """Start `quintet serve` with ``extra`` flags and wait until /ready says 200."""
    port = free_port()
    env = {**os.environ, "QUINTET_HOME": str(home), "QUINTET_API_KEYS": ""}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "quintet.apps.cli", "serve", "--port", str(port), "--api-key",
             API_KEY, "--log-level", "warning", *extra],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            stop_server(server)
            pytest.fail(f"quintet serve did not become ready:\n{server.tail()}")
        time.sleep(0.3)


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL if it has not exited after 30 s."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@pytest.fixture(scope="package")
def server(real_store: ModelStore, tmp_path_factory) -> Iterator[Server]:
    """The default models on a small body limit (413 is cheap to reach), shared by the
    server tests."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    running = start_server(real_store.home, log, "--max-body-bytes", "100000")
    yield running
    stop_server(running)


@pytest.fixture
def fresh_server(real_store: ModelStore, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server of one's own (killed, signalled or not, at the end of the test)."""
    started: list[Server] = []

    def start(*extra: str) -> Server:
        running = start_server(real_store.home, tmp_path / f"server{len(started)}.log", *extra)
        started.append(running)
        return running

    yield start
    for running in started:
        stop_server(running)
