"""Typed examples shared by the data readers, fine-tuning and evaluation.

Every example remembers where it came from (``source``: ``"path:line"``) so that any later
problem with it can name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quintet.core.decoding.types import Message


@dataclass(frozen=True)
class ClassificationExample:
    """A text and its label(s); several labels for multi-label data."""

    text: str
    labels: tuple[str, ...]
    source: str = ""
    id: str = ""


@dataclass(frozen=True)
class Answer:
    """A gold answer span: its text and character offset in the context."""

    text: str
    start: int


@dataclass(frozen=True)
class QAExample:
    """An extractive QA example; ``answers`` is empty for a SQuAD v2 style no-answer."""

    id: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    title: str = ""
    source: str = ""


@dataclass(frozen=True)
class PairExample:
    """A source text and its target (summary or translation); several references allowed."""

    source_text: str
    targets: tuple[str, ...]
    source: str = ""
    id: str = ""

    @property
    def target(self) -> str:
        return self.targets[0]


@dataclass(frozen=True)
class ChatExample:
    """A conversation as OpenAI-style messages (the last assistant turn is the target)."""

    messages: tuple[Message, ...]
    source: str = ""
    id: str = ""
    category: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)
