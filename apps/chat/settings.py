"""The chat app's settings that the command line needs without loading the app (no torch)."""

from __future__ import annotations

# What happens to the oldest turns when the context window is full.
STRATEGIES: tuple[str, ...] = ("drop", "summarize")
# Replies are longer than a translation or a label: the chat default is above DecodeConfig's.
DEFAULT_MAX_NEW_TOKENS = 256
