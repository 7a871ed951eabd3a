"""The Question answering page, headless with AppTest: answer, highlight, batch."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.testing import tiny_model_dir

PAGE = str(Path(__file__).resolve().parents[3] / "apps" / "qa" / "page.py")
OTHER = "Other: a hub id or a local path…"


def _page_on_tiny_model() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not app.exception
    app.selectbox(key="qa-model").set_value(OTHER).run()
    app.text_input(key="qa-model-other").set_value(str(tiny_model_dir("bert", kind="span"))).run()
    return app


def test_answer_is_highlighted_in_the_context() -> None:
    app = _page_on_tiny_model()
    app.number_input(key="qa-top-k").set_value(3).run()
    app.button(key="qa-run").click().run()
    assert not app.exception and not app.error
    marked = [m.value for m in app.markdown if "<mark" in m.value]
    assert len(marked) == 1
    answer = marked[0].split('">', 1)[1].split("</mark>", 1)[0]
    assert answer and answer in app.text_area(key="qa-context").value
    assert any(s.value.startswith(f"**{answer}**") for s in app.success)
    assert len(app.dataframe) == 1  # the three answers


def test_empty_question_shows_a_readable_error() -> None:
    app = _page_on_tiny_model()
    app.text_input(key="qa-question").set_value("   ").run()
    app.button(key="qa-run").click().run()
    assert not app.exception and not app.error
    assert [w.value for w in app.warning] == ["Type a question first."]


def test_an_empty_question_in_a_batch_is_named_by_its_row_from_one() -> None:
    app = _page_on_tiny_model()
    csv_text = "question,context\nWho won?,The Broncos won.\n ,Some text.\n"
    app.file_uploader(key="qa-batch").upload("qs.csv", csv_text.encode(), "text/csv").run()
    app.button(key="qa-batch-run").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Row 2 of qs.csv has no question in column 'question': fill it in or remove the row."
    ]


def test_answers_to_show_says_why_fewer_came_back() -> None:
    app = _page_on_tiny_model()
    app.number_input(key="qa-top-k").set_value(10).run()
    app.text_area(key="qa-context").set_value("Paris.").run()
    app.number_input(key="qa-max-len").set_value(1).run()
    app.button(key="qa-run").click().run()
    assert not app.exception and not app.error
    shown = len(app.dataframe[0].value) if app.dataframe else 1
    assert shown < 10
    assert any(c.value.startswith(f"{shown} of the 10 answers asked for: the context has no more")
               for c in app.caption)  # fmt: skip


def test_real_offline_model_answers_the_prefilled_example_grounded(real_store) -> None:
    """The page on SmolLM2 (generative, grounded): an answer is a highlighted span of the
    context or an explicit "no answer", never text the context lacks."""
    app = AppTest.from_file(PAGE, default_timeout=300).run()
    app.selectbox(key="qa-model").set_value(OTHER).run()
    app.text_input(key="qa-model-other").set_value("smollm2-135m-instruct").run()
    app.button(key="qa-run").click().run()
    assert not app.exception and not app.error
    context = app.text_area(key="qa-context").value
    marked = [m.value for m in app.markdown if "<mark" in m.value]
    if marked:
        answer = marked[0].split('">', 1)[1].split("</mark>", 1)[0]
        assert answer and answer in context
        shown = [s.value for s in app.success if s.value.startswith(f"**{answer}**")]
        assert shown and "model confidence" in shown[0]  # not a span probability
    else:
        assert any(
            w.value.startswith("The model's answer is not in the context") for w in app.warning
        )


def test_a_generative_answer_outside_the_context_is_not_called_no_answer(real_store) -> None:
    """'No answer' is the SQuAD v2 option, unticked here; SmolLM2 answering with words the
    context lacks is said as such, and it gives one answer whatever "Answers to show" says."""
    app = AppTest.from_file(PAGE, default_timeout=300).run()
    app.selectbox(key="qa-model").set_value(OTHER).run()
    app.text_input(key="qa-model-other").set_value("smollm2-135m-instruct").run()
    app.number_input(key="qa-top-k").set_value(10).run()
    app.text_area(key="qa-context").set_value(
        "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."
    ).run()
    app.text_input(key="qa-question").set_value("Who wrote Hamlet?").run()
    app.button(key="qa-run").click().run()
    assert not app.exception and not app.error
    assert not app.checkbox(key="qa-allow-none").value
    assert not any(w.value.startswith("No answer") for w in app.warning)
    assert any(
        c.value == "1 of the 10 answers asked for: a generative model gives one answer."
        for c in app.caption
    )


def test_batch_csv_answers_each_question_from_its_context() -> None:
    app = _page_on_tiny_model()
    csv_text = (
        "question,context\n"
        "Who won?,The Denver Broncos won Super Bowl 50.\n"
        "Where was it?,The game was played in Santa Clara.\n"
        "Anything?,\n"
    )
    app.file_uploader(key="qa-batch").upload("qs.csv", csv_text.encode(), "text/csv").run()
    assert app.selectbox(key="qa-batch-column").value == "question"
    assert app.selectbox(key="qa-ctx-col").value == "context"
    app.button(key="qa-batch-run").click().run()
    assert not app.exception and not app.error
    rows = app.dataframe[0].value
    contexts = list(rows["context"].fillna(""))
    for context, answer, start, end in zip(
        contexts, rows["answer"].fillna(""), rows["answer_start"], rows["answer_end"], strict=True
    ):
        assert context[int(start) : int(end)] == answer  # offsets index the row's own context
    assert rows["answer"].fillna("").iloc[2] == ""  # an empty context: no answer
    keys = {b.key for b in app.get("download_button")}
    assert {"qa-download-csv", "qa-download-jsonl"} <= keys
