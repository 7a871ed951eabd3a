"""Defects of a real-browser walk of the pages, checked headless with AppTest on real models:
charts, labels and messages as a page user sees them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir
from tests.apps.conftest import HOME, open_page, wait_for


def chart_specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


# Classification ----------------------------------------------------------------------------


def classify(app: AppTest, labels: str, texts: str, multi: bool = False) -> AppTest:
    app.text_input(key="cls-labels").set_value(labels).run()
    if multi:
        app.checkbox(key="cls-multi").check().run()
    app.text_area(key="cls-texts").set_value(texts).run()
    app.button(key="cls-run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    return app


def test_classification_charts_give_each_label_room_on_a_fixed_scale(home: Path) -> None:
    app = classify(open_page("classification/page.py"), "positive, negative", "a joy to watch")
    [spec] = chart_specs(app)
    # Two labels: each gets a band of its own (a fixed 96 px chart printed them on top of
    # each other), and the probability axis runs 0..1.
    assert spec["height"]["step"] >= 24
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert spec["encoding"]["y"]["field"] == "label"


def test_multi_label_charts_do_not_scale_to_their_own_maximum(home: Path) -> None:
    app = classify(
        open_page("classification/page.py"), "sports, cooking, finance", "the match ended 2-1",
        multi=True,
    )  # fmt: skip
    [spec] = chart_specs(app)
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 1]


def test_own_labels_are_named_as_the_results_name_them(tmp_home: Path) -> None:
    # A sequence classifier stored under the SST-2 recipe's name keeps the dataset's label
    # ids (0, 1); results show them as negative/positive, and so must the error.
    store = ModelStore()
    with store.staging("minilm-l6-sst2") as staging:
        for item in tiny_model_dir("bert", kind="sequence-classification",
                                   labels=["0", "1"]).iterdir():  # fmt: skip
            (staging / item.name).write_bytes(item.read_bytes())
        store.commit(staging, "minilm-l6-sst2", {"kind": "sequence-classification",
                                                  "tasks": ["classification"]})  # fmt: skip
    app = open_page("classification/page.py")
    app.selectbox(key="cls-model").set_value("minilm-l6-sst2").run()
    app.text_input(key="cls-labels").set_value("good, bad").run()
    app.button(key="cls-run").click().run()
    [error] = [e.value for e in app.error]
    assert "minilm-l6-sst2 has its own labels (negative, positive)" in error


def test_a_batch_with_an_empty_row_shows_blank_cells(home: Path, caplog) -> None:
    app = open_page("classification/page.py")
    data = b"id,text\n1,what a great film\n2,\n3,awful and boring\n"
    app.file_uploader(key="cls-batch").upload("reviews.csv", data, "text/csv").run()
    caplog.set_level(logging.INFO, logger="streamlit")
    app.button(key="cls-batch-run").click().run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert len(table) == 3
    empty = table.iloc[1]
    assert empty["predicted_label"] == "" and empty["confidence"] != empty["confidence"]  # NaN
    assert table["confidence"].dtype.kind == "f"
    assert "Serialization of dataframe to Arrow table was unsuccessful" not in caplog.text


# Messages in the pages' terms -------------------------------------------------------------


def test_command_line_wording_is_said_in_page_terms() -> None:
    from quintet.apps.ui.messages import for_pages

    assert for_pages("/srv/q/uploads/060bf6ecf7-broken.jsonl:2: not JSON") == (
        "broken.jsonl:2: not JSON"
    )
    assert for_pages("run `quintet models pull minilm-l6` first") == (
        "pull minilm-l6 on the Models page first"
    )
    assert "Models page" in for_pages("no offline model (see `quintet models list`)")
    assert for_pages("not built: quintet recipes run x") == (
        "not built (in a terminal: quintet recipes run x)"
    )
    assert "--limit" not in for_pages("compare runs ... with the same number of examples (--limit)")


def test_an_uploaded_files_error_names_the_file_not_the_server_path(home: Path) -> None:
    from quintet.apps.ui.jobs import all_jobs

    app = open_page("evaluation/page.py")
    app.selectbox(key="eval-task").set_value("classification").run()
    app.selectbox(key="eval-model-classification").set_value("minilm-l6").run()
    app.radio(key="eval-source").set_value("Upload").run()
    broken = b'{"text": "fine", "label": "a"}\n{"text": oops\n'
    app.file_uploader(key="eval-upload-classification").upload(
        "broken.jsonl", broken, "application/jsonl"
    ).run()
    before = {job.id for job in all_jobs("eval-")}
    app.button(key="eval-run").click().run()
    wait_for(lambda: (jobs := [j for j in all_jobs("eval-") if j.id not in before])
             and jobs[0].state != "running")  # fmt: skip
    app.run()
    errors = [e.value for e in app.error]
    assert errors and "broken.jsonl:2" in errors[0], errors
    assert "uploads/" not in errors[0] and str(home) not in errors[0]


def test_comparing_runs_of_other_sizes_names_the_examples_field(home: Path) -> None:
    from quintet.evaluation.harness import evaluate
    from quintet.evaluation.protocol import DataOptions

    data = str(Path(HOME).parents[1] / "data/classification/sst2/dev.tsv")
    options = DataOptions(extra={"label_map": "0=negative,1=positive"})
    folders = [
        str(evaluate("classification", "minilm-l6", data, limit=n, out=home / "eval" / f"n{n}",
                     options=options, progress=False, bootstrap=0).out_dir)
        for n in (6, 8)
    ]  # fmt: skip
    app = open_page("evaluation/page.py")
    app.multiselect(key="eval-compare").set_value(folders).run()
    app.button(key="eval-compare-run").click().run()
    [error] = [e.value for e in app.error]
    assert "same number of examples" in error and "--limit" not in error


def test_a_latin1_upload_is_told_how_to_fix_it(home: Path) -> None:
    app = open_page("summarization/page.py")
    app.radio(key="sum-text-mode").set_value("Upload a file").run()
    app.file_uploader(key="sum-text-file").upload(
        "latin1.txt", "Café à Lisboa\n".encode("latin-1"), "text/plain"
    ).run()
    [error] = [e.value for e in app.error]
    assert error.startswith("latin1.txt is not UTF-8 text (byte 0xE9 on line 1")
    assert "upload a .txt file" not in error and "save it with the UTF-8 encoding" in error


def test_summarization_suggests_summarization_models_for_an_unknown_name(home: Path) -> None:
    app = open_page("summarization/page.py")
    app.selectbox(key="sum-model").set_value("Other: a hub id or a local path…").run()
    app.text_input(key="sum-model-other").set_value("minilm-l6x").run()
    app.button(key="sum-run").click().run()
    [error] = [e.value for e in app.error]
    assert error.startswith("unknown model 'minilm-l6x'")
    assert "minilm-l6" not in error.removeprefix("unknown model 'minilm-l6x'")  # an encoder
    assert "quintet models list" not in error


def test_summarization_sidebar_promises_no_recipe_when_recipes_are_off(
    home: Path, monkeypatch
) -> None:
    monkeypatch.setenv("QUINTET_NO_RECIPES", "1")
    app = open_page("summarization/page.py")
    [caption] = [c.value for c in app.sidebar.caption if "default:" in c.value]
    assert "until the recipe has run" not in caption
    assert "background recipe build is off: QUINTET_NO_RECIPES=1" in caption


def test_home_names_the_engine_a_loaded_chat_model_runs_on(real_store: ModelStore,
                                                           monkeypatch) -> None:  # fmt: skip
    from quintet.core.models import load

    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    monkeypatch.delenv("QUINTET_BACKEND", raising=False)
    load("smollm2-135m-instruct")
    app = AppTest.from_file(HOME, default_timeout=60).run()
    [line] = [m.value for m in app.markdown if "**smollm2-135m-instruct**" in m.value]
    assert "runs on onnxruntime-genai, int8" in line
    assert not line.rstrip().endswith("float32")


def test_models_page_verifies_a_stored_model(tmp_home: Path) -> None:
    store = ModelStore()
    with store.staging("checked") as staging:
        for item in tiny_model_dir("bert").iterdir():
            (staging / item.name).write_bytes(item.read_bytes())
        store.commit(staging, "checked", {"kind": "encoder", "tasks": ["classification"]})
    app = open_page("models/page.py")
    app.button(key="verify-checked").click().run()
    assert [s.value for s in app.success] == ["checked: every file matches its manifest."]
    weights = next(p for p in store.get("checked").path.iterdir() if p.suffix == ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-100:] = b"\xff" * 100  # same size, other bytes
    weights.write_bytes(bytes(data))
    app.button(key="verify-checked").click().run()
    [error] = [e.value for e in app.error]
    assert error.startswith("checked is damaged:") and weights.name in error


# Evaluation off the server process ---------------------------------------------------------


def test_an_evaluation_runs_in_a_worker_process_not_the_pages_server(home: Path) -> None:
    """The page's process loads no model for it: its models, threads and CPU time are the
    worker's (an evaluation in a server thread made a Chat tab wait 27 s for its box)."""
    from quintet.apps.ui.jobs import all_jobs
    from quintet.core.models import cached_models, default_cache

    default_cache().clear()
    app = open_page("evaluation/page.py")
    app.selectbox(key="eval-task").set_value("classification").run()
    app.selectbox(key="eval-model-classification").set_value("minilm-l6").run()
    sets = app.selectbox(key="eval-set-classification")
    sets.set_value(next(i for i, o in enumerate(sets.options) if o.startswith("SST-2"))).run()
    app.number_input(key="eval-limit").set_value(8).run()
    before = {job.id for job in all_jobs("eval-")}
    app.button(key="eval-run").click().run()
    job = wait_for(lambda: (jobs := [j for j in all_jobs("eval-") if j.id not in before])
                   and jobs[0].state != "running" and jobs[0])  # fmt: skip
    assert job.state == "done", job.details
    assert job.done == job.total == 8  # progress came back from the worker
    assert json.loads((Path(job.result[0]) / "report.json").read_text())["n"] == 8
    assert [m.name for m in cached_models()] == []


