"""The Evaluation page sends a run to the Ray cluster that ``RAY_ADDRESS`` names."""

from __future__ import annotations

import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.apps.ui.jobs import all_jobs

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "home.py")


def _open_evaluation() -> AppTest:
    app = AppTest.from_file(HOME, default_timeout=120).run()
    app.switch_page("evaluation/page.py").run()
    assert not app.exception
    return app


def test_no_cluster_option_without_ray_address(monkeypatch, real_store) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    app = _open_evaluation()
    assert not [box for box in app.checkbox if box.key == "eval-ray"]


def test_a_run_goes_to_the_cluster_when_asked(ray_cluster, real_store, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(real_store.models_dir)
    monkeypatch.setenv("QUINTET_HOME", str(home))
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.get_runtime_context().gcs_address)
    app = _open_evaluation()
    app.selectbox(key="eval-task").set_value("classification").run()
    app.selectbox(key="eval-model-classification").set_value("minilm-l6").run()
    app.number_input(key="eval-limit").set_value(12).run()
    app.checkbox(key="eval-ray").check().run()
    app.number_input(key="eval-ray-workers").set_value(1).run()
    before = {job.id for job in all_jobs("eval-")}
    app.button(key="eval-run").click().run()
    assert not app.exception and not app.error
    deadline = time.time() + 300
    while not (jobs := [j for j in all_jobs("eval-") if j.id not in before]) or (
        jobs[0].state == "running"
    ):
        assert time.time() < deadline, "the evaluation did not finish"
        time.sleep(0.5)
    assert jobs[0].state == "done", jobs[0].details
    report = json.loads((Path(jobs[0].result[0]) / "report.json").read_text())
    assert report["device"] == "Ray, 1 worker x 1 CPU" and report["n"] == 12
