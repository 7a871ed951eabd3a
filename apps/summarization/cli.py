"""``quintet summarize``: summarize text, standard input or a file.

quintet summarize "A long article ..."
quintet summarize --input meeting.txt --style bullets --max-length 120
cat chat.txt | quintet summarize --model smollm2-135m-samsum

The model, its mode and how the input was chunked go to stderr; a long input's chunk
progress too (``--quiet`` for none).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from apps.cli_io import add_backend_option, checked_arguments, read_stdin, read_text_file
from apps.flags import add_decode_options, decode_from_args
from core.errors import ConfigError
from core.progress import ProgressCallback, progress_callback


def cmd_summarize(args: argparse.Namespace) -> int:
    from apps.summarization import STYLES, Summarizer

    if args.style not in STYLES:  # before a model loads
        raise ConfigError(f"unknown style {args.style!r}: choose one of {', '.join(STYLES)}")
    if args.text and args.input:
        raise ConfigError("give TEXT or --input FILE, not both")
    decode = decode_from_args(args)  # before waiting on standard input
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
    p.add_argument("--input", "-i", help="a UTF-8 text file to summarize (one document)")
    p.add_argument("--output", "-o", help="write the summary here")
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
    p.set_defaults(func=cmd_summarize)
