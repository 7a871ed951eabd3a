"""Engine conversions are checked like stored models and rebuilt when damaged; deleting a
model deletes its conversions.

A tiny BERT classifier stored under a name, converted for ONNX Runtime (and CTranslate2 for
the span head) in a temporary store: the same cache (core/decoding/conversions.py) holds the
onnxruntime-genai and CTranslate2 decoder conversions.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from quintet.core import encoders  # noqa: E402
from quintet.core.models import clear_cache, load  # noqa: E402
from quintet.core.store import MANIFEST, ModelStore, sha256_file  # noqa: E402
from quintet.core.testing import tiny_model_dir  # noqa: E402
from tests.apps.test_cli import run  # noqa: E402

pytestmark = pytest.mark.default_backend
LABELS = ["neg", "pos"]


def _stored_tiny(store: ModelStore, name: str = "tiny-cls") -> str:
    source = tiny_model_dir("bert", kind="sequence-classification", labels=LABELS)
    with store.staging(name) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        store.commit(tmp, name, {"kind": "sequence-classification"})
    return name


def _scores(path: Path) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path / "model.onnx"))
    feed = {i.name: np.ones((1, 6), dtype=np.int64) for i in session.get_inputs()}
    return session.run(None, feed)[0]


def _overwrite_middle(path: Path, size: int = 4096) -> None:
    """0xFF over ``size`` bytes in the middle: same size, same name, garbage weights."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = b"\xff" * min(size, len(data) - middle)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["overwritten", "truncated"])
def test_a_damaged_onnx_conversion_is_rebuilt_with_a_note(
    damage: str, tmp_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModelStore()
    loaded = load(_stored_tiny(store), device="cpu")
    first = encoders.convert_to_onnx(loaded, "int8")
    expected = _scores(first)
    onnx_file = first / "model.onnx"
    if damage == "overwritten":
        _overwrite_middle(onnx_file)
    else:
        onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    assert store.verify(first.name)  # what `models verify` already said

    with caplog.at_level(logging.WARNING, logger="quintet.core"):
        again = encoders.convert_to_onnx(loaded, "int8")
    notes = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(notes) == 1 and first.name in notes[0] and "model.onnx" in notes[0], notes
    assert store.verify(again.name) == []
    np.testing.assert_array_equal(_scores(again), expected)

    # An intact conversion is reused as is (no second rebuild, no note).
    caplog.clear()
    mtime = onnx_file.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="quintet.core"):
        encoders.convert_to_onnx(loaded, "int8")
    assert onnx_file.stat().st_mtime_ns == mtime and not caplog.records


def test_a_damaged_conversion_is_rebuilt_before_the_classifier_runs(tmp_home: Path) -> None:
    from quintet.apps.classification import Classifier

    store = ModelStore()
    name = _stored_tiny(store)
    texts = ["a fine film", "not good at all", "fine"]
    expected = Classifier(name, backend="onnxruntime").logits(texts)
    (conversion,) = [m for m in store.list() if m.name != name]
    _overwrite_middle(conversion.path / "model.onnx", 65536)
    clear_cache()
    np.testing.assert_allclose(Classifier(name, backend="onnxruntime").logits(texts), expected)


def test_models_delete_removes_the_models_conversions(tmp_home: Path) -> None:
    store = ModelStore()
    name = _stored_tiny(store)
    encoders.convert_to_onnx(load(name, device="cpu"), "int8")
    other = _stored_tiny(store, "tiny-other")
    encoders.convert_to_onnx(load(other, device="cpu"), "int8")
    conversions = [m.name for m in store.conversions_of(name)]
    assert conversions and all(store.has(c) for c in conversions)

    done = run("models", "delete", name, env={"QUINTET_HOME": str(tmp_home)})
    assert done.returncode == 0, done.stderr
    assert f"deleted {conversions[0]}" in done.stdout
    assert not store.has(name) and not any(store.has(c) for c in conversions)
    # Another model's conversion stays.
    assert store.has(other) and store.conversions_of(other)


def _record_checksums_again(store: ModelStore, name: str) -> None:
    """Rewrite the conversion's checksum record to match its (damaged) files, as a
    conversion damaged before its record was written would be: it "verifies"."""
    stored = store.get(name)
    assert stored is not None
    manifest = dict(stored.manifest)
    manifest["files"] = {
        rel: {"bytes": (stored.path / rel).stat().st_size, "sha256": sha256_file(stored.path / rel)}
        for rel in manifest["files"]
    }
    (stored.path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert store.verify(name) == []


def _rebuild_notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "does not load" in r.getMessage()]


def test_an_onnx_conversion_that_verifies_but_does_not_load_is_rebuilt(
    tmp_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModelStore()
    loaded = load(_stored_tiny(store), device="cpu")
    first = encoders.OnnxEncoder(loaded, "int8")
    batch = {"input_ids": torch.ones((1, 6), dtype=torch.long)}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    expected = first(**batch).logits
    onnx_file = first.path / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    _record_checksums_again(store, first.path.name)

    with caplog.at_level(logging.WARNING, logger="quintet.core"):
        again = encoders.OnnxEncoder(loaded, "int8")
    notes = _rebuild_notes(caplog)
    assert len(notes) == 1 and first.path.name in notes[0] and "rebuilding it" in notes[0], notes
    assert "\n" not in notes[0]
    torch.testing.assert_close(again(**batch).logits, expected, rtol=0, atol=0)
    assert onnx_file.stat().st_size > 0 and store.verify(first.path.name) == []


def test_a_ctranslate2_conversion_that_verifies_but_does_not_load_is_rebuilt(
    tmp_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("ctranslate2")
    from quintet.core.config import DecodeConfig
    from quintet.core.decoding.ct2_backend import CTranslate2Backend

    loaded = load(str(tiny_model_dir("llama")), device="cpu")
    prompt = loaded.tokenizer("the house is small")["input_ids"]
    config = DecodeConfig(max_new_tokens=8)
    first = CTranslate2Backend(loaded, quantization="float32")
    expected = first.generate([prompt], config)[0][0].token_ids
    weights = first.model_path / "model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    _record_checksums_again(ModelStore(), first.model_path.name)
    clear_cache()  # a new process, as far as engines go: nothing loaded from before

    loaded = load(str(tiny_model_dir("llama")), device="cpu")
    with caplog.at_level(logging.WARNING, logger="quintet.core"):
        again = CTranslate2Backend(loaded, quantization="float32")
    notes = _rebuild_notes(caplog)
    assert len(notes) == 1 and first.model_path.name in notes[0], notes
    assert again.generate([prompt], config)[0][0].token_ids == expected
