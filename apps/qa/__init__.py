"""Extractive question answering app (:class:`QuestionAnswerer`)."""

from apps.qa.api import NO_ANSWER, Answer, QAError, QuestionAnswerer

__all__ = ["NO_ANSWER", "Answer", "QAError", "QuestionAnswerer"]
