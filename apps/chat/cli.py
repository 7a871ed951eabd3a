"""``quintet chat``: an interactive terminal chat, or one message in and one reply out.

quintet chat                                   # interactive when stdin is a terminal
quintet chat --model Qwen/Qwen2.5-0.5B-Instruct --system "You are terse." --temperature 0.7
echo "What is the capital of France?" | quintet chat      # one-shot: all of stdin is one message
quintet chat --message "Hello" --load chat.json --save chat.json   # continue a saved chat

Interactive commands: /reset, /save FILE, /load FILE, /system TEXT, /undo, /retry, /help,
/exit (or Ctrl-D). Ctrl-C stops the reply being written (what was written is kept), not the
program. Replies stream token by token; a line after each gives tokens/s and time to first
token, and a note when old turns left the context window.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from quintet.apps.chat.settings import DEFAULT_MAX_NEW_TOKENS, STRATEGIES
from quintet.apps.cli_io import add_backend_option, checked_text, read_stdin
from quintet.apps.flags import add_decode_options, decode_from_args
from quintet.core.errors import ConfigError, QuintetError

if TYPE_CHECKING:  # the app (and torch) load when a command runs, not for --help
    from quintet.apps.chat.api import ChatReply, ChatSession

HELP = """commands:
  /reset          forget the conversation (the system prompt stays)
  /save FILE      save the conversation as JSON
  /load FILE      continue a saved conversation
  /system TEXT    set the system prompt (/system alone removes it)
  /undo           remove your last message and its reply
  /retry          write the last reply again
  /help           this list
  /exit           leave (or Ctrl-D)
