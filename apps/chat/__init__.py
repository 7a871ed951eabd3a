"""Chat app: sessions with history, streaming and context-window management.

The names below load on first use (PEP 562), so that importing a sub-module such as
``quintet.apps.chat.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quintet.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from quintet.apps.chat.api import ChatReply, ChatSession, ChatStream
    from quintet.apps.chat.history import ChatError

_HOMES = {
    "ChatError": "quintet.apps.chat.history",
    "ChatReply": "quintet.apps.chat.api",
    "ChatSession": "quintet.apps.chat.api",
    "ChatStream": "quintet.apps.chat.api",
}

__all__ = ["ChatError", "ChatReply", "ChatSession", "ChatStream"]


__getattr__ = lazy_attributes(__name__, _HOMES)
