"""How much text one input may hold: the one limit the CLI readers and the server share.

An encoder or generator given a 900,000-character text used to take gigabytes (the server
was killed, the CLI died in an ONNX Runtime allocation). The server refuses a request over
``quintet serve --max-input-chars`` with 413; the CLI refuses a text over
``$QUINTET_MAX_INPUT_CHARS`` (default :data:`DEFAULT_MAX_INPUT_CHARS`) with one line.
"""

from __future__ import annotations

import os

from quintet.core.errors import ConfigError

ENV_MAX_INPUT_CHARS = "QUINTET_MAX_INPUT_CHARS"
# About 25,000 words: a long report; far beyond any model's context, well within memory.
DEFAULT_MAX_INPUT_CHARS = 100_000


def max_input_chars() -> int:
    """The CLI's limit: ``$QUINTET_MAX_INPUT_CHARS`` when set (a positive integer), else the
    default."""
    raw = os.environ.get(ENV_MAX_INPUT_CHARS, "").strip()
    if not raw:
        return DEFAULT_MAX_INPUT_CHARS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"${ENV_MAX_INPUT_CHARS} must be a positive whole number (got {raw!r})")
    return int(raw)


def too_long(text: str, limit: int | None = None) -> str | None:
    """Why ``text`` is over the limit (one clause, naming the setting), or None."""
    limit = max_input_chars() if limit is None else limit
    if len(text) <= limit:
        return None
    return (
        f"{len(text)} characters, over the limit of {limit} "
        f"(set ${ENV_MAX_INPUT_CHARS} to allow more)"
    )
