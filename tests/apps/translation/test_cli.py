"""``quintet translate``: texts, stdin, files with resume, route on stderr, one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from quintet.apps.cli import main
from quintet.core.testing import CORPUS, tiny_model_dir


@pytest.fixture(scope="module")
def marian() -> str:
    return str(tiny_model_dir("marian"))


def test_texts_are_translated_one_per_line_with_the_route_on_stderr(marian, capsys) -> None:
    code = main(["translate", "--src", "en", "--tgt", "de", "--model", marian,
                 "--max-new-tokens", "3", "The cat.", "The dog."])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and len(out.splitlines()) == 2 and all(out.splitlines())
    assert f"model: {marian} (the model you chose)" in err
    assert "stopped at --max-new-tokens" in err  # a cut translation is reported


def test_stdin_is_one_document_with_its_paragraphs(marian, capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("The cat sits.\n\nThe dog runs.\n"))
    code = main(["translate", "--src", "en", "--tgt", "deu_Latn", "-m", marian,
                 "--max-new-tokens", "2"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[1] == "" and lines[0] and lines[2]


def test_file_to_file_resumes_and_file_to_stdout_streams(marian, tmp_path, capsys) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(CORPUS[:50]) + "\n\nlast\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    argv = ["translate", "--src", "en", "--tgt", "de", "-m", marian, "-q",
            "--max-new-tokens", "2", "--input", str(source), "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    first = out.read_text()
    assert len(first.splitlines()) == 52 and first.splitlines()[50] == ""
    assert "52 lines translated" in capsys.readouterr().err
    out.write_text("".join(first.splitlines(keepends=True)[:20]))
    assert main(argv) == 0
    assert "resumed after line 20" in capsys.readouterr().err and out.read_text() == first
    assert main(argv[:-2]) == 0  # no --output: the lines go to stdout
    assert capsys.readouterr().out == first


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--src", "en", "--tgt", "xx", "Hi"], "unknown language code 'xx'"),
        (["--src", "en", "--tgt", "en", "Hi"], "source and target are both English"),
        (["--src", "en", "--tgt", "de", "--input", "/nope.txt"], "--input /nope.txt: no such"),
        (["--src", "en", "--tgt", "de", "--decode", "beams"], "--decode 'beams': expected"),
        (["x", "--src", "en", "--tgt", "de", "--decode", "beams=2"], "unknown decoding option"),
        (
            ["x", "--src", "en", "--tgt", "de", "--decode", "max_new_tokens=1e9"],
            "max_new_tokens 1000000000 is more than",
        ),
        (
            ["x", "--src", "en", "--tgt", "de", "--max-new-tokens", "513"],
            "decoder holds at most 512 tokens; set max_new_tokens to 512 or less",
        ),
    ],
)
def test_user_errors_are_one_line_and_exit_2(marian, capsys, argv, message) -> None:
    code = main(["translate", "-m", marian, *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_unsupported_pair_of_a_named_marian_is_exit_2(tmp_path: Path, capsys) -> None:
    import shutil

    named = tmp_path / "opus-mt-en-de"
    shutil.copytree(tiny_model_dir("marian"), named)
    code = main(["translate", "--src", "en", "--tgt", "fr", "-m", str(named), "Hi"])
    assert code == 2 and "translates en->de, not en->fr" in capsys.readouterr().err


def test_a_file_that_is_not_utf8_fails_before_any_work(marian, tmp_path, capsys) -> None:
    source = tmp_path / "latin1.txt"
    source.write_bytes("first line\nGrüße aus Köln\n".encode("latin-1"))
    out = tmp_path / "out.txt"
    for extra in (["--output", str(out)], []):
        code = main(["translate", "--src", "de", "--tgt", "en", "-m", marian,
                     "--input", str(source), *extra])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and f"{source}:2: not UTF-8 text" in err and "Traceback" not in err
    assert not out.exists()  # refused before an output was opened


def test_file_to_stdout_splits_lines_at_newlines_only(marian, tmp_path, capsys) -> None:
    source = tmp_path / "cr.txt"
    source.write_bytes(b"the house\nis small\rand old\nwhere is\r\nthe station\n")
    argv = ["translate", "--src", "en", "--tgt", "de", "-m", marian, "--max-new-tokens", "2",
            "--input", str(source)]  # fmt: skip
    assert main(argv) == 0
    assert len(capsys.readouterr().out.split("\n")) == 4 + 1  # 4 lines, then the final ""


def test_stdin_that_is_not_utf8_is_one_line(marian, capsys, monkeypatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO("Grüße".encode("latin-1")), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    code = main(["translate", "--src", "de", "--tgt", "en", "-m", marian])
    assert code == 2 and "standard input is not UTF-8 text" in capsys.readouterr().err


def test_unknown_model_is_one_line(capsys) -> None:
    code = main(["translate", "--src", "en", "--tgt", "de", "-m", "no-such-model", "Hi"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'no-such-model'" in err and "Traceback" not in err


def test_a_float_beam_count_from_decode_runs(marian, capsys) -> None:
    code = main(["translate", "--src", "en", "--tgt", "de", "-m", marian, "--max-new-tokens",
                 "3", "The cat.", "--decode", "num_beams=2.0"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and out.strip() and "Traceback" not in err
