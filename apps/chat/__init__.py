"""Chat app: sessions with history, streaming and context-window management.

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.chat.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.chat.api import ChatReply, ChatSession, ChatStream
    from apps.chat.history import ChatError

_HOMES = {
    "ChatError": "apps.chat.history",
    "ChatReply": "apps.chat.api",
    "ChatSession": "apps.chat.api",
    "ChatStream": "apps.chat.api",
}

__all__ = ["ChatError", "ChatReply", "ChatSession", "ChatStream"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
