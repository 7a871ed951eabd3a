"""Classify a column of a CSV / TSV / JSONL file into an output file, resumably.

The output has every input column plus ``predicted_label``, ``confidence`` and one
``p_<label>`` column per label (for multi-label, ``predicted_label`` joins the chosen labels
with ``|``). Rows are written batch by batch; when the output already holds the first rows of
the same job (same columns), they are kept and the job continues after them, so an
interrupted run of a big file resumes instead of starting over. A row a killed run left
half-written at the end is cut off first and classified again (appending after it would glue
the next row onto it).

A row whose text is empty is kept with an empty prediction (so row counts match) rather than
stopping a long job; the count of such rows is returned.

Example::

    >>> clf = Classifier("minilm-l6-sst2")                                  # doctest: +SKIP
    >>> classify_file(clf, "reviews.csv", "out.csv", text_column="review")
    BatchResult(rows=1000, written=1000, resumed=0, empty=0, seconds=12.3)
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from quintet.core.data import TEXT_FIELDS, DataError, read_records
from quintet.core.locks import exclusive_output
from quintet.core.progress import ProgressCallback, progress_callback

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions
    from quintet.core.config import ModelSpec

_OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


class FileClassifier(Protocol):
    """What :func:`classify_file` needs of a classifier.

    :class:`quintet.apps.classification.Classifier` is one. A Protocol rather than an import of
    ``api.py``, which imports this module for ``Classifier.classify_csv``: the two would
    import each other.
    """

    multi_label: bool

    def label_set(self) -> list[str]: ...

    def classify(
        self, texts: list[str], top_k: int | None, multi_label: bool | None, threshold: float
    ) -> list[Any]: ...


@dataclass(frozen=True)
class BatchResult:
    rows: int  # rows in the input
    written: int  # rows classified by this call
    resumed: int  # rows already in the output, kept
    empty: int  # rows with an empty text (empty prediction)
    seconds: float


def _columns(classifier: FileClassifier, input_columns: list[str]) -> list[str]:
    extra = ["predicted_label", "confidence", *(f"p_{x}" for x in classifier.label_set())]
    return [*input_columns, *[c for c in extra if c not in input_columns]]


def _complete_end(path: Path, fmt: str) -> int:
    """The byte offset just past the last complete row of ``path`` (header included).

    A row is complete when it ends with its newline and parses whole: a JSON object for
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


