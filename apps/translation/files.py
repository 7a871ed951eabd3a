"""Translate a text file line by line, with bounded memory, progress and resume.

Lines are read and translated ``chunk_lines`` at a time and each chunk is appended to the
output and flushed before the next is read, so memory does not grow with the file and a
stopped run keeps everything finished. Resuming counts the complete lines already in the
output (a partial last line, from a kill mid-write, is cut off and redone) and skips that
many input lines. Empty lines stay empty.

A line ends at ``\n`` only, the same on read, write and resume (a ``\r\n`` ending is one
line too): Python's default universal newlines would also split at a lone ``\r``, making
the output longer than the input that the resume check counts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from quintet.core.data import DataError
from quintet.core.progress import ProgressCallback, progress_callback

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions


def _complete_lines(path: Path, block: int = 1 << 20) -> int:
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


def open_lines(path: Path) -> TextIO:
    """``path`` opened for reading UTF-8 lines that end at ``\n`` only (see the module doc)."""
    return path.open(encoding="utf-8", errors="strict", newline="\n")


def line_text(line: str) -> str:
    """A line read by :func:`open_lines` without its ``\n`` or ``\r\n`` ending."""
    return line.removesuffix("\n").removesuffix("\r")


def as_one_line(text: str) -> str:
    """A translation kept on its line: any line break inside it (``\n``, ``\r``) becomes a
    space, so the output has exactly one line per input line."""
    return " ".join(text.splitlines())


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
    building its own ``Translator`` like this one, and written in order as they finish: the
    same output, resumable the same way (the lines still to do are read into memory).

    Returns ``{"lines": total, "translated": done this run, "resumed_from": skipped,
    "model": ..., "route": ...}``.
    """
    source = Path(input_path)
    if not source.is_file():
        raise DataError(input_path, 0, "input file not found")
    target = Path(output_path)
    total = count_text_lines(source)
    done = _complete_lines(target) if resume else 0
    if done > total:
        raise DataError(
            output_path,
            0,
            f"has {done} lines but the input only {total}: "
            "is it the output of another file? delete it or pass resume=False",
        )
    if not resume and target.exists():
        target.unlink()
    # The bar closes itself at the last line (it used to stay open after the job).
    report = progress_callback(progress, total, desc="translating", unit="line")
    report(done, total)
    model = route = ""
    translated = 0
    with open_lines(source) as lines, target.open("a", encoding="utf-8", newline="\n") as out:
        lines = itertools.islice(lines, done, None)
        chunks = ([line_text(line) for line in chunk] for chunk in _chunks(lines, chunk_lines))
        for results in _translated(translator, chunks, src, tgt, decode, cluster):
            out.write("".join(as_one_line(r.text) + "\n" for r in results))
            out.flush()
            os.fsync(out.fileno())
            translated += len(results)
            model, route = results[0].model, results[0].route
            report(done + translated, total)
    return {
        "lines": total,
        "translated": translated,
        "resumed_from": done,
        "model": model,
        "route": route,
    }


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


def _translated(
    translator, chunks: Iterable[list[str]], src: str, tgt: str, decode: dict, cluster
) -> Iterator[list]:
    """Each chunk's results, in order: here, or on the cluster (which reads every chunk
    first, to hand them out)."""
    if cluster is None:
        for texts in chunks:
            yield translator.translate(texts, src, tgt, progress=False, **decode)
        return
    from quintet.core.cluster import run_batches

    recipe = _TranslateOnActor(
        type(translator), translator.model, translator.device, translator.backend,
        translator.batch_size, src, tgt, decode,
    )  # fmt: skip
    for _, results in run_batches(list(chunks), recipe, cluster):
        yield results


@dataclass(frozen=True)
class _TranslateOnActor:
    """What a Ray actor builds once: a ``Translator`` made as the caller's was."""

    kind: type  # the caller's translator class (pickled by name: no import of api.py here)
    model: str | None
    device: str
    backend: str
    batch_size: int
    src: str
    tgt: str
    decode: dict[str, Any]

    def __call__(self) -> Callable[[list[str]], list]:
        translator = self.kind(
            self.model, device=self.device, backend=self.backend, batch_size=self.batch_size
        )
        return lambda texts: translator.translate(
            texts, self.src, self.tgt, progress=False, **self.decode
        )
