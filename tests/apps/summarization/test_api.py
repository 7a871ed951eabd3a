"""Summarizer: seq2seq (tiny BART / T5), prompted real SmolLM2, map-reduce, bad inputs."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from quintet.apps.summarization import STYLES, SummarizationError, Summarizer
from quintet.apps.summarization.api import _t5_prefix
from quintet.core.errors import ConfigError
from quintet.core.models import load
from quintet.core.testing import CORPUS, tiny_model_dir

DATA = Path(__file__).resolve().parents[3] / "data" / "summarization"


@pytest.fixture(scope="module")
def bart() -> Summarizer:
    return Summarizer(str(tiny_model_dir("bart", kind="seq2seq")), chunk_tokens=120)


@pytest.fixture(scope="module")
def dialogue() -> str:
    with (DATA / "samsum" / "val.csv").open(encoding="utf-8", newline="") as f:
        return next(csv.DictReader(f))["dialogue"]


def test_seq2seq_short_input_is_one_chunk_and_empty_is_empty(bart: Summarizer) -> None:
    results = bart.summarize(["The cat sits on the mat. " * 3, ""], max_length=5)
    assert results[0].text and results[0].mode == "seq2seq" and results[0].chunks.count == 1
    assert results[0].num_tokens <= 5
    assert results[1].text == "" and results[1].chunks.count == 0
    assert bart.summarize([]) == []


def test_long_input_is_map_reduced_with_the_chunks_visible(bart: Summarizer) -> None:
    text = " ".join(CORPUS * 3)
    count = len(bart.loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert count > 3 * bart.chunk_tokens
    result = bart.summarize(text, max_length=6)[0]
    info = result.chunks
    assert info.count == len(info.spans) >= 3 and info.rounds >= 1
    assert info.spans[0][0] == 0 and info.spans[-1][1] >= len(text.rstrip()) - 1
    for (a, b), (c, d) in zip(info.spans, info.spans[1:], strict=False):
        assert a < c <= b < d  # in order, overlapping
    assert result.text and result.num_tokens > 6  # the map and reduce outputs are counted


def test_long_input_reports_its_chunk_progress(bart: Summarizer) -> None:
    seen: list[tuple[str, int, int]] = []
    result = bart.summarize(" ".join(CORPUS * 3), max_length=4,
                            progress=lambda *call: seen.append(call))[0]  # fmt: skip
    chunks = result.chunks.count
    mapped = [call for call in seen if call[0] == "chunks"]
    assert mapped[0] == ("chunks", 0, chunks) and mapped[-1] == ("chunks", chunks, chunks)
    assert [done for _, done, _ in mapped] == sorted(done for _, done, _ in mapped)
    assert seen[len(mapped)][:2] == ("reduce round 1", 0)  # then each reduce round
    assert seen[-1][1] == seen[-1][2]
    short: list[tuple] = []
    bart.summarize("The cat sits on the mat.", max_length=4, progress=lambda *c: short.append(c))
    assert short == []  # one short text: nothing to report
    several: list[tuple] = []
    bart.summarize(["The cat sits.", "The dog runs."], max_length=4,
                   progress=lambda *c: several.append(c))  # fmt: skip
    assert several[-1] == ("chunks", 2, 2)  # a batch of short texts moves text by text


def test_max_length_bounds_the_summary_in_tokens(bart: Summarizer) -> None:
    # BART's forced first token counts against max_new_tokens but is not returned.
    for limit in (4, 9):
        assert limit - 1 <= bart.summarize("The cat.", max_length=limit)[0].num_tokens <= limit


def test_min_length_keeps_a_real_model_going(real_store) -> None:
    summarizer = Summarizer("smollm2-135m-instruct")
    text = "Anna: are you coming tonight?\nTom: yes, at 8"
    free, forced = (
        summarizer.summarize(text, max_length=24)[0],
        summarizer.summarize(text, min_length=20, max_length=24)[0],
    )
    assert free.num_tokens < 20 <= forced.num_tokens


def test_t5_gets_its_prefix_from_the_config() -> None:
    loaded = load(str(tiny_model_dir("t5", kind="seq2seq")))
    assert _t5_prefix(loaded) == "summarize: "
    loaded.config.task_specific_params = {"summarization": {"prefix": "sum: "}}
    try:
        assert _t5_prefix(loaded) == "sum: "
    finally:
        loaded.config.task_specific_params = None
    assert _t5_prefix(load(str(tiny_model_dir("bart", kind="seq2seq")))) == ""


def test_bad_inputs_are_clear_errors(bart: Summarizer) -> None:
    with pytest.raises(ConfigError, match="unknown style 'haiku'"):
        bart.summarize("Text.", style="haiku")
    with pytest.raises(ConfigError, match="unknown decoding option.*beams"):
        bart.summarize("Text.", beams=2)
    with pytest.raises(SummarizationError, match="needs a seq2seq summarizer"):
        Summarizer(str(tiny_model_dir("bert", kind="encoder")))


def test_real_model_summarizes_a_dialogue_as_dialogue(real_store, dialogue: str) -> None:
    summarizer = Summarizer("smollm2-135m-instruct")
    short = "\n".join(dialogue.splitlines()[:6])  # a whole SAMSum dialogue is slow on CPU
    result = summarizer.summarize(short, max_length=16)[0]
    assert result.mode == "prompted" and result.dialogue and result.chunks.count == 1
    assert result.text and result.num_tokens <= 16
    assert result.model == "smollm2-135m-instruct"


def test_a_short_text_can_be_shown_while_it_is_summarized(real_store, dialogue: str) -> None:
    summarizer = Summarizer("smollm2-135m-instruct")
    short = "\n".join(dialogue.splitlines()[:6])
    texts: list[str] = []
    shown = summarizer.summarize(short, max_length=24, on_text=texts.append)[0]
    plain = summarizer.summarize(short, max_length=24)[0]
    assert shown.text == plain.text and texts[-1] == shown.text and len(texts) > 1
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))


def test_real_model_map_reduces_a_long_dialogue_without_cutting_turns(
    real_store, dialogue: str
) -> None:
    summarizer = Summarizer("smollm2-135m-instruct", chunk_tokens=60, overlap_tokens=15)
    long = "\n".join(dialogue.splitlines()[:8] * 2)
    result = summarizer.summarize(long, max_length=8, style="one_sentence")[0]
    assert result.dialogue and result.chunks.count >= 3 and result.chunks.rounds >= 1
    turns = set(long.splitlines())
    for start, end in result.chunks.spans:
        assert all(line in turns for line in long[start:end].splitlines())
    assert result.text


def test_styles_are_documented() -> None:
    assert STYLES[0] == "default" and {"bullets", "one_sentence"} <= set(STYLES)
