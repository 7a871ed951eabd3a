"""Chat app: sessions with history, streaming and context-window management."""

from apps.chat.api import ChatReply, ChatSession, ChatStream
from apps.chat.history import ChatError

__all__ = ["ChatError", "ChatReply", "ChatSession", "ChatStream"]
