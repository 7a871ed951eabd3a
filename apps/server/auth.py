"""API keys: ``Authorization: Bearer KEY``, compared in constant time.

No keys configured means no authentication (the server binds to loopback by default).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

from fastapi import Request

from quintet.apps.server.errors import APIError

ENV_KEYS = "QUINTET_API_KEYS"


def keys_from(api_key: str | None, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The accepted keys: ``--api-key`` if given, else ``$QUINTET_API_KEYS`` (comma-separated)."""
    if api_key:
        return (api_key,)
    raw = (environ if environ is not None else os.environ).get(ENV_KEYS, "")
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def key_matches(presented: str, keys: Iterable[str]) -> bool:
    """True when ``presented`` equals one of ``keys``.

    Every key is compared, with :func:`hmac.compare_digest`, so the time taken says nothing
    about which key or how much of it matched.
    """
    given = presented.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def _unauthorized(message: str) -> APIError:
    return APIError(
        401, message, "authentication_error", None, "invalid_api_key",
        {"WWW-Authenticate": "Bearer"},
    )  # fmt: skip


async def require_key(request: Request) -> None:
    """FastAPI dependency: refuse the request (401) without a valid key, when keys are set."""
    keys: tuple[str, ...] = request.app.state.config.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing API key: send the header 'Authorization: Bearer KEY'")
    if not key_matches(token.strip(), keys):
        raise _unauthorized("invalid API key")
