"""Harnesses are found by task name (the task specs, entry points), never imported by the
evaluation layer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from quintet.core.errors import QuintetError
from quintet.core.tasks import TASKS, get_task
from quintet.evaluation import registry

ROOT = Path(__file__).resolve().parents[2]


def test_every_task_app_declares_its_harness_and_it_loads() -> None:
    # Declared once, by the task's spec: the plugins' entry points list no built-in task.
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert not set(declared.get(registry.ENTRY_POINT_GROUP, {})) & set(TASKS)
    assert registry.task_names()[: len(TASKS)] == list(TASKS)
    for task in TASKS:
        assert get_task(task).harness == f"quintet.apps.{task}.harness:HARNESS"
        harness = registry.get_harness(task)
        assert harness.task == task and type(harness).__module__ == f"quintet.apps.{task}.harness"


def test_an_unknown_task_is_one_line_naming_the_real_ones() -> None:
    with pytest.raises(QuintetError, match=r"unknown task 'poetry': choose one of translation, "):
        registry.get_harness("poetry")


def test_a_registered_harness_is_found_by_name_and_forgotten() -> None:
    qa = registry.get_harness("qa")
    registry.register("my-task", qa)
    try:
        assert registry.get_harness("my-task") is qa and "my-task" in registry.task_names()
    finally:
        registry.unregister("my-task")
    assert "my-task" not in registry.task_names()


def test_a_plugin_s_harness_entry_point_is_found_by_name(monkeypatch) -> None:
    """A package that adds a task's harness declares it in ``quintet.eval_tasks``."""
    from importlib.metadata import EntryPoint

    point = EntryPoint("plugin-qa", "quintet.apps.qa.harness:HARNESS", registry.ENTRY_POINT_GROUP)

    def points(group: str, name: str | None = None) -> list[EntryPoint]:
        found = [point] if group == registry.ENTRY_POINT_GROUP else []
        return [p for p in found if name in (None, p.name)]

    monkeypatch.setattr(registry, "entry_points", points)
    assert registry.task_names()[-1] == "plugin-qa"
    assert registry.get_harness("plugin-qa") is registry.get_harness("qa")


def test_a_task_without_a_harness_says_so() -> None:
    from quintet.core import tasks

    tasks.register(tasks.TaskSpec(name="poetry", title="Poetry", kinds=("causal",)))
    try:
        with pytest.raises(QuintetError, match=r"task 'poetry' has no evaluation harness: choose"):
            registry.get_harness("poetry")
        assert "poetry" not in registry.task_names()
    finally:
        tasks.unregister("poetry")
