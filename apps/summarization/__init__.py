"""Summarization app: seq2seq summarizers and instruct models, map-reduce for long input.

The names below load on first use (PEP 562), so that importing a sub-module such as
``quintet.apps.summarization.cli`` (for ``quintet --help``) does not import the app, and torch,
with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quintet.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from quintet.apps.summarization.api import STYLES, SummarizationError, Summarizer, SummaryResult

_HOMES = {
    "STYLES": "quintet.apps.summarization.api",
    "SummarizationError": "quintet.apps.summarization.api",
    "Summarizer": "quintet.apps.summarization.api",
    "SummaryResult": "quintet.apps.summarization.api",
}

__all__ = ["STYLES", "SummarizationError", "Summarizer", "SummaryResult"]


__getattr__ = lazy_attributes(__name__, _HOMES)
