"""The classification task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask


def read_classification(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Labelled texts (CSV, TSV, JSONL, TREC); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_classification(
        path, text_field=fields.text, label_field=fields.label, multi_label=multi_label
    )


SPEC = TaskSpec(
    name="classification",
    title="Classification",
    kinds=("sequence-classification", "encoder", "causal"),
    aliases=("classify",),
    data_fields=("text", "label"),
    route="classify",
    training=TrainingTask(
        read=read_classification, kind="sequence-classification", labelled=True
    ),  # fmt: skip
    order=40,
)