def _existing_rows(path: Path, fmt: str, columns: list[str]) -> int:
    """How many finished rows ``path`` already holds for this job (0 if it is another job).

    A partial last row is cut from the file first.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    end = _complete_end(path, fmt)
    if end < path.stat().st_size:
        os.truncate(path, end)
    try:
        records = read_records(path, fmt)
    except DataError:
        return 0  # a half-written last line: start over rather than guess
    if not records or list(records[0][1].keys()) != columns:
        return 0
    return len(records)


def classify_file(
    classifier: FileClassifier,
    input_path: str | Path,
    output_path: str | Path,
    text_column: str | None = None,
    *,
    top_k: int | None = None,
    threshold: float = 0.5,
    batch_size: int = 64,
    resume: bool = True,
    progress: bool | ProgressCallback = True,
    cluster: ClusterOptions | None = None,
) -> BatchResult:
    """Classify ``text_column`` of every row of ``input_path`` into ``output_path``.

    Args:
        text_column: the column with the texts; None: the first of sentence, text,
            question, content, description.
        resume: keep rows a previous run of the same job already wrote.
        progress: a tqdm bar (True), nothing (False) or a ``(done, total)`` callback.
        cluster: classify the batches on Ray actors (:mod:`quintet.core.cluster`), each with a
            classifier built like this one (an :class:`quintet.apps.classification.Classifier`);
            rows are written in order as they finish, the same output and resume as here.

    Raises:
        DataError: the input is not a readable CSV/TSV/JSONL, or has no such column.
        OutputInUseError: another run is writing ``output_path`` now.
    """
    output_path = Path(output_path)
    if output_path.suffix.lower() not in _OUTPUT_FORMATS:
        raise DataError(output_path, 0, "unknown output extension; expected .csv, .tsv or .jsonl")
    # Held from the resume check to the last row: two writers would interleave their rows.
    with exclusive_output(output_path):
        return _classify_file(
            classifier, Path(input_path), output_path, text_column,
            top_k=top_k, threshold=threshold, batch_size=batch_size, resume=resume,
            progress=progress, cluster=cluster,
        )  # fmt: skip


def _classify_file(
    classifier: FileClassifier,
    input_path: Path,
    output_path: Path,
    text_column: str | None,
    *,
    top_k: int | None,
    threshold: float,
    batch_size: int,
    resume: bool,
    progress: bool | ProgressCallback,
    cluster: ClusterOptions | None = None,
) -> BatchResult:
    started = time.perf_counter()
    fmt = _OUTPUT_FORMATS[output_path.suffix.lower()]
    records = read_records(input_path)
    input_columns = list(records[0][1].keys()) if records else []
    if text_column is None:
        lower = {c.lower(): c for c in input_columns}
        text_column = next((lower[f] for f in TEXT_FIELDS if f in lower), None)
        if text_column is None and records:
            raise DataError(
                input_path,
                records[0][0],
                f"no text column among {input_columns}; name it with text_column= (--text-column)",
            )
    elif records and text_column not in records[0][1]:
        raise DataError(
            input_path, records[0][0], f"no column {text_column!r}; the file has {input_columns}"
        )
    columns = _columns(classifier, input_columns)
    done = _existing_rows(output_path, fmt, columns) if resume else 0
    done = min(done, len(records))
    report = progress_callback(progress, len(records), desc="classifying", unit="row")
    report(done, len(records))
    empty = 0
    output_path.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if done else "w"
    with output_path.open(mode, encoding="utf-8", newline="") as handle:
        writer = _writer(handle, fmt, columns, header=not done)
        batches = [
            [record for _, record in records[begin : begin + batch_size]]
            for begin in range(done, len(records), batch_size)
        ]
        written = done
        for rows, results in _classified(classifier, batches, text_column, top_k, threshold,
                                         cluster):  # fmt: skip
            texts = [str(row.get(text_column) or "") for row in rows]
            present = [i for i, text in enumerate(texts) if text.strip()]
            by_row = dict(zip(present, results, strict=True))
            for i, row in enumerate(rows):
                out = {c: row.get(c, "") for c in input_columns}
                result = by_row.get(i)
                if result is None:
                    empty += 1
                    out.update({c: "" for c in columns if c not in input_columns})
                else:
                    chosen = result.labels if classifier.multi_label else (result.label,)
                    out["predicted_label"] = "|".join(chosen)
                    out["confidence"] = round(result.score, 6)
                    for label in classifier.label_set():
                        p = result.scores.get(label)
                        out[f"p_{label}"] = "" if p is None else round(p, 6)
                writer(out)
            handle.flush()
            written += len(rows)
            report(written, len(records))
    return BatchResult(
        len(records), len(records) - done, done, empty, time.perf_counter() - started
    )


def _classified(
    classifier: FileClassifier,
    batches: list[list[dict]],
    text_column: str,
    top_k: int | None,
    threshold: float,
    cluster: ClusterOptions | None,
) -> Iterator[tuple[list[dict], list]]:
    """``(rows, results)`` per batch in order, one result per row with a non-blank text:
    here, or on the cluster."""
    texts = [[t for row in rows if (t := str(row.get(text_column) or "")).strip()]
             for rows in batches]  # fmt: skip
    if cluster is None:
        for rows, present in zip(batches, texts, strict=True):
            yield rows, classifier.classify(present, top_k, None, threshold)
        return
    from quintet.core.cluster import run_batches

    c: Any = classifier  # a Classifier: what the actors need to build theirs
    recipe = _ClassifyOnActor(
        type(c), c.loaded.spec, c.labels, c.multi_label, dict(c.label_names), c.temperature,
        c.batch_size, c.backend, top_k, threshold,
    )  # fmt: skip
    for index, (_, results) in enumerate(run_batches(texts, recipe, cluster)):
        yield batches[index], results


@dataclass(frozen=True)
class _ClassifyOnActor:
    """What a Ray actor builds once: a classifier made as the caller's was (same model,
    labels, names and temperature, so the same probabilities)."""

    kind: type  # the caller's classifier class (pickled by name: no import of api.py here)
    spec: ModelSpec
    labels: Sequence[str] | None
    multi_label: bool
    label_names: dict[str, str]
    temperature: float
    batch_size: int
    backend: str
    top_k: int | None
    threshold: float

    def __call__(self) -> Callable[[list[str]], list[Any]]:
        from quintet.core.models import load

        classifier = self.kind(
            load(self.spec), self.labels, multi_label=self.multi_label,
            label_names=self.label_names, batch_size=self.batch_size,
            temperature=self.temperature, backend=self.backend,
        )  # fmt: skip
        return lambda texts: classifier.classify(texts, self.top_k, None, self.threshold)


def _writer(handle, fmt: str, columns: list[str], header: bool) -> Callable[[dict], None]:
    if fmt == "jsonl":
        return lambda row: handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if fmt == "tsv":
        # GLUE-style TSV has no quoting (core.data reads it so): tabs/newlines become spaces.
        def write_tsv(row: dict) -> None:
            values = [str(row.get(c, "")).replace("\t", " ").replace("\n", " ") for c in columns]
            handle.write("\t".join(values) + "\n")

        if header:
            handle.write("\t".join(columns) + "\n")
        return write_tsv
    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
    if header:
        writer.writeheader()
    return writer.writerow
