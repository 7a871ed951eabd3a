"""Chat app: sessions with history, streaming and context-window management.

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.chat.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes

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


__getattr__ = lazy_attributes(__name__, _HOMES)
