"""Which harness evaluates which task, found by name.

A task's harness calls that app's Python API, so it lives with the app
(``apps/<task>/harness.py``), and the evaluation layer must not import the apps (layers:
apps -> evaluation -> core). Each task's spec names its harness
(``TaskSpec.harness = "quintet.apps.qa.harness:HARNESS"``), and the specs are found at run
time through their ``quintet.tasks`` entry points (:mod:`quintet.core.tasks`), the way
lm-evaluation-harness finds task definitions and pytest finds plugins. A package that adds
only a harness, for a task of its own, declares it in the ``quintet.eval_tasks`` entry points
(``my-task = "my_package.harness:HARNESS"``); :func:`register` adds one at run time (a test,
a notebook). Entry points were chosen over a registry the apps fill on import because
``evaluate("qa", ...)`` must work from a plain ``from evaluation.harness import evaluate``,
with no apps module imported first, and a harness module is only imported when its task is
asked for (``quintet eval qa`` does not pay for the chat harness).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pkgutil import resolve_name

from quintet.core.errors import QuintetError
from quintet.core.tasks import TaskSpec, task_specs
from quintet.evaluation.protocol import TaskHarness

# Where a package adds a harness for a task that has no spec (a spec names its own).
ENTRY_POINT_GROUP = "quintet.eval_tasks"

# Harnesses registered at run time (a plugin, a test): checked before the specs.
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


def _evaluated_specs() -> dict[str, TaskSpec]:
    """The specs that name a harness, by task name, in listing order."""
    return {spec.name: spec for spec in task_specs() if spec.harness is not None}


def task_names() -> list[str]:
    """Every task a harness is installed or registered for: the specs' tasks first."""
    specs = _evaluated_specs()
    others = {point.name for point in entry_points(group=ENTRY_POINT_GROUP)} | set(_REGISTERED)
    return [*specs, *sorted(others - set(specs))]


def get_harness(task: str) -> TaskHarness:
    """The harness of ``task``: registered, named by its spec, or a plugin's entry point.

    Raises:
        QuintetError: one line naming the tasks that have a harness.
    """
    if task in _REGISTERED:
        return _REGISTERED[task]
    spec = _evaluated_specs().get(task)
    if spec is not None:
        harness = spec.harness
        # A reference ("module:attr") is imported now: the harness brings torch with it.
        return resolve_name(harness) if isinstance(harness, str) else harness
    points = entry_points(group=ENTRY_POINT_GROUP, name=task)
    if points:
        return next(iter(points)).load()
    known = ", ".join(task_names())
    if any(spec.name == task for spec in task_specs()):
        raise QuintetError(f"task {task!r} has no evaluation harness: choose one of {known}")
    raise QuintetError(f"unknown task {task!r}: choose one of {known}")
