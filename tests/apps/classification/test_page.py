"""The Classification page, headless with AppTest on the real minilm-l6 (zero-shot)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.testing import tiny_model_dir

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
    assert [e.value for e in app.error] == [
        "minilm-l6 has no classification head, so it classifies zero-shot and needs labels: "
        "type them in the sidebar under 'Zero-shot labels' (e.g. positive, negative), or pick "
        "a fine-tuned classifier (the Fine-tuning page trains one)"
    ]  # the page's words, not the CLI's (--labels, `quintet finetune`)


def test_empty_labels_field_has_an_instruction_not_example_labels(real_store) -> None:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.selectbox(key="cls-model").set_value("minilm-l6").run()
    field = app.text_input(key="cls-labels")
    assert field.placeholder == "none: type labels for zero-shot"


def test_chart_titles_the_probability_axis_not_the_label_axis(real_store) -> None:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.selectbox(key="cls-model").set_value("minilm-l6").run()
    app.text_input(key="cls-labels").set_value("sports, business").run()
    app.button(key="cls-run").click().run()
    assert not app.exception and not app.error
    encoding = json.loads(app.get("vega_lite_chart")[0].proto.spec)["encoding"]
    value_axis = next(a for a in (encoding["x"], encoding["y"]) if a["type"] == "quantitative")
    label_axis = next(a for a in (encoding["x"], encoding["y"]) if a["type"] != "quantitative")
    assert value_axis["title"] == "probability"
    assert label_axis["title"] != "probability"


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


def test_labels_given_to_a_classifier_with_its_own_are_explained_in_page_terms() -> None:
    model = tiny_model_dir("bert", kind="sequence-classification", labels=("neg", "pos"))
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    app.selectbox(key="cls-model").set_value("Other: a hub id or a local path…").run()
    app.text_input(key="cls-model-other").set_value(str(model)).run()
    app.text_input(key="cls-labels").set_value("sports, business").run()
    app.button(key="cls-run").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        f"{model} has its own labels (neg, pos): clear the 'Zero-shot labels' field to use "
        "them, or pick an encoder (minilm-l6) or an NLI model for labels of your own"
    ]