Ctrl-C stops the reply being written."""


def decode_options(args: argparse.Namespace) -> dict:
    """DecodeConfig fields from the command line (sampling when any sampling flag is set):
    the shared decoding flags of :func:`quintet.apps.flags.add_decode_options`."""
    return decode_from_args(args)


def stats_line(reply: ChatReply) -> str:
    """``[12 tokens, 9.3 tokens/s, first token 0.21 s]`` (+ stopped / cut at the limit)."""
    parts = [f"{reply.num_tokens} tokens", f"{reply.tokens_per_s:.1f} tokens/s"]
    if reply.time_to_first_token_s is not None:
        parts.append(f"first token {reply.time_to_first_token_s:.2f} s")
    if reply.finish_reason == "length":
        parts.append("cut at max_new_tokens")
    elif reply.cancelled:
        parts.append("stopped")
    return "[" + ", ".join(parts) + "]"


def _stream_reply(session: ChatSession, message: str, out: TextIO) -> ChatReply:
    """Print the reply as it is written; Ctrl-C stops it (the shown text is kept)."""
    stream = session.stream(message)
    try:
        for delta in stream:
            out.write(delta)
            out.flush()
    except KeyboardInterrupt:
        stream.cancel()  # the stream already ended itself; this is for clarity
    out.write("\n")
    return stream.result


def repl(
    session: ChatSession,
    read_line: Callable[[str], str],
    out: TextIO,
    *,
    prompt: str = "you> ",
) -> ChatSession:
    """The interactive loop over ``read_line`` (``input``, or a test's feeder) and ``out``.

    Returns the session in use at the end (``/load`` replaces it).
    """
    out.write(f"chatting with {session.model_name}; /help for commands, Ctrl-D to leave\n")
    while True:
        try:
            line = read_line(prompt)
        except EOFError:
            out.write("\n")
            return session
        except KeyboardInterrupt:  # at the prompt: a fresh prompt, as in a shell
            out.write("\n")
            continue
        text = line.strip()
        if not text:
            continue
        try:
            checked_text(line, "the line typed")  # a terminal in another encoding
            if text.startswith("/"):
                command, _, rest = text.partition(" ")
                if command in ("/exit", "/quit"):
                    return session
                session = _command(session, command, rest.strip(), out)
                continue
            out.write("assistant> ")
            out.flush()
            reply = _stream_reply(session, line, out)
            if reply.context_notice:
                out.write(f"note: {reply.context_notice}\n")
            out.write(stats_line(reply) + "\n")
        except QuintetError as exc:  # a bad command or message: say so, keep chatting
            out.write(f"error: {exc}\n")
        out.flush()


def _command(session: ChatSession, command: str, rest: str, out: TextIO) -> ChatSession:
    if command == "/help":
        out.write(HELP + "\n")
    elif command == "/reset":
        session.reset()
        out.write("conversation cleared\n")
    elif command == "/save":
        if not rest:
            raise ConfigError("/save needs a file name: /save chat.json")
        session.save(rest)
        out.write(f"saved {len(session.messages)} messages to {rest}\n")
    elif command == "/load":
        from quintet.apps.chat.api import ChatSession

        if not rest:
            raise ConfigError("/load needs a file name: /load chat.json")
        session = ChatSession.load(
            rest,
            session.generator,
            context_strategy=session.context_strategy,
            max_context_tokens=session.max_context_tokens,
            **session.decode,
        )
        out.write(f"loaded {len(session.messages)} messages from {rest}\n")
        for message in session.messages[-4:]:
            out.write(f"  {message['role']}: {_short(message['content'])}\n")
    elif command == "/system":
        session.set_system_prompt(rest or None)
        out.write(f"system prompt set: {rest}\n" if rest else "system prompt removed\n")
    elif command == "/undo":
        removed = session.undo()
        out.write(f"removed: {_short(removed)}\n" if removed else "nothing to undo\n")
    elif command == "/retry":
        message = session.undo()
        if message is None:
            raise ConfigError("nothing to retry yet: send a message first")
        out.write("assistant> ")
        out.write(stats_line(_stream_reply(session, message, out)) + "\n")
    else:
        raise ConfigError(f"unknown command {command}; /help lists the commands")
    return session


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_chat(args: argparse.Namespace) -> int:
    from quintet.apps.chat.api import ChatSession

    for option, text in (("--message", args.message), ("--system", args.system)):
        if text is not None:
            checked_text(text, option)  # before a model loads
    decode = decode_options(args)
    options = {
        "backend": args.backend,
        "device": args.device,
        "context_strategy": args.context_strategy,
        "max_context_tokens": args.max_context_tokens,
        **decode,
    }
    if args.load:
        session = ChatSession.load(args.load, args.model, **options)
        if args.system is not None:
            session.set_system_prompt(args.system)
    else:
        session = ChatSession(args.model, args.system, **options)
    interactive = args.message is None and sys.stdin.isatty()
    if interactive:
        # Ctrl-C stops a reply: make sure it raises KeyboardInterrupt even when this process
        # inherited an ignored SIGINT (started from a background job of a script).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        session = repl(session, input, sys.stdout)
    else:
        # Surrounding blank lines and the final newline of piped text are not part of it.
        message = (args.message if args.message is not None else read_stdin()).strip()
        if not message.strip():
            raise ConfigError("empty message: pass --message TEXT or pipe text into stdin")
        reply = _stream_reply(session, message, sys.stdout)
        if reply.context_notice:
            print(f"note: {reply.context_notice}", file=sys.stderr)
        engine = session.generator.backend_choice
        used = reply.backend or engine.name
        why = engine.reason if used == engine.name else "fallback for these settings"
        print(f"{session.model_name} on {used} ({why}) {stats_line(reply)}", file=sys.stderr)
    if args.save:
        session.save(args.save)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``quintet chat`` to the CLI."""
    chat = commands.add_parser(
        "chat",
        help="chat with an instruct model (interactive, or one-shot from stdin / --message)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument(
        "--model",
        help="instruct model name, hub id or path (default: smollm2-135m-instruct offline)",
    )
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--message", help="send this one message, print the reply, and exit")
    chat.add_argument("--load", metavar="FILE", help="continue a saved conversation")
    chat.add_argument("--save", metavar="FILE", help="save the conversation when done")
    add_decode_options(chat, max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    chat.add_argument(
        "--context-strategy",
        choices=STRATEGIES,
        default="drop",
        help="when the window is full: drop or summarize the oldest turns",
    )
    chat.add_argument("--max-context-tokens", type=int, help="a smaller window than the model's")
    add_backend_option(chat)
    chat.add_argument("--device", default="auto")
    chat.set_defaults(func=cmd_chat)
