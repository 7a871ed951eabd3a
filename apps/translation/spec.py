"""The translation task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask


def read_pairs(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Source/translation pairs (CSV, TSV, JSONL); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_pairs(path, source_field=fields.text, target_field=fields.target)


SPEC = TaskSpec(
    name="translation",
    title="Translation",
    kinds=("seq2seq", "causal"),
    aliases=("translate",),
    data_fields=("text", "target"),
    route="translate",
    # A seq2seq base only: no chat form of a translation pair is trained.
    training=TrainingTask(read=read_pairs),
    order=10,
)
