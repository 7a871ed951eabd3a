"""`quintet serve` on the command line: fails in one line before binding, and the parser
does not import FastAPI."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.apps.server.conftest import REPO, free_port


def _quintet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quintet.apps.cli", *args], cwd=REPO, capture_output=True, text=True,
        timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


def test_unknown_model_is_one_line_and_exit_2() -> None:
    result = _quintet("serve", "--port", str(free_port()), "--models", "no-such-model-xyz")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no-such-model-xyz" in lines[0]


def test_bad_settings_are_one_line() -> None:
    result = _quintet("serve", "--port", str(free_port()), "--max-queue", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid server settings: max_queue")


def test_building_the_parser_does_not_import_fastapi() -> None:
    code = (
        "import sys, quintet.apps.cli; quintet.apps.cli.build_parser(); "
        "print('fastapi' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr
