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


# Harnesses registered at run time (a plugin, a test): checked before TASK_MODULES.
_REGISTERED: dict[str, TaskHarness] = {}


def register(task: str, harness: TaskHarness) -> None:
    """Make ``harness`` the harness of ``task`` (a new task, or replacing a built-in one).

    Example::

        >>> register("my-task", MyHarness())            # doctest: +SKIP
        >>> evaluate("my-task", data="items.jsonl")     # doctest: +SKIP
    """
    _REGISTERED[task] = harness


def unregister(task: str) -> None:
    """Forget a harness :func:`register` added (built-in tasks come back)."""
    _REGISTERED.pop(task, None)


def get_harness(task: str) -> TaskHarness:
    """The harness of ``task``; a one-line error for an unknown task."""
    if task in _REGISTERED:
        return _REGISTERED[task]
    if task not in TASK_MODULES:
        raise QuintetError(f"unknown task {task!r}: choose one of {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[task]).HARNESS
