"""The chat task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask


def read_chats(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Conversations (JSONL of messages); each must hold an assistant turn to learn from."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    chats = data.read_chats(path)
    bad = [c for c in chats if not any(m["role"] == "assistant" for m in c.messages)]
    if bad:
        raise data.DataError.at(
            bad[0].source, "conversation has no assistant message to learn from"
        )
    return chats


def as_chats(examples: Sequence[Any]) -> list:
    """Chats are trained as they are."""
    return list(examples)


SPEC = TaskSpec(
    name="chat",
    title="Chat",
    kinds=("causal",),
    route="chat",
    training=TrainingTask(read=read_chats, kind="causal", to_chats=as_chats),
    order=50,
)
