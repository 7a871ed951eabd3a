"""Defects of a real-browser walk of the pages, checked headless with AppTest on real models:
charts, labels and messages as a page user sees them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "home.py")


@pytest.fixture
def home(real_store: ModelStore, tmp_path: Path, monkeypatch) -> Path:
    """A fresh QUINTET_HOME whose models are the real store's (reports and uploads stay here)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(real_store.models_dir)
    monkeypatch.setenv("QUINTET_HOME", str(home))
    return home


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(HOME, default_timeout=120).run()
    app.switch_page(page).run()
    assert not app.exception
    return app


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
