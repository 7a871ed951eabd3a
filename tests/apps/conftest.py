"""What the page tests share: the suite's entry script, a home on the real store, AppTest
helpers.

The pages are driven headless with Streamlit's AppTest (tests/apps/test_browser.py drives a
real browser instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from quintet.core.store import ModelStore

if TYPE_CHECKING:  # Streamlit loads only for the tests that open a page
    from streamlit.testing.v1 import AppTest

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "home.py")  # the suite's Home page
T = TypeVar("T")


@pytest.fixture
def home(real_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh QUINTET_HOME whose models are the real store's, read-only by convention:
    evaluation reports and uploads stay here; tests that write models use ``tmp_home``."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(real_store.models_dir)
    monkeypatch.setenv("QUINTET_HOME", str(home))
    return home


def open_page(page: str) -> AppTest:
    """The suite opened on Home, then switched to ``page`` (``"chat/page.py"``); no exception."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(HOME, default_timeout=120).run()
    app.switch_page(page).run()
    assert not app.exception
    return app


def wait_for(predicate: Callable[[], T], timeout: float = 300.0) -> T:
    """The first true value of ``predicate()``, polled every 0.5 s; AssertionError after
    ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")
