"""The local inventory of catalog and store models."""

from __future__ import annotations

from pathlib import Path

from quintet.core.inventory import catalog_rows, store_only_rows
from quintet.core.store import ModelStore


def test_empty_store_says_how_to_get_each_local_model(tmp_path: Path, no_hub: Path) -> None:
    rows = {row["name"]: row for row in catalog_rows(ModelStore(tmp_path))}
    assert rows["minilm-l6"]["status"] == "not pulled: quintet models pull minilm-l6"
    assert rows["minilm-l6-squad"]["status"] == "not built: quintet recipes run minilm-l6-squad"
    assert rows["distilbert-squad"]["status"] == "hub only (not cached)"
    assert not any(row["present"] for row in rows.values())
    assert {row["name"] for row in catalog_rows(ModelStore(tmp_path), "qa")} >= {
        "distilbert-squad",
        "minilm-l6-squad",
    }


def test_store_models_outside_the_catalog_are_listed(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with store.staging("my-sentiment") as staging:
        (staging / "config.json").write_text("{}")
        store.commit(staging, "my-sentiment", {"kind": "sequence-classification",
                                               "tasks": ["classification"]})  # fmt: skip
    (row,) = store_only_rows(store)
    assert row["name"] == "my-sentiment" and row["present"] and row["source"] == "store"
    assert row["tasks"] == ["classification"]
