"""``quintet summarize``: summarize text, standard input or a file.

quintet summarize "A long article ..."
quintet summarize --input meeting.txt --style bullets --max-length 120
quintet summarize --input articles.jsonl --output summaries.jsonl   # {"text"} per line [--ray]
cat chat.txt | quintet summarize --model smollm2-135m-samsum

The model, its mode and how the input was chunked go to stderr; a long input's chunk
progress too (``--quiet`` for none). A ``.jsonl`` input is a batch: one ``{"text": ...}``
document per line, each written to ``--output`` with ``summary`` added (``--ray``: on a Ray
cluster).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quintet.apps.cli_io import (
    add_backend_option,
    add_cluster_options,
    checked_arguments,
    cluster_options,
    read_stdin,
    read_text_file,
)
from quintet.apps.flags import add_decode_options, decode_from_args
from quintet.core.errors import ConfigError
from quintet.core.progress import ProgressCallback, progress_callback


def cmd_summarize(args: argparse.Namespace) -> int:
    from quintet.apps.summarization import STYLES, Summarizer

    if args.style not in STYLES:  # before a model loads
        raise ConfigError(f"unknown style {args.style!r}: choose one of {', '.join(STYLES)}")
    if args.text and args.input:
        raise ConfigError("give TEXT or --input FILE, not both")
    decode = decode_from_args(args)  # before waiting on standard input
    cluster = cluster_options(args)
    batch = bool(args.input) and Path(args.input).suffix.lower() == ".jsonl"
    if batch and not args.output:
        raise ConfigError("--input FILE.jsonl needs --output FILE.jsonl for the summaries")
    if cluster is not None and not batch:
        raise ConfigError("--ray summarizes files: give --input FILE.jsonl --output FILE.jsonl")
    if batch:
        return _batch(args, decode, cluster)
    if args.input:
        text = read_text_file(args.input, "--input")
    else:
        text = " ".join(checked_arguments(args.text, "TEXT")) if args.text else read_stdin()
    summarizer = Summarizer(args.model, device=args.device, backend=args.backend)
    result = summarizer.summarize(
        text,
        min_length=args.min_length,
        max_length=args.max_length,
        style=args.style,
        progress=None if args.quiet else chunk_bars(),
        **decode,
    )[0]
    if args.output:
        Path(args.output).write_text(result.text + "\n", encoding="utf-8")
    else:
        print(result.text)
    chunks = result.chunks
    how = (
        f"{chunks.count} chunks, {chunks.rounds} reduce round(s)"
        if chunks.count > 1
        else "one chunk"
    )
    kind = "dialogue" if result.dialogue else "text"
    print(
        f"model: {result.model} ({result.mode}); {kind}, {how}; {result.seconds:.1f}s; "
        f"engine: {summarizer.generator.backend_choice.describe()}",
        file=sys.stderr,
    )
    return 0


def _batch(args: argparse.Namespace, decode: dict, cluster) -> int:
    """Summarize every ``{"text"}`` line of ``--input`` into ``--output`` (``summary`` added),
    16 documents per batch, here or on the cluster; a cut run resumes after the last
    complete line (``--restart``: start over)."""
    from quintet.core.batch_files import Records, read_rows, run_batch_file

    def problem(record: dict) -> str | None:
        return (
            None
            if isinstance(record.get("text"), str)
            else ("no 'text'; expected one {\"text\": ...} per line")
        )

    records = read_rows(args.input, "jsonl", problem)
    summarize = _SummarizeOnActor(args.model, args.device, args.backend, args.min_length,
                                  args.max_length, args.style, decode)  # fmt: skip
    model = args.model or "the task default"

    def summarized(rows: list[dict], result: tuple[list[str], str]) -> list[dict]:
        nonlocal model
        summaries, model = result
        return [{**row, "summary": summary} for row, summary in zip(rows, summaries, strict=True)]

    done = run_batch_file(
        [record for _, record in records], len(records), args.output, Records.extending(records),
        summarize, summarized, inputs=lambda rows: [row["text"] for row in rows],
        batch_size=16, resume=not args.restart, cluster=cluster, unit="doc",
    )  # fmt: skip
    resumed = f", {done.resumed} kept from an earlier run" if done.resumed else ""
    print(f"{done.rows} summaries written to {args.output} (model {model}){resumed}",
          file=sys.stderr)  # fmt: skip
    return 0


@dataclass(frozen=True)
class _SummarizeOnActor:
    """Loads the summarizer once (here, or on each Ray actor) and summarizes batches."""

    model: str | None
    device: str
    backend: str
    min_length: int | None
    max_length: int | None
    style: str
    decode: dict[str, Any]

    def __call__(self) -> Callable[[list[str]], tuple[list[str], str]]:
        from quintet.apps.summarization import Summarizer

        summarizer = Summarizer(self.model, device=self.device, backend=self.backend)

        def run(texts: list[str]) -> tuple[list[str], str]:
            results = summarizer.summarize(texts, min_length=self.min_length,
                                           max_length=self.max_length, style=self.style,
                                           **self.decode)  # fmt: skip
            return [r.text for r in results], summarizer.model_name

        return run


def chunk_bars() -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` drawing one bar per stage on stderr."""
    current: list[ProgressCallback] = []  # the bar of the stage under way

    def update(stage: str, done: int, total: int) -> None:
        if done == 0:  # a stage starts
            desc = f"summarizing {total} chunks" if stage == "chunks" else stage
            current[:] = [progress_callback(True, total, desc=desc, unit="chunk", file=sys.stderr)]
        current[0](done, total)

    return update


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``summarize`` to the ``quintet`` parser."""
    p = commands.add_parser(
        "summarize",
        help="summarize text, standard input or a file",
        description="quintet summarize [--model M] [TEXT | --input FILE] [--output FILE]",
    )
    p.add_argument("text", nargs="*", help="the text (default: standard input)")
    p.add_argument("--model", "-m", help="model name, hub id or folder (default: task default)")
    p.add_argument(
        "--input", "-i",
        help="a UTF-8 text file to summarize (one document), or a .jsonl batch of documents",
    )  # fmt: skip
    p.add_argument("--output", "-o", help="write the summary (a .jsonl batch: all) here")
    p.add_argument("--restart", action="store_true", help="a .jsonl batch: do not resume")
    p.add_argument("--min-length", type=int, help="fewest summary tokens")
    p.add_argument("--max-length", type=int, help="most summary tokens (default 96)")
    # Not imported from the API: building the parser must not import torch.
    p.add_argument(
        "--style",
        default="default",
        help="default (one or two sentences), one_sentence, bullets, detailed",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--quiet", "-q", action="store_true", help="no chunk progress")
    # --max-length / --min-length are the summary's length (max_new_tokens, min_new_tokens).
    add_decode_options(p, exclude=("max_new_tokens",))
    add_backend_option(p)
    add_cluster_options(p)
    p.set_defaults(func=cmd_summarize)
