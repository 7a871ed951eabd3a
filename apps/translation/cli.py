"""``quintet translate``: text, stdin or a file, with the route on stderr.

quintet translate --src en --tgt de "The house is small." "Where is the station?"
echo "A whole document ..." | quintet translate --src en --tgt fra_Latn
quintet translate --src en --tgt de --input book.txt --output book.de.txt   # resumable
quintet translate --src de --tgt en --model opus-mt-de-en --beams 4 --decode no_repeat_ngram_size=3

Each TEXT argument is translated on its own and printed on its own line(s). Standard input
is one document (paragraph breaks kept). ``--input FILE`` is translated line by line: with
``--output`` it streams with a progress bar and resumes where a stopped run ended
(``--restart`` to start over); without it the lines go to standard output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quintet.apps.cli_io import (
    add_backend_option,
    add_cluster_options,
    checked_arguments,
    cluster_options,
    read_stdin,
)
from quintet.apps.flags import add_decode_options, decode_from_args
from quintet.core.errors import ConfigError

STDOUT_CHUNK_LINES = 32


def _route_line(translator, src: str, tgt: str) -> str:
    route = translator.route(src, tgt)
    return f"model: {route.model} ({route.reason})"


def cmd_translate(args: argparse.Namespace) -> int:
    from quintet.apps.translation import Translator, language

    if args.text and args.input:
        raise ConfigError("give TEXT arguments or --input FILE, not both")
    if args.input and not Path(args.input).is_file():
        raise ConfigError(f"--input {args.input}: no such file; give a UTF-8 text file")
    language(args.src), language(args.tgt)  # a bad code fails before any model loads
    checked_arguments(args.text, "TEXT")
    decode = decode_from_args(args)
    cluster = cluster_options(args)
    if cluster is not None and not (args.input and args.output):
        raise ConfigError("--ray translates files: give --input FILE --output FILE")
    translator = Translator(
        args.model, device=args.device, batch_size=args.batch_size, backend=args.backend
    )
    print(_route_line(translator, args.src, args.tgt), file=sys.stderr)
    if cluster is None:  # on Ray the model loads on the workers only
        engine = translator.describe(args.src, args.tgt)["backend"]  # loads the model once
        print(f"engine: {engine}", file=sys.stderr)

    if args.input and args.output:
        info = translator.translate_file(
            args.input,
            args.output,
            args.src,
            args.tgt,
            resume=not args.restart,
            progress=not args.quiet,
            cluster=cluster,
            **decode,
        )
        resumed = f", resumed after line {info['resumed_from']}" if info["resumed_from"] else ""
        print(
            f"{info['translated']} lines translated into {args.output} "
            f"({info['lines']} in all{resumed})",
            file=sys.stderr,
        )
        return 0
    if args.input:
        return _lines_to_stdout(translator, args, decode)

    texts = args.text or [read_stdin()]
    results = translator.translate(texts, args.src, args.tgt, **decode)
    output = "\n".join(r.text for r in results)
    output += "" if output.endswith("\n") else "\n"  # stdin's own final newline is kept
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    _warn_truncated(results)
    return 0


def _lines_to_stdout(translator, args: argparse.Namespace, decode: dict) -> int:
    """Translate ``--input`` line by line to stdout, a chunk at a time (bounded memory)."""
    import itertools

    from quintet.apps.translation.files import as_one_line
    from quintet.core.batch_files import count_text_lines, line_text, open_lines

    # Output starts at once: check the whole file is UTF-8 first, not at a bad line midway
    # (--output runs check it in translate_file, before any model loads).
    count_text_lines(Path(args.input))
    results = []
    with open_lines(Path(args.input)) as f:
        while chunk := list(itertools.islice(f, STDOUT_CHUNK_LINES)):
            lines = [line_text(line) for line in chunk]
            results = translator.translate(lines, args.src, args.tgt, progress=False, **decode)
            sys.stdout.write("".join(as_one_line(r.text) + "\n" for r in results))
            sys.stdout.flush()
            _warn_truncated(results)
    return 0


def _warn_truncated(results) -> None:
    cut = sum(r.truncated for r in results)
    if cut:
        print(
            f"warning: {cut} translation(s) stopped at --max-new-tokens: raise it",
            file=sys.stderr,
        )


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``translate`` to the ``quintet`` parser."""
    p = commands.add_parser(
        "translate",
        help="translate text, standard input or a file",
        description="quintet translate --src en --tgt de [--model M] "
        "[TEXT ... | --input FILE] [--output FILE]",
    )
    p.add_argument("text", nargs="*", help="texts to translate (default: standard input)")
    p.add_argument("--src", required=True, help="source language: ISO 639-1 (en) or FLORES-200")
    p.add_argument("--tgt", required=True, help="target language: ISO 639-1 (de) or FLORES-200")
    p.add_argument("--model", "-m", help="model name, hub id or folder (default: routed)")
    p.add_argument("--input", "-i", help="a text file, translated line by line")
    p.add_argument("--output", "-o", help="write here instead of standard output")
    p.add_argument("--restart", action="store_true", help="with --output: do not resume")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--batch-size", type=int, default=16)
    add_backend_option(p)
    add_cluster_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_decode_options(p)
    p.set_defaults(func=cmd_translate)
