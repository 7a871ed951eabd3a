"""The model store: atomic installs, consistency after failures, clear errors."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from quintet.core.errors import StoreError
from quintet.core.store import MANIFEST, ModelStore, default_home, validate_name


def _write_model(folder: Path, payload: bytes = b"weights") -> None:
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(payload)


def _staging_dirs(store: ModelStore) -> list[Path]:
    return list(store.models_dir.glob(".staging-*"))


def test_default_home_follows_quintet_home(tmp_home: Path) -> None:
    assert default_home() == tmp_home
    assert ModelStore().models_dir == tmp_home / "models"


def test_commit_makes_model_present_with_manifest(tmp_home: Path) -> None:
    store = ModelStore()
    with store.staging("demo") as staging:
        _write_model(staging)
        stored = store.commit(staging, "demo", {"kind": "causal"})
    assert store.has("demo") and stored.kind == "causal"
    manifest = json.loads((stored.path / MANIFEST).read_text())
    assert set(manifest["files"]) == {"config.json", "model.safetensors"}
    assert manifest["files"]["model.safetensors"]["bytes"] == len(b"weights")
    assert [m.name for m in store.list()] == ["demo"]
    assert _staging_dirs(store) == []


def test_failure_inside_staging_leaves_no_model(tmp_home: Path) -> None:
    store = ModelStore()
    with pytest.raises(KeyboardInterrupt), store.staging("demo") as staging:
        _write_model(staging)
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-write
    assert not store.has("demo")
    assert store.list() == []
    assert _staging_dirs(store) == []


def test_folder_without_manifest_is_not_a_model(tmp_home: Path) -> None:
    store = ModelStore()
    store.ensure_writable()
    half = store.models_dir / "half"
    half.mkdir()
    _write_model(half)
    assert not store.has("half")
    assert store.list() == []


def test_staging_left_by_a_dead_process_is_swept(tmp_home: Path) -> None:
    store = ModelStore()
    store.ensure_writable()
    # pid 2**22 + 1 is above Linux's default pid_max, so no live process has it.
    dead = store.models_dir / f".staging-demo-{2**22 + 1}-abcdef12"
    dead.mkdir()
    live = store.models_dir / f".staging-other-{os.getpid()}-abcdef12"
    live.mkdir()
    removed = store.sweep_staging()
    assert removed == [dead] and not dead.exists() and live.exists()


def test_recommit_replaces_the_old_model(tmp_home: Path) -> None:
    store = ModelStore()
    for payload in (b"old", b"new-weights"):
        with store.staging("demo") as staging:
            _write_model(staging, payload)
            store.commit(staging, "demo", {"kind": "causal"})
    assert (store.path("demo") / "model.safetensors").read_bytes() == b"new-weights"
    assert _staging_dirs(store) == []


def test_delete_and_delete_missing(tmp_home: Path) -> None:
    store = ModelStore()
    with store.staging("demo") as staging:
        _write_model(staging)
        store.commit(staging, "demo", {})
    store.delete("demo")
    assert not store.has("demo") and not store.path("demo").exists()
    with pytest.raises(StoreError, match="no model named 'demo'"):
        store.delete("demo")


def test_verify_reports_truncated_and_changed_files(tmp_home: Path) -> None:
    store = ModelStore()
    with store.staging("demo") as staging:
        _write_model(staging, b"0123456789")
        store.commit(staging, "demo", {})
    assert store.verify("demo") == []
    (store.path("demo") / "model.safetensors").write_bytes(b"01234")
    assert store.verify("demo") == ["model.safetensors: 5 bytes, expected 10"]
    (store.path("demo") / "model.safetensors").write_bytes(b"abcdefghij")
    assert store.verify("demo") == ["model.safetensors: sha256 differs from the manifest"]
    (store.path("demo") / "config.json").unlink()
    assert "config.json: missing" in store.verify("demo")


@pytest.mark.parametrize("bad", ["", "Upper", "../escape", "a/b", "-dash", "x" * 101])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(StoreError, match="invalid model name"):
        validate_name(bad)


def test_not_enough_disk_space_fails_before_any_work(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(tmp_home.parent)
    monkeypatch.setattr(
        "quintet.core.store.shutil.disk_usage",
        lambda path: usage._replace(free=10_000_000),
    )
    with pytest.raises(StoreError, match="not enough disk space.*need 0.80 GB, 0.01 GB free"):
        ModelStore().ensure_free_space(800_000_000)


def test_disk_full_while_writing_is_one_clear_error(tmp_home: Path) -> None:
    store = ModelStore()
    with pytest.raises(StoreError, match="no space left") as info, store.staging("demo"):
        # What the kernel raises when a write hits a full disk.
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "QUINTET_HOME" in str(info.value)
    assert not store.has("demo") and _staging_dirs(store) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_store_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="permission denied.*QUINTET_HOME"):
            ModelStore(home).ensure_writable()
    finally:
        home.chmod(0o700)


def test_unwritable_store_location_is_one_clear_error(tmp_path: Path) -> None:
    # A store "inside" a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="model store at"):
        ModelStore(blocker / "home").ensure_writable()


def test_permission_denied_message(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores chmod, so simulate what a non-root user meets on a read-only store.
    def refuse(self: Path, *args, **kwargs) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StoreError, match="permission denied.*set QUINTET_HOME"):
        ModelStore().ensure_writable()
