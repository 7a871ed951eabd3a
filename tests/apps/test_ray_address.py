"""A Ray address that is down, closed or unresolvable fails in bounded time with one line
(``ray.init`` alone retried for 300 s and more); a local cluster gets no more workers than
the machine has CPUs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from quintet.core.store import ModelStore
from tests.apps.test_cli import QUINTET, assert_one_line_error

pytest.importorskip("ray", reason="the cluster extra: pip install 'quintet[cluster]'")


def _eval(tmp_path: Path, home: Path, *extra: str, env: dict[str, str] | None = None):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a fine film", "label": "pos"}\n{"text": "dull", "label": "neg"}\n')
    args = [str(QUINTET), "eval", "classification", "--data", str(data), "--ray",
            "--option", "labels=pos,neg", "--out", str(tmp_path / "run"), *extra]  # fmt: skip
    merged = {**os.environ, "QUINTET_HOME": str(home), **(env or {})}
    if "RAY_ADDRESS" not in (env or {}):
        merged.pop("RAY_ADDRESS", None)  # the flag under test, not the caller's cluster
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, env=merged, timeout=120)
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("flags", "env", "fragment"),
    [
        (["--ray-address", "127.0.0.1:1"], None, "127.0.0.1:1: Connection refused"),
        (["--ray-address", "no-such-host.invalid:6379"], None, "unknown host no-such-host.invalid"),
        (["--ray-address", "ray://127.0.0.1:1"], None, "Connection refused"),
        ([], {"RAY_ADDRESS": "127.0.0.1:1"}, "127.0.0.1:1: Connection refused"),
    ],
    ids=["closed-port", "unknown-host", "ray-client", "RAY_ADDRESS"],
)
def test_an_unreachable_cluster_fails_fast_in_one_line(
    flags: list[str], env: dict | None, fragment: str, tmp_path: Path, real_store: ModelStore
) -> None:
    done, seconds = _eval(tmp_path, real_store.home, *flags, env=env)
    assert_one_line_error(done, fragment)
    assert "cannot connect to the Ray cluster" in done.stderr
    assert seconds < 20, seconds


def test_more_local_workers_than_cpus_is_refused(tmp_path: Path, real_store: ModelStore) -> None:
    done, seconds = _eval(tmp_path, real_store.home, "--workers", "1000")
    cpus = os.cpu_count()
    assert_one_line_error(done, f"--workers 1000 needs 1000 CPU(s) but this machine has {cpus}")
    assert seconds < 20, seconds


def test_ray_client_is_installed_with_the_cluster_extra() -> None:
    pytest.importorskip("grpc", reason="ray[client] brings grpcio")
    from ray.util.client import ray as client  # noqa: F401 - what ray:// addresses use
