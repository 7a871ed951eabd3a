"""What the fine-tuning engine asks of a task: its examples, the model kind it trains, chats.

The engine names no task: each function takes a task's :class:`~quintet.core.tasks.TaskSpec`
(or its name, looked up in :mod:`quintet.core.tasks`), whose :class:`TrainingTask` says how
that task reads its data, which head it trains and how its examples become chats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.core.errors import ConfigError
from quintet.core.examples import ChatExample
from quintet.core.tasks import FieldNames, TaskSpec, TrainingTask, get_task

DEFAULT_MAX_LENGTH = {
    "sequence-classification": 128,
    "span": 384,
    "causal": 768,
    "seq2seq": 512,
}

__all__ = ["DEFAULT_MAX_LENGTH", "FieldNames", "as_chats", "model_kind", "read_task_data"]


def training_of(task: str | TaskSpec) -> TrainingTask:
    """The fine-tuning side of ``task``; a one-line error for a task that cannot be trained."""
    spec = get_task(task)
    if spec.training is None:
        raise ConfigError(f"the {spec.name} task cannot be fine-tuned")
    return spec.training


def read_task_data(
    task: str | TaskSpec, path: str, fields: FieldNames, multi_label: bool = False
) -> list:
    """Read and validate a task's examples; bad data fails here, before any model work."""
    return training_of(task).read(path, fields, multi_label)


def model_kind(task: str | TaskSpec, is_encoder_decoder: bool) -> str:
    """The model kind a task trains: its own head, or the base model's (seq2seq or causal)."""
    kind = training_of(task).kind
    if kind is not None:
        return kind
    return "seq2seq" if is_encoder_decoder else "causal"


def as_chats(task: str | TaskSpec, examples: Sequence[Any]) -> list[ChatExample]:
    """The examples as chats for a decoder-only model, with the prompt the apps use."""
    spec = get_task(task)
    to_chats = training_of(spec).to_chats
    if to_chats is None:
        raise ConfigError(
            f"fine-tuning a decoder-only model for {spec.name} is not supported: use a "
            "seq2seq base model (e.g. an opus-mt model)"
        )
    return to_chats(examples)
