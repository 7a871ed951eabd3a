"""Classify a column of a CSV / TSV / JSONL file into an output file, resumably.

The output has every input column plus ``predicted_label``, ``confidence`` and one
``p_<label>`` column per label (for multi-label, ``predicted_label`` joins the chosen labels
with ``|``). Rows are written batch by batch; when the output already holds the first rows of
the same job (same columns), they are kept and the job continues after them, so an
interrupted run of a big file resumes instead of starting over. A row a killed run left
half-written at the end is cut off first and classified again (appending after it would glue
the next row onto it).

Reading, resuming, the writer lock and Ray are the batch-file pipeline's
(:func:`quintet.core.batch_files.run_batch_file`); this module says which column is
classified and how a result becomes output columns.

A row whose text is empty is kept with an empty prediction (so row counts match) rather than
stopping a long job; the count of such rows is returned.

Example::

    >>> clf = Classifier("minilm-l6-sst2")                                  # doctest: +SKIP
    >>> classify_file(clf, "reviews.csv", "out.csv", text_column="review")
    BatchResult(rows=1000, written=1000, resumed=0, empty=0, seconds=12.3)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from quintet.core.batch_files import Records, here, run_batch_file
from quintet.core.data import TEXT_FIELDS, DataError, read_records
from quintet.core.progress import ProgressCallback

if TYPE_CHECKING:
    from quintet.core.cluster import BatchFunctionFactory, ClusterOptions


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

    def batch_worker(self, top_k: int | None, threshold: float) -> BatchFunctionFactory:
        """A picklable factory of this classifier's batch function, for Ray actors."""
        ...


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
            classifier built like this one (``classifier.batch_worker``); rows are written in
            order as they finish, the same output and resume as here.

    Raises:
        DataError: the input is not a readable CSV/TSV/JSONL, or has no such column.
        OutputInUseError: another run is writing ``output_path`` now.
    """
    output_path = Path(output_path)
    Records.for_path(output_path)  # an unknown extension fails before the input is read
    input_path = Path(input_path)
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
    labels = classifier.label_set()
    empty = 0

    def texts(rows: list[dict]) -> list[str]:
        """What the classifier gets of a batch: the rows' texts that are not blank."""
        return [t for row in rows if (t := str(row.get(text_column) or "")).strip()]

    def output_rows(rows: list[dict], results: list) -> list[dict]:
        nonlocal empty
        present = [i for i, row in enumerate(rows) if str(row.get(text_column) or "").strip()]
        by_row = dict(zip(present, results, strict=True))
        written = []
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
                for label in labels:
                    p = result.scores.get(label)
                    out[f"p_{label}"] = "" if p is None else round(p, 6)
            written.append(out)
        return written

    if cluster is None:  # the classifier already open here
        factory = here(lambda batch: classifier.classify(batch, top_k, None, threshold))
    else:
        factory = classifier.batch_worker(top_k, threshold)
    done = run_batch_file(
        [record for _, record in records], len(records), output_path,
        Records.for_path(output_path, columns), factory, output_rows, inputs=texts,
        batch_size=batch_size, resume=resume, progress=progress, cluster=cluster,
        desc="classifying", unit="row",
    )  # fmt: skip
    return BatchResult(done.rows, done.written, done.resumed, empty, done.seconds)
