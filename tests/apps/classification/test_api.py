"""Classifier: fine-tuned heads, multi-label, NLI / embedding / likelihood zero-shot, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from quintet.apps.classification import ClassificationError, Classifier, zero_shot
from quintet.core.errors import ConfigError
from quintet.core.models import load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

SPORTS = [
    "Manchester United beat Chelsea 2-1 in the Premier League",
    "Tennis star wins Wimbledon final in five sets",
    "Olympic sprinter breaks 100m world record",
]
BUSINESS = [
    "Tech giant reports record quarterly profit, shares jump",
    "Central bank raises interest rates to curb inflation",
    "Oil prices climb as OPEC cuts output",
]


def _tiny_copy(tmp_path: Path, labels, problem_type: str | None = None) -> str:
    """A private copy of a tiny BERT classifier, its config edited as a user's would be."""
    target = tmp_path / "clf"
    shutil.copytree(tiny_model_dir("bert", kind="sequence-classification", labels=labels), target)
    if problem_type:
        config = json.loads((target / "config.json").read_text())
        config["problem_type"] = problem_type
        (target / "config.json").write_text(json.dumps(config))
    return str(target)


def test_embedding_zero_shot_on_real_minilm(real_store) -> None:
    clf = Classifier("minilm-l6", labels=["sports", "business"], device="cpu")
    assert clf.mode == "zero-shot-embedding"
    results = clf.classify(SPORTS + BUSINESS, top_k=2)
    assert [r.label for r in results] == ["sports"] * 3 + ["business"] * 3
    for r in results:
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert list(r.scores) == sorted(r.scores, key=r.scores.get, reverse=True)
    # Multi-label: independent probabilities, labels over the threshold.
    [multi] = clf.classify(["Football club's shares soar after the cup win"], multi_label=True)
    assert set(multi.labels) <= {"sports", "business"}
    assert sum(multi.scores.values()) != pytest.approx(1.0)


def test_label_likelihood_on_real_smollm(real_store) -> None:
    clf = Classifier("smollm2-135m-instruct", labels=["positive", "negative"], device="cpu")
    assert clf.mode == "zero-shot-likelihood"
    [r] = clf.classify(["I loved this film, it was wonderful."])
    assert r.label == "positive" and 0.5 < r.score < 1.0
    # The score is the mean log-probability of the label tokens after the prompt.
    logits = clf.logits(["I loved this film, it was wonderful."])
    assert logits.shape == (1, 2) and (logits < 0).all()
    with pytest.raises(ClassificationError, match="multi-label"):
        clf.classify(["x"], multi_label=True)


def test_fine_tuned_classifier_uses_config_labels(tmp_path: Path) -> None:
    clf = Classifier(_tiny_copy(tmp_path, ["neg", "pos", "mixed"]))
    assert clf.mode == "classifier" and clf.label_set() == ["neg", "pos", "mixed"]
    results = clf.classify(["good film", "bad film"], top_k=2)
    for r in results:
        assert len(r.scores) == 2 and r.label == next(iter(r.scores))
    renamed = Classifier(_tiny_copy(tmp_path / "b", ["0", "1"]), label_names={"1": "positive"})
    assert renamed.label_set() == ["0", "positive"]
    assert set(renamed.classify("fine")[0].scores) == {"0", "positive"}


def test_multi_label_from_the_config(tmp_path: Path) -> None:
    path = _tiny_copy(tmp_path, ["a", "b", "c"], "multi_label_classification")
    clf = Classifier(path)
    assert clf.multi_label
    [r] = clf.classify(["some text"], threshold=0.0)
    assert set(r.labels) == {"a", "b", "c"}  # threshold 0: every label is chosen
    [none] = clf.classify(["some text"], threshold=1.0)
    assert none.labels == ()
    loaded = load(path)
    with torch.inference_mode():
        raw = loaded.model(**loaded.tokenizer(["some text"], return_tensors="pt")).logits[0]
    expected = torch.sigmoid(raw).numpy()
    got = [r.scores[x] for x in ("a", "b", "c")]
    assert np.allclose(got, expected, atol=1e-5)


def test_nli_zero_shot_matches_the_pipeline_formula(tmp_path: Path) -> None:
    path = _tiny_copy(tmp_path, ["contradiction", "neutral", "entailment"])
    clf = Classifier(path, labels=["politics", "sport"])
    assert clf.mode == "zero-shot-nli"
    text = "The match ended in a draw."
    loaded = load(path)
    hyps = [zero_shot.NLI_TEMPLATE.format(x) for x in ("politics", "sport")]
    with torch.inference_mode():
        encoded = loaded.tokenizer([text] * 2, hyps, padding=True, return_tensors="pt")
        logits = loaded.model(**encoded).logits
    single = torch.softmax(logits[:, 2], dim=0).numpy()
    multi = torch.sigmoid(logits[:, 2] - logits[:, 0]).numpy()
    [r] = clf.classify([text])
    assert np.allclose([r.scores["politics"], r.scores["sport"]], single, atol=1e-5)
    [m] = clf.classify([text], multi_label=True)
    assert np.allclose([m.scores["politics"], m.scores["sport"]], multi, atol=1e-5)


def test_long_texts_are_read_in_chunks_and_averaged(tmp_path: Path) -> None:
    path = _tiny_copy(tmp_path, ["a", "b"])
    clf = Classifier(path)
    loaded = clf.loaded
    text = " ".join(["the cat sat on the mat and looked at the dog"] * 120)
    batch, owner = zero_shot.encode_chunks(loaded, [text])
    assert len(owner) > 1 and set(owner) == {0}  # several chunks of one text
    with torch.inference_mode():
        per_chunk = loaded.model(**batch).logits
    assert np.allclose(clf.logits([text])[0], per_chunk.mean(0).numpy(), atol=1e-5)


def test_user_errors(tmp_path: Path, real_store) -> None:
    with pytest.raises(ClassificationError, match="labels="):
        Classifier("minilm-l6")
    with pytest.raises(ClassificationError, match="at least two labels"):
        Classifier("minilm-l6", labels=["only"])
    with pytest.raises(ClassificationError, match="repeat"):
        Classifier("minilm-l6", labels="a, b, a")
    tiny = _tiny_copy(tmp_path, ["neg", "pos"])
    with pytest.raises(ClassificationError, match="has its own labels"):
        Classifier(tiny, labels=["x", "y"])
    clf = Classifier(tiny)
    assert clf.classify([]) == []
    with pytest.raises(ClassificationError, match="text 1 is empty"):
        clf.classify(["fine", "  "])
    with pytest.raises(ConfigError, match="top_k"):
        clf.classify(["fine"], top_k=0)
    with pytest.raises(ConfigError, match="threshold"):
        clf.classify(["fine"], threshold=2)
    with pytest.raises(ConfigError, match="temperature"):
        Classifier(tiny, temperature=0)


@pytest.mark.skipif(not ModelStore().has("minilm-l6-sst2"), reason="recipe model not built")
def test_sst2_recipe_model_speaks_words() -> None:
    clf = Classifier("minilm-l6-sst2")
    results = clf.classify(["a joy to watch, moving and funny", "dull, lifeless and far too long"])
    assert [r.label for r in results] == ["positive", "negative"]
