"""Translate a text file line by line, with bounded memory, progress and resume.

The batch-file pipeline (:func:`quintet.core.batch_files.run_batch_file`) does the reading,
resuming, locking and writing: lines are read and translated ``chunk_lines`` at a time and
each chunk is appended to the output and synced before the next is read, so memory does not
grow with the file and a stopped run keeps everything finished. Resuming counts the complete
lines already in the output (a partial last line, from a kill mid-write, is cut off and
redone) and skips that many input lines. Empty lines stay empty; a translation is kept on
its line (:func:`as_one_line`), so the output has exactly one line per input line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from quintet.core.batch_files import (
    TextLines,
    count_text_lines,
    here,
    line_text,
    open_lines,
    run_batch_file,
)
from quintet.core.data import DataError
from quintet.core.progress import ProgressCallback

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions


def as_one_line(text: str) -> str:
    """A translation kept on its line: any line break inside it (``\n``, ``\r``) becomes a
    space, so the output has exactly one line per input line."""
    return " ".join(text.splitlines())


def translate_file(
    translator,
    input_path: str,
    output_path: str,
    src: str,
    tgt: str,
    *,
    chunk_lines: int = 64,
    resume: bool = True,
    progress: bool | ProgressCallback = True,
    cluster: ClusterOptions | None = None,
    **decode,
) -> dict:
    """Translate ``input_path`` into ``output_path``, one output line per input line.

    With ``cluster`` the chunks are translated on Ray actors (:mod:`quintet.core.cluster`), each
    building its own translator as ``translator.batch_worker`` says, and written in order as
    they finish: the same output, resumable the same way (the lines still to do are read into
    memory).

    Returns ``{"lines": total, "translated": done this run, "resumed_from": skipped,
    "model": ..., "route": ...}``.

    Raises:
        DataError: a missing input, a line that is not UTF-8 (before any model work), an
            output with more lines than the input.
        OutputInUseError: another run is writing ``output_path`` now.
    """
    source = Path(input_path)
    if not source.is_file():
        raise DataError(input_path, 0, "input file not found")
    total = count_text_lines(source)
    if cluster is None:
        factory = here(
            lambda texts: translator.translate(texts, src, tgt, progress=False, **decode)
        )
    else:
        factory = translator.batch_worker(src, tgt, decode)
    last: dict[str, Any] = {"model": "", "route": ""}

    def records(lines: list[str], results: list) -> list[str]:
        last["model"], last["route"] = results[0].model, results[0].route
        return [as_one_line(r.text) for r in results]

    with open_lines(source) as lines:
        done = run_batch_file(
            (line_text(line) for line in lines), total, output_path, TextLines(), factory,
            records, batch_size=chunk_lines, resume=resume, progress=progress, cluster=cluster,
            desc="translating", unit="line",
        )  # fmt: skip
    return {
        "lines": total,
        "translated": done.written,
        "resumed_from": done.resumed,
        "model": last["model"],
        "route": last["route"],
    }
