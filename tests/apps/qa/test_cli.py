"""``quintet qa`` in-process (apps.cli.main): answers, batch mode, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quintet.apps.cli import main
from quintet.core.testing import tiny_model_dir

CONTEXT = "The Denver Broncos defeated the Carolina Panthers 24-10 to win Super Bowl 50."


@pytest.fixture(scope="module")
def tiny() -> str:
    return str(tiny_model_dir("bert", kind="span"))


def test_answer_from_a_context_file_as_json(tiny: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "ctx.txt"
    path.write_text(CONTEXT, encoding="utf-8")
    code = main(["qa", "--model", tiny, "-q", "Who won?", "--context-file", str(path),
                 "--top-k", "3", "--json"])  # fmt: skip
    assert code == 0
    answers = json.loads(capsys.readouterr().out)
    assert len(answers) == 3
    for a in answers:
        assert CONTEXT[a["start"] : a["end"]] == a["text"]


def test_batch_mode_writes_one_line_per_question(tiny: str, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"id": "a", "question": "Who won?", "context": CONTEXT},
            {"id": "b", "question": "Who?", "context": ""}]  # fmt: skip
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out" / "answers.jsonl"
    assert main(["qa", "--model", tiny, "--input", str(source), "--output", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["id"] for w in written] == ["a", "b"]
    first = written[0]["answers_predicted"][0]
    assert CONTEXT[first["start"] : first["end"]] == first["text"] != ""
    assert written[1]["answers_predicted"][0]["text"] == ""


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["qa", "--question", "Who?"], "give the context"),
        (["qa", "--context", "x"], "give --question"),
        (["qa", "-q", "Who?", "--context", "x", "--context-file", "f"], "not both"),
        (["qa", "-q", "Who?", "--context-file", "/nonexistent/ctx.txt"], "no such file"),
        (["qa", "--input", "in.jsonl"], "--output"),
        (["qa", "-q", " ", "--context", "Some text."], "question 0 is empty"),
    ],
)
def test_user_errors_are_one_line(argv, fragment, tiny: str, capsys) -> None:
    assert main([*argv, "--model", tiny]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and fragment in err and "Traceback" not in err


def test_bad_batch_file_names_file_and_line(tiny: str, tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"question": "Who?", "context": "x"}\n{"context": "y"}\n')
    assert main(["qa", "--model", tiny, "--input", str(source), "--output", "o.jsonl"]) == 2
    assert f"{source}:2: no 'question'" in capsys.readouterr().err


def test_a_cut_batch_resumes_to_the_same_file(tiny: str, tmp_path: Path, capsys) -> None:
    """A run killed mid-write (the output cut inside a line) resumes after the last complete
    line: the file equals an uninterrupted run's; --restart starts over."""
    source = tmp_path / "in.jsonl"
    with source.open("w") as handle:
        for i in range(40):  # three batches of 16
            question = ["Who won?", "Who lost?", "What was the score?"][i % 3]
            handle.write(json.dumps({"id": i, "question": question, "context": CONTEXT}) + "\n")
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    argv = ["qa", "--model", tiny, "--input", str(source), "--output"]
    assert main([*argv, str(whole)]) == 0
    lines = whole.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:20]) + lines[20][:25])  # killed writing line 21
    capsys.readouterr()
    assert main([*argv, str(part)]) == 0
    assert "40 answers written" in (err := capsys.readouterr().err)
    assert "20 kept from an earlier run" in err
    assert part.read_bytes() == whole.read_bytes()
    part.write_text('{"id": "another job"}\n')  # not a part of this job: started over
    assert main([*argv, str(part)]) == 0
    assert part.read_bytes() == whole.read_bytes()
    part.write_bytes(b"".join(lines[:5]))
    assert main([*argv, str(part), "--restart"]) == 0
    assert "kept from an earlier run" not in capsys.readouterr().err
    assert part.read_bytes() == whole.read_bytes()
