"""Harnesses are found by task name (entry points), never imported by the evaluation layer."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from quintet.core.errors import QuintetError
from quintet.core.tasks import TASKS
from quintet.evaluation import registry

ROOT = Path(__file__).resolve().parents[2]


def test_every_task_app_declares_its_harness_and_it_loads() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    points = declared[registry.ENTRY_POINT_GROUP]
    assert set(points) == set(TASKS)
    assert registry.task_names()[: len(TASKS)] == list(TASKS)
    for task in TASKS:
        assert points[task] == f"quintet.apps.{task}.harness:HARNESS"
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
