"""``quintet chat`` on the real SmolLM2: one-shot (stdin, --message), the interactive loop
driven in-process, and the real program in a pseudo-terminal (commands, Ctrl-C)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quintet.apps.chat import ChatSession
from quintet.apps.chat.cli import repl
from quintet.core.decoding import Generator
from quintet.core.models import load

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "quintet.apps.cli", "chat"]


@pytest.fixture(scope="module")
def generator(real_store) -> Generator:
    return Generator(load("smollm2-135m-instruct"), batch_size=1)


def test_one_shot_reads_all_of_stdin_and_prints_the_reply(real_store, tmp_path: Path) -> None:
    saved = tmp_path / "one.json"
    run = subprocess.run(
        [*CLI, "--max-new-tokens", "12", "--save", str(saved)],
        input="What is the capital\nof France?\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "Paris" in run.stdout
    assert "tokens/s" in run.stderr and "tokens/s" not in run.stdout
    messages = json.loads(saved.read_text())["messages"]
    assert messages[0] == {"role": "user", "content": "What is the capital\nof France?"}
    assert messages[1]["content"] == run.stdout.strip()


def test_message_option_with_system_prompt_and_user_errors(real_store, tmp_path: Path) -> None:
    run = subprocess.run(
        [*CLI, "--message", "Say hi.", "--system", "You are a pirate.", "--max-new-tokens", "6"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    empty = subprocess.run(CLI, input="  \n", capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines()[-1].startswith("error: empty message")
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [{"role": "robot", "content": "x"}]}')
    broken = subprocess.run(
        [*CLI, "--load", str(bad), "--message", "hi"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert broken.returncode == 2
    assert f"error: {bad}: message 0 has role 'robot'" in broken.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--temperature", "nan"], "temperature must be a finite number (got nan)"),
        (["--temperature", "inf"], "temperature must be a finite number (got inf)"),
        (["--max-new-tokens", "1000000000"], "lower max_new_tokens below 8192"),
    ],
)
def test_impossible_decoding_options_are_one_line_errors(real_store, options, message) -> None:
    run = subprocess.run(
        [*CLI, "--message", "Hi", *options],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert "-99" not in run.stderr


def _feeder(lines: list[str]):
    queue = list(lines)

    def read_line(prompt: str) -> str:
        if not queue:
            raise EOFError
        line = queue.pop(0)
        if line == "^C":
            raise KeyboardInterrupt
        return line

    return read_line


def test_interactive_loop_commands(generator, tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    session = ChatSession(generator, max_new_tokens=8)
    out = io.StringIO()
    final = repl(
        session,
        _feeder(
            [
                "/help",
                "/system You are a pirate.",
                "Hello!",
                "^C",  # Ctrl-C at the prompt: a new prompt, not an exit
                f"/save {path}",
                "/reset",
                "/bogus",
                "/save",
                "Second conversation.",
                f"/load {path}",
                "/retry",
                "/undo",
            ]
        ),
        out,
    )
    text = out.getvalue()
    assert "/reset          forget the conversation" in text
    assert "system prompt set: You are a pirate." in text
    assert text.count("assistant> ") == 3 and "tokens/s" in text
    assert f"saved 3 messages to {path}" in text
    assert "conversation cleared" in text
    assert "error: unknown command /bogus" in text
    assert "error: /save needs a file name" in text
    assert f"loaded 3 messages from {path}" in text
    assert "removed: Hello!" in text
    saved = json.loads(path.read_text())["messages"]
    assert saved[0] == {"role": "system", "content": "You are a pirate."}
    assert saved[1] == {"role": "user", "content": "Hello!"}
    # /load replaced the session: /retry answered the loaded "Hello!" again, /undo removed it.
    assert final is not session
    assert final.messages == [{"role": "system", "content": "You are a pirate."}]


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 240.0) -> bytes:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {marker!r} in {bytes(seen)[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"program ended before {marker!r}: {bytes(seen)[-500:]!r}")
            seen += chunk
    index = seen.index(marker) + len(marker)
    before = bytes(seen[:index])
    del seen[:index]
    return before


def test_interactive_program_in_a_terminal_with_ctrl_c(real_store, tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command, its stdin a terminal
        # A test run started in the background (`make test &`) ignores SIGINT, and an
        # ignored signal stays ignored across exec: give the program a terminal's default.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(ROOT)
        os.execv(sys.executable, [*CLI, "--max-new-tokens", "300"])
    seen = bytearray()
    try:
        _read_until(fd, b"you> ", seen)
        os.write(fd, b"/system You are a storyteller.\n")
        assert b"system prompt set" in _read_until(fd, b"you> ", seen)
        os.write(fd, b"Tell me a very long story about a dragon and a knight.\n")
        _read_until(fd, b"assistant> ", seen)
        time.sleep(1.0)
        _read_until(fd, b" ", seen)  # some of the reply is on screen
        os.write(fd, b"\x03")  # Ctrl-C: stops the reply, not the program
        stopped = _read_until(fd, b"you> ", seen)
        assert b"stopped]" in stopped
        path = tmp_path / "tty.json"
        os.write(fd, f"/save {path}\n".encode())
        assert b"saved 3 messages" in _read_until(fd, b"you> ", seen)
        reply = json.loads(path.read_text())["messages"][2]["content"]
        assert reply and len(reply.split()) < 200  # cut well before 300 tokens
        os.write(fd, b"/exit\n")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_interactive_line_with_a_non_utf8_byte_is_an_error_and_chat_goes_on(generator) -> None:
    session = ChatSession(generator, max_new_tokens=4)
    out = io.StringIO()
    # What input() returns for the byte 0xff under surrogateescape.
    repl(session, _feeder(["bad \udcff byte", "/system \udcff", "Hi"]), out)
    lines = out.getvalue().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [
        "error: the line typed is not UTF-8 text (a stray byte at character 5): give it as UTF-8",
        "error: the line typed is not UTF-8 text (a stray byte at character 9): give it as UTF-8",
    ]
    assert [m["content"] for m in session.messages][:1] == ["Hi"]
