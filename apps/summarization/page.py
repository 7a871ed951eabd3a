"""Streamlit page: summarize typed text, a text file, or a batch file's column.

Widgets only: every summary comes from :class:`quintet.apps.summarization.Summarizer` (shared
between sessions through :func:`quintet.apps.ui.cached_app`). The page shows the model and mode,
whether the input was read as a dialogue, and how a long input was chunked (map-reduce).
"""

from __future__ import annotations

import streamlit as st

from quintet.apps.summarization import STYLES, Summarizer
from quintet.apps.ui import (
    batch_upload,
    cached_app,
    decode_controls,
    download_results,
    engine_picker,
    growing_text,
    guarded,
    model_picker,
    run_in_batches,
    run_with_progress,
    show_timings,
    text_or_file_input,
)
from quintet.apps.ui.recipes import recipe_build_notice

STYLE_LABELS = {
    "default": "One or two sentences",
    "one_sentence": "One sentence",
    "bullets": "Bullet points",
    "detailed": "Detailed paragraph",
}
EXAMPLE = (
    "Anna: Are you coming to the concert tonight?\n"
    "Tom: I'd love to, but I have to finish my report first.\n"
    "Anna: It starts at 8. We could meet at the bar next door at 7:30.\n"
    "Tom: OK, I'll try to be there by 7:30. Can you buy my ticket?\n"
    "Anna: Sure, you can pay me back later."
)


def _chunk_details(result, text: str) -> None:
    info = result.chunks
    kind = "dialogue (speaker turns kept whole)" if result.dialogue else "text"
    if info.count <= 1:
        st.caption(f"Read as {kind}, in one piece.")
        return
    st.caption(
        f"Read as {kind}: too long for one pass, so {info.count} overlapping chunks were "
        f"summarized and their summaries summarized again ({info.rounds} round(s))."
    )
    with st.expander("Chunks"):
        st.dataframe(
            [
                {"chunk": i + 1, "start": a, "end": b, "begins with": text[a : a + 80]}
                for i, (a, b) in enumerate(info.spans)
            ],
            hide_index=True,
        )


def render() -> None:
    st.title("Summarization")
    st.caption(
        "Seq2seq summarizers (BART, PEGASUS, T5) read the text directly; instruct models are "
        "asked by prompt. Dialogues (one 'Name: ...' line per turn) are summarized as "
        "dialogues; long inputs are chunked and summarized map-reduce."
    )
    recipe_build_notice("summarization", key="summarization-recipes")
    with st.sidebar:
        model = model_picker("summarization", key="sum-model")
        style = st.selectbox(
            "Style",
            STYLES,
            key="sum-style",
            format_func=STYLE_LABELS.get,
            help="Instruct models follow it; seq2seq summarizers have their one style.",
        )
        max_length = st.number_input("Max length (tokens)", 4, 1024, 96, 8, key="sum-max")
        min_length = st.number_input("Min length (tokens)", 0, 1024, 0, 8, key="sum-min")
        decode = decode_controls(key="sum-decode", show_max_tokens=False)
        backend = engine_picker("sum-engine")
    text = text_or_file_input("Text to summarize", key="sum-text", value=EXAMPLE, height=240)
    options = {
        "style": style,
        "max_length": int(max_length),
        "min_length": int(min_length) or None,
        **decode,
    }

    if st.button("Summarize", type="primary", key="sum-run"):
        if not text.strip():
            st.info("Type or upload a text first.")
        elif min_length > max_length:
            st.error("Min length is above max length: lower it.")
        else:
            with guarded("summarizing", task="summarization"):
                app = cached_app(Summarizer, model, backend=backend)
                with growing_text() as show:
                    # A long text moves a bar chunk by chunk; a short one grows as it is written.
                    results, seconds = run_with_progress(
                        lambda progress: app.summarize(
                            [text],
                            progress=lambda _stage, done, total: progress(done, total),
                            on_text=show,
                            **options,
                        ),
                        label="Summarizing",
                    )
                result = results[0]
                with st.container(border=True, key="sum-output"):
                    st.text(result.text)
                engine = f" on {result.backend}" if result.backend else ""
                st.caption(f"Model **{result.model}** ({result.mode}){engine}")
                if result.truncated:
                    st.warning("The summary stopped at *Max length*: raise it in the sidebar.")
                _chunk_details(result, text)
                show_timings(seconds, items=1, tokens=result.num_tokens)

    st.divider()
    st.subheader("Batch")
    batch = batch_upload(
        "Documents file (CSV / TSV / JSONL, or .txt: one document per line)",
        key="sum-batch",
        preferred=("dialogue", "document", "article", "text"),
    )
    if batch is not None and st.button("Summarize all", key="sum-batch-run"):
        with guarded("summarizing the batch", task="summarization"):
            app = cached_app(Summarizer, model, backend=backend)
            results, seconds = run_in_batches(
                lambda texts: app.summarize(texts, **options),
                batch.texts,
                batch_size=8,
                label="Summarizing",
            )
            rows = [
                {**row, "summary": r.text, "chunks": r.chunks.count, "cut": r.truncated}
                for row, r in zip(batch.rows, results, strict=True)
            ]
            st.dataframe(rows, hide_index=True)
            if any(r.truncated for r in results):
                cut = sum(r.truncated for r in results)
                st.warning(f"{cut} of the summaries stopped at *Max length* (column `cut`): "
                           "raise it in the sidebar.")  # fmt: skip
            show_timings(seconds, items=len(rows), tokens=sum(r.num_tokens for r in results))
            download_results(rows, key="sum-batch-download", filename="summaries")


render()
