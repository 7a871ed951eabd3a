"""The Classification page, headless with AppTest on the real minilm-l6 (zero-shot)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "classification" / "page.py")


def test_zero_shot_with_a_probability_chart(real_store) -> None:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not app.exception
    app.selectbox(key="cls-model").set_value("minilm-l6").run()
    app.text_input(key="cls-labels").set_value("sports, business").run()
    app.text_area(key="cls-texts").set_value(
        "Tennis star wins Wimbledon final in five sets\nShares jump after record profit"
    ).run()
    app.button(key="cls-run").click().run()
    assert not app.exception and not app.error
    lines = [m.value for m in app.markdown if m.value.startswith("**")]
    assert lines[0].startswith("**sports**") and lines[1].startswith("**business**")
    assert len(app.get("vega_lite_chart")) == 2  # one bar chart per text


def test_encoder_without_labels_explains_what_to_do(real_store) -> None:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.selectbox(key="cls-model").set_value("minilm-l6").run()
    app.text_input(key="cls-labels").set_value("").run()
    app.button(key="cls-run").click().run()
    assert not app.exception
    assert any("no classification head: give labels" in e.value for e in app.error)


def test_the_page_as_it_opens_classifies_its_example(real_store) -> None:
    """Whatever the default is here (the SST-2 recipe, or zero-shot minilm-l6 with the
    example's labels prefilled), the prefilled example classifies without typing anything."""
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.button(key="cls-run").click().run()
    assert not app.exception and not app.error and not app.warning
    lines = [m.value for m in app.markdown if m.value.startswith("**")]
    assert len(lines) == 1 and lines[0].lower().startswith("**positive**")


def test_batch_csv_column_is_classified_with_label_counts_and_downloads(real_store) -> None:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.selectbox(key="cls-model").set_value("minilm-l6").run()
    app.text_input(key="cls-labels").set_value("sports, business").run()
    csv_text = (
        "id,review\n1,Tennis star wins Wimbledon final in five sets\n2,\n"
        "3,Shares jump after record profit\n"
    )
    app.file_uploader(key="cls-batch").upload("news.csv", csv_text.encode(), "text/csv").run()
    assert app.selectbox(key="cls-batch-column").value == "review"
    app.button(key="cls-batch-run").click().run()
    assert not app.exception and not app.error
    rows = app.dataframe[0].value
    assert list(rows["predicted_label"]) == ["sports", "", "business"]  # the empty row kept
    assert {"p_sports", "p_business"} <= set(rows.columns)
    keys = {b.key for b in app.get("download_button")}
    assert {"cls-download-csv", "cls-download-jsonl"} <= keys
