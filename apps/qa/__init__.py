"""Extractive question answering app (:class:`QuestionAnswerer`).

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.qa.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes

if TYPE_CHECKING:
    from apps.qa.api import NO_ANSWER, Answer, QAError, QuestionAnswerer

_HOMES = {
    "Answer": "apps.qa.api",
    "NO_ANSWER": "apps.qa.api",
    "QAError": "apps.qa.api",
    "QuestionAnswerer": "apps.qa.api",
}

__all__ = ["Answer", "NO_ANSWER", "QAError", "QuestionAnswerer"]


__getattr__ = lazy_attributes(__name__, _HOMES)
