"""The Summarization page, headless with AppTest: summary, mode, chunking, errors."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.testing import CORPUS, tiny_model_dir

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "summarization" / "page.py")
OTHER = "Other: a hub id or a local path…"


def _page(model: str | None = None) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not app.exception
    if model is not None:
        app.selectbox(key="sum-model").set_value(OTHER).run()
        app.text_input(key="sum-model-other").set_value(model).run()
    return app


def test_real_offline_default_summarizes_the_example_dialogue(real_store) -> None:
    app = _page()
    app.number_input(key="sum-max").set_value(16).run()
    app.button(key="sum-run").click().run()
    assert not app.exception and not app.error
    assert app.text[0].value.strip()
    captions = " ".join(c.value for c in app.caption)
    assert "(prompted)" in captions and "Read as dialogue" in captions


def test_long_text_shows_its_chunks() -> None:
    app = _page(str(tiny_model_dir("bart", kind="seq2seq")))
    app.text_area(key="sum-text").set_value(" ".join(CORPUS * 6)).run()
    app.number_input(key="sum-max").set_value(4).run()
    app.button(key="sum-run").click().run()
    assert not app.exception and not app.error
    captions = " ".join(c.value for c in app.caption)
    assert "(seq2seq)" in captions and "overlapping chunks" in captions
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) >= 2


def test_min_above_max_and_empty_text_are_explained() -> None:
    app = _page(str(tiny_model_dir("bart", kind="seq2seq")))
    app.number_input(key="sum-min").set_value(200).run()
    app.button(key="sum-run").click().run()
    assert not app.exception and any("Min length is above" in e.value for e in app.error)
    app.text_area(key="sum-text").set_value("").run()
    app.button(key="sum-run").click().run()
    assert any("Type or upload" in i.value for i in app.info)


def test_batch_jsonl_is_summarized_row_by_row_with_downloads() -> None:
    app = _page(str(tiny_model_dir("bart", kind="seq2seq")))
    app.number_input(key="sum-max").set_value(8).run()
    lines = [
        {"id": "a", "article": "The council approved the new park after a long debate."},
        {"id": "b", "article": "Heavy rain closed roads across the region on Monday."},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    app.file_uploader(key="sum-batch").upload("news.jsonl", data).run()
    assert app.selectbox(key="sum-batch-column").value == "article"
    app.button(key="sum-batch-run").click().run()
    assert not app.exception and not app.error
    rows = app.dataframe[0].value
    assert list(rows["id"]) == ["a", "b"] and all(rows["summary"])
    assert list(rows["chunks"]) == [1, 1]
    keys = {b.key for b in app.get("download_button")}
    assert {"sum-batch-download-csv", "sum-batch-download-jsonl"} <= keys


def test_a_summary_cut_at_max_length_is_flagged() -> None:
    app = _page(str(tiny_model_dir("bart", kind="seq2seq")))
    app.text_area(key="sum-text").set_value(" ".join(CORPUS[:3])).run()
    app.number_input(key="sum-max").set_value(4).run()
    app.button(key="sum-run").click().run()
    assert not app.exception and not app.error
    assert [w.value for w in app.warning] == [
        "The summary stopped at *Max length*: raise it in the sidebar."
    ]
