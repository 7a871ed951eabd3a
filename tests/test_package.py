"""``import quintet``: one namespace, a light import and a documented public API."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import quintet

ROOT = Path(__file__).resolve().parents[1]


def test_import_quintet_does_not_import_torch() -> None:
    code = "import sys, quintet; quintet.__version__; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("name", [n for n in quintet.__all__ if n != "__version__"])
def test_each_public_name_resolves_with_a_docstring(name: str) -> None:
    value = getattr(quintet, name)
    assert value.__module__.startswith("quintet."), value.__module__
    assert (value.__doc__ or "").strip(), f"quintet.{name} has no docstring"


def test_public_names_are_the_task_apis() -> None:
    from quintet.apps.chat import ChatSession
    from quintet.core.models import load
    from quintet.evaluation.harness import evaluate

    assert quintet.ChatSession is ChatSession
    assert quintet.load_model is load
    assert quintet.evaluate is evaluate
    assert {"Translator", "Summarizer", "QuestionAnswerer", "Classifier", "finetune"} <= set(
        dir(quintet)
    )


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Translater'"):
        quintet.Translater  # noqa: B018 - the access is the test


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads it from the package; nothing else spells it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "quintet.__version__"}
    from importlib.metadata import version

    assert version("quintet") == quintet.__version__


def test_the_layers_install_under_quintet() -> None:
    import quintet.apps
    import quintet.core
    import quintet.data
    import quintet.evaluation

    for package, folder in [
        (quintet.core, "core"), (quintet.apps, "apps"),
        (quintet.evaluation, "evaluation"), (quintet.data, "data"),
    ]:  # fmt: skip
        assert Path(package.__file__).parent.name == folder
