"""Generative QA: answers are grounded to a span of the context or reported as not found."""

from __future__ import annotations

import math

import pytest

from quintet.apps.qa import QuestionAnswerer
from quintet.apps.qa.grounding import ground

CONTEXT = "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California, in February."


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Santa Clara", "Santa Clara"),  # verbatim
        ("santa clara", "Santa Clara"),  # case
        ("The answer is Santa Clara.", "Santa Clara"),  # wrapper and final period
        ("Levis Stadium", "Levi's Stadium"),  # apostrophes do not count
        ("levi's   stadium", "Levi's Stadium"),  # spacing
        ("It was played in Santa Clara.", "Santa Clara"),  # sentence: longest shared run
        ("Santa Clara, California", "Santa Clara, California"),
        ("Los Angeles", None),
        (
            "Levi Arena",
            None,
        ),  # "Levi's" is one word: "Levi" alone does not match
        ("the", None),  # only stop words: nothing to ground
    ],
)
def test_ground(answer: str, expected: str | None) -> None:
    span = ground(answer, CONTEXT, "Where was Super Bowl 50 played?")
    if expected is None:
        assert span is None
    else:
        assert span is not None and CONTEXT[span[0] : span[1]] == expected


def test_a_sentence_answer_grounds_to_its_new_words() -> None:
    context = "The Denver Broncos defeated the Carolina Panthers at Super Bowl 50."
    said = "The NFL team representing the AFC at Super Bowl 50 was the Denver Broncos."
    span = ground(said, context, "Which NFL team represented the AFC at Super Bowl 50?")
    assert span is not None and context[span[0] : span[1]] == "Denver Broncos"


def test_whole_words_only() -> None:
    assert ground("art", "We went to a party.") is None
    assert ground("ART", "Art and party.") == (0, 3)


def test_real_smollm_answers_are_grounded_spans(real_store) -> None:
    qa = QuestionAnswerer("smollm2-135m-instruct", device="cpu")
    assert qa.mode == "generative-grounded"
    context = "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair."
    [[city], [empty]] = qa.answer_many(
        [("In which city is the Eiffel Tower?", context), ("Who built it?", "")]
    )
    assert city.grounded and city.generated
    assert "Paris" in city.text and context[city.start : city.end] == city.text
    assert 0 < city.probability < 1  # the model's own token confidence, not a constant
    assert city.probability == pytest.approx(math.exp(city.score))
    assert empty.is_no_answer
