"""``quintet eval compare``: paired bootstrap finds a real difference and not a non-difference;
runs on other items, or that cannot be rescored as reported, are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from quintet.apps.classification.harness import ClassificationHarness
from quintet.apps.cli import main
from quintet.apps.qa.harness import HARNESS as QA
from quintet.core.testing import tiny_model_dir
from quintet.evaluation import registry
from quintet.evaluation.compare import compare
from quintet.evaluation.harness import EvaluationError, evaluate
from quintet.evaluation.protocol import DataOptions, Prediction

SST2 = "data/classification/sst2/dev.tsv"
SQUAD = "data/qa/squad_v1.1/dev-v1.1.articles-00-23.json"


def sst2_run(tmp_path: Path, name: str, right: set[int], limit: int = 400) -> Path:
    """A run whose predictions are right exactly on the item positions in ``right``."""
    golds = [line.rsplit("\t", 1)[1] for line in Path(SST2).read_text().splitlines()[1:]]
    preds = [g if n in right else str(1 - int(g)) for n, g in enumerate(golds)]
    path = tmp_path / f"{name}.txt"
    path.write_text("".join(p + "\n" for p in preds))
    out = tmp_path / name
    evaluate("classification", data=SST2, predictions_file=str(path), out=out, limit=limit,
             progress=False, bootstrap=0)  # fmt: skip
    return out


def test_a_real_difference_is_significant(tmp_path):
    weak = sst2_run(tmp_path, "weak", set(range(0, 400, 2)))  # 50%
    strong = sst2_run(tmp_path, "strong", {n for n in range(400) if n % 5})  # 80%
    result = compare([weak, strong], tmp_path / "cmp", resamples=400)
    test = result["runs"][1]["versus_first"]["accuracy"]
    assert test["delta"] == pytest.approx(30.0)
    assert test["p_value"] < 0.01 and test["low"] > 0
    assert result["runs"][0].get("versus_first") is None  # the baseline


def test_no_difference_is_not_significant(tmp_path):
    a = sst2_run(tmp_path, "a", set(range(0, 400, 2)))  # right on even positions: 50%
    b = sst2_run(tmp_path, "b", set(range(1, 400, 2)) | {0})  # other items, one more right
    result = compare([a, b], tmp_path / "cmp", resamples=400)
    test = result["runs"][1]["versus_first"]["accuracy"]
    assert test["delta"] == pytest.approx(0.25)
    assert test["p_value"] > 0.5 and test["low"] < 0 < test["high"]
    same = compare([a, a], tmp_path / "same", resamples=100)
    assert same["runs"][1]["versus_first"]["accuracy"]["p_value"] == 1.0


def test_comparison_files_and_cli(tmp_path, capsys):
    a = sst2_run(tmp_path, "a", set(range(0, 400, 2)))
    b = sst2_run(tmp_path, "b", {n for n in range(400) if n % 5})
    out = tmp_path / "cmp"
    assert main(["eval", "compare", str(a), str(b), "--out", str(out), "--bootstrap", "200"]) == 0
    printed = capsys.readouterr().out
    assert "+30.00" in printed and f"report: {out}/comparison.html" in printed
    data = json.loads((out / "comparison.json").read_text())
    assert [r["model"] for r in data["runs"]] == ["predictions:a.txt", "predictions:b.txt"]
    assert data["metrics"] == ["accuracy", "macro_f1", "ece"]
    html = (out / "comparison.html").read_text()
    assert "<svg" in html and not re.search(r"(src|href)\s*=|<script|<link|@import|url\(", html)
    assert "p=" in (out / "comparison.md").read_text()


def test_runs_on_other_items_are_refused(tmp_path):
    a = sst2_run(tmp_path, "a", set(range(0, 400, 2)))
    shorter = sst2_run(tmp_path, "short", set(range(0, 300, 2)), limit=300)
    with pytest.raises(EvaluationError, match="not run on the same items"):
        compare([a, shorter], tmp_path / "x")
    # Same ids, other references: a different dataset that happens to number its lines alike.
    other = tmp_path / "other.tsv"
    rows = Path(SST2).read_text().splitlines()
    flipped = [rows[0]] + [r.rsplit("\t", 1)[0] + "\t" + str(1 - int(r[-1])) for r in rows[1:]]
    other.write_text("\n".join(flipped) + "\n")
    preds = tmp_path / "p.txt"
    preds.write_text("1\n" * (len(rows) - 1))
    evaluate("classification", data=str(other), predictions_file=str(preds), limit=400,
             out=tmp_path / "other", progress=False, bootstrap=0)  # fmt: skip
    with pytest.raises(EvaluationError, match="different references"):
        compare([a, tmp_path / "other"], tmp_path / "y")
    # Another task.
    qa_preds = tmp_path / "qa.jsonl"
    items = QA.read(SQUAD, DataOptions()).items[:20]
    qa_preds.write_text("".join(json.dumps({"id": i.id, "prediction": "x"}) + "\n" for i in items))
    evaluate("qa", data=SQUAD, predictions_file=str(qa_preds), limit=20, out=tmp_path / "qa",
             progress=False, bootstrap=0)  # fmt: skip
    with pytest.raises(EvaluationError, match="is a qa run"):
        compare([a, tmp_path / "qa"], tmp_path / "z")
    with pytest.raises(EvaluationError, match="not an evaluation run"):
        compare([a, tmp_path], tmp_path / "w")


def test_a_run_that_cannot_be_rescored_as_reported_is_refused(tmp_path):
    a = sst2_run(tmp_path, "a", set(range(0, 400, 2)))
    b = sst2_run(tmp_path, "b", set(range(1, 400, 2)))
    report = json.loads((b / "report.json").read_text())
    report["metrics"]["accuracy"] = 99.0  # not what its predictions score
    (b / "report.json").write_text(json.dumps(report))
    with pytest.raises(EvaluationError, match="rescoring its predictions gives accuracy 50.0"):
        compare([a, b], tmp_path / "cmp")


class NamedLabels(ClassificationHarness):
    """The real classification harness, with label names that only ``open`` knows (as a
    fine-tuned classifier's own id2label): rescoring needs the model opened again."""

    task = "named-classification"

    def open(self, run, model, decode, options):
        predictor = super().open(run, model, decode, options)
        names = {"0": "negative", "1": "positive"}
        real_predict = predictor.predict

        def predict(items):
            return [Prediction(p.id, names[p.prediction], p.extra)
                    for p in real_predict(items)]  # fmt: skip

        predictor.predict = predict
        predictor.settings["label_map"] = names
        return predictor


def test_state_only_open_sets_is_restored_by_opening_the_model_again(tmp_path):
    registry.register("named-classification", NamedLabels())
    try:
        model = str(tiny_model_dir("bert", kind="sequence-classification", labels=["0", "1"]))
        runs = [
            evaluate("named-classification", model, SST2, limit=60, out=tmp_path / name,
                     progress=False, bootstrap=0, decode=decode).out_dir
            for name, decode in (("a", {}), ("b", {"seed": 1}))
        ]  # fmt: skip
        fresh = NamedLabels()  # what compare starts from: no gold map yet
        run = fresh.read(SST2, DataOptions())
        items = run.items[:60]
        preds = [Prediction(i.id, "negative") for i in items]
        assert fresh.score(run, items, preds).metrics["accuracy"] == 0.0  # unmapped gold labels
        result = compare(runs, tmp_path / "cmp", resamples=50)
        report = json.loads((Path(runs[0]) / "report.json").read_text())
        assert result["runs"][0]["metrics"] == report["metrics"] and report["metrics"]["accuracy"]
        assert result["runs"][1]["versus_first"]["accuracy"]["p_value"] == 1.0
    finally:
        registry.unregister("named-classification")
