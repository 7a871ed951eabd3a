"""The Evaluation page sends a run to the Ray cluster that ``RAY_ADDRESS`` names."""

from __future__ import annotations

import json
from pathlib import Path

from quintet.apps.ui.jobs import all_jobs
from tests.apps.conftest import open_page, wait_for


def test_no_cluster_option_without_ray_address(monkeypatch, real_store) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    app = open_page("evaluation/page.py")
    assert not [box for box in app.checkbox if box.key == "eval-ray"]


def test_a_run_goes_to_the_cluster_when_asked(ray_cluster, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.get_runtime_context().gcs_address)
    app = open_page("evaluation/page.py")
    app.selectbox(key="eval-task").set_value("classification").run()
    app.selectbox(key="eval-model-classification").set_value("minilm-l6").run()
    app.number_input(key="eval-limit").set_value(12).run()
    app.checkbox(key="eval-ray").check().run()
    app.number_input(key="eval-ray-workers").set_value(1).run()
    before = {job.id for job in all_jobs("eval-")}
    app.button(key="eval-run").click().run()
    assert not app.exception and not app.error
    job = wait_for(lambda: (jobs := [j for j in all_jobs("eval-") if j.id not in before])
                   and jobs[0].state != "running" and jobs[0])  # fmt: skip
    assert job.state == "done", job.details
    report = json.loads((Path(job.result[0]) / "report.json").read_text())
    assert report["device"] == "Ray, 1 worker x 1 CPU" and report["n"] == 12
