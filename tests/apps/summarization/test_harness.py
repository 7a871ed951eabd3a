"""Summarization harness: shipped SAMSum/XSum read as they are, the recipe's held-out split,
CNN/DM PTB detokenization, several references, ROUGE equal to rouge-score, a tiny run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from quintet.apps.summarization.harness import HARNESS, detokenize_ptb
from quintet.core.data import DataError
from quintet.core.testing import tiny_model_dir
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions, Prediction

SAMSUM = "data/summarization/samsum/val.csv"
XSUM = "data/summarization/xsum/test_100.jsonl"


def test_samsum_csv_and_the_recipe_heldout_split() -> None:
    items = HARNESS.read(SAMSUM, DataOptions()).items
    with open(SAMSUM, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(items) == len(rows) == 818
    assert items[0].inputs["text"] == rows[0]["dialogue"]
    assert items[0].references == [rows[0]["summary"]] and items[0].id == rows[0]["id"]
    held = HARNESS.read(SAMSUM, DataOptions(extra={"split": "heldout"})).items
    # The recipe keeps 15% (seed 0) for validation: never trained on, so fair to report.
    assert len(held) == 123 and {i.id for i in held} < {i.id for i in items}
    again = HARNESS.read(SAMSUM, DataOptions(extra={"split": "heldout"})).items
    assert [i.id for i in again] == [i.id for i in held]
    # An unknown split is refused, not silently read as the whole file.
    with pytest.raises(DataError, match="unknown split='test'"):
        HARNESS.read(SAMSUM, DataOptions(extra={"split": "test"}))


def test_xsum_jsonl_and_chosen_fields(tmp_path: Path) -> None:
    items = HARNESS.read(XSUM, DataOptions()).items
    assert len(items) == 100 and items[0].id == "34268361"
    assert len(items[0].inputs["text"]) > 500 and len(items[0].references) == 1
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"body": "Long text.", "tldr": "Short."}) + "\n")
    [item] = HARNESS.read(str(path), DataOptions(text_field="body", target_field="tldr")).items
    assert item.inputs["text"] == "Long text." and item.references == ["Short."]
    with pytest.raises(DataError):
        HARNESS.read(str(path), DataOptions())  # no document/summary fields


def test_cnn_dm_is_detokenized_and_takes_several_references(tmp_path: Path) -> None:
    row = {
        "id": "dm-test-1",
        "article": "Paul Merson 's team -lrb- Spurs -rrb- drew 0-0 . "
        "`` We did n't win , '' he said .",
        "highlights": "Merson 's team drew .",
        "additional_references": ["A draw for Merson 's team ."],
    }
    path = tmp_path / "cnn_dm_sample.jsonl"
    path.write_text(json.dumps(row) + "\n")
    options = DataOptions(target_field="highlights,additional_references")
    [item] = HARNESS.read(str(path), options).items
    assert item.inputs["text"] == "Paul Merson's team (Spurs) drew 0-0. \"We didn't win,\" he said."
    assert item.references == ["Merson's team drew.", "A draw for Merson's team."]
    raw = HARNESS.read(
        str(path), DataOptions(target_field="highlights", extra={"detokenize": ""})
    ).items
    assert raw[0].references == ["Merson 's team drew ."]
    assert detokenize_ptb("a -lsb- b -rsb- c $ 5") == "a [b] c $5"


def test_rouge_equals_rouge_score_with_best_reference_and_per_item_rouge_l() -> None:
    run = HARNESS.read(SAMSUM, DataOptions())
    items = run.items[:20]
    preds = [" ".join(i.references[0].split()[: max(1, len(i.references[0].split()) // 2)])
             for i in items]  # fmt: skip
    scores = HARNESS.score(
        run, items, [Prediction(i.id, p) for i, p in zip(items, preds, strict=True)]
    )
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = [scorer.score(i.references[0], p) for i, p in zip(items, preds, strict=True)]
    for name in ("rouge1", "rouge2", "rougeL"):
        mean = 100 * sum(e[name].fmeasure for e in expected) / len(expected)
        assert scores.metrics[name] == pytest.approx(mean)
    assert scores.per_item[4]["rougeL"] == pytest.approx(100 * expected[4]["rougeL"].fmeasure)
    assert "rouge" in scores.signatures


def test_tiny_bart_end_to_end_on_xsum(tmp_path: Path) -> None:
    report = evaluate(
        "summarization",
        str(tiny_model_dir("bart", kind="seq2seq")),
        XSUM,
        limit=3,
        out=tmp_path / "run",
        decode={"max_new_tokens": 4},
        bootstrap=20,
        progress=False,
    )
    assert report.n == 3 and set(report.metrics) >= {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert report.settings["mode"] == "seq2seq"
    rows = [
        json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 3 and all(r["prediction"] for r in rows)
