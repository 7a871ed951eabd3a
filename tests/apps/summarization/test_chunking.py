"""Dialogue detection and chunking of long inputs (no model needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from quintet.apps.summarization.chunking import chunk_text
from quintet.core.task_prompts import looks_like_dialogue, summarize_prompt

DATA = Path(__file__).resolve().parents[3] / "data" / "summarization"


def _words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def samsum() -> list[dict]:
    with (DATA / "samsum" / "val.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))[:50]


@pytest.fixture(scope="module")
def xsum() -> list[dict]:
    with (DATA / "xsum" / "test_100.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f][:50]


def test_samsum_dialogues_are_dialogue_and_xsum_articles_are_not(samsum, xsum) -> None:
    assert sum(looks_like_dialogue(row["dialogue"]) for row in samsum) >= 48
    assert not any(looks_like_dialogue(row["document"]) for row in xsum)
    assert not looks_like_dialogue("Note: a single line with a colon.")
    assert summarize_prompt(samsum[0]["dialogue"]).startswith("Summarize this dialogue in")
    assert summarize_prompt(xsum[0]["document"]).startswith("Summarize this text in")


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("One. Two.", _words, 50, 5) == [("One. Two.", (0, 9))]


def test_long_text_chunks_fit_overlap_and_cover_everything() -> None:
    sentences = [f"Sentence number {i} is here." for i in range(40)]
    text = " ".join(sentences)
    chunks = chunk_text(text, _words, 30, 10)
    assert len(chunks) > 1
    assert all(_words(c) <= 30 for c, _ in chunks)
    assert all(text[a:b] == c for c, (a, b) in chunks)  # spans point into the input
    assert chunks[0][1][0] == 0 and chunks[-1][1][1] == len(text)
    for (_, (_, end)), (_, (start, _)) in zip(chunks, chunks[1:], strict=False):
        assert start < end  # neighbours overlap ...
        assert _words(text[start:end]) <= 10  # ... by at most the overlap budget
    covered = {s for c, _ in chunks for s in sentences if s in c}
    assert covered == set(sentences)


def test_dialogue_chunks_never_split_a_speaker_turn(samsum) -> None:
    dialogue = "\n".join(row["dialogue"] for row in samsum[:6])
    turns = [line for line in dialogue.splitlines() if line.strip()]
    chunks = chunk_text(dialogue, _words, 60, 15, dialogue=True)
    assert len(chunks) > 2
    for chunk, _ in chunks:
        lines = [line for line in chunk.splitlines() if line.strip()]
        assert all(line in turns for line in lines)  # whole turns only
    assert {line for c, _ in chunks for line in c.splitlines() if line.strip()} == set(turns)


def test_a_unit_over_the_budget_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(100)) + ". Short one."
    chunks = chunk_text(text, _words, 20, 0)
    assert all(_words(c) <= 20 for c, _ in chunks)
    assert " ".join(c for c, _ in chunks) == text
