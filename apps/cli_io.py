"""Reading user text for the ``quintet`` commands: one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from quintet.core.config import BACKENDS
from quintet.core.errors import ConfigError
from quintet.core.input_limits import too_long

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``, the same for every generating command."""
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="decoding engine (default auto: the fastest installed one for the model; "
        "the engine and why go to stderr)",
    )


class LazyChoices:
    """argparse ``choices`` read only when a value is checked or a help page is shown.

    The task names come from the installed task specs (entry points, a scan of every installed
    package): building the parser, which ``quintet --help`` does, must not pay for it. Give
    the argument a ``metavar`` (argparse would list the choices to build its usage) and
    ``%(choices)s`` in its help.
    """

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self.names = names

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def read_text_file(path: str | Path, option: str) -> str:
    """The whole of ``path`` as UTF-8 text; a missing or non-UTF-8 file is a ``ConfigError``.

    ``option`` names the command-line flag the path came from, for the message.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{option} {path}: no such file; give a UTF-8 text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{option} {path}: not UTF-8 text (byte {e.start + 1})") from None
    return checked_size(text, f"{option} {path}")


def read_stdin() -> str:
    """All of standard input; bytes that are not UTF-8 are a ``ConfigError``."""
    try:
        text = sys.stdin.read()
    except UnicodeDecodeError:
        raise ConfigError("standard input is not UTF-8 text") from None
    # Under a C/UTF-8 locale Python reads stdin with surrogateescape: no error above.
    return checked_text(text, "standard input")


def checked_text(text: str, source: str) -> str:
    """``text`` unchanged, or a ``ConfigError`` naming ``source`` if it holds non-UTF-8 bytes.

    Python decodes command-line arguments (and, under a C or UTF-8 locale, standard input)
    with surrogateescape: a byte that is not UTF-8 arrives as a lone surrogate instead of an
    error, and only fails later inside a tokenizer with a traceback.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigError(
            f"{source} is not UTF-8 text (a stray byte at character {e.start + 1}): "
            "give it as UTF-8"
        ) from None
    return checked_size(text, source)


def checked_size(text: str, source: str) -> str:
    """``text`` unchanged, or a ``ConfigError`` if it is over the input limit
    (``$QUINTET_MAX_INPUT_CHARS``, see :mod:`quintet.core.input_limits`)."""
    problem = too_long(text)
    if problem is not None:
        raise ConfigError(f"{source} is {problem}")
    return text


def checked_arguments(texts: Sequence[str], name: str) -> list[str]:
    """Each of ``texts`` (the TEXT arguments of a command) checked by :func:`checked_text`.

    ``name`` is how the arguments are called in the usage line, e.g. ``"TEXT"``; a bad one
    is named by its position when there are several.
    """
    if len(texts) == 1:
        return [checked_text(texts[0], f"the {name} argument")]
    return [checked_text(t, f"{name} argument {i}") for i, t in enumerate(texts, start=1)]


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--ray``, ``--ray-address``, ``--workers``, ``--gpus-per-worker``: the same for every
    command with a batch mode (read back by :func:`cluster_options`)."""
    group = parser.add_argument_group("cluster (pip install 'quintet[cluster]')")
    group.add_argument(
        "--ray",
        action="store_true",
        help="run the batches on Ray actors: $RAY_ADDRESS or --ray-address joins that "
        "cluster, otherwise a local one starts for this run",
    )
    group.add_argument("--ray-address", help="a running Ray cluster, e.g. 10.0.0.5:6379")
    group.add_argument("--workers", type=int, help="with --ray: actors, one model each (default 2)")
    group.add_argument(
        "--gpus-per-worker", type=float, help="with --ray: GPUs each actor reserves (default 0)"
    )


def cluster_options(args: argparse.Namespace) -> ClusterOptions | None:
    """The ``ClusterOptions`` the flags of :func:`add_cluster_options` ask for, or None
    without ``--ray``; a ``ConfigError`` for flags that need ``--ray`` or a missing Ray."""
    from quintet.core.cluster import ClusterOptions, require_ray

    if not args.ray:
        given = [flag for flag, value in (("--ray-address", args.ray_address),
                 ("--workers", args.workers), ("--gpus-per-worker", args.gpus_per_worker))
                 if value is not None]  # fmt: skip
        if given:
            raise ConfigError(f"{given[0]} needs --ray")
        return None
    options = ClusterOptions(
        address=args.ray_address,
        workers=2 if args.workers is None else args.workers,
        gpus_per_worker=args.gpus_per_worker or 0.0,
    )
    options.check()  # a ClusterError (one line, exit 2) before any model loads
    require_ray()
    return options
