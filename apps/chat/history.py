"""Conversation files: OpenAI-style ``messages`` as JSON, validated on load, saved atomically.

The file format is ``{"model": NAME, "messages": [{"role", "content"}, ...]}`` plus, once the
window overflowed, ``"context_start": N`` (the first N turns, system prompt not counted, are no
longer sent to the model) and ``"summary": TEXT`` (their summary, ``"summarize"`` strategy).
A bare list of messages is read too.
Roles are ``system`` (first message only), ``user`` and ``assistant``; contents are strings.

Example::

    >>> text = to_json("smollm2-135m-instruct", [{"role": "user", "content": "Hi"}])
    >>> parse_conversation(text).messages
    [{'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quintet.core.data import check_document
from quintet.core.decoding.types import Message
from quintet.core.errors import QuintetError

ROLES = ("system", "user", "assistant")


class ChatError(QuintetError):
    """A chat request or a saved conversation is not usable as it is."""


@dataclass
class Conversation:
    """What a conversation file holds."""

    messages: list[Message]
    model: str | None = None
    summary: str = ""
    context_start: int = 0  # turns (system excluded) before this one are out of the model's view
    extra: dict[str, Any] = field(default_factory=dict)


def check_messages(messages: Any, where: str = "conversation") -> list[Message]:
    """Validate OpenAI-style messages; returns clean copies (``role`` and ``content`` only).

    Raises:
        ChatError: naming ``where``, the message number (0-based, as in the list) and the
            problem: not a list, an unknown role, non-text content, a system message that is
            not the first.
    """
    if not isinstance(messages, list):
        raise ChatError(
            f'{where}: expected {{"messages": [...]}} or a list of messages, '
            f"got {type(messages).__name__}"
        )
    clean: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ChatError(f"{where}: message {i} is {type(m).__name__}, expected an object")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ChatError(
                f"{where}: message {i} has role {role!r}; use one of {', '.join(ROLES)}"
            )
        if not isinstance(content, str):
            raise ChatError(
                f"{where}: message {i} ({role}) content is {type(content).__name__}, expected text"
            )
        if role == "system" and i != 0:
            raise ChatError(f"{where}: message {i} is a system message; only the first may be")
        clean.append({"role": role, "content": content})
    return clean


def parse_conversation(text: str, where: str = "conversation") -> Conversation:
    """Read a conversation from JSON text (see the module docstring for the format)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChatError(
            f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    check_document(where, text, data)  # a lone surrogate: one line here, not in the tokenizer
    if isinstance(data, dict):
        if "messages" not in data:
            raise ChatError(f'{where}: no "messages" field; expected {{"messages": [...]}}')
        messages = check_messages(data["messages"], where)
        model, summary = data.get("model"), data.get("summary") or ""
        if model is not None and not isinstance(model, str):
            raise ChatError(f'{where}: "model" must be a name or path, got {model!r}')
        if not isinstance(summary, str):
            raise ChatError(f'{where}: "summary" must be text, got {type(summary).__name__}')
        start = data.get("context_start", 0)
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise ChatError(f'{where}: "context_start" must be a count of messages, got {start!r}')
        known = ("messages", "model", "summary", "context_start")
        extra = {k: v for k, v in data.items() if k not in known}
        return Conversation(messages, model, summary, start, extra)
    return Conversation(check_messages(data, where))


def read_conversation(source: str | os.PathLike) -> Conversation:
    """A conversation from a file path, or from the JSON text itself."""
    text = str(source)
    if isinstance(source, str) and text.lstrip().startswith(("{", "[")):
        return parse_conversation(text)
    path = Path(source)
    if not path.is_file():
        raise ChatError(f"{path}: no such conversation file")
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChatError(f"{path}: not UTF-8 text; expected a JSON conversation") from None
    return parse_conversation(content, str(path))


def to_json(
    model: str | None, messages: list[Message], summary: str = "", context_start: int = 0
) -> str:
    """The conversation file's text."""
    data: dict[str, Any] = {"model": model, "messages": messages}
    if summary:
        data["summary"] = summary
    if context_start:
        data["context_start"] = context_start
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic
    rename, so a crash mid-write leaves the previous file whole."""
    target = Path(path)
    if target.is_dir():
        raise ChatError(f"{target} is a folder; give a file name such as chat.json")
    if not target.parent.is_dir():
        raise ChatError(f"{target.parent}: no such folder to save {target.name} in")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
