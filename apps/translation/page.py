"""Streamlit page: translate typed text, a text file, or a batch file's column.

Widgets only: every translation comes from :class:`quintet.apps.translation.Translator` (shared
between sessions through :func:`quintet.apps.ui.cached_app`). The page says which model the pair was
routed to and why, how many pieces a long text was split into, and when an output was cut by
the token limit.
"""

from __future__ import annotations

import streamlit as st

from quintet.apps.translation import Translator
from quintet.apps.translation.languages import all_languages
from quintet.apps.ui import (
    batch_upload,
    cached_app,
    decode_controls,
    download_results,
    engine_picker,
    growing_text,
    guarded,
    model_picker,
    run_with_progress,
    show_timings,
    text_or_file_input,
)

AUTO = "Automatic (by language pair)"
EXAMPLE = "The weather is lovely today.\n\nWe are going to the market to buy fresh bread."


def _language_picker(label: str, default: str, key: str) -> str:
    languages = all_languages()
    codes = [lang.iso for lang in languages]
    names = {lang.iso: f"{lang.name} ({lang.iso} · {lang.flores})" for lang in languages}
    return st.selectbox(
        label, codes, index=codes.index(default), key=key, format_func=names.__getitem__
    )


def _route_caption(result) -> None:
    pieces = f" · split into {result.pieces} pieces" if result.pieces > 1 else ""
    engine = f" · on {result.backend}" if result.backend else ""
    st.caption(f"Model **{result.model}** ({result.style}): {result.route}{pieces}{engine}")
    if result.truncated:
        st.warning("Part of the output stopped at *Max new tokens*: raise it in the sidebar.")


def render() -> None:
    st.title("Translation")
    st.caption(
        "Languages by name, ISO 639-1 or FLORES-200 code. Without a chosen model the pair is "
        "routed: the opus-mt model of the pair, else NLLB-200, else the offline instruct model "
        "by prompt (the last resort). Long texts are split into sentences and put back "
        "together with their paragraphs."
    )
    with st.sidebar:
        model = model_picker("translation", key="tr-model", auto_label=AUTO)
        decode = decode_controls(key="tr-decode", max_new_tokens=128, max_tokens_limit=1024)
        backend = engine_picker("tr-engine")
    left, right = st.columns(2)
    with left:
        src = _language_picker("From", "en", "tr-src")
    with right:
        tgt = _language_picker("To", "de", "tr-tgt")
    text = text_or_file_input("Text to translate", key="tr-text", value=EXAMPLE)

    if st.button("Translate", type="primary", key="tr-run"):
        if not text.strip():
            st.info("Type or upload a text first.")
        else:
            with guarded("translating", task="translation"):
                app = cached_app(Translator, model, backend=backend)
                with growing_text() as show:
                    results, seconds = run_with_progress(
                        lambda progress: app.translate(
                            text, src, tgt, progress=progress, on_text=show, **decode
                        ),
                        label="Translating",
                    )
                result = results[0]
                with st.container(border=True, key="tr-output"):
                    st.text(result.text)
                _route_caption(result)
                show_timings(seconds, items=1, tokens=result.num_tokens)
                st.download_button(
                    "Download translation",
                    result.text + "\n",
                    f"translation.{tgt}.txt",
                    "text/plain",
                    key="tr-download",
                )

    st.divider()
    st.subheader("Batch")
    batch = batch_upload(
        "Texts file (CSV / TSV / JSONL, or .txt: one text per line)",
        key="tr-batch",
        preferred=("source", "text", "sentence", "src"),
    )
    if batch is not None and st.button("Translate all", key="tr-batch-run"):
        with guarded("translating the batch", task="translation"):
            app = cached_app(Translator, model, backend=backend)
            results, seconds = run_with_progress(
                lambda progress: app.translate(batch.texts, src, tgt, progress=progress, **decode),
                label="Translating",
            )
            rows = [
                {**row, f"translation_{tgt}": r.text}
                for row, r in zip(batch.rows, results, strict=True)
            ]
            st.dataframe(rows, hide_index=True)
            if results:
                _route_caption(results[0])
            show_timings(seconds, items=len(rows), tokens=sum(r.num_tokens for r in results))
            download_results(rows, key="tr-batch-download", filename=f"translations-{tgt}")


render()
