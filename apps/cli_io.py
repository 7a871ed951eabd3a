"""Reading user text for the ``quintet`` commands: one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import BACKENDS
from core.errors import ConfigError


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``, the same for every generating command."""
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="decoding engine (default auto: the fastest installed one for the model; "
        "the engine and why go to stderr)",
    )


def read_text_file(path: str | Path, option: str) -> str:
    """The whole of ``path`` as UTF-8 text; a missing or non-UTF-8 file is a ``ConfigError``.

    ``option`` names the command-line flag the path came from, for the message.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{option} {path}: no such file; give a UTF-8 text file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{option} {path}: not UTF-8 text (byte {e.start + 1})") from None


def read_stdin() -> str:
    """All of standard input; bytes that are not UTF-8 are a ``ConfigError``."""
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise ConfigError("standard input is not UTF-8 text") from None
