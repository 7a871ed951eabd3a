"""File translation: line by line, empty lines kept, bounded chunks, progress, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from quintet.apps.translation import Translator
from quintet.core.data import DataError
from quintet.core.testing import CORPUS, tiny_model_dir


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def marian() -> Translator:
    return Translator(str(tiny_model_dir("marian")))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    lines = [CORPUS[i % len(CORPUS)] if i % 7 else "" for i in range(300)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(marian: Translator, source: Path, output: Path, **options) -> dict:
    return marian.translate_file(
        str(source), str(output), "en", "de", chunk_lines=40, max_new_tokens=3, **options
    )


def test_every_line_translated_empty_lines_kept(marian, source, tmp_path) -> None:
    seen: list[tuple[int, int]] = []
    out = tmp_path / "out.txt"
    info = _run(marian, source, out, progress=lambda d, t: seen.append((d, t)))
    inputs = source.read_text().splitlines()
    outputs = out.read_text().splitlines()
    assert len(outputs) == len(inputs) == info["lines"] == info["translated"] == 300
    assert all((i == "") == (o == "") for i, o in zip(inputs, outputs, strict=True))
    # Written chunk by chunk: progress after each of the 8 chunks (and once at the start).
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and len(seen) == 1 + 8
    assert info["model"].endswith("marian-seq2seq-v1") and info["resumed_from"] == 0


def test_interrupted_run_resumes_to_the_same_output(marian, source, tmp_path) -> None:
    whole = tmp_path / "whole.txt"
    _run(marian, source, whole, progress=False)

    part = tmp_path / "part.txt"
    chunks = []

    def stop_after_three(done: int, total: int) -> None:
        chunks.append(done)
        if len(chunks) == 4:  # the start report + 3 chunks
            raise Stop

    with pytest.raises(Stop):
        _run(marian, source, part, progress=stop_after_three)
    assert len(part.read_text().splitlines()) == 120
    # A kill in the middle of a write leaves a partial last line: it is redone.
    with part.open("a", encoding="utf-8") as f:
        f.write("half a transl")
    info = _run(marian, source, part, progress=False)
    assert info["resumed_from"] == 120 and info["translated"] == 180
    assert part.read_text() == whole.read_text()

    again = _run(marian, source, part, progress=False)  # finished: nothing to do
    assert again["translated"] == 0 and part.read_text() == whole.read_text()


def test_resume_false_starts_over(marian, source, tmp_path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old\n" * 5)
    info = _run(marian, source, out, resume=False, progress=False)
    assert info["resumed_from"] == 0 and "old" not in out.read_text().splitlines()[:5]


def test_output_longer_than_input_is_refused(marian, source, tmp_path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("x\n" * 301)
    with pytest.raises(DataError, match="has 301 lines but the input only 300"):
        _run(marian, source, out, progress=False)


def test_missing_input_is_a_clear_error(marian, tmp_path) -> None:
    with pytest.raises(DataError, match="input file not found"):
        _run(marian, tmp_path / "nope.txt", tmp_path / "out.txt")


@pytest.mark.parametrize("block", [1, 3, 1 << 20])
def test_complete_lines_cuts_the_partial_tail_across_read_blocks(tmp_path, block) -> None:
    from quintet.core.batch_files import complete_lines as _complete_lines

    path = tmp_path / "out.txt"
    path.write_bytes("eins\n\nzwei ä\nhalb".encode())
    assert _complete_lines(path, block) == 3
    assert path.read_bytes() == "eins\n\nzwei ä\n".encode()
    assert _complete_lines(path, block) == 3 and _complete_lines(tmp_path / "none", block) == 0


def test_a_lone_carriage_return_does_not_split_a_line(marian, tmp_path) -> None:
    source = tmp_path / "cr.txt"
    source.write_bytes(b"the house\nis small\rand old\nwhere is\r\nthe station\nhello\n")
    out = tmp_path / "cr.de"
    info = _run(marian, source, out, progress=False)
    assert info["lines"] == info["translated"] == 5
    assert out.read_bytes().count(b"\n") == 5 and b"\r" not in out.read_bytes()
    # Resume counts the same lines: a complete output is not refused, a cut one is finished.
    assert _run(marian, source, out, progress=False)["translated"] == 0
    whole = out.read_bytes()
    out.write_bytes(b"".join(whole.splitlines(keepends=True)[:2]))
    resumed = _run(marian, source, out, progress=False)
    assert resumed["resumed_from"] == 2 and out.read_bytes() == whole
