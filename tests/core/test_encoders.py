"""The encoder engines: int8 ONNX Runtime by default on CPU, torch as the reference.

Real minilm-l6 for behaviour; tiny BERT/DistilBERT heads for the span and classifier
kinds. Conversions go to a temporary store.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from quintet.apps.classification import Classifier  # noqa: E402
from quintet.apps.qa import QuestionAnswerer  # noqa: E402
from quintet.core import encoders  # noqa: E402
from quintet.core.errors import ConfigError, ModelLoadError  # noqa: E402
from quintet.core.models import load  # noqa: E402
from quintet.core.store import ModelStore  # noqa: E402
from quintet.core.testing import tiny_model_dir  # noqa: E402

pytestmark = pytest.mark.default_backend

TEXTS = [
    "The film was a delight from start to finish.",
    "Dull, slow and far too long.",
    "A quiet, well acted drama.",
    "I want my money back.",
    "Stocks fell sharply after the central bank raised rates again this morning.",
]


@pytest.fixture(autouse=True)
def _home(tmp_home: Path) -> Path:
    return tmp_home


def _minilm(real_store: ModelStore) -> str:
    return str(real_store.path("minilm-l6"))


def test_auto_runs_an_encoder_on_onnx_int8_with_the_same_answers(real_store: ModelStore) -> None:
    labels = ["positive review", "negative review", "finance news"]
    reference = Classifier(_minilm(real_store), labels=labels, backend="transformers")
    fast = Classifier(_minilm(real_store), labels=labels)
    assert fast.backend_choice.name == "onnxruntime" and "int8" in fast.backend_choice.reason
    assert reference.backend_choice.name == "transformers"
    expected = reference.logits(TEXTS) * 0.05  # back to cosines
    got = fast.logits(TEXTS) * 0.05
    assert np.abs(got - expected).max() < 0.03
    assert [r.label for r in fast.classify(TEXTS)] == [r.label for r in reference.classify(TEXTS)]
    stored = ModelStore().get(encoders.store_name(fast.loaded))
    assert stored is not None and stored.manifest["quantization"].startswith("int8-dynamic")
    assert ModelStore().verify(stored.name) == []


def test_batches_sorted_by_length_give_each_text_its_own_scores(real_store: ModelStore) -> None:
    classifier = Classifier(_minilm(real_store), labels=["a", "b"], backend="transformers")
    together = classifier.logits(TEXTS)
    alone = np.concatenate([classifier.logits([text]) for text in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_the_export_reproduces_torch_for_span_and_classifier_heads(family: str) -> None:
    """With and without token_type_ids; in fp32 the ONNX graph is the torch model exactly
    (int8 accuracy is judged on real models: here and in the benchmark's quality rows)."""
    for kind, fields in (
        ("span", ("start_logits", "end_logits")),
        ("sequence-classification", ("logits",)),
    ):
        loaded = load(str(tiny_model_dir(family, kind=kind)))
        engine = encoders.OnnxEncoder(loaded, "fp32")
        batch = loaded.tokenizer(TEXTS[:3], TEXTS[2:], padding=True, return_tensors="pt")
        batch = {k: v for k, v in batch.items() if k in engine.inputs}
        with torch.inference_mode():
            expected = loaded.model(**batch)
        got = engine(**batch)
        # Each row runs without its padding (batch invariance): compare the real tokens;
        # the engine leaves zeros where torch scored the padding.
        real = batch["attention_mask"].bool()
        for name in fields:
            a, b = getattr(got, name), getattr(expected, name)
            if name != "logits":
                assert bool((a[~real] == 0).all())
                a, b = a[real], b[real]
            assert torch.allclose(a, b, atol=1e-4)
        _, choice = encoders.encoder_engine(loaded)
        assert choice.name == ("ctranslate2" if kind == "span" else "onnxruntime")


def test_extractive_qa_runs_on_ctranslate2_and_the_named_onnx_engine_is_blockwise_int8(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per-channel ONNX int8 missed the QA quality gate and block-wise int8 was no faster:
    auto runs span models on CTranslate2 int8 (torch when that cannot convert them); the ONNX
    engine, when named, runs int8 in blocks of 32, with logits close to torch's."""
    span = str(tiny_model_dir("bert", kind="span"))
    qa = QuestionAnswerer(span)
    assert qa.backend_choice is not None and qa.backend_choice.name == "ctranslate2"
    assert "within 1 F1" in qa.backend_choice.reason
    from quintet.core import ct2_encoder

    def cannot(*args, **kwargs) -> None:
        raise ModelLoadError("ctranslate2 cannot convert it: a test says so")

    with monkeypatch.context() as patch:
        patch.setattr(ct2_encoder, "convert_span_model", cannot)
        fallback = QuestionAnswerer(span)
    assert fallback.backend_choice.name == "transformers"
    assert "cannot convert" in fallback.backend_choice.reason
    named = QuestionAnswerer(span, backend="onnxruntime")
    assert named.backend_choice.name == "onnxruntime"
    assert named.backend_choice.reason.startswith("int8-block32")
    loaded = load(span)
    stored = ModelStore().get(encoders.store_name(loaded, "int8-block32"))
    assert stored is not None and stored.manifest["quantization"].startswith("int8-matmulnbits")
    batch = loaded.tokenizer(["Who wrote it?"], ["It was written by Shakespeare in 1600."],
                             return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        expected = loaded.model(**batch)
    got = named.loaded.encoder(**batch)
    for name in ("start_logits", "end_logits"):
        reference = getattr(expected, name)
        error = float((getattr(got, name) - reference).abs().max())
        assert error < 0.05 * float(reference.abs().max())
    context = "It was written by William Shakespeare in 1600."
    answer = named.answer("Who wrote it?", context)[0]
    assert answer.text == "" or context[answer.start : answer.end] == answer.text


def test_the_environment_pins_torch_and_names_are_checked(
    real_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load(_minilm(real_store))
    monkeypatch.setenv("QUINTET_BACKEND", "transformers")
    _, choice = encoders.encoder_engine(loaded)
    assert choice.name == "transformers" and "QUINTET_BACKEND" in choice.reason
    with pytest.raises(ConfigError, match="unknown encoder backend"):
        encoders.encoder_engine(loaded, "onnxruntime-genai")


def test_a_failed_export_falls_back_in_one_line(
    real_store: ModelStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(loaded, folder: Path, precision: str) -> None:
        (folder / "partial.onnx").write_bytes(b"half")  # must not survive
        raise ModelLoadError("onnxruntime cannot convert minilm-l6: unsupported operator X")

    monkeypatch.setattr(encoders, "_export", refuse)
    loaded = load(_minilm(real_store))
    with caplog.at_level(logging.WARNING, logger="core"):
        engine, choice = encoders.encoder_engine(loaded)
    assert isinstance(engine, encoders.TorchEncoder) and choice.reason.startswith("fallback")
    assert len([r for r in caplog.records if "running" in r.getMessage()]) == 1
    assert ModelStore().get(encoders.store_name(loaded)) is None
    with pytest.raises(ModelLoadError, match="unsupported operator"):
        encoders.encoder_engine(loaded, "onnxruntime")
