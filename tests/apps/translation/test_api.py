"""Translator: empty input, long documents, decoding options, NLLB forced BOS, real model."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from quintet.apps.translation import Translator
from quintet.apps.translation import segment as seg
from quintet.apps.translation.api import SEQ2SEQ_PIECE_TOKENS, _clean
from quintet.apps.translation.languages import LanguageError
from quintet.core.errors import ConfigError
from quintet.core.testing import CORPUS, tiny_model_dir


@pytest.fixture(scope="module")
def marian() -> Translator:
    return Translator(str(tiny_model_dir("marian")))


def test_empty_text_gives_empty_output_without_running_the_model(marian: Translator) -> None:
    results = marian.translate(["", "   ", "\n\n"], "en", "de")
    assert [r.text for r in results] == ["", "", ""]
    assert [r.pieces for r in results] == [0, 0, 0] and all(r.num_tokens == 0 for r in results)
    assert marian.translate([], "en", "de") == []


def test_one_result_per_text_in_order(marian: Translator) -> None:
    texts = ["The cat sits on the mat.", "", "We are going to the market."]
    results = marian.translate(texts, "en", "de", max_new_tokens=3)
    assert [r.source for r in results] == texts
    assert results[0].text and results[1].text == "" and results[2].text
    assert all(r.seconds > 0 and r.style == "seq2seq" for r in results)


def test_long_document_is_split_translated_once_per_piece_and_keeps_paragraphs(
    marian: Translator,
) -> None:
    paragraph = " ".join(CORPUS[:40])
    text = f"{paragraph}\n\n{paragraph}\n{' '.join(CORPUS[40:45])}"
    tokenizer = marian._generator(marian.model).loaded.tokenizer
    total = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert total > 2 * SEQ2SEQ_PIECE_TOKENS // 3  # over the tiny model's piece budget
    calls: list[tuple[int, int]] = []
    result = marian.translate(
        text, "en", "de", max_new_tokens=2, progress=lambda d, t: calls.append((d, t))
    )[0]
    # Every piece was generated exactly once (the progress total), and the pieces cover
    # every sentence once (segment keeps them in order).
    assert result.pieces > 3 and calls[-1] == (result.pieces, result.pieces)
    # Three paragraphs, the exact breaks kept, each paragraph's pieces joined on one line.
    lines = result.text.split("\n")
    assert len(lines) == 4 and lines[1] == "" and all(lines[i] for i in (0, 2, 3))
    # Each piece gave 2 tokens at most: the paragraph holds one output per piece.
    budget = marian._budget(marian._generator(marian.model), "seq2seq")
    pieces, _ = seg.segment(
        text, lambda p: len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= budget
    )
    assert len(pieces) == result.pieces
    assert result.truncated  # a random model does not stop after 2 tokens: said, not hidden


def test_decoding_options_pass_through(marian: Translator) -> None:
    greedy = marian.translate("The cat sits on the mat.", "en", "de", max_new_tokens=4)[0]
    beams = marian.translate("The cat sits on the mat.", "en", "de", max_new_tokens=4, num_beams=3)[
        0
    ]
    sampled = [
        marian.translate(
            "The cat sits on the mat.", "en", "de", max_new_tokens=6, do_sample=True, seed=s
        )[0].text
        for s in range(4)
    ]
    assert greedy.text and beams.text
    again = marian.translate("The cat sits on the mat.", "en", "de", max_new_tokens=4)[0]
    assert again.text == greedy.text  # greedy is deterministic
    assert marian.decode_config("en", "de", num_beams=3).num_beams == 3  # beams reach decoding
    assert len(set(sampled)) > 1  # sampling with different seeds varies
    with pytest.raises(ConfigError):
        marian.translate("The cat.", "en", "de", num_beams=0)
    with pytest.raises(ConfigError, match="unknown decoding option.*not_an_option"):
        marian.translate("The cat.", "en", "de", not_an_option=1)


def test_nllb_gets_the_target_language_forced_and_the_source_set(tiny_nllb: Path) -> None:
    translator = Translator(str(tiny_nllb))
    generator = translator._generator(str(tiny_nllb))
    tokenizer = generator.loaded.tokenizer
    config = translator.decode_config("en", "de", max_new_tokens=3)
    assert config.forced_bos_token_id == tokenizer.convert_tokens_to_ids("deu_Latn")
    assert translator.decode_config("de", "fra_Latn").forced_bos_token_id == (
        tokenizer.convert_tokens_to_ids("fra_Latn")
    )
    result = translator.translate("the cat", "fr", "de", max_new_tokens=3)[0]
    assert result.style == "multilingual" and tokenizer.src_lang == "fra_Latn"
    # The generation really starts with the language token.
    first = generator.generate(["the cat"], config)[0].token_ids[0]
    assert first == tokenizer.convert_tokens_to_ids("deu_Latn")


def test_nllb_without_the_language_is_a_clear_error(tiny_nllb: Path) -> None:
    with pytest.raises(LanguageError, match=r"does not know Spanish \(no spa_Latn token\)"):
        Translator(str(tiny_nllb)).translate("the cat", "en", "es")


def test_clean_strips_wrappers_conservatively() -> None:
    assert _clean("Translation: Das Haus ist klein.") == "Das Haus ist klein."
    assert _clean('"Das Haus ist klein."') == "Das Haus ist klein."
    assert _clean("Das Haus.\n\nNote: literal translation.") == "Das Haus."
    assert _clean("Übersetzung ist schwer.") == "Übersetzung ist schwer."  # not a label
    assert _clean('Er sagte "ja" und "nein"') == 'Er sagte "ja" und "nein"'
    assert _clean('"ja" und "nein"') == '"ja" und "nein"'
    assert _clean("“Das Haus.”") == "Das Haus."


def test_real_offline_model_translates_by_prompt(real_store) -> None:
    translator = Translator("smollm2-135m-instruct")
    results = translator.translate(["The house is small.", ""], "en", "de", max_new_tokens=12)
    assert results[0].model == "smollm2-135m-instruct" and results[0].style == "prompted"
    assert results[0].text and results[1].text == ""
    assert not results[0].text.lower().startswith("translation")
    assert results[0].num_tokens <= 12


def test_a_single_sentence_can_be_shown_while_it_is_translated(real_store) -> None:
    translator = Translator("smollm2-135m-instruct")
    texts: list[str] = []
    shown = translator.translate(
        "The house is small.", "en", "de", max_new_tokens=16, on_text=texts.append
    )[0]
    plain = translator.translate("The house is small.", "en", "de", max_new_tokens=16)[0]
    assert shown.text == plain.text and shown.num_tokens == plain.num_tokens
    assert len(texts) > 1 and all(b.startswith(a) for a, b in itertools.pairwise(texts))
    # Several pieces are batched, not streamed: progress counts them instead.
    untouched: list[str] = []
    counts: list[tuple[int, int]] = []
    translator.translate(
        ["The house is small.", "It is raining."], "en", "de", max_new_tokens=8,
        on_text=untouched.append, progress=lambda d, t: counts.append((d, t)),
    )  # fmt: skip
    assert untouched == [] and counts == [(1, 2), (2, 2)]


def test_default_length_limit_follows_the_longest_piece(marian: Translator) -> None:
    tokenizer = marian._generator(marian.model).loaded.tokenizer
    text = "The cat sits on the mat."
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    result = marian.translate(text, "en", "de")[0]  # a random model never stops by itself
    assert result.truncated and result.num_tokens <= int(n * 2.5) + 16 < SEQ2SEQ_PIECE_TOKENS
    config = marian.decode_config("en", "de")
    assert config.max_new_tokens == 2 * marian._budget(marian._generator(marian.model), "x") + 16
