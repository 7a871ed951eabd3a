"""Encoder engines live and die with their model, like the decoding engines: the loaded ONNX
Runtime session or CTranslate2 encoder hangs on the cached model it was converted from
(``Loaded.attachment``), closes when the cache drops that model, and a QA or classification
object follows a model rebuilt on disk to an engine converted from its new weights.

Tiny BERT heads built from configs, copied to a folder and rewritten in place; conversions go
to a temporary store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("ctranslate2")

from quintet.apps.classification import Classifier  # noqa: E402
from quintet.apps.qa import QuestionAnswerer  # noqa: E402
from quintet.core.models import clear_cache, load, load_fresh  # noqa: E402
from quintet.core.testing import build_tiny_model, tiny_model_dir  # noqa: E402

pytestmark = pytest.mark.default_backend

QUESTION = "who wrote the play?"
CONTEXT = "The play was written by William Shakespeare in London around the year 1600."
TEXTS = ["the house is small", "a quiet, well acted drama", "I want my money back"]


@pytest.fixture(autouse=True)
def _home(tmp_home: Path) -> Path:
    return tmp_home


def _copy(kind: str, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir("bert", kind=kind), folder)
    return folder


def _engines(loaded, engine: str) -> list:
    return [helper for key, helper in loaded.attachments.items() if key[0] == engine]


def test_a_qa_object_answers_from_a_span_model_rebuilt_on_disk(tmp_path: Path) -> None:
    folder = _copy("span", tmp_path / "span")
    qa = QuestionAnswerer(str(folder))
    assert qa.backend_choice is not None and qa.backend_choice.name == "ctranslate2"
    old = qa.loaded
    before = qa.answer(QUESTION, CONTEXT, top_k=3)
    assert len(_engines(old, "ctranslate2-encoder")) == 1
    build_tiny_model("bert", folder, kind="span", seed=1)  # new weights in place

    after = qa.answer(QUESTION, CONTEXT, top_k=3)
    assert qa.loaded.model is not old.model and old.attachments == {}
    assert len(_engines(qa.loaded, "ctranslate2-encoder")) == 1
    assert qa.backend_choice.name == "ctranslate2"
    fresh = QuestionAnswerer(load_fresh(str(folder)))
    assert after == fresh.answer(QUESTION, CONTEXT, top_k=3) != before


def test_a_classifier_answers_from_a_model_rebuilt_on_disk(tmp_path: Path) -> None:
    folder = _copy("sequence-classification", tmp_path / "classifier")
    classifier = Classifier(str(folder))
    assert classifier.backend_choice.name == "onnxruntime"
    old = classifier.loaded
    before = classifier.probabilities(TEXTS)
    build_tiny_model("bert", folder, kind="sequence-classification", seed=1)

    after = classifier.probabilities(TEXTS)
    assert classifier.loaded.model is not old.model and old.attachments == {}
    fresh = Classifier(load_fresh(str(folder)))
    assert np.array_equal(after, fresh.probabilities(TEXTS))
    assert not np.allclose(after, before)


def test_the_cache_dropping_a_model_closes_its_encoder_engine(tmp_path: Path) -> None:
    folder = _copy("span", tmp_path / "span")
    qa = QuestionAnswerer(str(folder))
    before = qa.answer(QUESTION, CONTEXT, top_k=3)
    (engine,) = _engines(qa.loaded, "ctranslate2-encoder")
    clear_cache()
    assert qa.loaded.attachments == {} and engine.encoder is None  # closed
    # Its holder still answers: the engine is loaded again, onto the model put back.
    assert qa.answer(QUESTION, CONTEXT, top_k=3) == before
    assert len(_engines(qa.loaded, "ctranslate2-encoder")) == 1
    assert load(str(folder)).attachments is qa.loaded.attachments


def test_objects_over_one_model_share_its_encoder_engine(tmp_path: Path) -> None:
    folder = _copy("sequence-classification", tmp_path / "classifier")
    first, second = Classifier(str(folder)), Classifier(str(folder))
    assert first.loaded.encoder is not second.loaded.encoder
    (session,) = _engines(load(str(folder)), "onnxruntime")
    assert np.array_equal(first.probabilities(TEXTS), second.probabilities(TEXTS))
    assert _engines(load(str(folder)), "onnxruntime") == [session]


def test_a_served_encoder_embeds_with_a_model_rebuilt_on_disk(tmp_path: Path) -> None:
    import torch

    from quintet.apps.classification.zero_shot import embed
    from quintet.apps.server.config import ServerConfig
    from quintet.apps.server.models import READY, ServedModel
    from quintet.core.encoders import with_engine

    def vectors(loaded) -> np.ndarray:
        with loaded.lock, torch.inference_mode():
            return embed(loaded, TEXTS).numpy()

    folder = _copy("encoder", tmp_path / "encoder")
    served = ServedModel(str(folder), ServerConfig(models=(str(folder),)))
    served.load()
    assert served.state == READY and served.loaded.encoder.name == "onnxruntime"
    old = served.current()
    before = vectors(old)
    build_tiny_model("bert", folder, kind="encoder", seed=1)

    after = vectors(served.current())
    assert served.loaded.model is not old.model and old.attachments == {}
    assert served.loaded.encoder.name == "onnxruntime"
    fresh, _ = with_engine(load_fresh(str(folder)))
    assert np.array_equal(after, vectors(fresh)) and not np.allclose(after, before)
