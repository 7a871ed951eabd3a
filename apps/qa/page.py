"""Streamlit page: extractive question answering, the answer highlighted in its context.

Widgets only: every answer comes from :class:`quintet.apps.qa.QuestionAnswerer` (shared between
sessions through :func:`quintet.apps.ui.cached_app`).
"""

from __future__ import annotations

import html

import streamlit as st

from quintet.apps.qa import QuestionAnswerer
from quintet.apps.ui import (
    batch_upload,
    cached_app,
    download_results,
    engine_picker,
    guarded,
    model_picker,
    run_in_batches,
    show_timings,
    text_or_file_input,
)
from quintet.apps.ui.recipes import recipe_build_notice

EXAMPLE_CONTEXT = (
    "Super Bowl 50 was an American football game to determine the champion of the National "
    "Football League (NFL) for the 2015 season. The American Football Conference (AFC) "
    "champion Denver Broncos defeated the National Football Conference (NFC) champion "
    "Carolina Panthers 24-10 to earn their third Super Bowl title. The game was played on "
    "February 7, 2016, at Levi's Stadium in the San Francisco Bay Area at Santa Clara, "
    "California."
)


def highlight(context: str, start: int, end: int) -> str:
    """The context as HTML with ``context[start:end]`` marked (everything escaped)."""
    return (
        html.escape(context[:start])
        + '<mark style="background:#ffe066;padding:0 2px;border-radius:3px">'
        + html.escape(context[start:end])
        + "</mark>"
        + html.escape(context[end:])
    ).replace("\n", "<br>")


def render() -> None:
    st.title("Question answering")
    st.caption("Extractive: the answer is a span of your text, found across windows of any length.")
    recipe_build_notice("qa", key="qa-recipes")
    with st.sidebar:
        model = model_picker("qa", key="qa-model")
        top_k = st.number_input("Answers to show", 1, 10, 1, key="qa-top-k")
        max_len = st.number_input("Longest answer (tokens)", 1, 200, 30, key="qa-max-len")
        allow_none = st.checkbox("Allow 'no answer' (SQuAD v2)", key="qa-allow-none")
        threshold = st.slider("No-answer margin", -10.0, 10.0, 0.0, 0.5, key="qa-threshold",
                              disabled=not allow_none,
                              help="Higher: answer 'no answer' less often.")  # fmt: skip
        backend = engine_picker("qa-engine", generative=False)
    context = text_or_file_input("Context", key="qa-context", value=EXAMPLE_CONTEXT)
    question = st.text_input("Question", "Which team won Super Bowl 50?", key="qa-question")
    clicked = st.button("Answer", type="primary", key="qa-run")
    if clicked and not question.strip():
        st.warning("Type a question first.")
    elif clicked:
        with guarded("answering", task="qa"):
            app = cached_app(QuestionAnswerer, model, backend=backend)
            answers, seconds = run_in_batches(
                lambda pairs: app.answer_many(
                    pairs, int(top_k), int(max_len), allow_none, float(threshold)
                ),
                [(question, context)],
                label="Answering",
            )
            _show(answers[0], context, asked=int(top_k), mode=app.mode)
            show_timings(seconds, items=1, model=app.model_name, mode=app.mode)

    st.divider()
    st.subheader("Batch")
    batch = batch_upload("Questions file (CSV / TSV / JSONL)", key="qa-batch",
                         types=("csv", "tsv", "jsonl"), column_label="Question column",
                         preferred=("question",))  # fmt: skip
    if batch is not None:
        others = [c for c in batch.columns if c != batch.column] or batch.columns
        index = others.index("context") if "context" in others else 0
        context_column = st.selectbox("Context column", others, index=index, key="qa-ctx-col")
        empty = [i for i, r in enumerate(batch.rows) if not str(r.get(batch.column) or "").strip()]
        clicked = st.button("Answer all", key="qa-batch-run")
        if clicked and empty:
            st.error(f"Row {empty[0] + 1} of {batch.filename} has no question in column "
                     f"{batch.column!r}: fill it in or remove the row.")  # fmt: skip
        elif clicked:
            with guarded("answering the batch", task="qa"):
                app = cached_app(QuestionAnswerer, model, backend=backend)
                pairs = [(str(r.get(batch.column, "")), str(r.get(context_column, "")))
                         for r in batch.rows]  # fmt: skip
                results, seconds = run_in_batches(
                    lambda chunk: app.answer_many(chunk, 1, int(max_len), allow_none,
                                                  float(threshold)),
                    pairs,
                    batch_size=16,
                    label="Answering",
                )  # fmt: skip
                rows = [
                    {**row, "answer": a[0].text, "answer_start": a[0].start,
                     "answer_end": a[0].end, "probability": round(a[0].probability, 4)}
                    for row, a in zip(batch.rows, results, strict=True)
                ]  # fmt: skip
                st.dataframe(rows, hide_index=True)
                show_timings(seconds, items=len(rows), model=app.model_name)
                download_results(rows, key="qa-download", filename="answers")


def _show(answers, context: str, *, asked: int, mode: str) -> None:
    best = answers[0]
    if best.is_no_answer and not best.grounded:
        # A generative model said something the context does not hold: that is not the
        # SQuAD v2 "no answer" (which the checkbox turns on), so do not call it that.
        st.warning(
            f"The model's answer is not in the context, so it is not shown as one: it said "
            f"{best.generated!r}. Rephrase the question, or pick an extractive QA model."
        )
    elif best.is_no_answer and not context.strip():
        st.warning("Nothing to answer from: the context is empty.")
    elif best.is_no_answer:
        st.warning("No answer in the context (the no-answer score won; lower the margin "
                   "to answer more often).")  # fmt: skip
    else:
        # A generated answer's number is the model's confidence in its own words, not a
        # probability over spans: label it so.
        kind = "model confidence" if best.generated else "probability"
        st.success(f"**{best.text}**  ·  {kind} {best.probability:.2f}")
        st.markdown(highlight(context, best.start, best.end), unsafe_allow_html=True)
    if len(answers) < asked:
        why = (
            "a generative model gives one answer"
            if mode != "extractive"
            else "the context has no more spans within the longest answer allowed"
        )
        st.caption(f"{len(answers)} of the {asked} answers asked for: {why}.")
    if len(answers) > 1:
        st.dataframe(
            [{"answer": a.text or "(no answer)", "start": a.start, "end": a.end,
              "probability": round(a.probability, 4), "window": a.window} for a in answers],
            hide_index=True,
        )  # fmt: skip


render()
