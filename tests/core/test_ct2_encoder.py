"""The CTranslate2 span engine: tiny BERT/DistilBERT span models (no packaged QA weights
exist); its accuracy on a real model is judged by the SQuAD quality rows in README."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("ctranslate2")

from quintet.apps.qa import QuestionAnswerer  # noqa: E402
from quintet.core import ct2_encoder, encoders  # noqa: E402
from quintet.core.errors import ModelLoadError  # noqa: E402
from quintet.core.models import load  # noqa: E402
from quintet.core.store import ModelStore  # noqa: E402
from quintet.core.testing import tiny_model_dir  # noqa: E402

pytestmark = pytest.mark.default_backend

QUESTIONS = ["Who wrote it?", "When?", "Where was the play first staged, and by whom?"]
CONTEXTS = [
    "It was written by William Shakespeare in 1600.",
    "The play was first performed around 1600 at the Globe.",
    "The Lord Chamberlain's Men staged it first at the Globe Theatre in London.",
]


@pytest.fixture(autouse=True)
def _home(tmp_home: Path) -> Path:
    return tmp_home


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_float32_reproduces_torch_span_logits(family: str) -> None:
    """Padded batch, with token types for BERT and without for DistilBERT."""
    loaded = load(str(tiny_model_dir(family, kind="span")))
    engine = ct2_encoder.Ct2SpanEncoder(loaded, "float32")
    batch = loaded.tokenizer(QUESTIONS, CONTEXTS, padding=True, return_tensors="pt")
    assert int(batch["attention_mask"].sum()) < batch["attention_mask"].numel()  # padded
    with torch.inference_mode():
        expected = loaded.model(**batch)
    got = engine(**batch)
    for name in ("start_logits", "end_logits"):
        reference = getattr(expected, name)
        mask = batch["attention_mask"].bool()
        assert torch.allclose(getattr(got, name)[mask], reference[mask], atol=1e-4)


def test_the_named_engine_converts_once_and_answers_within_the_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    span = str(tiny_model_dir("bert", kind="span"))
    qa = QuestionAnswerer(span, backend="ctranslate2")
    assert qa.backend_choice is not None and qa.backend_choice.name == "ctranslate2"
    loaded = load(span)
    stored = ModelStore().get(ct2_encoder.store_name(loaded, "int8"))
    assert stored is not None and stored.manifest["quantization"] == "int8"
    assert {"model.bin", ct2_encoder.HEAD_FILE} <= set(stored.manifest["files"])
    for question, context in zip(QUESTIONS, CONTEXTS, strict=True):
        answer = qa.answer(question, context)[0]
        assert answer.text == "" or context[answer.start : answer.end] == answer.text
    # int8 logits stay close to torch's (the grid is per row of activations).
    batch = loaded.tokenizer(QUESTIONS[:1], CONTEXTS[:1], return_tensors="pt")
    with torch.inference_mode():
        expected = loaded.model(**batch)
    got = qa.loaded.encoder(**batch)
    error = float((got.start_logits - expected.start_logits).abs().max())
    assert error < 0.05 * float(expected.start_logits.abs().max())

    def must_not_convert(*args, **kwargs) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(ct2_encoder, "_convert_into", must_not_convert)
    assert QuestionAnswerer(span, backend="ctranslate2").backend_choice.name == "ctranslate2"


def test_cutting_a_batch_into_parts_keeps_the_logits() -> None:
    """Rows are quantized one by one, so the parts a batch is cut into do not matter."""
    loaded = load(str(tiny_model_dir("bert", kind="span")))
    whole = ct2_encoder.Ct2SpanEncoder(loaded, "int8", threads=1, rows_per_call=64)
    parts = ct2_encoder.Ct2SpanEncoder(loaded, "int8", threads=2, rows_per_call=1)
    batch = loaded.tokenizer(QUESTIONS * 3, CONTEXTS * 3, padding=True, return_tensors="pt")
    mask = batch["attention_mask"].bool()
    expected, got = whole(**batch), parts(**batch)
    for name in ("start_logits", "end_logits"):
        assert torch.allclose(getattr(got, name)[mask], getattr(expected, name)[mask], atol=1e-5)


def test_loading_the_replicas_leaves_torch_on_its_threads() -> None:
    """CTranslate2 sets the loading thread's OpenMP count to one (the replicas' count);
    torch must keep its own, or every later torch model in the process runs on one core."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        loaded = load(str(tiny_model_dir("bert", kind="span")))
        ct2_encoder.Ct2SpanEncoder(loaded, "int8", threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_other_models_are_refused_in_one_line() -> None:
    classifier = load(str(tiny_model_dir("bert", kind="sequence-classification")))
    with pytest.raises(ModelLoadError) as error:
        encoders.encoder_engine(classifier, "ctranslate2")
    assert "\n" not in str(error.value) and "span (extractive QA)" in str(error.value)
    assert ModelStore().get(ct2_encoder.store_name(classifier, "int8")) is None
