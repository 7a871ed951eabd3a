"""Two different evaluations at once (a server, a UI with two tabs, a Ray pool) keep apart.

Harnesses are module-level objects shared by every evaluation in the process; what a run
learns while reading its data lives in the :class:`EvalSet` that ``read`` returns. Here
zero-shot classification of TREC (whose coarse codes are renamed for the model when it is
opened) and of AG News (other labels, no renaming) run in two threads on the real packaged
minilm-l6, each waiting for the other after both have read their data and opened the
model, and must give exactly the reports they give one after the other.
"""

from __future__ import annotations

import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from quintet.core.store import ModelStore
from quintet.evaluation.harness import Report, evaluate
from quintet.evaluation.protocol import DataOptions
from quintet.evaluation.registry import get_harness

JOBS = {
    "trec": "data/classification/trec/heldout_500.label",
    "ag_news": "data/classification/ag_news/test_1000.csv",
}


def run(name: str, out: Path, progress=False) -> Report:
    return evaluate("classification", "minilm-l6", JOBS[name], limit=24, batch_size=8,
                    bootstrap=50, out=out / name, progress=progress)  # fmt: skip


def comparable(report: Report) -> dict:
    """What must not depend on what else ran at the same time."""
    return {
        "metrics": report.metrics,
        "intervals": report.intervals,
        "per_category": report.per_category,
        "sections": report.sections,
        "primary_metric": report.primary_metric,
        "labels": report.settings["labels"],
        "label_map": report.settings["label_map"],
        "predictions": [
            json.loads(line)["prediction"]
            for line in (Path(report.out_dir) / "predictions.jsonl").read_text().splitlines()
        ],
    }


@pytest.mark.skipif(
    not ModelStore().has("minilm-l6"), reason="needs the packaged minilm-l6 (make models)"
)
def test_two_evaluations_in_threads_give_the_reports_they_give_one_after_the_other(tmp_path):
    alone = {name: comparable(run(name, tmp_path / "alone")) for name in JOBS}
    # Not the same question: TREC is scored against descriptive names, AG News its own.
    assert alone["trec"]["label_map"]["DESC"] == "description"
    assert "DESC" not in alone["ag_news"]["label_map"]
    assert alone["trec"]["labels"] != alone["ag_news"]["labels"]

    both_opened = threading.Barrier(2, timeout=120)

    def first_report_waits(done: int, total: int) -> None:
        # The runner's first progress call comes after reading and opening: from here on,
        # each run's state would have been overwritten by the other's, were it shared.
        if done == 0:
            both_opened.wait()

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run, name, tmp_path / "together", first_report_waits) for name in JOBS
        }
        together = {name: comparable(future.result()) for name, future in futures.items()}
    assert together == alone


@pytest.mark.parametrize(
    ("task", "data", "options"),
    [
        ("classification", JOBS["trec"], DataOptions()),
        ("chat", "data/chat/mt_bench/question.jsonl", DataOptions()),
        ("translation", "data/translation/wmt17_sample/en-de", DataOptions()),
    ],
)
def test_a_runs_state_survives_pickling(task, data, options):
    """Ray actors receive the run by value: it must pickle and come back equal."""
    run = get_harness(task).read(data, options)
    again = pickle.loads(pickle.dumps(run))
    assert again == run and type(again) is type(run) and again.items == run.items
