"""The Translation page, headless with AppTest: typed text, route shown, batch, errors."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.testing import tiny_model_dir

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "translation" / "page.py")
OTHER = "Other: a hub id or a local path…"


def _page(model: str | None = None) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not app.exception
    if model is not None:
        app.selectbox(key="tr-model").set_value(OTHER).run()
        app.text_input(key="tr-model-other").set_value(model).run()
    return app


def _output(app: AppTest) -> str:
    return "\n".join(t.value for t in app.text)


def test_tiny_marian_translates_and_says_which_model(tmp_path: Path) -> None:
    marian = str(tiny_model_dir("marian"))
    app = _page(marian)
    app.number_input(key="tr-decode-max").set_value(4).run()
    app.button(key="tr-run").click().run()
    assert not app.exception and not app.error
    lines = _output(app).split("\n")
    assert len(lines) == 3 and lines[0] and lines[1] == "" and lines[2]  # paragraphs kept
    captions = " ".join(c.value for c in app.caption)
    assert f"Model **{marian}** (seq2seq): the model you chose" in captions
    assert any("Max new tokens" in w.value for w in app.warning)  # 4 tokens cut it short


def test_real_offline_default_by_prompt(real_store, no_hub) -> None:
    app = _page()
    app.text_area(key="tr-text").set_value("Good morning.").run()
    app.number_input(key="tr-decode-max").set_value(8).run()
    app.selectbox(key="tr-tgt").set_value("fr").run()
    app.button(key="tr-run").click().run()
    assert not app.exception and not app.error
    assert _output(app).strip()
    captions = " ".join(c.value for c in app.caption)
    assert "Model **smollm2-135m-instruct** (prompted)" in captions and "last resort" in captions


def test_same_languages_show_a_readable_error() -> None:
    app = _page(str(tiny_model_dir("marian")))
    app.selectbox(key="tr-tgt").set_value("en").run()
    app.button(key="tr-run").click().run()
    assert not app.exception
    assert any("both English" in e.value for e in app.error)


def test_empty_text_asks_for_one() -> None:
    app = _page(str(tiny_model_dir("marian")))
    app.text_area(key="tr-text").set_value("  ").run()
    app.button(key="tr-run").click().run()
    assert not app.exception and not app.error
    assert any("Type or upload" in i.value for i in app.info)


def test_batch_file_is_translated_row_by_row_with_downloads() -> None:
    app = _page(str(tiny_model_dir("marian")))
    app.number_input(key="tr-decode-max").set_value(3).run()
    csv_text = "id,source\n1,The cat sits.\n2,\n3,Where is the station?\n"
    app.file_uploader(key="tr-batch").upload("texts.csv", csv_text.encode(), "text/csv").run()
    assert not app.exception and not app.error
    assert app.selectbox(key="tr-batch-column").value == "source"  # found by name
    app.button(key="tr-batch-run").click().run()
    assert not app.exception and not app.error
    [table] = app.dataframe
    rows = table.value
    assert list(rows["id"].astype(str)) == ["1", "2", "3"]
    translations = list(rows["translation_de"])
    assert translations[0] and translations[1] == "" and translations[2]  # empty in, empty out
    keys = {b.key for b in app.get("download_button")}
    assert {"tr-batch-download-csv", "tr-batch-download-jsonl"} <= keys


def test_a_malformed_batch_file_is_a_readable_error() -> None:
    app = _page(str(tiny_model_dir("marian")))
    app.file_uploader(key="tr-batch").upload("bad.jsonl", b'{"source": "ok"}\n{oops\n').run()
    assert not app.exception
    assert app.error and "bad.jsonl" in app.error[0].value
    assert all(b.key != "tr-batch-run" for b in app.button)  # nothing to run


def test_an_unknown_model_is_answered_with_translation_models(real_store, no_hub) -> None:
    """The name "minilm" is closest to minilm-l6, a sentence encoder that cannot translate: the page
    suggests models that translate instead."""
    app = _page("minilm")
    app.button(key="tr-run").click().run()
    assert not app.exception
    [error] = [e.value for e in app.error]
    assert error.startswith("unknown model 'minilm': not a directory")
    assert "minilm-l6" not in error
    assert "opus-mt" in error or "smollm2-135m-instruct" in error


def test_an_empty_other_field_says_what_runs_instead() -> None:
    app = _page()
    app.selectbox(key="tr-model").set_value(OTHER).run()
    assert [w.value for w in app.warning] == [
        "No model typed: the page uses automatic (by language pair) until you type one."
    ]
