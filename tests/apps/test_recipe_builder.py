"""The background build of the task models: real builder processes on capped recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from quintet.apps import cli
from quintet.apps.finetune import background
from quintet.core.locks import exclusive_output, lock_path
from quintet.core.store import ModelStore
from quintet.core.training.trainer import LOG_FILE

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "home.py")
# A recipe capped to seconds: two steps, 16 validation examples, a checkpoint every step.
TINY = {"max_steps": 2, "eval_max_examples": 16, "save_every": 1}


@pytest.fixture
def store(tmp_home: Path, real_store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    """A fresh store holding the packaged models (links to the real store's folders)."""
    fresh = ModelStore(tmp_home)
    fresh.models_dir.mkdir(parents=True)
    for name in ("minilm-l6", "smollm2-135m-instruct"):
        (fresh.models_dir / name).symlink_to(real_store.models_dir / name)
    for name in (background.OPT_OUT_ENV, "CI"):
        monkeypatch.delenv(name, raising=False)
    return fresh


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def builder_log(store: ModelStore) -> str:
    return (background.runs_dir(store) / f"{background.BUILDER}.log").read_text()


@pytest.mark.slow  # two builder processes on SST-2 (about 40 s here)
def test_builder_builds_resumes_and_its_log_gives_progress(store: ModelStore) -> None:
    assert background.pending(store) == list(background.ORDER)
    process = background.start_builder(store, names=["minilm-l6-sst2"], overrides=TINY)
    assert process is not None and process.wait(timeout=300) == 0, builder_log(store)
    assert store.has("minilm-l6-sst2")
    assert background.pending(store, ["minilm-l6-sst2"]) == []
    assert not lock_path(background.runs_dir(store) / background.BUILDER).exists()
    done = background.read_progress(store, "minilm-l6-sst2")
    assert (done.step, done.total, done.phase, done.percent) == (2, 2, "saved", 100)

    # The log as it stood after the first step: half way, training.
    log = background.runs_dir(store) / "minilm-l6-sst2" / LOG_FILE
    lines = log.read_text().splitlines()
    first_step = next(i for i, line in enumerate(lines) if '"loss"' in line)
    log.write_text("\n".join(lines[: first_step + 1]) + '\n{"step": 2, "lo')  # cut by a kill
    half = background.read_progress(store, "minilm-l6-sst2")
    assert (half.step, half.total, half.phase, half.percent) == (1, 2, "training", 50)
    assert half.seconds_left is not None and half.seconds_left >= 0

    # The model deleted, its checkpoint kept: the next builder resumes instead of refusing.
    store.delete("minilm-l6-sst2")
    process = background.start_builder(store, names=["minilm-l6-sst2"], overrides=TINY)
    assert process is not None and process.wait(timeout=300) == 0, builder_log(store)
    assert "building minilm-l6-sst2 (resuming)" in builder_log(store)
    assert store.has("minilm-l6-sst2")
    # Nothing left to build: no process at all.
    assert background.start_builder(store, names=["minilm-l6-sst2"]) is None


def test_a_second_builder_leaves_the_work_to_the_first(store: ModelStore) -> None:
    with exclusive_output(background.runs_dir(store) / background.BUILDER) as lock:
        lock.write_text(json.dumps({"pid": os.getpid(), "recipe": "minilm-l6-squad",
                                    "queue": ["minilm-l6-sst2"]}))  # fmt: skip
        status = background.builder_status(store)
        assert (status.pid, status.recipe, status.queue) == (
            os.getpid(),
            "minilm-l6-squad",
            ("minilm-l6-sst2",),
        )
        process = background.start_builder(store, names=["minilm-l6-sst2"], overrides=TINY)
        assert process.wait(timeout=120) == 0
    assert "another recipe builder is running" in builder_log(store)
    assert not store.has("minilm-l6-sst2")
    assert background.builder_status(store) is None  # the lock file went with the holder


@pytest.mark.parametrize(
    ("flag", "env", "why"),
    [(True, {}, "--no-recipes"), (False, {"QUINTET_NO_RECIPES": "1"}, "QUINTET_NO_RECIPES=1"),
     (False, {"CI": "true"}, "CI is set")],
)  # fmt: skip
def test_quintet_ui_skips_the_build_when_told(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, capsys, flag: bool, env: dict, why: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli._start_recipe_builder(flag) is None
    assert f"not building the task models ({why})" in capsys.readouterr().err
    assert not (background.runs_dir(store) / f"{background.BUILDER}.log").exists()


def test_quintet_ui_starts_the_builder_which_stops_with_the_ui(store: ModelStore, capsys) -> None:
    # The UI stands in as a process that can go away; the builder watches it.
    ui = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        process = background.start_builder(store, parent=ui.pid)
        wait_until(lambda: (s := background.builder_status(store)) and s.recipe is not None)
        status = background.builder_status(store)
        assert status.pid == process.pid and status.recipe == "minilm-l6-squad"
        assert status.queue == ("smollm2-135m-samsum", "minilm-l6-sst2")
        # Pinned to one thread and niced, so the suite stays responsive.
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert b"OMP_NUM_THREADS=1" in environ and b"MKL_NUM_THREADS=1" in environ
        assert os.getpriority(os.PRIO_PROCESS, process.pid) >= 10
    finally:
        ui.kill()
        ui.wait()
    assert process.wait(timeout=60) == 143  # SIGTERM from its parent watch, handled
    assert background.builder_status(store) is None
    assert not store.has("minilm-l6-squad")

    # What `quintet ui` prints (and starts), with the same store.
    started = cli._start_recipe_builder(False)
    try:
        assert "Building the task models in the background" in capsys.readouterr().err
    finally:
        started.terminate()
        started.wait(timeout=60)


def test_home_and_the_qa_page_show_progress_then_switch_to_the_task_model(
    store: ModelStore, no_hub
) -> None:
    # A builder on its way through the QA recipe (this process holds the lock), 120/300.
    run = background.runs_dir(store) / "minilm-l6-squad"
    run.mkdir(parents=True)
    records = [{"event": "start", "step": 0, "total_steps": 300, "time": 1000.0}] + [
        {"step": step, "loss": 1.0, "time": 1000.0 + step} for step in range(1, 121)
    ]
    (run / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    with exclusive_output(background.runs_dir(store) / background.BUILDER) as lock:
        lock.write_text(json.dumps({"pid": os.getpid(), "recipe": "minilm-l6-squad",
                                    "queue": ["minilm-l6-sst2"]}))  # fmt: skip
        app = AppTest.from_file(HOME, default_timeout=60).run()
        assert not app.exception
        line = app.info[0].value
        assert line.startswith(
            "A better QA model is being trained in the background (minilm-l6-squad): "
            "40% (step 120/300), about 3 min left"
        )
        assert line.endswith("then minilm-l6-sst2.")

        app.switch_page("qa/page.py").run()
        assert not app.exception
        assert any("A better QA model is being trained" in i.value for i in app.info)
        assert app.selectbox(key="qa-model").value == "smollm2-135m-instruct"
        (run / LOG_FILE).unlink()
    # The QA model lands (a real, capped run of its recipe): the page switches to it.
    assert background.build(store, ["minilm-l6-squad"], overrides=TINY) == ["minilm-l6-squad"]
    landed = background.read_progress(store, "minilm-l6-squad")  # from the real run's log
    assert (landed.step, landed.total, landed.phase, landed.percent) == (2, 2, "saved", 100)
    app.run()
    assert not app.exception
    assert app.selectbox(key="qa-model").value == "minilm-l6-squad"
    assert not any("being trained" in i.value for i in app.info)


def test_a_failed_recipe_is_shown_on_its_page_and_not_retried(store: ModelStore) -> None:
    assert background.build(store, ["minilm-l6-sst2"], overrides={"batch_size": 0}) == []
    why = background.failure(store, "minilm-l6-sst2")
    assert why is not None and "batch_size" in why
    assert "minilm-l6-sst2" not in background.pending(store)
    page = str(Path(HOME).parent / "classification" / "page.py")
    app = AppTest.from_file(page, default_timeout=60).run()
    assert not app.exception
    assert any(
        c.value.startswith("The task model minilm-l6-sst2 could not be built in the background")
        for c in app.caption
    )
