"""``quintet summarize``: text, file, stdin, chunking on stderr, one-line errors."""

from __future__ import annotations

import io

import pytest

from quintet.apps.cli import main
from quintet.apps.summarization import STYLES
from quintet.core.testing import CORPUS, tiny_model_dir


@pytest.fixture(scope="module")
def bart() -> str:
    return str(tiny_model_dir("bart", kind="seq2seq"))


def test_text_is_summarized_with_model_and_chunking_on_stderr(bart, capsys) -> None:
    assert main(["summarize", "-m", bart, "--max-length", "4", "The cat sits on the mat."]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and f"model: {bart} (seq2seq); text, one chunk" in err


def test_long_file_is_map_reduced_and_written(bart, tmp_path, capsys) -> None:
    source, target = tmp_path / "doc.txt", tmp_path / "summary.txt"
    source.write_text(" ".join(CORPUS * 4), encoding="utf-8")
    argv = ["summarize", "-m", bart, "--max-length", "3", "-i", str(source), "-o", str(target)]
    assert main(argv) == 0
    assert target.read_text().strip()
    assert "chunks, 1 reduce round(s)" in capsys.readouterr().err


def test_long_file_shows_chunk_progress_on_stderr_unless_quiet(bart, tmp_path, capsys) -> None:
    source = tmp_path / "doc.txt"
    source.write_text(" ".join(CORPUS * 4), encoding="utf-8")
    argv = ["summarize", "-m", bart, "--max-length", "3", "-i", str(source)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    chunks = int(err.split("; text, ")[1].split(" chunks")[0])
    assert f"summarizing {chunks} chunks:" in err and f"{chunks}/{chunks}" in err
    assert "reduce round 1:" in err and "summarizing" not in out
    assert main([*argv, "--quiet"]) == 0
    assert "summarizing" not in capsys.readouterr().err


def test_stdin_dialogue_is_read_as_dialogue(bart, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Anna: coming tonight?\nTom: yes, at 8\n"))
    assert main(["summarize", "-m", bart, "--max-length", "3"]) == 0
    assert "; dialogue, one chunk" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--style", "haiku", "x"], "unknown style 'haiku'"),
        (["--input", "/nope.txt"], "--input /nope.txt: no such file"),
        (["--decode", "num_beams"], "expected key=value"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(bart, capsys, argv, message) -> None:
    code = main(["summarize", "-m", bart, *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and message in err[-1]


def test_help_lists_every_style(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["summarize", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(style in help_text for style in STYLES)


def test_a_file_that_is_not_utf8_is_one_line(bart, tmp_path, capsys) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes("Grüße aus Köln".encode("latin-1"))
    code = main(["summarize", "-m", bart, "--input", str(source)])
    err = capsys.readouterr().err
    assert code == 2 and f"--input {source}: not UTF-8 text (byte 3)" in err


def test_a_cut_jsonl_batch_resumes_to_the_same_file(bart, tmp_path, capsys) -> None:
    """A batch killed after its first batch and mid-line resumes after the last complete
    line, to the uninterrupted run's file; an output longer than the input is refused."""
    import json

    source = tmp_path / "docs.jsonl"
    with source.open("w") as handle:
        for i in range(20):  # two batches of 16
            handle.write(json.dumps({"id": i, "text": " ".join(CORPUS[i : i + 1 + i % 3])}))
            handle.write("\n")
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    argv = ["summarize", "-m", bart, "--max-length", "4", "--input", str(source), "--output"]
    assert main([*argv, str(whole)]) == 0
    lines = whole.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:16]) + lines[16][:10])
    capsys.readouterr()
    assert main([*argv, str(part)]) == 0
    assert "16 kept from an earlier run" in capsys.readouterr().err
    assert part.read_bytes() == whole.read_bytes()
    part.write_bytes(whole.read_bytes() + lines[0])
    assert main([*argv, str(part)]) == 2
    assert "has 21 docs but the input only 20" in capsys.readouterr().err
