"""Classification harness: shipped readers, label maps, metrics and report sections."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from quintet.apps.classification.harness import HARNESS, ClassificationHarness
from quintet.core import metrics
from quintet.core.testing import tiny_model_dir
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions, Prediction

TREC = "data/classification/trec/heldout_500.label"
AG = "data/classification/ag_news/test_1000.csv"
SST2 = "data/classification/sst2/dev.tsv"


def test_reads_the_shipped_sets() -> None:
    trec = HARNESS.read(TREC, DataOptions()).items
    assert len(trec) == 500 and {i.category for i in trec} == {
        "ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}  # fmt: skip
    fine = HARNESS.read(TREC, DataOptions(extra={"granularity": "fine"})).items
    assert fine[0].references[0].startswith(trec[0].references[0] + ":")
    ag = HARNESS.read(AG, DataOptions()).items
    assert len(ag) == 1000 and {i.category for i in ag} == {"World", "Sports", "Business",
                                                           "Sci/Tech"}  # fmt: skip
    assert ag[0].inputs["text"].startswith("Fears for T N pension after talks")
    sst = HARNESS.read(SST2, DataOptions()).items
    assert len(sst) == 872 and {i.category for i in sst} == {"0", "1"}


def test_original_headerless_ag_news_ids_become_names(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(
            [["3", "Stocks up", "Markets rose."], ["2", "Cup final", "A late goal."]]
        )
    harness = ClassificationHarness()
    run = harness.read(str(path), DataOptions())
    items = run.items
    preds = [Prediction(items[0].id, "Business"), Prediction(items[1].id, "World")]
    assert harness.score(run, items, preds).metrics["accuracy"] == 50.0


def test_scores_and_sections() -> None:
    harness = ClassificationHarness()
    run = harness.read(SST2, DataOptions(extra={"label_map": "0=negative,1=positive"}))
    items = run.items[:40]
    preds = [Prediction(i.id, "positive" if n % 3 else "negative", {"confidence": 0.8})
             for n, i in enumerate(items)]  # fmt: skip
    scores = harness.score(run, items, preds)
    golds = [{"0": "negative", "1": "positive"}[i.references[0]] for i in items]
    labels = [p.prediction for p in preds]
    assert scores.metrics["accuracy"] == pytest.approx(metrics.accuracy(labels, golds))
    assert scores.metrics["macro_f1"] == pytest.approx(metrics.macro_f1(labels, golds))
    correct = [p == g for p, g in zip(labels, golds, strict=True)]
    assert scores.metrics["ece"] == pytest.approx(
        metrics.expected_calibration_error([0.8] * 40, correct)
    )
    table = scores.sections["per_class"]
    assert table["kind"] == "table" and [r[0] for r in table["rows"]] == ["negative", "positive"]
    matrix = scores.sections["confusion_matrix"]
    assert sum(map(sum, matrix["matrix"])) == 40
    assert matrix["matrix"][0][0] == sum(
        1 for p, g in zip(labels, golds, strict=True) if p == g == "negative"
    )


def test_zero_shot_on_trec_uses_descriptive_names(tmp_path: Path, real_store) -> None:
    report = evaluate("classification", "minilm-l6", TREC, limit=30, out=tmp_path / "run",
                      progress=False, bootstrap=20)  # fmt: skip
    assert report.settings["mode"] == "zero-shot-embedding"
    assert "description" in report.settings["labels"]
    assert report.metrics["accuracy"] > 100 / 6  # better than chance on six classes
    assert "confusion_matrix" in report.sections


def test_fine_tuned_tiny_classifier_end_to_end(tmp_path: Path) -> None:
    model = str(tiny_model_dir("bert", kind="sequence-classification", labels=["0", "1"]))
    report = evaluate("classification", model, SST2, limit=20, out=tmp_path / "run",
                      progress=False, bootstrap=20)  # fmt: skip
    assert report.n == 20 and report.settings["mode"] == "classifier"
    assert set(report.sections["confusion_matrix"]["labels"]) <= {"0", "1"}
