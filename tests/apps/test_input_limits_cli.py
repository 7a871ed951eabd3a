"""A text over the input limit ($QUINTET_MAX_INPUT_CHARS, default 100,000 characters) is one
line, exit 2, before any model runs it (a 200,000-character row took 6 GB; 900,000 ended in
an ONNX Runtime allocation traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quintet.core.data import DataError, parse_records
from quintet.core.input_limits import DEFAULT_MAX_INPUT_CHARS
from quintet.core.store import ModelStore
from tests.apps.test_cli import assert_one_line_error, run

LONG = "word " * 1000  # 5,000 characters, over the limit of 1,000 the CLI tests set


def _file(path: Path, text: str) -> Path:
    path.write_text(f'{{"text": "short"}}\n{{"text": "{text}"}}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["classify", "--labels", "good,bad", "--input", "{file}", "--output", "{out}"],
         "in.jsonl:2: field 'text' is 5000 characters, over the limit of 1000"),
        (["classify", "--labels", "good,bad", LONG], "the TEXT argument is 5000 characters"),
        (["qa", "--question", "who?", "--context", LONG], "--context is 5000 characters"),
        (["summarize", "--input", "{txt}"], "long.txt is 5000 characters"),
        (["eval", "classification", "--data", "{file}", "--option", "labels=a,b"],
         "in.jsonl:2: field 'text' is 5000 characters"),
    ],
    ids=["classify --input", "classify TEXT", "qa --context", "summarize --input", "eval"],
)  # fmt: skip
def test_a_text_over_the_limit_is_one_line(
    args: list[str], fragment: str, tmp_path: Path, real_store: ModelStore
) -> None:
    files = {
        "{file}": str(_file(tmp_path / "in.jsonl", LONG)),
        "{out}": str(tmp_path / "out.jsonl"),
        "{txt}": str(tmp_path / "long.txt"),
    }
    (tmp_path / "long.txt").write_text(LONG)
    args = [files.get(arg, arg) for arg in args]
    env = {"QUINTET_HOME": str(real_store.home), "QUINTET_MAX_INPUT_CHARS": "1000"}
    done = run(*args, env=env)
    assert_one_line_error(done, fragment)
    assert "$QUINTET_MAX_INPUT_CHARS" in done.stderr


def test_the_default_limit_applies_to_every_data_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUINTET_MAX_INPUT_CHARS", raising=False)
    text = "x" * (DEFAULT_MAX_INPUT_CHARS + 1)
    for name, content in [
        ("a.jsonl", f'{{"text": "{text}"}}\n'),
        ("a.json", f'[{{"text": "{text}"}}]'),
        ("a.csv", f"text\n{text}\n"),
        ("a.tsv", f"text\n{text}\n"),
    ]:
        with pytest.raises(DataError, match=f"{name}:[12]: field 'text' is 100001 characters"):
            parse_records(name, content)
    assert parse_records("ok.csv", "text\n" + "x" * DEFAULT_MAX_INPUT_CHARS + "\n")


def test_a_bad_limit_setting_is_one_line(tmp_path: Path) -> None:
    done = run("classify", "--labels", "a,b", "hi", env={"QUINTET_MAX_INPUT_CHARS": "lots"})
    assert_one_line_error(done, "$QUINTET_MAX_INPUT_CHARS must be a positive whole number")
