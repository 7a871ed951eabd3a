"""What each fine-tuning task reads, which model kind it trains, and how it is validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quintet.core import data
from quintet.core.errors import ConfigError
from quintet.core.examples import ChatExample, PairExample
from quintet.core.task_prompts import summarize_prompt

KIND_BY_TASK = {
    "classification": "sequence-classification",
    "qa": "span",
    "chat": "causal",
}
DEFAULT_MAX_LENGTH = {
    "sequence-classification": 128,
    "span": 384,
    "causal": 768,
    "seq2seq": 512,
}


@dataclass(frozen=True)
class FieldNames:
    """Column names in the data file; None picks the reader's default for the task."""

    text: str | None = None
    target: str | None = None
    label: str | None = None


def read_task_data(task: str, path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Read and validate a task's examples; bad data fails here, before any model work."""
    if task == "classification":
        return data.read_classification(
            path, text_field=fields.text, label_field=fields.label, multi_label=multi_label
        )
    if task == "qa":
        return data.read_qa(path)
    if task in ("summarization", "translation"):
        return data.read_pairs(path, source_field=fields.text, target_field=fields.target)
    if task == "chat":
        chats = data.read_chats(path)
        bad = [c for c in chats if not any(m["role"] == "assistant" for m in c.messages)]
        if bad:
            raise data.DataError.at(
                bad[0].source, "conversation has no assistant message to learn from"
            )
        return chats
    raise ConfigError(
        f"unknown task {task!r}: choose classification, qa, summarization, translation or chat"
    )


def model_kind(task: str, is_encoder_decoder: bool) -> str:
    """The model kind a task trains: summarization and translation follow the base model."""
    if task in KIND_BY_TASK:
        return KIND_BY_TASK[task]
    return "seq2seq" if is_encoder_decoder else "causal"


def as_chats(task: str, examples: Sequence[Any]) -> list[ChatExample]:
    """Pairs become chats for decoder-only models, with the prompt the apps use."""
    if task == "chat":
        return list(examples)
    if task == "summarization":
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
    raise ConfigError(
        f"fine-tuning a decoder-only model for {task} is not supported: use a seq2seq base "
        "model (e.g. an opus-mt model) for translation"
    )
