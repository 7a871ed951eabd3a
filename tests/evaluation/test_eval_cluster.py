"""``evaluate(..., cluster=...)`` on a local Ray cluster: the same report as one process,
resumed after an interruption without predicting done items again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quintet.core.cluster import ClusterOptions
from quintet.evaluation.harness import evaluate

# Zero-shot minilm-l6 on TREC: open() maps the coarse codes to words (ABBR -> abbreviation)
# on the harness, state the actors must hand back for the driver to score with.
TREC = "data/classification/trec/heldout_500.label"
RUN = {"limit": 80, "batch_size": 16, "bootstrap": 0}


class Stop(Exception):
    pass


def _predictions(folder: Path) -> list[tuple]:
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["id"], r["prediction"], r["extra"]) for r in map(json.loads, lines)]


def test_eval_on_ray_is_the_local_report_and_resumes(ray_cluster, real_store, tmp_path) -> None:
    local = evaluate("classification", "minilm-l6", TREC, out=tmp_path / "local", progress=False,
                     **RUN)  # fmt: skip

    calls: list[int] = []

    def stop_after_two_batches(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # the start report + two batches
            raise Stop

    cluster = ClusterOptions(workers=2)
    with pytest.raises(Stop):
        evaluate("classification", "minilm-l6", TREC, out=tmp_path / "ray",
                 progress=stop_after_two_batches, cluster=cluster, **RUN)  # fmt: skip
    assert calls == [0, 16, 32]

    resumed: list[int] = []
    report = evaluate("classification", "minilm-l6", TREC, out=tmp_path / "ray",
                      progress=lambda done, total: resumed.append(done), cluster=cluster,
                      **RUN)  # fmt: skip
    # The 32 predicted items were kept: only the other 48 ran, three batches of 16.
    assert resumed == [32, 48, 64, 80]
    assert report.metrics == local.metrics and report.n == local.n == 80
    assert report.per_category == local.per_category
    assert report.settings == local.settings and report.model == local.model
    assert report.device == "Ray, 2 workers x 1 CPU"
    assert _predictions(tmp_path / "ray") == _predictions(tmp_path / "local")


def test_ray_with_given_predictions_is_refused(tmp_path) -> None:
    from quintet.evaluation.harness import EvaluationError

    with pytest.raises(EvaluationError, match="--ray runs a model"):
        evaluate("classification", data=TREC, predictions_file=str(tmp_path / "p.txt"),
                 out=tmp_path / "run", cluster=ClusterOptions())  # fmt: skip
