"""Language codes and the sentence/paragraph segmentation used for long documents."""

from __future__ import annotations

import pytest

from quintet.apps.translation import segment as seg
from quintet.apps.translation.languages import LanguageError, all_languages, language


def test_iso_flores_and_names_resolve_to_one_language() -> None:
    assert language("de") == language("deu_Latn") == language("German") == language("DEU_LATN")
    assert language("de").flores == "deu_Latn" and language("fra_Latn").iso == "fr"
    assert len({lang.flores for lang in all_languages()}) == len(all_languages())


def test_every_nllb_flores_code_is_accepted_as_flores_spells_it() -> None:
    yoruba = language("yor_latn")
    assert (yoruba.flores, yoruba.iso) == ("yor_Latn", "yor")
    assert language("ace_Arab").flores == "ace_Arab" and language("ace_Latn").flores == "ace_Latn"
    with pytest.raises(LanguageError, match="unknown language code 'yor_Xxxx'"):
        language("yor_Xxxx")  # not a script NLLB has for it


@pytest.mark.parametrize(
    ("code", "suggestion"), [("deu_Latm", "deu_latn"), ("germn", "german"), ("fra_latin", "fra")]
)
def test_unknown_code_lists_close_matches(code: str, suggestion: str) -> None:
    with pytest.raises(LanguageError) as info:
        language(code)
    message = str(info.value)
    assert code in message and "Did you mean" in message and suggestion in message
    assert "\n" not in message


@pytest.mark.parametrize("code", ["", "  ", "qq"])
def test_empty_or_hopeless_code_is_a_clear_error(code: str) -> None:
    with pytest.raises(LanguageError, match="language code"):
        language(code)


def test_sentences_split_at_sentence_ends_only() -> None:
    text = 'He said "Go." Then he left! Did he? Prices rose 5.5 percent, e.g. in May. 3 cats.'
    assert seg.split_sentences(text) == [
        'He said "Go."',
        "Then he left!",
        "Did he?",
        "Prices rose 5.5 percent, e.g. in May.",
        "3 cats.",
    ]


def _fits_words(limit: int):
    return lambda piece: len(piece.split()) <= limit


def test_segment_keeps_every_sentence_once_and_the_paragraph_breaks() -> None:
    paragraphs = [" ".join(f"Sentence {p}.{i} has five words." for i in range(7)) for p in range(3)]
    text = paragraphs[0] + "\n\n" + paragraphs[1] + "\n" + paragraphs[2] + "\n"
    pieces, layout = seg.segment(text, _fits_words(12))
    assert all(len(p.split()) <= 12 for p in pieces)
    assert len(pieces) > 3  # each paragraph was split
    sentences = [s for piece in pieces for s in seg.split_sentences(piece)]
    expected = [s for p in paragraphs for s in seg.split_sentences(p)]
    assert sentences == expected  # every sentence once, in order
    # "Translating" by identity gives back the text with its exact breaks.
    assert seg.reassemble(pieces, layout) == text
    upper = seg.reassemble([p.upper() for p in pieces], layout)
    assert upper.split("\n") == [line.upper() for line in text.split("\n")]


def test_a_sentence_over_the_budget_is_split_at_words_not_dropped() -> None:
    sentence = " ".join(f"w{i}" for i in range(30)) + "."
    pieces, layout = seg.segment(sentence, _fits_words(8))
    assert all(len(p.split()) <= 8 for p in pieces)
    assert " ".join(pieces) == sentence and seg.reassemble(pieces, layout) == sentence


def test_empty_paragraphs_stay_empty() -> None:
    text = "One.\n\n\n\nTwo."
    pieces, layout = seg.segment(text, _fits_words(50))
    assert pieces == ["One.", "Two."]
    assert seg.reassemble(["Eins.", "Zwei."], layout) == "Eins.\n\n\n\nZwei."
