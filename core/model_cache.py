"""The process's cache of loaded models: bounded (LRU), and never stale.

:func:`quintet.core.models.load` returns one shared :class:`~quintet.core.models.Loaded` per model
and
load options, so the apps, the Streamlit sessions, the evaluation harness and the server
use one copy of the weights (and one lock, ``Loaded.lock``). The cache

* keeps at most ``max_models`` models and, when set, ``max_bytes`` of weights; the least
  recently used model leaves first (whoever still holds it keeps a working copy; the
  memory is freed when the last holder lets go);
* checks, on every lookup, a fingerprint of the files a local model was read from (the
  sha256 of the store manifest ``quintet.json``, a few KB; else the inode, size and
  modification time of ``config.json`` and the weight files). A model deleted and rebuilt at the
  same path, or a folder whose weights changed, is loaded again; entries whose files are
  gone are dropped.

The bounds come from ``QUINTET_MODEL_CACHE``: a count (``4``), a size (``2GB``, ``512MB``)
or both separated by a comma (``4,2GB``). Default: 8 models, no byte bound.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from quintet.core.errors import ConfigError

ENV = "QUINTET_MODEL_CACHE"
DEFAULT_MAX_MODELS = 8
MANIFEST = "quintet.json"  # core.store.MANIFEST, repeated to keep this module import-free
_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?b?)\s*$", re.IGNORECASE)

Fingerprint = tuple[tuple, ...]
V = TypeVar("V")


@dataclass(frozen=True)
class CacheLimits:
    """How much a :class:`ModelCache` may hold: models, and bytes of weights (None: any)."""

    max_models: int = DEFAULT_MAX_MODELS
    max_bytes: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> CacheLimits:
        """Read ``QUINTET_MODEL_CACHE``-style text: ``4``, ``2GB`` or ``4,2GB``."""
        if not text or not text.strip():
            return cls()
        models, size = DEFAULT_MAX_MODELS, None
        for part in text.split(","):
            token = part.strip()
            if token.isdigit():
                models = int(token)
                continue
            match = _SIZE.match(token)
            if not match or not match.group(2):
                raise ConfigError(
                    f"{ENV}={text!r}: give a model count (4), a size (2GB) or both (4,2GB)"
                )
            size = int(float(match.group(1)) * _UNITS[match.group(2).lower().rstrip("b") + "b"])
        if models < 1:
            raise ConfigError(f"{ENV}={text!r}: the cache must hold at least one model")
        return cls(models, size)


def fingerprint(location: str | Path) -> Fingerprint | None:
    """What identifies the files of a local model folder (None for a hub id).

    The store manifest's sha256 when there is one (a few KB; a rebuild always writes a
    new one, with the new weights' hashes in it); otherwise the inode, size and
    modification time of the config and the weight files.
    """
    folder = Path(location)
    if not folder.is_dir():
        return None
    manifest = folder / MANIFEST
    try:
        return (("sha256", hashlib.sha256(manifest.read_bytes()).hexdigest()),)
    except OSError:
        pass
    marks: list[tuple[str, int, int, int]] = []
    for path in [folder / "config.json", *_weights(folder)]:
        try:
            stat = path.stat()
        except OSError:
            continue
        marks.append((path.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(marks)


def _weights(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()
    )


@dataclass
class _Entry(Generic[V]):
    value: V
    location: str
    fingerprint: Fingerprint | None
    nbytes: int


class ModelCache(Generic[V]):
    """A thread-safe LRU of loaded models keyed by what was loaded and how.

    Args:
        limits: the bounds (default: from ``QUINTET_MODEL_CACHE``).
        size_of: bytes a value takes (for the byte bound).
        on_drop: called with each value the cache lets go of (evicted, invalidated, stale,
            cleared), outside the cache's lock: it closes what the value holds open.

    Two threads asking for the same missing key wait for one load; different keys load in
    parallel.
    """

    def __init__(
        self,
        limits: CacheLimits | None = None,
        size_of: Callable[[V], int] = lambda _: 0,
        on_drop: Callable[[V], None] | None = None,
    ) -> None:
        self.limits = limits or CacheLimits.parse(os.environ.get(ENV))
        self._size_of = size_of
        self._on_drop = on_drop
        self._dropped: list[V] = []  # dropped under the guard, handed to on_drop after it
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._guard = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Hold the guard; afterwards, outside it, hand dropped values to ``on_drop``."""
        with self._guard:
            yield
            dropped, self._dropped = self._dropped, []
        for value in dropped:
            if self._on_drop is not None:
                self._on_drop(value)

    def _drop(self, key: Hashable) -> None:
        self._dropped.append(self._entries.pop(key).value)

    def get_or_load(self, key: Hashable, location: str, build: Callable[[], V]) -> V:
        """The cached value for ``key`` if its files are unchanged, else ``build()``'s."""
        with self._guarded():
            hit = self._fresh(key, location)
            if hit is not None:
                return hit
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._guarded():
                hit = self._fresh(key, location)
                if hit is not None:
                    return hit
            # Fingerprint before reading, so a change during the load is seen next time.
            mark = fingerprint(location)
            value = build()
            with self._guarded():
                self._entries[key] = _Entry(value, location, mark, self._size_of(value))
                self._entries.move_to_end(key)
                self._evict(keep=key)
            return value

    def _fresh(self, key: Hashable, location: str) -> V | None:
        """The entry for ``key`` when its files have not changed (call under the guard)."""
        self._prune()
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.fingerprint != fingerprint(location):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def _prune(self) -> None:
        """Drop entries whose folder is gone (a deleted model must not hold memory)."""
        for key, entry in list(self._entries.items()):
            if entry.fingerprint is not None and not Path(entry.location).is_dir():
                self._drop(key)

    def _evict(self, keep: Hashable) -> None:
        def over() -> bool:
            if len(self._entries) > self.limits.max_models:
                return True
            limit = self.limits.max_bytes
            return limit is not None and sum(e.nbytes for e in self._entries.values()) > limit

        # The newest entry stays even when it alone is over the byte bound: it is in use.
        while over() and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            self._drop(oldest)

    def invalidate(self, location: str | Path) -> int:
        """Forget every model read from ``location``; returns how many were dropped."""
        target = str(Path(location).resolve()) if Path(location).exists() else str(location)
        with self._guarded():
            keys = [k for k, e in self._entries.items() if e.location in (target, str(location))]
            for key in keys:
                self._drop(key)
            return len(keys)

    def clear(self) -> None:
        """Forget everything."""
        with self._guarded():
            for key in list(self._entries):
                self._drop(key)
            self._key_locks.clear()

    def values(self) -> list[V]:
        """The cached models, least recently used first."""
        with self._guarded():
            self._prune()
            return [e.value for e in self._entries.values()]

    def __len__(self) -> int:
        with self._guarded():
            return len(self._entries)
