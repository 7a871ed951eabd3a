"""Summarization app: seq2seq summarizers and instruct models, map-reduce for long input."""

from apps.summarization.api import STYLES, SummarizationError, Summarizer, SummaryResult

__all__ = ["STYLES", "SummarizationError", "SummaryResult", "Summarizer"]
