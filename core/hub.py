"""Offline-first access to the Hugging Face hub.

Without a network, transformers retries each hub request for about half a minute before
failing. Quintet asks two cheap questions first (is the model in the local HF cache? can
the hub's host be reached at all?) and fails at once, naming the model and the offline
alternatives, when the answer to both is no.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from huggingface_hub import try_to_load_from_cache

_TRUTHY = {"1", "true", "yes", "on"}


def offline_forced() -> bool:
    """True when the user set HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUTHY
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


@functools.lru_cache(maxsize=4)
def _probe(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub's host accepts a TCP connection (checked once per process).

    A TCP connect is enough to tell "no network" (DNS failure, refused, timeout) from
    "network"; errors after that (auth, missing repo) are reported by the hub itself.
    """
    if offline_forced():
        return False
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    return _probe(url.hostname or "huggingface.co", port, timeout)


def reset_probe() -> None:
    """Forget the cached reachability answer (tests, or after the network comes back)."""
    _probe.cache_clear()


def is_cached(repo_id: str, revision: str | None = None) -> bool:
    """Whether ``repo_id``'s config.json is in the local Hugging Face cache."""
    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed id simply is not cached
        return False
    return isinstance(found, str)


def looks_like_hub_id(name: str) -> bool:
    """``owner/name`` with no path-like parts: the shape of a hub repository id."""
    parts = name.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not name.startswith((".", "~"))
        and " " not in name
        and "\\" not in name
    )
