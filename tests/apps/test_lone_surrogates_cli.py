"""A lone surrogate (JSON's ``"\\ud800"``) in any data file the commands read: one line,
``error: FILE:LINE: ...``, exit 2, never a traceback from a tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quintet.core.store import ModelStore
from tests.apps.test_cli import assert_one_line_error, run

BAD = "\\ud800"  # as written in the file: JSON's escape for an unpaired surrogate


def _jsonl(path: Path, *records: str) -> Path:
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    return path


CASES = {
    "chat --load": lambda d: (
        [
            "chat",
            "--message",
            "hello",
            "--max-new-tokens",
            "2",
            "--load",
            str(
                _jsonl(d / "c.json", f'{{"messages": [{{"role": "user", "content": "hi {BAD}"}}]}}')
            ),
        ],
        "c.json:1:",
    ),
    "qa --input": lambda d: (
        [
            "qa",
            "--input",
            str(
                _jsonl(
                    d / "q.jsonl",
                    '{"question": "who?", "context": "Ann."}',
                    f'{{"question": "who {BAD}?", "context": "Ann."}}',
                )
            ),
            "--output",
            str(d / "out.jsonl"),
        ],
        "q.jsonl:2:",
    ),
    "classify --input": lambda d: (
        [
            "classify",
            "--labels",
            "good,bad",
            "--input",
            str(_jsonl(d / "t.jsonl", f'{{"text": "fine {BAD}"}}')),
            "--output",
            str(d / "out.jsonl"),
        ],
        "t.jsonl:1:",
    ),
    "summarize --input": lambda d: (
        [
            "summarize",
            "--input",
            str(_jsonl(d / "s.jsonl", '{"text": "a b c"}', f'{{"text": "x {BAD} y"}}')),
            "--output",
            str(d / "out.jsonl"),
        ],
        "s.jsonl:2:",
    ),
    "eval classification --data": lambda d: (
        [
            "eval",
            "classification",
            "--data",
            str(_jsonl(d / "e.jsonl", f'{{"text": "ok {BAD}", "label": "pos"}}')),
            "--option",
            "labels=pos,neg",
        ],
        "e.jsonl:1:",
    ),
    "eval qa --data": lambda d: (
        [
            "eval",
            "qa",
            "--data",
            str(
                _jsonl(
                    d / "e.jsonl",
                    json.dumps(
                        {
                            "question": "who?",
                            "context": "Ann.",
                            "answers": [{"text": "Ann", "answer_start": 0}],
                        }
                    ),
                    f'{{"question": "who {BAD}?", "context": "Ann.", '
                    '"answers": [{"text": "Ann", "answer_start": 0}]}',
                )
            ),
        ],
        "e.jsonl:2:",
    ),
    "eval translation --data": lambda d: (
        [
            "eval",
            "translation",
            "--data",
            str(_jsonl(d / "e.jsonl", f'{{"source": "Hallo {BAD}", "reference": "Hello"}}')),
            "--src",
            "de",
            "--tgt",
            "en",
            "--model",
            "smollm2-135m-instruct",
        ],
        "e.jsonl:1:",
    ),
    "finetune classification --data": lambda d: (
        [
            "finetune",
            "classification",
            "--model",
            "minilm-l6",
            "--data",
            str(
                _jsonl(
                    d / "f.jsonl",
                    '{"text": "good", "label": "pos"}',
                    f'{{"text": "bad {BAD}", "label": "neg"}}',
                    '{"text": "no", "label": "neg"}',
                )
            ),
            "--output",
            "surrogate-test",
        ],
        "f.jsonl:2:",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_lone_surrogate_in_a_data_file_is_one_line(
    case: str, tmp_path: Path, real_store: ModelStore
) -> None:
    args, where = CASES[case](tmp_path)
    done = run(*args, env={"QUINTET_HOME": str(real_store.home)})
    assert_one_line_error(done, where)
    assert "lone surrogate (\\ud800)" in done.stderr, done.stderr
