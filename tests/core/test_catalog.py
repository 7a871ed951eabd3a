"""The catalog: every task has a hub default and offline defaults that exist."""

from __future__ import annotations

import pytest

from quintet.core import catalog
from quintet.core.errors import ModelNotFoundError
from quintet.core.packaged import PACKAGED


def test_names_are_unique_and_valid_store_names() -> None:
    from quintet.core.store import validate_name

    names = catalog.names()
    assert len(names) == len(set(names))
    for name in names:
        validate_name(name)


@pytest.mark.parametrize("task", catalog.TASKS)
def test_every_task_has_hub_and_offline_defaults(task: str) -> None:
    defaults = catalog.task_defaults(task)
    assert defaults.offline_defaults
    for name in defaults.offline_defaults:
        entry = catalog.get(name)
        assert entry is not None and entry.source != "hub"
        assert task in entry.tasks
    # The last offline default must be one we can always install: a packaged model.
    assert catalog.get(defaults.offline_defaults[-1]).source == "packaged"
    if "{" not in defaults.hub_default:
        assert catalog.get(defaults.hub_default).source == "hub"


def test_expected_hub_defaults_are_present() -> None:
    hub_ids = {entry.location for entry in catalog.entries(source="hub")}
    assert {
        "Helsinki-NLP/opus-mt-en-de",
        "sshleifer/distilbart-cnn-12-6",
        "distilbert/distilbert-base-cased-distilled-squad",
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "facebook/nllb-200-distilled-600M",
    } <= hub_ids


def test_packaged_entries_match_pull_specs() -> None:
    packaged = {entry.name: entry for entry in catalog.entries(source="packaged")}
    assert set(packaged) == set(PACKAGED)
    for name, entry in packaged.items():
        assert entry.location == PACKAGED[name].requirement
        assert entry.kind == PACKAGED[name].kind


def test_translation_pairs() -> None:
    assert catalog.translation_model_for("en", "de").location == "Helsinki-NLP/opus-mt-en-de"
    assert catalog.translation_model_for("en", "xx") is None


def test_unknown_task() -> None:
    with pytest.raises(ModelNotFoundError, match="unknown task 'poetry'"):
        catalog.task_defaults("poetry")
    with pytest.raises(ModelNotFoundError):
        catalog.entries(task="poetry")
