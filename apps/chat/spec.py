"""The chat task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.core.tasks import (
    EvalSet,
    FieldNames,
    TaskDefaults,
    TaskSpec,
    TrainingData,
    TrainingTask,
)


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
    icon=":material/chat:",
    blurb="A streaming assistant with history you can save and load.",
    kinds=("causal",),
    route="chat",
    default_models=TaskDefaults(
        task="chat",
        hub_default="qwen2.5-0.5b-instruct",
        offline_defaults=("smollm2-135m-instruct",),
    ),
    generative=True,
    eval_sets=(EvalSet("MT-Bench questions (80, two turns)", "data/chat/mt_bench/question.jsonl"),),
    harness="quintet.apps.chat.harness:HARNESS",
    training=TrainingTask(
        read=read_chats,
        kind="causal",
        to_chats=as_chats,
        shipped=(TrainingData("Alpaca demo instructions", "chat/alpaca_demo/alpaca_en_demo.json"),),
    ),
    order=50,
)