def test_a_failing_worker_job_reports_its_error_and_traceback() -> None:
    from quintet.apps.ui.jobs import start_process_job
    from quintet.core.errors import QuintetError

    job = start_process_job("walk-failing", "Failing", _fails, {"message": "no such file x"})
    wait_for(lambda: job.state != "running", 120)
    assert isinstance(job.error, QuintetError) and str(job.error) == "no such file x"
    assert "_fails" in job.details


def _fails(job, message: str) -> None:
    from quintet.core.errors import QuintetError

    job.progress(1, 2)
    raise QuintetError(message)


# Reports and Compare -------------------------------------------------------------------------


def test_translation_runs_are_named_with_their_language_pair(home: Path) -> None:
    shipped = next(Path(HOME).parents[1].glob("docs/reports/translation-*/report.json"))
    for tgt in ("de", "fr"):
        report = json.loads(shipped.read_text())
        report["settings"] = {**report.get("settings", {}), "src": "en", "tgt": tgt}
        (home / "eval" / f"en-{tgt}").mkdir(parents=True)
        (home / "eval" / f"en-{tgt}" / "report.json").write_text(json.dumps(report))
    app = open_page("evaluation/page.py")
    picker = app.selectbox(key="eval-pick")
    ours = [o for o in picker.options if o.endswith("(yours)")]
    assert len(ours) == 2 and len(set(ours)) == 2
    assert any(" · en→de · " in o for o in ours) and any(" · en→fr · " in o for o in ours)


