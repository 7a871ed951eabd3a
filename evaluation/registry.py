"""Which module evaluates which task.

Each task module defines ``HARNESS``, an object implementing
:class:`evaluation.protocol.TaskHarness`. Modules are imported on first use so that
``quintet eval qa`` does not pay for importing the chat harness.
"""

from __future__ import annotations

import importlib

from core.errors import QuintetError
from evaluation.protocol import TaskHarness

TASK_MODULES: dict[str, str] = {
    "translation": "evaluation.translation",
    "summarization": "evaluation.summarization",
    "qa": "evaluation.qa",
    "classification": "evaluation.classification",
    "chat": "evaluation.chat",
}


def get_harness(task: str) -> TaskHarness:
    """The harness of ``task``; a one-line error for an unknown task."""
    if task not in TASK_MODULES:
        raise QuintetError(f"unknown task {task!r}: choose one of {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[task]).HARNESS
