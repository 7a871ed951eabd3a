"""The batch-file pipeline every batch command runs: lazy batches, resume after a cut, one
writer, formats and their resume checks, ``file:line`` errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quintet.core.batch_files import (
    Records,
    TextLines,
    here,
    read_rows,
    run_batch_file,
)
from quintet.core.data import DataError
from quintet.core.errors import OutputInUseError
from quintet.core.locks import exclusive_output


class Stop(Exception):
    pass


def _shout(rows: list[str]) -> list[str]:
    return [row.upper() for row in rows]


def _lines(rows: list[str], result: list[str]) -> list[str]:
    return result


def test_rows_are_read_a_batch_at_a_time_and_written_in_order(tmp_path: Path) -> None:
    read: list[int] = []

    def rows():
        for i in range(25):
            read.append(i)
            yield f"line {i}"

    def batch(texts: list[str]) -> list[str]:
        # Never more than the batch being run has been read from the input.
        assert len(read) <= texts_seen[0] + len(texts)
        texts_seen[0] += len(texts)
        return _shout(texts)

    texts_seen = [0]
    seen: list[tuple[int, int]] = []
    out = tmp_path / "out.txt"
    done = run_batch_file(rows(), 25, out, TextLines(), here(batch), _lines, batch_size=10,
                          progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert out.read_text().splitlines() == [f"LINE {i}" for i in range(25)]
    assert seen == [(0, 25), (10, 25), (20, 25), (25, 25)]
    assert (done.rows, done.written, done.resumed) == (25, 25, 0)


def test_a_cut_run_resumes_to_the_same_file_and_a_finished_one_opens_nothing(tmp_path) -> None:
    rows = [f"row {i}" for i in range(30)]
    whole, part = tmp_path / "whole.txt", tmp_path / "part.txt"
    run_batch_file(rows, 30, whole, TextLines(), here(_shout), _lines, batch_size=8,
                   progress=False)  # fmt: skip

    def stop_after_two(done: int, total: int) -> None:
        if done >= 16:
            raise Stop

    with pytest.raises(Stop):
        run_batch_file(rows, 30, part, TextLines(), here(_shout), _lines, batch_size=8,
                       progress=stop_after_two)  # fmt: skip
    with part.open("a") as handle:
        handle.write("ROW 1")  # a kill in the middle of a write
    done = run_batch_file(rows, 30, part, TextLines(), here(_shout), _lines, batch_size=8,
                          progress=False)  # fmt: skip
    assert (done.resumed, done.written) == (16, 14)
    assert part.read_bytes() == whole.read_bytes()

    def no_model():
        raise AssertionError("nothing is left to do: no batch function is built")

    again = run_batch_file(rows, 30, part, TextLines(), no_model, _lines, progress=False)
    assert (again.resumed, again.written) == (30, 0) and part.read_bytes() == whole.read_bytes()
    with pytest.raises(DataError, match="has 30 rows but the input only 29"):
        run_batch_file(rows[:29], 29, part, TextLines(), no_model, _lines, progress=False)


def test_one_writer_per_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with exclusive_output(out), pytest.raises(OutputInUseError, match="being written"):
        run_batch_file(["a"], 1, out, Records("jsonl"), here(_shout), _lines, progress=False)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_records_resume_only_an_output_of_the_same_job(tmp_path: Path, suffix: str) -> None:
    rows = [{"id": str(i), "text": f"text {i}"} for i in range(12)]

    def labelled(batch: list[dict], result: list[str]) -> list[dict]:
        return [{**row, "label": label} for row, label in zip(batch, result, strict=True)]

    def run(out: Path, fmt: Records) -> int:
        return run_batch_file(rows, 12, out, fmt, here(lambda texts: _shout(texts)), labelled,
                              inputs=lambda batch: [r["text"] for r in batch], batch_size=5,
                              progress=False).resumed  # fmt: skip

    columns = ("id", "text", "label")
    whole, part = tmp_path / f"whole{suffix}", tmp_path / f"part{suffix}"
    assert run(whole, Records.for_path(whole, columns)) == 0
    first_seven = whole.read_bytes().splitlines(keepends=True)[: 8 if suffix != ".jsonl" else 7]
    part.write_bytes(b"".join(first_seven))
    assert run(part, Records.for_path(part, columns)) == 7
    assert part.read_bytes() == whole.read_bytes()
    # Other columns: another job's output, started over.
    part.write_bytes(b"".join(first_seven))
    assert run(part, Records.for_path(part, ("id", "text", "score"))) == 0
    if suffix == ".jsonl":  # rows with fields added: the first row must be the input's
        part.write_text(json.dumps({"id": "x", "text": "another file", "label": "X"}) + "\n")
        assert run(part, Records.extending(list(enumerate(rows, 1)))) == 0
        assert part.read_text().splitlines()[0].startswith('{"id": "0"')


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n{"text": 3}\n')

    def problem(record: dict) -> str | None:
        return None if isinstance(record["text"], str) else "no 'text' string"

    with pytest.raises(DataError, match=r"in\.jsonl:2: no 'text' string"):
        read_rows(source, check=problem)
    with pytest.raises(DataError, match="unknown output extension"):
        Records.for_path(tmp_path / "out.xlsx")
