"""Chat app: sessions with history, streaming and context-window management."""

from apps.chat.api import ChatError, ChatReply, ChatSession, ChatStream

__all__ = ["ChatError", "ChatReply", "ChatSession", "ChatStream"]
