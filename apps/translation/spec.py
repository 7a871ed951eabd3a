"""The translation task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from quintet.core.tasks import EvalSet, FieldNames, TaskDefaults, TaskSpec, TrainingTask


def read_pairs(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Source/translation pairs (CSV, TSV, JSONL); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_pairs(path, source_field=fields.text, target_field=fields.target)


SPEC = TaskSpec(
    name="translation",
    title="Translation",
    icon=":material/translate:",
    blurb="Between languages by ISO or FLORES code; long documents and files.",
    kinds=("seq2seq", "causal"),
    aliases=("translate",),
    data_fields=("text", "target"),
    route="translate",
    default_models=TaskDefaults(
        task="translation",
        hub_default="opus-mt-{src}-{tgt}",
        offline_defaults=("smollm2-135m-instruct",),
        mode_note={
            "opus-mt-{src}-{tgt}": "one Marian model per pair; nllb-200-distilled-600m otherwise",
            "smollm2-135m-instruct": "prompted translation: the last resort, low quality",
        },
    ),
    generative=True,
    eval_sets=tuple(
        EvalSet(
            f"FLORES-200 dev, {s} → {t}", "data/translation/flores200_dev", {"src": s, "tgt": t}
        )
        for s, t in (("en", "de"), ("en", "fr"), ("de", "en"), ("en", "es"), ("fr", "en"))
    ),
    harness="quintet.apps.translation.harness:HARNESS",
    # A seq2seq base only: no chat form of a translation pair is trained.
    training=TrainingTask(read=read_pairs),
    order=10,
)
