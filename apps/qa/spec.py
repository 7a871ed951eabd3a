"""The extractive QA task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from typing import Any

from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask


def read_qa(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Questions with their context and answers (SQuAD JSON or JSONL)."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_qa(path)


def article(example: Any) -> str:
    """The article a question is on: questions on one paragraph share answers, so a
    held-out split keeps each article whole (else the answers would leak)."""
    return example.title


SPEC = TaskSpec(
    name="qa",
    title="Question answering",
    kinds=("span", "causal"),
    route="qa",
    training=TrainingTask(read=read_qa, kind="span", group=article),
    order=30,
)
