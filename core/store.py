"""The local model store: one folder per model under ``$QUINTET_HOME/models``.

A model is present only when its folder holds ``quintet.json`` (the manifest). Models are
built in a hidden staging folder next to their final place and renamed into it as the
last step, so an interrupted pull or training run never leaves a half-written model that
looks complete; leftover staging folders are swept on the next write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quintet.core.errors import StoreError
from quintet.core.processes import pid_alive

MANIFEST = "quintet.json"
_STAGING_PREFIX = ".staging-"
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def default_home() -> Path:
    """``$QUINTET_HOME`` if set, else ``~/.cache/quintet``."""
    env = os.environ.get("QUINTET_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "quintet"


def validate_name(name: str) -> str:
    """Store names are lower-case, start with a letter or digit, and use only ``a-z0-9._-``."""
    if not _NAME_PATTERN.match(name or ""):
        raise StoreError(
            f"invalid model name {name!r}: use lower-case letters, digits, '.', '_' and '-'"
        )
    return name


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large weights need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredModel:
    """A model present in the store."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str | None:
        return self.manifest.get("kind")

    @property
    def converted_from(self) -> str | None:
        """The base model's name when this is an engine's converted copy (ONNX, CTranslate2),
        which the apps reach through the base model, never by its own name."""
        return self.manifest.get("base") if self.manifest.get("backend") else None

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def describe_os_error(exc: OSError, where: Path) -> str:
    """One line that says what went wrong with the store and what to do about it."""
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on the device holding the model store ({where}): free some space "
            "or set QUINTET_HOME to a folder on a larger disk"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return (
            f"cannot write to the model store at {where} ({why}): "
            "set QUINTET_HOME to a writable folder"
        )
    return f"model store at {where}: {exc.strerror or exc}"


class ModelStore:
    """Folder-backed store of models, safe against interruption.

    Example:
        >>> store = ModelStore()                      # ~/.cache/quintet or $QUINTET_HOME
        >>> with store.staging("my-model") as tmp:    # doctest: +SKIP
        ...     model.save_pretrained(tmp)
        ...     store.commit(tmp, "my-model", {"kind": "causal"})
    """

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.models_dir = self.home / "models"
        self.downloads_dir = self.home / "downloads"

    # Reading -----------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.models_dir / validate_name(name)

    def get(self, name: str) -> StoredModel | None:
        """The stored model ``name``, or None if it is absent (or unreadable)."""
        if not _NAME_PATTERN.match(name or ""):
            return None
        folder = self.models_dir / name
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return StoredModel(name=name, path=folder, manifest=manifest)

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def list(self) -> list[StoredModel]:
        """Every complete model in the store, by name."""
        if not self.models_dir.is_dir():
            return []
        found = (self.get(p.name) for p in sorted(self.models_dir.iterdir()) if p.is_dir())
        return [model for model in found if model is not None]

    # Writing -----------------------------------------------------------------------------

    def ensure_writable(self) -> None:
        """Create the store folders, or fail with one clear line if we cannot write there."""
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            probe = self.models_dir / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.home)) from None

    def ensure_free_space(self, needed_bytes: int) -> None:
        """Fail before any work if the store's disk has less than ``needed_bytes`` free."""
        self.ensure_writable()
        free = shutil.disk_usage(self.models_dir).free
        if free < needed_bytes:
            raise StoreError(
                f"not enough disk space for the model store at {self.home}: need "
                f"{needed_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB free; free some space or set "
                "QUINTET_HOME to a folder on a larger disk"
            )

    def sweep_staging(self) -> list[Path]:
        """Remove staging folders left by processes that died mid-write."""
        removed: list[Path] = []
        if not self.models_dir.is_dir():
            return removed
        for folder in self.models_dir.glob(f"{_STAGING_PREFIX}*"):
            try:
                pid = int(folder.name.split("-")[-2])
            except (ValueError, IndexError):
                pid = -1
            if pid == os.getpid() or (pid > 0 and pid_alive(pid)):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        return removed

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A fresh hidden folder to build ``name`` in; removed on exit unless committed.

        Any exception, KeyboardInterrupt included, leaves the store as it was.
        OS errors (disk full, permission) become one-line :class:`StoreError`.
        """
        validate_name(name)
        self.ensure_writable()
        self.sweep_staging()
        folder = self.models_dir / f"{_STAGING_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        try:
            yield folder
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS):
                raise StoreError(describe_os_error(exc, self.home)) from None
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staged: Path, name: str, manifest: dict[str, Any]) -> StoredModel:
        """Write the manifest into ``staged`` and move it into place as model ``name``.

        The manifest lists every file with its size and sha256 so ``verify`` can later
        detect truncation or corruption. An existing model of that name is replaced.
        """
        validate_name(name)
        for path in staged.rglob("*"):
            # Some writers create 0600 files; a shared store must be readable by its users.
            if path.is_file():
                path.chmod(0o644)
        files = {
            str(f.relative_to(staged)): {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
            for f in sorted(staged.rglob("*"))
            if f.is_file() and f.name != MANIFEST
        }
        full = {"name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **manifest}
        full["files"] = files
        try:
            (staged / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
            target = self.models_dir / name
            if target.exists():
                # Move the old copy aside first so the name is never absent for long and a
                # failure here still leaves one complete model.
                trash = self.models_dir / f"{_STAGING_PREFIX}{name}-{os.getpid()}-old"
                os.rename(target, trash)
                os.rename(staged, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(staged, target)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.home)) from None
        # staging() will try to remove the folder it handed out; it is gone, which is fine.
        stored = self.get(name)
        assert stored is not None
        return stored

    def conversions_of(self, name: str) -> list[StoredModel]:
        """The engine conversions (ONNX Runtime, CTranslate2, ...) built from model ``name``:
        derived copies whose manifest names it as their base."""
        folder = str(self.path(name))

        def name_or_folder(manifest: dict[str, Any]) -> str | None:
            base = manifest.get("base")
            return base if base == name else manifest.get("base_location")

        return [
            model
            for model in self.list()
            if model.name != name
            and "backend" in model.manifest
            and name_or_folder(model.manifest) in (name, folder)
        ]

    def delete(self, name: str) -> list[str]:
        """Remove model ``name`` from the store, and its engine conversions with it (they are
        derived data, useless without it). Returns the conversions' names."""
        if not self.has(name):
            raise StoreError(f"no model named {name!r} in the store at {self.models_dir}")
        conversions = [model.name for model in self.conversions_of(name)]
        self._remove(name)
        for conversion in conversions:
            self._remove(conversion)
        return conversions

    def _remove(self, name: str) -> None:
        folder = self.path(name)
        try:
            # Removing the manifest first makes the model absent at once, even if the
            # rest of the removal is interrupted.
            (folder / MANIFEST).unlink()
            shutil.rmtree(folder)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, self.home)) from None

    def verify(self, name: str) -> list[str]:
        """Check every file of ``name`` against its manifest; return the problems found."""
        stored = self.get(name)
        if stored is None:
            raise StoreError(f"no model named {name!r} in the store at {self.models_dir}")
        problems = []
        for rel, info in stored.manifest.get("files", {}).items():
            path = stored.path / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif path.stat().st_size != info["bytes"]:
                problems.append(f"{rel}: {path.stat().st_size} bytes, expected {info['bytes']}")
            elif sha256_file(path) != info["sha256"]:
                problems.append(f"{rel}: sha256 differs from the manifest")
        return problems
