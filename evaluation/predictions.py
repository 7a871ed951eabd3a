"""Reading and writing predictions: the resume log of a run, and given predictions files.

A run appends one JSON line per prediction to ``predictions.jsonl`` as each batch finishes
(flushed, so a killed run loses at most the batch in flight); the final report rewrites the
file with references and per-item scores added. Reading tolerates a truncated last line,
which is what a kill in the middle of a write leaves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from quintet.core.data import DataError
from quintet.evaluation.protocol import EvalItem, Prediction

LOG_NAME = "predictions.jsonl"


def read_log(path: Path) -> dict[str, Prediction]:
    """Predictions already written by an earlier, interrupted run (by item id)."""
    if not path.is_file():
        return {}
    done: dict[str, Prediction] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the write a kill interrupted: that item runs again
            raise DataError.at(
                f"{path}:{number}", "not valid JSON; delete the run folder"
            ) from None
        done[str(record["id"])] = Prediction(
            str(record["id"]), record.get("prediction"), record.get("extra") or {}
        )
    return done


class LogWriter:
    """Appends predictions to the resume log, one flushed JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def __enter__(self) -> LogWriter:
        # A truncated last line from a kill would glue onto the next record: end it first.
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                needs_newline = f.read(1) != b"\n"
            if needs_newline:
                _drop_partial_last_line(self.path)
        self._file = self.path.open("a", encoding="utf-8")
        return self

    def append(self, prediction: Prediction) -> None:
        record = {"id": prediction.id, "prediction": prediction.prediction,
                  "extra": prediction.extra}  # fmt: skip
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def __exit__(
        self, kind: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()


def _drop_partial_last_line(path: Path) -> None:
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    path.write_bytes(keep)


def read_given(path: str, items: Sequence[EvalItem], total: int | None = None) -> list[Prediction]:
    """Predictions from a file, in item order: JSONL with ``id`` and ``prediction``, the
    official SQuAD ``{id: answer}`` JSON, or plain text with one prediction per line (line n
    belongs to item n).

    Plain text is read as the ``sacrebleu`` command line reads a system output: split on
    ``"\\n"`` only (not on U+2028 and the other breaks ``str.splitlines`` knows) and trailing
    whitespace stripped, so scores equal the command line's on the same file. ``total`` is
    the number of items in the whole dataset (before ``--limit``): a text file must have
    exactly that many lines, since a count mismatch means the lines are misaligned.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(path, 0, "predictions file not found")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(path, 0, f"not UTF-8 text ({error.reason})") from None
    if file.suffix == ".json" and text.lstrip().startswith("{"):
        # The official SQuAD predictions format: one JSON object {question id: answer}.
        try:
            table = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(path, error.lineno, f"not valid JSON ({error.msg})") from None
        records = [{"id": k, "prediction": v} for k, v in table.items()]
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    if file.suffix in (".jsonl", ".json"):
        by_id: dict[str, Prediction] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                by_id[str(record["id"])] = Prediction(
                    str(record["id"]), record["prediction"], record.get("extra") or {}
                )
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError.at(
                    f"{path}:{number}", 'expected a JSON object with "id" and "prediction"'
                ) from None
        missing = [item.id for item in items if item.id not in by_id]
        if missing:
            raise DataError(
                path, 0, f"no prediction for {len(missing)} item(s), e.g. id {missing[0]!r}"
            )
        return [by_id[item.id] for item in items]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    lines = [line.rstrip() for line in lines]
    expected = total if total is not None else len(items)
    if len(lines) != expected:
        raise DataError(
            path,
            0,
            f"{len(lines)} lines but the data has {expected} examples; expected one "
            "prediction per line, in the data's order",
        )
    return [Prediction(item.id, line) for item, line in zip(items, lines, strict=False)]
