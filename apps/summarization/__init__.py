"""Summarization app: seq2seq summarizers and instruct models, map-reduce for long input.

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.summarization.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.summarization.api import STYLES, SummarizationError, Summarizer, SummaryResult

_HOMES = {
    "STYLES": "apps.summarization.api",
    "SummarizationError": "apps.summarization.api",
    "Summarizer": "apps.summarization.api",
    "SummaryResult": "apps.summarization.api",
}

__all__ = ["STYLES", "SummarizationError", "Summarizer", "SummaryResult"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
