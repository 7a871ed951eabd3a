"""Engine conversions cached in the store like any model.

A fast engine (CTranslate2, ONNX Runtime GenAI) decodes a converted copy of a Hugging Face
model. The copy is built once, in a staging folder committed atomically with a manifest
(sha256 per file, see :class:`quintet.core.store.ModelStore`), and reused until the base model
changes: store and catalog models are named, a directory is fingerprinted by its weight
files' names, sizes and modification times, so retraining in place converts again.

A reused copy is checked like a stored model (:func:`quintet.core.integrity.check_files`:
sizes and mtimes each time, the full sha256 when they changed); a damaged or truncated one is
rebuilt, with a one-line note, instead of running on corrupt weights. One that matches its
checksums but does not load in its engine is rebuilt once too (:func:`open_conversion`).

The engines loaded from a conversion belong to the model it was converted from
(:meth:`quintet.core.models.Loaded.attachment`, versioned by the conversion's fingerprint):
they are closed when the model cache drops that model (evicted, rebuilt, cleared), and a
rebuilt conversion gets engines of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from quintet.core import hub
from quintet.core.errors import ChecksumError, ModelLoadError
from quintet.core.integrity import check_files
from quintet.core.models import Loaded
from quintet.core.store import MANIFEST, ModelStore

log = logging.getLogger(__name__)
T = TypeVar("T")

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def base_name(loaded: Loaded) -> str:
    """The store-safe name of the model ``loaded`` came from.

    Store and catalog models keep their name; a directory is named by the hash of its path
    (``dir-<sha1[:10]>``); a hub id outside the catalog by its slug and a hash of id and
    revision, so two revisions never share a conversion.
    """
    resolved = loaded.resolved
    if resolved.origin == "store":
        return resolved.name
    if resolved.origin == "directory":
        return "dir-" + _sha1(resolved.location)[:10]
    entry = resolved.entry
    if entry is not None and resolved.revision in (None, entry.revision):
        return entry.name
    key = f"{resolved.location}@{resolved.revision or 'main'}"
    return f"hub-{_slug(resolved.location)[:60]}-{_sha1(key)[:8]}"


def fingerprint(folder: Path) -> str | None:
    """Names, sizes and mtimes of a local model's weight and config files.

    A directory model that is retrained in place keeps its path (and so its store name);
    the fingerprint tells that the cached conversion no longer matches it.
    """
    if not folder.is_dir():
        return None
    parts = [
        f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
        for f in sorted(folder.iterdir())
        if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES)
    ]
    return _sha1("\n".join(parts))


def source_folder(loaded: Loaded) -> str:
    """What to hand a converter: the model's folder, or its snapshot in the HF cache."""
    resolved = loaded.resolved
    if resolved.is_local:
        return resolved.location
    if hub.is_cached(resolved.location, resolved.revision):
        # Converters call from_pretrained without local_files_only: a cached snapshot
        # folder keeps them off the network (offline, the hub would be retried for ~30 s).
        from huggingface_hub import snapshot_download

        with contextlib.suppress(Exception):
            return snapshot_download(
                resolved.location, revision=resolved.revision, local_files_only=True
            )
    return resolved.location


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


def _problem(exc: ChecksumError) -> str:
    """What :func:`check_files` found, without its advice for store models."""
    text = str(exc)
    return text.split(": ", 1)[-1].split("; ", 1)[0]


def _build_lock(store: ModelStore, name: str) -> contextlib.AbstractContextManager:
    """The lock held while conversion ``name`` is checked or built: a file in the store,
    so that two threads, or two processes, build it once and the second reuses it. A
    read-only store is only read: nothing to lock (building there fails on its own)."""
    folder = store.home / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return contextlib.nullcontext()
    return FileLock(folder / f"conversion-{name}.lock", thread_local=False)


def get_or_build(
    loaded: Loaded,
    name: str,
    engine: str,
    manifest: dict[str, Any],
    build: Callable[[Path], None],
    required_file: str,
    store: ModelStore | None = None,
    rebuild: bool = False,
) -> Path:
    """The folder of store model ``name``, building it with ``build(folder)`` if needed.

    ``manifest`` (engine settings and versions) is recorded with the base model's
    identity; a stored copy is reused only when its engine, settings and base
    fingerprint match, ``required_file`` exists in it and its files match their
    checksums. ``rebuild``: build it again whatever is stored (see :func:`open_conversion`).
    """
    store = store or ModelStore()
    local = loaded.resolved.is_local
    base_print = fingerprint(Path(loaded.resolved.location)) if local else None
    full = {
        "kind": loaded.kind,
        "backend": engine,
        "base": loaded.name,
        "base_location": loaded.resolved.location,
        "base_revision": loaded.resolved.revision,
        "base_fingerprint": base_print,
        **manifest,
    }
    with _build_lock(store, name):
        stored = None if rebuild else store.get(name)
        if (
            stored is not None
            and all(stored.manifest.get(k) == v for k, v in full.items())
            and (stored.path / required_file).is_file()
        ):
            try:
                check_files(store, stored)
                return stored.path
            except ChecksumError as exc:
                # Derived data: rebuilt from the base model rather than run damaged
                # (damaged weights load without complaint and answer garbage).
                log.warning(
                    "the %s conversion %s is damaged (%s): rebuilding it",
                    engine, name, _problem(exc),
                )  # fmt: skip
        log.info("converting %s for %s as %s", loaded.name, engine, name)
        started = time.perf_counter()
        with store.staging(name) as tmp:
            build(tmp)
            stored = store.commit(tmp, name, full)
        log.info("converted %s in %.1f s", name, time.perf_counter() - started)
        return stored.path


def open_conversion(convert: Callable[[bool], Path], open_: Callable[[Path], T], engine: str) -> T:
    """``open_(convert(False))``; a stored conversion that does not open is rebuilt once.

    ``convert(rebuild)`` returns the conversion's folder (building it when ``rebuild``);
    ``open_`` loads it into the engine and raises :class:`ModelLoadError` when it cannot. A
    conversion whose files match their checksums may still not load (damaged before its
    checksums were recorded, or by a writer that recorded them again): it is derived data,
    so it is deleted and built again, with a one-line note. A conversion built by this very
    call that does not load is the engine's limit, not damage: its error is raised at once,
    as is the error of the rebuilt copy (``auto`` then falls back with a note of its own).
    """
    started = time.time()
    path = convert(False)
    try:
        return open_(path)
    except ModelLoadError as exc:
        manifest = path / MANIFEST
        if not manifest.is_file() or manifest.stat().st_mtime >= started:
            raise
        log.warning(
            "the %s conversion %s does not load (%s): rebuilding it", engine, path.name,
            str(exc).removeprefix(f"{engine} "),
        )  # fmt: skip
    return open_(convert(True))
