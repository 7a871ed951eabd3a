"""QuestionAnswerer on span models: windows over long contexts, offsets, no-answer, bad input.

Span mechanics run on tiny random BERT / DistilBERT span models and on the real minilm-l6
encoder with a fresh (untrained) span head; what the answer *means* needs a trained model,
which CI does not build, so it is checked where the recipe model exists (skipped otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quintet.apps.qa import QAError, QuestionAnswerer
from quintet.apps.qa import spans as qa_spans
from quintet.core.errors import ConfigError
from quintet.core.examples import QAExample
from quintet.core.models import load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir
from quintet.core.training import features as feats

WORDS = [
    "the",
    "river",
    "flows",
    "north",
    "past",
    "old",
    "mills",
    "while",
    "farmers",
    "in",
    "the",
    "valley",
    "grow",
    "barley",
    "and",
    "oats,",
    "and",
    "every",
    "spring",
    "the",
    "town",
    "holds",
    "a",
    "fair",
    "where",
    "bands",
    "play",
    "until",
    "late",
]


def long_context(n_words: int = 600, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    # Irregular spacing and punctuation, so offsets cannot line up by accident.
    pieces = []
    for i, w in enumerate(rng.choice(WORDS, n_words)):
        pieces.append(w + (",  " if i % 17 == 0 else ". " if i % 11 == 0 else " "))
    return "".join(pieces).strip()


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def tiny_qa(request) -> QuestionAnswerer:
    return QuestionAnswerer(str(tiny_model_dir(request.param, kind="span")), max_length=64,
                            doc_stride=16)  # fmt: skip


def test_offsets_are_valid_on_a_long_context_read_in_windows(tiny_qa) -> None:
    context = long_context()
    answers = tiny_qa.answer("Where do the bands play?", context, top_k=5, max_answer_len=8)
    assert len(answers) == 5
    assert answers[0].windows > 5  # the context really was windowed
    for a in answers:
        assert a.text and context[a.start : a.end] == a.text
        assert 0 <= a.window < a.windows
    probabilities = [a.probability for a in answers]
    assert probabilities == sorted(probabilities, reverse=True)


def test_best_span_is_the_best_over_all_windows(tiny_qa) -> None:
    """The answer equals the best of each window read on its own, and names that window."""
    context = long_context(300, seed=3)
    question = "What do farmers grow?"
    best = tiny_qa.answer(question, context, max_answer_len=10)[0]
    loaded = tiny_qa.loaded
    example = QAExample("0", question, context, ())
    features = feats.span_features(
        loaded.tokenizer, [example], max_length=64, doc_stride=16, training=False
    )
    per_window = []
    with torch.inference_mode():
        for feature in features:
            out = loaded.model(**feats.collate([feature], loaded.tokenizer.pad_token_id))
            top = feats.best_spans([example], [feature], out.start_logits, out.end_logits,
                                   max_answer_len=10)[0][0]  # fmt: skip
            per_window.append(top)
    scores = [a.score for a in per_window]
    winner = int(np.argmax(scores))
    assert best.score == pytest.approx(scores[winner], abs=1e-4)
    assert (best.start, best.end) == (per_window[winner].start, per_window[winner].end)
    assert best.window == winner


def test_no_answer_threshold_decides(tiny_qa) -> None:
    context = long_context(80)
    span = tiny_qa.answer("Who?", context, top_k=2, allow_no_answer=True,
                          no_answer_threshold=1e9)  # fmt: skip
    assert span[0].text  # a huge margin is never beaten: a span answers
    none = tiny_qa.answer("Who?", context, top_k=2, allow_no_answer=True,
                          no_answer_threshold=-1e9)  # fmt: skip
    assert none[0].is_no_answer and none[0].window == -1
    assert none[1].text  # the best span still follows it
    # At threshold 0 the decision is exactly "null score beats the best span score".
    at_zero = tiny_qa.answer("Who?", context, top_k=2, allow_no_answer=True)
    null_score = none[0].score
    assert at_zero[0].is_no_answer == (null_score > span[0].score)


def test_empty_context_answers_no_answer_and_empty_question_is_an_error(tiny_qa) -> None:
    for context in ("", "   \n"):
        [answer] = tiny_qa.answer("Who won?", context)
        assert answer.is_no_answer and answer.text == "" and answer.start == answer.end == 0
    with pytest.raises(QAError, match="question 0 is empty"):
        tiny_qa.answer("  ", "Some context.")
    with pytest.raises(ConfigError, match="top_k"):
        tiny_qa.answer("Who?", "Some context.", top_k=0)
    with pytest.raises(ConfigError, match="doc_stride 500"):
        tiny_qa.answer("Who?", long_context(), doc_stride=500)
    assert tiny_qa.answer_many([]) == []


def test_batch_answers_match_single_answers(tiny_qa) -> None:
    pairs = [("Who plays?", long_context(200, 1)), ("What flows?", "The river flows north."),
             ("Empty?", "")]  # fmt: skip
    batch = tiny_qa.answer_many(pairs, top_k=2)
    for (question, context), row in zip(pairs, batch, strict=True):
        single = tiny_qa.answer(question, context, top_k=2)
        assert [(a.text, a.start) for a in row] == [(a.text, a.start) for a in single]
        assert [a.score for a in row] == pytest.approx([a.score for a in single], abs=1e-4)


def test_real_minilm_with_a_fresh_span_head_windows_a_long_context(real_store) -> None:
    qa = QuestionAnswerer(load("minilm-l6", kind="span", device="cpu"))
    context = long_context(900, seed=5)  # about 1,000 word pieces: several 384-token windows
    answers = qa.answer("When does the fair end?", context, top_k=3)
    assert answers[0].windows >= 3
    for a in answers:
        assert context[a.start : a.end] == a.text and a.text.strip() == a.text


def test_non_span_models_are_refused(real_store) -> None:
    with pytest.raises(QAError, match="encoder model"):
        QuestionAnswerer("minilm-l6")


def test_source_window_finds_the_window_of_a_span() -> None:
    loaded = load(str(tiny_model_dir("bert", kind="span")))
    context = long_context(120)
    example = QAExample("0", "Who?", context, ())
    with torch.inference_mode():
        [[top]] = qa_spans.extract_spans(loaded, [example], max_length=64, doc_stride=16)
    assert top.windows > 1 and 0 <= top.window < top.windows
    # The span lies inside the window it names.
    features = feats.span_features(loaded.tokenizer, [example], max_length=64, doc_stride=16,
                                   training=False)  # fmt: skip
    covered = [o for o in features[top.window]["_offsets"] if o is not None]
    assert covered[0][0] <= top.start and top.end <= covered[-1][1]


@pytest.mark.skipif(not ModelStore().has("minilm-l6-squad"), reason="recipe model not built")
def test_recipe_model_finds_the_answer_deep_in_a_long_context() -> None:
    qa = QuestionAnswerer("minilm-l6-squad")
    filler = "Nothing of note happened on that day in the small town. " * 80
    context = (
        filler + "The Denver Broncos defeated the Carolina Panthers in Super Bowl 50. " + filler
    )
    best = qa.answer("Which team defeated the Carolina Panthers?", context)[0]
    assert "Denver Broncos" in best.text and context[best.start : best.end] == best.text
    assert 0 < best.window < best.windows - 1  # found in a middle window
