"""Report files: the report.json / predictions.jsonl contract, a self-contained HTML page with
its charts and sections, the worst examples, Markdown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from quintet.apps.qa.harness import HARNESS as QA
from quintet.core.testing import tiny_model_dir
from quintet.evaluation.harness import evaluate
from quintet.evaluation.protocol import DataOptions
from quintet.evaluation.report import _readable, _section_html, _section_markdown

SST2 = "data/classification/sst2/dev.tsv"
SQUAD = "data/qa/squad_v1.1/dev-v1.1.articles-00-23.json"
REPORT_KEYS = {"task", "model", "dataset", "n", "metrics", "signatures", "intervals", "decode",
               "timing", "versions", "date", "per_category", "settings", "device", "bootstrap",
               "primary_metric", "higher_is_better", "sections", "worst_examples"}  # fmt: skip
EXTERNAL = re.compile(r"https?://|(src|href)\s*=|<script|<link|@import|url\(", re.IGNORECASE)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real run: a tiny random BERT classifier on 40 SST-2 sentences."""
    model = str(tiny_model_dir("bert", kind="sequence-classification", labels=["0", "1"]))
    out = tmp_path_factory.mktemp("report") / "run"
    evaluate("classification", model, SST2, limit=40, out=out, progress=False, bootstrap=100,
             decode={"note": "kept"})  # fmt: skip
    return out


def test_report_json_keeps_the_contract(run):
    data = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert data.keys() >= REPORT_KEYS
    assert data["task"] == "classification" and data["n"] == 40 and data["dataset"] == SST2
    assert set(data["metrics"]) == {"accuracy", "macro_f1", "ece"}
    assert all(isinstance(v, float) for v in data["metrics"].values())
    for name, (low, high) in data["intervals"].items():
        assert low <= data["metrics"][name] <= high, name
    assert data["bootstrap"]["resamples"] == 100
    assert {"quintet", "torch", "transformers", "sacrebleu", "rouge-score"} <= data[
        "versions"
    ].keys()
    assert {"total_s", "predict_s", "examples_per_s"} <= data["timing"].keys()
    assert data["decode"] == {"note": "kept"} and data["settings"]["mode"] == "classifier"
    assert data["date"].startswith("20") and data["device"]


def test_predictions_jsonl_has_what_each_item_was_scored_against(run):
    records = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 40
    golds = {line.split("\t")[0]: line.rsplit("\t", 1)[1]
             for line in Path(SST2).read_text().splitlines()[1:41]}  # fmt: skip
    for record in records:
        assert {"id", "prediction", "references", "scores", "extra", "inputs"} <= record.keys()
        assert record["references"] == [golds[record["inputs"]["text"]]]
        assert record["scores"]["accuracy"] == (100.0 if record["prediction"] in
                                                record["references"] else 0.0)  # fmt: skip


def test_worst_examples_are_the_lowest_scores(run):
    data = json.loads((run / "report.json").read_text())
    records = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    worst = data["worst_examples"]
    assert 0 < len(worst) <= 10 and worst[0]["metric"] == "accuracy"
    chosen = {w["id"] for w in worst}
    highest_chosen = max(w["score"] for w in worst)
    assert all(r["scores"]["accuracy"] >= highest_chosen for r in records if r["id"] not in chosen)
    assert all(w["input"]["text"] and w["references"] for w in worst)


def test_html_is_one_self_contained_page_with_its_charts(run):
    page = (run / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    for chart in ("Distribution of per-item accuracy", "Input length vs accuracy",
                  "accuracy per category", "Confusion matrix"):  # fmt: skip
        assert f'aria-label="{chart}"' in page, chart
    assert "95% CI [" in page and "Worst examples (lowest accuracy)" in page
    assert "Per class" in page and "bootstrap resamples" in page
    markdown = (run / "report.md").read_text(encoding="utf-8")
    assert "| metric | value | 95% CI |" in markdown and "## Worst examples" in markdown
    assert "Confusion matrix (rows: gold, columns: predicted)" in markdown


def test_predictions_cannot_inject_markup(tmp_path):
    items = QA.read(SQUAD, DataOptions()).items[:30]
    answers = {i.id: "<script>alert(1)</script> | <img src=x>" for i in items}
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n"
                            for k, v in answers.items()))  # fmt: skip
    evaluate("qa", data=SQUAD, predictions_file=str(path), limit=30, out=tmp_path / "run",
             progress=False, bootstrap=0)  # fmt: skip
    page = (tmp_path / "run/report.html").read_text()
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "\\|" in (tmp_path / "run/report.md").read_text()  # a | cannot break the table
    # Scoring a given file: no model ran, so the report shows no prediction speed.
    assert "examples / s" not in page and "total time (s)" in page


def test_every_section_kind_renders():
    table = {"kind": "table", "title": "T", "columns": ["a", "b"], "rows": [["x", 1.5]]}
    matrix = {"kind": "confusion_matrix", "title": "CM", "labels": ["p", "q"],
              "matrix": [[3, 1], [0, 2]]}  # fmt: skip
    bar = {"kind": "bar", "title": "B", "values": {"one": 1.0, "two": 2.0}}
    text = {"kind": "text", "title": "Notes", "body": "judge <b>x</b>"}
    assert '<td class="num">1.50</td>' in _section_html(table)
    assert 'aria-label="CM"' in _section_html(matrix) and ">3</text>" in _section_html(matrix)
    assert 'aria-label="B"' in _section_html(bar) and ">two</text>" in _section_html(bar)
    assert "judge &lt;b&gt;x&lt;/b&gt;" in _section_html(text)
    assert "| **p** | 3 | 1 |" in _section_markdown(matrix)
    assert "| two | 2.00 |" in _section_markdown(bar) and "judge <b>x</b>" in _section_markdown(
        text
    )


def test_inputs_and_references_read_as_text():
    assert _readable({"text": "hello"}) == "hello"
    assert _readable({"question": "Who?", "context": "Ann."}) == "question: Who?\ncontext: Ann."
    assert _readable({"messages": [{"role": "user", "content": "hi"}]}) == "user: hi"
    assert _readable(["a", "b"]) == "a\nb" and _readable(3) == "3"


def test_rerender_rebuilds_the_same_pages_from_the_run_files(run, tmp_path):
    import shutil

    from quintet.evaluation.report import rerender

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "report.html").unlink()
    (copy / "report.md").write_text("stale")
    rerender(copy)
    assert (copy / "report.html").read_text() == (run / "report.html").read_text()
    assert (copy / "report.md").read_text() == (run / "report.md").read_text()
