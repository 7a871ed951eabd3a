"""The Evaluation, Fine-tuning and Models pages, driven headless with AppTest on real models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.apps.finetune import runs
from quintet.apps.ui.jobs import all_jobs
from quintet.core.store import ModelStore
from quintet.core.testing import CORPUS, tiny_model_dir
from tests.apps.conftest import HOME, open_page, wait_for

EVAL_PAGE = str(Path(HOME).parent / "evaluation" / "page.py")


def test_home_lists_every_page(home: Path) -> None:
    app = AppTest.from_file(HOME, default_timeout=60).run()
    assert not app.exception
    labels = {link.label for link in app.get("page_link")}
    expected = {"Translation", "Summarization", "Question answering", "Classification", "Chat",
                "Evaluation", "Fine-tuning", "Models"}  # fmt: skip
    assert {label.strip("*") for label in labels} == expected


def test_evaluation_runs_in_the_background_and_shows_its_report(home: Path) -> None:
    app = open_page("evaluation/page.py")
    app.selectbox(key="eval-task").set_value("classification").run()
    app.selectbox(key="eval-model-classification").set_value("minilm-l6").run()
    sets = app.selectbox(key="eval-set-classification")
    sets.set_value(next(i for i, o in enumerate(sets.options) if o.startswith("SST-2"))).run()
    app.number_input(key="eval-limit").set_value(12).run()
    app.button(key="eval-run").click().run()
    assert not app.exception and not app.error
    job = wait_for(lambda: (j := all_jobs("eval-")[0]).state != "running" and j)
    assert job.state == "done", job.details
    app.run()
    assert not app.exception and not app.error
    assert any("finished" in s.value for s in app.success)
    metrics = {m.label: float(m.value) for m in app.metric}
    assert {"accuracy", "macro_f1"} <= set(metrics) and 0 <= metrics["accuracy"] <= 100
    run_dir = Path(job.result[0])
    assert run_dir.parent == home / "eval" and (run_dir / "report.html").is_file()
    assert app.selectbox(key="eval-pick").value == str(run_dir)  # the new run is shown
    names = {button.label for button in app.get("download_button")}
    assert {"report.html", "report.json", "predictions.jsonl"} <= names


def test_evaluation_compares_two_runs(home: Path) -> None:
    from quintet.evaluation.harness import evaluate
    from quintet.evaluation.protocol import DataOptions

    data = str(Path(HOME).parents[1] / "data/classification/sst2/dev.tsv")
    options = DataOptions(extra={"label_map": "0=negative,1=positive"})
    folders = [
        evaluate("classification", "minilm-l6", data, limit=10, out=home / "eval" / name,
                 options=options, progress=False, bootstrap=50).out_dir
        for name in ("a", "b")
    ]  # fmt: skip
    app = open_page("evaluation/page.py")
    app.multiselect(key="eval-compare").set_value([str(Path(f)) for f in folders]).run()
    app.button(key="eval-compare-run").click().run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert list(table["model"]) == ["minilm-l6", "minilm-l6"]
    assert table["accuracy"][0] == table["accuracy"][1]  # same model, same data


def _tiny_csv(path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(40):
            writer.writerow([f"{CORPUS[i % len(CORPUS)]} {'good' if i % 2 else 'bad'}",
                             "pos" if i % 2 else "neg"])  # fmt: skip
    return path


def test_finetune_page_follows_a_run_to_the_model_picker(tmp_home: Path, tmp_path: Path) -> None:
    # An empty store of its own: the run writes its model into it.
    runs.start_run(
        "classification", str(tiny_model_dir("bert")), str(_tiny_csv(tmp_path / "t.csv")),
        "page-run", {"max_steps": 6, "batch_size": 4, "eval_every": 3, "save_every": 3},
    )  # fmt: skip
    app = open_page("finetune/page.py")
    assert app.selectbox(key="ft-pick").value == "page-run"
    wait_for(lambda: runs.status("page-run").state != "running")
    app.run()
    assert not app.exception and not app.error
    assert any("Stored as **page-run**" in s.value for s in app.success)
    assert len(app.get("vega_lite_chart")) == 2  # loss and validation curves
    from quintet.apps.ui import model_choices

    assert "page-run" in [c.name for c in model_choices("classification")]


def test_finetune_page_after_the_model_is_deleted_offers_to_restore_it(
    tmp_home: Path, tmp_path: Path
) -> None:
    runs.start_run(
        "classification", str(tiny_model_dir("bert")), str(_tiny_csv(tmp_path / "t.csv")),
        "gone-run", {"max_steps": 4, "batch_size": 4, "eval_every": 2, "save_every": 2},
    )  # fmt: skip
    wait_for(lambda: runs.status("gone-run").state != "running")
    app = open_page("finetune/page.py")
    # The run picker names runs only; the state is in the heading (no stale "(running)").
    assert app.selectbox(key="ft-pick").options == ["gone-run"]
    assert any("gone-run · finished" in m.value for m in app.markdown)
    ModelStore().delete("gone-run")
    app.run()
    assert not app.exception
    assert not any("model picker" in s.value for s in app.success)
    assert [w.value for w in app.warning] == [
        "This run stored **gone-run**, but it is no longer in the store (deleted since). "
        "Resume stores it again from the run's last checkpoint."
    ]
    app.button(key="ft-resume-gone-run").click().run()
    assert not app.exception and not app.error
    wait_for(lambda: runs.status("gone-run").state != "running")
    assert ModelStore().has("gone-run")


def test_finetune_page_form_starts_a_run_on_an_uploaded_file(tmp_home: Path, tmp_path: Path):
    """The whole form: task, base model by path, an uploaded training file, options, Start;
    the run goes on in the background and its model lands in the store."""
    app = open_page("finetune/page.py")
    app.selectbox(key="ft-task").set_value("classification").run()
    app.selectbox(key="ft-base-classification").set_value("Other: a hub id or a local path…").run()
    bert = str(tiny_model_dir("bert"))
    app.text_input(key="ft-base-classification-other").set_value(bert).run()
    app.radio(key="ft-src").set_value("Upload").run()
    data = _tiny_csv(tmp_path / "upload.csv").read_bytes()
    app.file_uploader(key="ft-upload-classification").upload("train.csv", data, "text/csv").run()
    app.text_input(key=f"ft-name-classification-{bert}").set_value("form-run").run()
    for key, value in (("ft-steps", 6), ("ft-batch", 4), ("ft-eval", 3), ("ft-save", 3)):
        app.number_input(key=key).set_value(value).run()
    app.button(key="ft-start").click().run()
    assert not app.exception and not app.error, app.error
    assert any(s.value.startswith("Started form-run") for s in app.success)
    wait_for(lambda: runs.status("form-run").state != "running")
    assert runs.status("form-run").state == "finished"
    assert ModelStore().has("form-run")


def test_finetune_page_shows_a_failed_run_readably(tmp_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,\n")
    runs.start_run("classification", str(tiny_model_dir("bert")), str(bad), "bad-run", {})
    wait_for(lambda: runs.status("bad-run").state != "running", 120)
    app = open_page("finetune/page.py")
    assert not app.exception
    assert app.error[0].value.startswith("error:") and "bad.csv" in app.error[0].value


def test_models_page_deletes_after_confirmation(tmp_home: Path) -> None:
    store = ModelStore()
    with store.staging("doomed") as staging:
        for item in tiny_model_dir("bert").iterdir():
            (staging / item.name).write_bytes(item.read_bytes())
        store.commit(staging, "doomed", {"kind": "encoder", "tasks": ["classification"]})
    app = open_page("models/page.py")
    assert "doomed" in set(app.dataframe[0].value["name"])  # store-only models are listed
    app.button(key="delete-doomed").click().run()
    assert any("Delete doomed" in w.value for w in app.warning)
    assert store.has("doomed")  # nothing happens before the confirmation
    app.button(key="confirm-delete").click().run()
    assert not app.exception
    assert not store.has("doomed")
    assert any("deleted doomed" in s.value for s in app.success)


def test_evaluation_report_of_a_slow_run_shows_seconds_per_example(home: Path) -> None:
    # A shipped report, as if its two examples had taken 12 minutes (0.003 examples/s).
    shipped = next(Path(EVAL_PAGE).parents[2].glob("docs/reports/*/report.json"))
    report = json.loads(shipped.read_text())
    report["timing"] = {"total_s": 725.0, "predict_s": 720.0, "examples_per_s": 0.003}
    run = home / "eval" / "slow-run"
    run.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps(report))
    app = open_page("evaluation/page.py")
    assert app.selectbox(key="eval-pick").value == str(run)
    [speed] = [c.value for c in app.caption if c.value.startswith(":material/timer:")]
    assert "333.3 s per example" in speed and "0.00" not in speed


def test_evaluation_of_translation_left_on_automatic_routes_by_pair(home: Path) -> None:
    from quintet.apps.translation import Translator

    app = open_page("evaluation/page.py")
    app.selectbox(key="eval-task").set_value("translation").run()
    assert not app.exception
    assert app.selectbox(key="eval-model-translation").value == "Automatic (by language pair)"
    # What the harness gets then (None) is routed by pair, not "the model you chose".
    assert Translator(None).route("en", "de").reason != "the model you chose"


def test_evaluation_progress_says_why_the_count_sits_still(home: Path) -> None:
    """Two examples are one batch: the bar says both are being worked on while it sits at 0."""
    import threading

    from quintet.apps.ui.jobs import start_job

    release = threading.Event()

    def work(job):
        job.note = "model 1/1: task default"
        job.progress(0, 2)
        release.wait(60)
        return []

    job = start_job("eval-two-examples", "Translation evaluation", work)
    try:
        wait_for(lambda: job.total == 2, 10)
        app = open_page("evaluation/page.py")
        [bar] = app.get("progress")
        assert "0/2 examples, working on the next 2" in bar.proto.text
    finally:
        release.set()


def test_finetune_page_offers_each_task_s_shipped_sets_and_its_recipe_s_base(tmp_home: Path):
    """The datasets and the base-model tip come from the task's spec."""
    app = open_page("finetune/page.py")
    app.selectbox(key="ft-task").set_value("classification").run()
    assert app.selectbox(key="ft-set-classification").options == [
        "SST-2 sentiment (train, dev for validation)",
        "TREC question types (train split)",
    ]
    app.selectbox(key="ft-base-classification").set_value("Other: a hub id or a local path…").run()
    app.text_input(key="ft-base-classification-other").set_value("some/encoder").run()
    assert any("`minilm-l6` is the base model the classification recipe" in c.value
               for c in app.caption)  # fmt: skip
    app.selectbox(key="ft-task").set_value("chat").run()
    assert app.selectbox(key="ft-set-chat").options == ["Alpaca demo instructions"]
    assert not any("recipe uses" in c.value for c in app.caption)
    app.selectbox(key="ft-task").set_value("translation").run()
    assert any("No shipped training set" in c.value for c in app.caption)
    assert not app.exception
