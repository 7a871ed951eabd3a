"""Extractive question answering app."""

from apps.qa.api import NO_ANSWER, Answer, QAError, QuestionAnswerer

__all__ = ["NO_ANSWER", "Answer", "QAError", "QuestionAnswerer"]
