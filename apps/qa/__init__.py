"""Extractive question answering app (:class:`QuestionAnswerer`).

The names below load on first use (PEP 562), so that importing a sub-module such as
``quintet.apps.qa.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quintet.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from quintet.apps.qa.api import NO_ANSWER, Answer, QAError, QuestionAnswerer

_HOMES = {
    "Answer": "quintet.apps.qa.api",
    "NO_ANSWER": "quintet.apps.qa.api",
    "QAError": "quintet.apps.qa.api",
    "QuestionAnswerer": "quintet.apps.qa.api",
}

__all__ = ["Answer", "NO_ANSWER", "QAError", "QuestionAnswerer"]


__getattr__ = lazy_attributes(__name__, _HOMES)
