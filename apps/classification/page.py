"""Streamlit page: text classification with a probability bar chart, and CSV batches.

Widgets only: every label comes from :class:`quintet.apps.classification.Classifier` (shared between
sessions through :func:`quintet.apps.ui.cached_app`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from quintet.apps.classification import Classifier
from quintet.apps.classification.api import LabelsNeededError, OwnLabelsError
from quintet.apps.ui import (
    batch_upload,
    cached_app,
    download_results,
    engine_picker,
    guarded,
    model_picker,
    run_in_batches,
    show_timings,
)
from quintet.apps.ui.recipes import recipe_build_notice
from quintet.core.defaults import default_model
from quintet.core.errors import QuintetError

EXAMPLE_LABELS = "positive, negative"  # for the example text below
CHART_BAND_PX = 30  # height of one label's bar band: room for its name on the axis


def _zero_shot_default(model: str | None) -> str:
    """How the default model classifies when it is zero-shot ("" otherwise, or not the
    default: a model the user picked is theirs to give labels to)."""
    try:
        choice = default_model("classification")
    except QuintetError:  # no model at all: the picker already says so
        return ""
    return choice.mode if model == choice.name and choice.mode != "native" else ""


def _load(model: str | None, labels: list[str] | None, multi: bool, backend: str) -> Classifier:
    """The shared classifier, with the API's label errors said in the page's own terms."""
    try:
        return cached_app(
            Classifier, model, labels=labels, multi_label=multi or None, backend=backend
        )
    except LabelsNeededError:
        raise QuintetError(
            f"{model or 'The default model'} has no classification head, so it classifies "
            "zero-shot and needs labels: type them in the sidebar under 'Zero-shot labels' "
            "(e.g. positive, negative), or pick a fine-tuned classifier (the Fine-tuning page "
            "trains one)"
        ) from None
    except OwnLabelsError as exc:
        raise QuintetError(
            f"{model} has its own labels ({', '.join(exc.own_labels)}): clear the "
            "'Zero-shot labels' field to use them, or pick an encoder (minilm-l6) or an NLI "
            "model for labels of your own"
        ) from None


def probability_chart(scores: dict[str, float]) -> dict:
    """A Vega-Lite horizontal bar chart of one text's label probabilities.

    The probability axis is fixed to 0..1 (a chart scaled to its own maximum drew 0.03 as a
    full bar), and each label gets a band of its own height (two labels in a chart of fixed
    height printed on top of each other).
    """
    return {
        "data": {"values": [{"label": k, "probability": v} for k, v in scores.items()]},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {
                "field": "label",
                "type": "nominal",
                "sort": None,
                "title": None,
                "axis": {"labelLimit": 280},
            },
            "x": {
                "field": "probability",
                "type": "quantitative",
                "title": "probability",
                "scale": {"domain": [0, 1]},
                "axis": {"format": ".1f"},
            },
        },
        "height": {"step": CHART_BAND_PX},
    }


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The batch results for the page's table: probabilities as numbers, and blank (not
    "None") where a row had no text to classify."""
    table = pd.DataFrame(rows)
    for column in table.columns:
        if column == "confidence" or column.startswith("p_"):
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def _labels(raw: str) -> list[str] | None:
    labels = [x.strip() for x in raw.split(",") if x.strip()]
    return labels or None


def render() -> None:
    st.title("Classification")
    st.caption(
        "A fine-tuned classifier uses its own labels; give labels of your own for zero-shot "
        "(an encoder by embedding similarity, an instruct model by label likelihood, an NLI "
        "model by entailment)."
    )
    recipe_build_notice("classification", key="classification-recipes")
    with st.sidebar:
        model = model_picker("classification", key="cls-model")
        zero_shot = _zero_shot_default(model)
        raw_labels = st.text_input(
            "Zero-shot labels (comma-separated)",
            # The offline default without a fine-tuned classifier is zero-shot: it needs
            # labels, so the sentiment example comes with sentiment labels.
            value=EXAMPLE_LABELS if zero_shot else "",
            key="cls-labels",
            # Instructions, not example labels: grey example labels read as labels already set.
            placeholder="none: type labels for zero-shot",
            help="Comma-separated, e.g. sports, business, politics. Needed by models without "
            "a classification head (sentence encoders, instruct models); a fine-tuned "
            "classifier uses its own labels and takes none.",
        )
        if zero_shot:
            st.caption(f"{model} classifies zero-shot ({zero_shot}): it needs labels.")
        multi = st.checkbox("Multi-label (independent probabilities)", key="cls-multi")
        threshold = st.slider("Multi-label threshold", 0.0, 1.0, 0.5, 0.05, key="cls-threshold",
                              disabled=not multi)  # fmt: skip
        backend = engine_picker("cls-engine", generative=False)
    labels = _labels(raw_labels)
    texts_raw = st.text_area("Texts, one per line", "a joy to watch, moving and funny",
                             key="cls-texts", height=140)  # fmt: skip
    if st.button("Classify", type="primary", key="cls-run"):
        texts = [t for t in texts_raw.splitlines() if t.strip()]
        if not texts:
            st.warning("Type at least one text.")
        with guarded("classifying", task="classification"):
            if texts:
                app = _load(model, labels, multi, backend)
                results, seconds = run_in_batches(
                    lambda chunk: app.classify(chunk, threshold=threshold), texts,
                    batch_size=32, label="Classifying",
                )  # fmt: skip
                for text, r in zip(texts, results, strict=True):
                    chosen = ", ".join(r.labels) if multi else r.label
                    st.markdown(f"**{chosen or '(no label over the threshold)'}** "
                                f"({r.score:.2f}) · {text}")  # fmt: skip
                    st.vega_lite_chart(probability_chart(r.scores), width="stretch")
                show_timings(seconds, items=len(texts), model=app.model_name, mode=app.mode,
                             temperature=f"{app.temperature:.3g}")  # fmt: skip

    st.divider()
    st.subheader("Batch")
    batch = batch_upload("File to classify (CSV / TSV / JSONL / text)", key="cls-batch")
    if batch is not None and st.button("Classify all", key="cls-batch-run"):
        with guarded("classifying the batch", task="classification"):
            app = _load(model, labels, multi, backend)
            present = [i for i, t in enumerate(batch.texts) if t.strip()]
            results, seconds = run_in_batches(
                lambda chunk: app.classify(chunk, threshold=threshold),
                [batch.texts[i] for i in present], batch_size=32, label="Classifying",
            )  # fmt: skip
            by_row = dict(zip(present, results, strict=True))
            rows = []
            for i, row in enumerate(batch.rows):
                r = by_row.get(i)
                out = {**row, "predicted_label": "", "confidence": None}
                if r is not None:
                    out["predicted_label"] = "|".join(r.labels) if multi else r.label
                    out["confidence"] = round(r.score, 4)
                    out.update({f"p_{k}": round(v, 4) for k, v in r.scores.items()})
                rows.append(out)
            st.dataframe(results_table(rows).style.format(precision=4, na_rep=""),
                         hide_index=True)  # fmt: skip
            counts: dict[str, int] = {}
            for row in rows:
                counts[row["predicted_label"] or "(empty text)"] = (
                    counts.get(row["predicted_label"] or "(empty text)", 0) + 1
                )
            st.bar_chart({"rows": counts}, horizontal=True)
            show_timings(seconds, items=len(present), model=app.model_name)
            download_results(rows, key="cls-download", filename="classified")


render()
