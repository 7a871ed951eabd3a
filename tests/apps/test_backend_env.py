"""An unknown ``QUINTET_BACKEND`` stops every command at start, in one line that lists the
valid values (it used to be ignored by classify and eval, and left serve answering 503)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quintet.core.config import BACKENDS
from quintet.core.store import ModelStore
from tests.apps.test_cli import assert_one_line_error, run


@pytest.mark.parametrize(
    "args",
    [
        ("classify", "a fine film", "--labels", "good,bad"),
        ("eval", "classification", "--data", "{data}", "--option", "labels=pos,neg"),
        ("qa", "--question", "who?", "--context", "Ann."),
        ("chat", "--message", "hi", "--max-new-tokens", "2"),
        ("serve", "--models", "no-such-model"),
    ],
    ids=lambda args: args[0],
)
def test_an_unknown_backend_in_the_environment_is_refused_at_start(
    args: tuple[str, ...], real_store: ModelStore, tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a fine film", "label": "pos"}\n')
    args = tuple(arg.replace("{data}", str(data)) for arg in args)
    started = time.monotonic()
    done = run(*args, env={"QUINTET_BACKEND": "bogus", "QUINTET_HOME": str(real_store.home)})
    assert_one_line_error(done, "unknown backend 'bogus' in $QUINTET_BACKEND")
    assert ", ".join(BACKENDS) in done.stderr
    assert time.monotonic() - started < 30  # at start, before loading a model or binding


def test_the_encoder_engine_checks_the_environment_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from quintet.core.encoders import encoder_engine
    from quintet.core.errors import ConfigError
    from quintet.core.models import load
    from quintet.core.testing import tiny_model_dir

    loaded = load(str(tiny_model_dir("bert", kind="encoder")), device="cpu")
    monkeypatch.setenv("QUINTET_BACKEND", "bogus")
    with pytest.raises(ConfigError, match="unknown backend 'bogus'"):
        encoder_engine(loaded)
