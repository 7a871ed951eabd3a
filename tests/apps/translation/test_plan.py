"""The translation plan: decided once per call, each piece tokenized once for it."""

from __future__ import annotations

import pytest

from quintet.apps.translation import Translator
from quintet.apps.translation import segment as seg
from quintet.apps.translation.plan import TokenIds, cap, plan_pieces
from quintet.core.testing import CORPUS, tiny_model_dir


@pytest.fixture(scope="module")
def marian() -> Translator:
    return Translator(str(tiny_model_dir("marian")))


def _ids(tokenizer, text: str) -> tuple[int, ...]:
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_the_plan_holds_the_pieces_their_ids_and_caps(marian: Translator) -> None:
    paragraph = " ".join(CORPUS[:40])
    texts = [f"{paragraph}\n\n{CORPUS[41]}", "", CORPUS[42]]
    plan = marian.plan(texts, "en", "de")
    tokenizer = plan.generator.loaded.tokenizer
    expected: list[str] = []
    for text in texts:
        if text.strip():
            expected += seg.segment(text, lambda p: len(_ids(tokenizer, p)) <= plan.budget)[0]
    assert [p.text for p in plan.pieces] == expected and len(expected) > 3
    assert all(p.token_ids == _ids(tokenizer, p.text) for p in plan.pieces)
    assert plan.caps == [int(len(p.token_ids) * 2.5) + 16 for p in plan.pieces]
    assert [t.count for t in plan.texts] == [len(expected) - 1, 0, 1]
    assert plan.texts[2].indices() == [len(expected) - 1]
    assert plan.config == marian.decode_config("en", "de")
    # The caller's max_new_tokens holds for every piece: no caps of their own.
    fixed = marian.plan(texts, "en", "de", max_new_tokens=5)
    assert fixed.caps is None and fixed.config.max_new_tokens == 5


def test_a_piece_is_tokenized_once_for_the_plan(
    marian: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer = marian._generator(marian.model).loaded.tokenizer
    calls: list[tuple[str, bool]] = []
    tokenize = type(tokenizer).__call__

    def counted(self, text, *args, **kwargs):
        calls.append((text, kwargs.get("add_special_tokens", True)))
        return tokenize(self, text, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", counted)
    result = marian.translate(["The cat sits on the mat.", "It is raining."], "en", "de")
    assert [r.pieces for r in result] == [1, 1]
    # Once to measure and cap each piece, once more by the generator for its prompt (with
    # the model's special tokens); the per-piece cap used to tokenize it a third time.
    assert sorted(calls) == sorted(
        [("The cat sits on the mat.", False), ("It is raining.", False)]
        + [("The cat sits on the mat.", True), ("It is raining.", True)]
    )


def test_keeping_the_ids_costs_no_tokenizer_call_beyond_segmenting(marian: Translator) -> None:
    tokenizer = marian._generator(marian.model).loaded.tokenizer
    text = " ".join(CORPUS[:60]) + "\n" + " ".join(CORPUS[60:70])
    measured: list[str] = []

    def fits(piece: str) -> bool:
        measured.append(piece)
        return len(_ids(tokenizer, piece)) <= 40

    pieces, _ = seg.segment(text, fits)
    tokens = TokenIds(tokenizer)
    planned, texts = plan_pieces([text], tokens, 40, capped=True)
    assert [p.text for p in planned] == pieces and len(pieces) > 3
    # Segmenting asks about a candidate again only right after it failed to join; the plan
    # remembers those answers, and never tokenizes a kept piece a second time.
    assert tokens.calls <= len(measured) and tokens.calls == len(set(measured))
    assert all(p.cap == cap(len(p.token_ids)) for p in planned)
    assert texts[0].count == len(pieces)
