"""One pipeline for every batch-file command: rows in, one output record per row, resumable.

``quintet translate --input/--output``, ``quintet classify --input/--output``, ``quintet qa
--input/--output`` and ``quintet summarize --input/--output`` all run :func:`run_batch_file`;
only what a batch does and how its results become output records is theirs. The pipeline
knows no task:

- **reading**: the apps read their input first, so a bad file fails with ``file:line``
  before any model loads (:func:`read_rows` for records, :func:`count_text_lines` for text);
- **one writer**: the output's lock (:func:`quintet.core.locks.exclusive_output`) is held
  from the resume check to the last record, so a second run on the same output is refused;
- **resume**: the output's complete records are counted (a record a killed run left half
  written is cut off first) and that many input rows are skipped; an output that is not an
  earlier part of this job (other columns) is started over, one longer than the input is
  refused;
- **batches**: rows are cut into batches of ``batch_size`` and run here or on Ray actors
  (:func:`quintet.core.cluster.run_batches_here_or_on`); each batch's records are written,
  flushed and synced before the next, so a kill loses at most the batch in flight;
- **progress**: ``progress(done, total)`` after every batch (a tqdm bar for True).

Output formats: :class:`TextLines` (one line per row: translation) and :class:`Records`
(CSV, TSV or JSONL records: classification, QA, summarization). A line ends at ``\\n`` only,
the same on read, write and resume (a ``\\r\\n`` ending is one line too): Python's universal
newlines would also split at a lone ``\\r``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from quintet.core.cluster import run_batches_here_or_on
from quintet.core.data import DataError, read_records
from quintet.core.locks import exclusive_output
from quintet.core.progress import ProgressCallback, progress_callback

if TYPE_CHECKING:
    from quintet.core.cluster import BatchFunctionFactory, ClusterOptions

Row = TypeVar("Row")

RECORD_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class BatchFileResult:
    """What one run of :func:`run_batch_file` did."""

    rows: int  # rows in the input
    written: int  # rows processed and written by this run
    resumed: int  # rows an earlier run had written, kept
    seconds: float


# Reading --------------------------------------------------------------------------------


def read_rows(
    path: str | os.PathLike,
    format: str | None = None,
    check: Callable[[dict], str | None] | None = None,
) -> list[tuple[int, dict]]:
    """``(line, record)`` pairs of a CSV/TSV/JSONL input; ``check(record)`` returns what is
    wrong with a record (None: nothing), raised as a :class:`DataError` at its line.

    Raises:
        DataError: ``file:line`` and what was expected, for the first bad record.
    """
    records = read_records(path, format)
    if check is not None:
        for line, record in records:
            problem = check(record)
            if problem:
                raise DataError(str(path), line, problem)
    return records


def open_lines(path: Path) -> TextIO:
    """``path`` opened for reading UTF-8 lines that end at ``\\n`` only (see the module doc)."""
    return path.open(encoding="utf-8", errors="strict", newline="\n")


def line_text(line: str) -> str:
    """A line read by :func:`open_lines` without its ``\\n`` or ``\\r\\n`` ending."""
    return line.removesuffix("\n").removesuffix("\r")


def count_text_lines(path: Path) -> int:
    """Lines in ``path``, checking each is UTF-8 so a bad byte fails before any model work.

    Raises:
        DataError: naming the first line that is not UTF-8.
    """
    lines = 0
    with path.open("rb") as f:
        for lines, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    str(path), lines, f"not UTF-8 text (byte {e.start + 1} of the line)"
                ) from None
    return lines


# Output formats ---------------------------------------------------------------------------


class OutputFormat(Protocol):
    """How records are written to an output file and counted on resume."""

    def complete_records(self, path: Path) -> int:
        """Records of this job already complete in ``path`` (0: none, or another job's
        output); a partial record at the end is cut from the file first."""
        ...

    def writer(self, handle: IO[str], fresh: bool) -> Callable[[Any], None]:
        """A function writing one record to ``handle``; ``fresh``: the file is new (write
        a header, if the format has one)."""
        ...


@dataclass(frozen=True)
class TextLines:
    """One output line per row: each record is a string without line breaks."""

    def complete_records(self, path: Path) -> int:
        return complete_lines(path)

    def writer(self, handle: IO[str], fresh: bool) -> Callable[[Any], None]:
        return lambda text: handle.write(f"{text}\n")


@dataclass(frozen=True)
class Records:
    """CSV, TSV or JSONL records (dicts) with ``columns``, in that order.

    A CSV/TSV has a header row. With ``columns`` None (JSONL only), records keep their own
    keys. An output is an earlier part of this job, and resumed, when its first record has
    ``columns`` (in order) and holds every field of ``first_row`` (the first input row, for
    outputs that add fields to their input rows); otherwise it is started over.
    """

    fmt: str  # csv, tsv or jsonl
    columns: tuple[str, ...] | None = None
    first_row: dict[str, Any] | None = None

    @staticmethod
    def for_path(path: str | os.PathLike, columns: Iterable[str] | None = None) -> Records:
        """The format ``path``'s extension names (.csv, .tsv, .jsonl).

        Raises:
            DataError: another extension.
        """
        fmt = RECORD_FORMATS.get(Path(path).suffix.lower())
        if fmt is None:
            raise DataError(str(path), 0, "unknown output extension; expected .csv, .tsv or .jsonl")
        return Records(fmt, tuple(columns) if columns is not None else None)

    @staticmethod
    def extending(rows: list[tuple[int, dict]]) -> Records:
        """JSONL records that are the input ``rows`` (as :func:`read_rows` gives them) with
        fields added: an output whose first record is not the first row's is another job's."""
        return Records("jsonl", first_row=rows[0][1] if rows else None)

    def complete_records(self, path: Path) -> int:
        if not path.is_file() or path.stat().st_size == 0:
            return 0
        end = _complete_end(path, self.fmt)
        if end < path.stat().st_size:
            os.truncate(path, end)
        try:
            records = read_records(path, self.fmt)
        except DataError:
            return 0  # not a file of ours: start over rather than guess
        if not records:
            return 0
        first = records[0][1]
        if self.columns is not None and tuple(first.keys()) != self.columns:
            return 0  # another job's output (other columns): start over
        if self.first_row is not None and any(
            first.get(key) != value for key, value in self.first_row.items()
        ):
            return 0  # the output of another input: start over
        return len(records)

    def writer(self, handle: IO[str], fresh: bool) -> Callable[[Any], None]:
        if self.fmt == "jsonl":
            return lambda row: handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        columns = list(self.columns or ())
        if self.fmt == "tsv":
            # GLUE-style TSV has no quoting (core.data reads it so): tabs/newlines become spaces.
            def write_tsv(row: dict) -> None:
                values = [
                    str(row.get(c, "")).replace("\t", " ").replace("\n", " ") for c in columns
                ]
                handle.write("\t".join(values) + "\n")

            if fresh:
                handle.write("\t".join(columns) + "\n")
            return write_tsv
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        if fresh:
            writer.writeheader()
        return writer.writerow


def complete_lines(path: Path, block: int = 1 << 20) -> int:
    """Complete lines in ``path``; a trailing partial line is cut from the file.

    Reads in blocks, so resuming a large output costs no more memory than a small one.
    """
    if not path.is_file():
        return 0
    lines = end_of_last_line = position = 0
    with path.open("rb") as f:
        while data := f.read(block):
            count = data.count(b"\n")
            if count:
                lines += count
                end_of_last_line = position + data.rfind(b"\n") + 1
            position += len(data)
    if end_of_last_line < position:
        os.truncate(path, end_of_last_line)
    return lines


def _complete_end(path: Path, fmt: str) -> int:
    """The byte offset just past the last complete record of ``path`` (header included).

    A record is complete when it ends with its newline and parses whole: a JSON object for
    JSONL, as many fields as the header for CSV/TSV (a quoted CSV field cut after one of
    its own newlines ends in a newline too, but is an unterminated quote).
    """
    end = 0
    with path.open("rb") as handle:
        if fmt == "jsonl":
            for line in handle:
                try:
                    json.loads(line)
                except ValueError:
                    break
                if not line.endswith(b"\n"):
                    break
                end += len(line)
            return end
        ends: list[int] = []  # byte offset after each line read so far
        unfinished = []  # the last line of the file, when it has no newline

        def lines() -> Iterator[str]:
            for line in handle:
                ends.append((ends[-1] if ends else 0) + len(line))
                if not line.endswith(b"\n"):
                    unfinished.append(line)
                yield line.decode("utf-8", errors="replace")

        options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
        width = None
        try:
            # The reader pulls lines only as the current row needs them, so after each row
            # ends[-1] is where that row stops.
            for row in csv.reader(lines(), strict=True, **options):
                width = width or len(row)
                if len(row) != width or unfinished:
                    break
                end = ends[-1]
        except csv.Error:
            pass  # an unterminated quote at the end of the file: a cut row
    return end


# The pipeline -----------------------------------------------------------------------------


def here(function: Callable[[Any], Any]) -> BatchFunctionFactory:
    """A factory for :func:`run_batch_file` that runs ``function`` in this process (an app
    already open here); a run on Ray needs a picklable factory that opens its own."""
    return lambda: function


def run_batch_file(
    rows: Iterable[Row],
    total: int,
    output: str | os.PathLike,
    fmt: OutputFormat,
    factory: BatchFunctionFactory,
    records: Callable[[list[Row], Any], Iterable[Any]],
    *,
    inputs: Callable[[list[Row]], Any] = list,
    batch_size: int = 64,
    resume: bool = True,
    progress: bool | ProgressCallback = True,
    cluster: ClusterOptions | None = None,
    desc: str | None = None,
    unit: str = "row",
) -> BatchFileResult:
    """Run every row of the input through batches into ``output``, resuming a cut run.

    Args:
        rows: the input rows in order (``total`` of them); an iterator is read lazily, a
            batch at a time, when the batches run here (Ray reads them all first).
        fmt: the output's format (:class:`TextLines`, :class:`Records`).
        factory: builds the batch function once (here, or on each Ray actor).
        records: ``(rows, result) -> output records`` of one batch, one per row.
        inputs: what the batch function gets for a batch of rows (default: the rows).
        resume: keep the records an earlier run of this job wrote; False: start over.
        progress: a tqdm bar (True), nothing (False) or a ``(done, total)`` callback.
        cluster: run the batches on Ray (:mod:`quintet.core.cluster`); the same output.

    Raises:
        DataError: the output holds more records than the input has rows.
        OutputInUseError: another run is writing ``output`` now.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    started = time.perf_counter()
    output = Path(output)
    # Held from the resume check to the last record: two writers would interleave them.
    with exclusive_output(output):
        done = fmt.complete_records(output) if resume else 0
        if done > total:
            raise DataError(
                str(output),
                0,
                f"has {done} {unit}s but the input only {total}: "
                "is it the output of another file? delete it or pass resume=False",
            )
        report = progress_callback(progress, total, desc=desc, unit=unit)
        report(done, total)
        # The batch function sees inputs(rows); the rows stay here, paired back in order.
        pending: deque[list[Row]] = deque()

        def queued() -> Iterator[Any]:
            for batch_rows in _batches(itertools.islice(iter(rows), done, None), batch_size):
                pending.append(batch_rows)
                yield inputs(batch_rows)

        written = done
        with output.open("a" if done else "w", encoding="utf-8", newline="") as handle:
            write = fmt.writer(handle, fresh=not done)
            # Here the batches are read one at a time; Ray reads them all to hand them out.
            results = run_batches_here_or_on(queued(), factory, cluster)
            for _, result in results:
                batch_rows = pending.popleft()
                for record in records(batch_rows, result):
                    write(record)
                handle.flush()
                os.fsync(handle.fileno())
                written += len(batch_rows)
                report(written, total)
    return BatchFileResult(total, written - done, done, time.perf_counter() - started)


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch
