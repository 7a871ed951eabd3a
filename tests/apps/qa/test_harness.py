"""QA harness: reads the shipped SQuAD file and JSONL, scores like the official script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quintet.apps.qa.harness import HARNESS
from quintet.core import metrics
from quintet.core.data import DataError
from quintet.core.testing import tiny_model_dir
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions, Prediction

SQUAD = "data/qa/squad_v1.1/dev-v1.1.articles-00-23.json"


def test_reads_the_shipped_squad_file_and_the_recipe_heldout_split() -> None:
    items = HARNESS.read(SQUAD, DataOptions()).items
    assert len(items) == 5696 and items[0].category == "Super_Bowl_50"
    assert "Denver Broncos" in items[0].references
    held = HARNESS.read(SQUAD, DataOptions(extra={"split": "heldout"})).items
    # The recipe's validation split: whole articles, 1,168 questions (its manifest says so).
    assert len(held) == 1168
    assert {i.category for i in held} == {"Apollo_program", "Geology", "Super_Bowl_50"}
    with pytest.raises(DataError, match="unknown split"):
        HARNESS.read(SQUAD, DataOptions(extra={"split": "train"}))


def test_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    row = {"id": "q1", "question": "Who?", "context": "Ann met Bob.",
           "answers": {"text": ["Ann"], "answer_start": [0]}}  # fmt: skip
    path.write_text(json.dumps(row) + "\n")
    [item] = HARNESS.read(str(path), DataOptions()).items
    assert item.id == "q1" and item.references == ["Ann"] and item.inputs["context"]


def test_scores_equal_squad_scores_on_real_items() -> None:
    run = HARNESS.read(SQUAD, DataOptions())
    items = run.items[:300]
    # Deterministic, varied predictions: exact, partial, wrong.
    texts = [
        i.references[0] if n % 3 == 0 else i.references[0].split()[0] if n % 3 == 1 else "x"
        for n, i in enumerate(items)
    ]
    predictions = [Prediction(i.id, t) for i, t in zip(items, texts, strict=True)]
    scores = HARNESS.score(run, items, predictions)
    official = metrics.squad_scores(
        {i.id: t for i, t in zip(items, texts, strict=True)}, {i.id: i.references for i in items}
    )
    assert scores.metrics["exact_match"] == pytest.approx(official["exact_match"])
    assert scores.metrics["f1"] == pytest.approx(official["f1"])
    assert len(scores.per_item) == 300


def test_end_to_end_on_a_tiny_span_model(tmp_path: Path) -> None:
    report = evaluate("qa", str(tiny_model_dir("bert", kind="span")), SQUAD, limit=12,
                      out=tmp_path / "run", progress=False, bootstrap=20)  # fmt: skip
    assert report.n == 12 and 0 <= report.metrics["f1"] <= 100
    lines = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 12 and "prediction" in first
