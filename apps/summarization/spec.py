"""The summarization task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.core.task_prompts import summarize_prompt
from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask


def read_pairs(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Document/summary pairs (CSV, TSV, JSONL); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_pairs(path, source_field=fields.text, target_field=fields.target)


def as_chats(examples: Sequence[Any]) -> list:
    """Pairs as chats for a decoder-only model, asked with the prompt the app uses."""
    from quintet.core.examples import ChatExample, PairExample

    return [
        ChatExample(
            messages=(
                {"role": "user", "content": summarize_prompt(e.source_text)},
                {"role": "assistant", "content": e.target},
            ),
            source=e.source,
            id=e.id,
        )
        for e in examples
        if isinstance(e, PairExample)
    ]


SPEC = TaskSpec(
    name="summarization",
    title="Summarization",
    kinds=("seq2seq", "causal"),
    aliases=("summarize",),
    data_fields=("text", "target"),
    route="summarize",
    # T5 was pre-trained with this prefix; it is the only language-free one it knows.
    training=TrainingTask(read=read_pairs, to_chats=as_chats, t5_prefix="summarize: "),
    order=20,
)