def test_compare_draws_the_baselines_p_values_as_baseline_not_none(home: Path) -> None:
    from quintet.evaluation.harness import evaluate
    from quintet.evaluation.protocol import DataOptions

    data = str(Path(HOME).parents[1] / "data/classification/sst2/dev.tsv")
    options = DataOptions(extra={"label_map": "0=negative,1=positive"})
    folders = [
        str(evaluate("classification", "minilm-l6", data, limit=8, out=home / "eval" / name,
                     options=options, progress=False, bootstrap=50).out_dir)
        for name in ("a", "b")
    ]  # fmt: skip
    app = open_page("evaluation/page.py")
    app.multiselect(key="eval-compare").set_value(folders).run()
    app.button(key="eval-compare-run").click().run()
    assert not app.exception and not app.error
    proto = app.dataframe[0].proto
    styler = (
        proto.arrow_data.styler if proto.arrow_data.data else proto.lazy_data.initial_chunk.styler
    )
    shown = str(styler.display_values)
    assert "(baseline)" in shown and "None" not in shown


def test_a_worker_does_not_rerun_the_page_script(tmp_path: Path, monkeypatch) -> None:
    """Under ``streamlit run`` the page script is ``__main__``: a spawned worker that re-ran
    it drew the page again and started the job again (exit code 1, no result)."""
    import sys
    import types

    from quintet.apps.ui.jobs import start_process_job

    marker = tmp_path / "ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'w').write('the page ran again')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__, fake_main.__spec__ = str(page), None
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    job = start_process_job("walk-main", "Main", _adds, {"a": 2, "b": 3})
    wait_for(lambda: job.state != "running", 120)
    assert job.state == "done" and job.result == 5, job.error
    assert not marker.exists()
    assert sys.modules["__main__"] is fake_main  # given back after the start


def _adds(job, a: int, b: int) -> int:
    return a + b
