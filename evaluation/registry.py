"""Which harness evaluates which task, found by name.

A task's harness calls that app's Python API, so it lives with the app
(``apps/<task>/harness.py``), and the evaluation layer must not import the apps (layers:
apps -> evaluation -> core). The runner therefore finds harnesses the way
lm-evaluation-harness finds task definitions and pytest finds plugins: by name, through the
``quintet.eval_tasks`` entry points that ``pyproject.toml`` declares
(``qa = "quintet.apps.qa.harness:HARNESS"``). Any installed package can add a task the same way;
:func:`register` adds one at run time (a test, a notebook). Entry points were chosen over a
registry the apps fill on import because ``evaluate("qa", ...)`` must work from a plain
``from evaluation.harness import evaluate``, with no apps module imported first, and a
harness module is only imported when its task is asked for (``quintet eval qa`` does not pay
for the chat harness).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from quintet.core.errors import QuintetError
from quintet.core.tasks import task_names as installed_tasks
from quintet.evaluation.protocol import TaskHarness

ENTRY_POINT_GROUP = "quintet.eval_tasks"

# Harnesses registered at run time (a plugin, a test): checked before the entry points.
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


def task_names() -> list[str]:
    """Every task a harness is installed or registered for: Quintet's five first."""
    found = {point.name for point in entry_points(group=ENTRY_POINT_GROUP)} | set(_REGISTERED)
    known = installed_tasks()
    return [t for t in known if t in found] + sorted(found - set(known))


def get_harness(task: str) -> TaskHarness:
    """The harness of ``task``; a one-line error for an unknown task."""
    if task in _REGISTERED:
        return _REGISTERED[task]
    points = entry_points(group=ENTRY_POINT_GROUP, name=task)
    if not points:
        if task in installed_tasks():  # a checkout whose package metadata predates the entry points
            raise QuintetError(
                f"no evaluation harness installed for {task!r}: reinstall Quintet "
                "(pip install -e .) so that its quintet.eval_tasks entry points are registered"
            )
        raise QuintetError(f"unknown task {task!r}: choose one of {', '.join(task_names())}")
    return next(iter(points)).load()
