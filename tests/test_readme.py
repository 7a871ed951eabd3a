"""README.md's examples, checked so they cannot drift from the code.

* Every ``quintet ...`` command line in README.md (fenced ``bash`` blocks, ``$ quintet``
  lines of output blocks, and inline code spans) is parsed by the real parser
  (``build_parser().parse_args``, nothing runs). Synopsis lines are made concrete first
  (``[--model M]`` -> ``--model M``, ``TASK`` -> each task, ``...`` -> the command's
  required arguments) so they are checked too.
* The ``$ quintet ...`` examples of the error section are executed and their output must be
  the lines the README shows under them.
* Cheap offline commands on the packaged models are executed verbatim through bash
  (:data:`EXECUTED`: zero-shot classify, translate routed offline to SmolLM2, a one-shot
  chat; about 20 s together). The others need data files, built recipe models, the hub,
  a server or a terminal, and are parsed only.
* Python snippets are compiled, and every name they import must exist.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quintet.apps.cli import build_parser
from quintet.core.store import ModelStore

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
TASKS = ("translation", "summarization", "qa", "classification", "chat")
# What "..." stands for in a README line, by sub-command: its required arguments.
ELLIPSIS = {"finetune": ["--model", "M", "--data", "D", "--output", "O"], "eval": ["--data", "D"]}
# Synopsis placeholders that must be typed values.
PLACEHOLDERS = {"N": "1", "B": "auto"}

# Run verbatim (cheap, offline, packaged models only): line -> what the output must hold.
EXECUTED = {
    'quintet classify --model minilm-l6 --labels sports,business,politics "The striker scored"': (
        "sports\t"
    ),
    'quintet translate --src en --tgt de "The house is small." "Where is the station?"': "",
    'echo "What is the capital of France?" | quintet chat': "",
}


def _blocks(text: str) -> Iterator[tuple[str, int, str]]:
    """(language, first line number, body) of each fenced code block."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        yield match.group(1), text[: match.start()].count("\n") + 2, match.group(2)


def readme_commands() -> list[tuple[int, str, bool]]:
    """(line number, shell line, whether it is an inline span) of every ``quintet`` command
    in README.md."""
    text = README.read_text(encoding="utf-8")
    found: list[tuple[int, str, bool]] = []
    for language, first, body in _blocks(text):
        body = re.sub(r"\\\n\s*", " ", body)  # continuation lines
        for offset, line in enumerate(body.splitlines()):
            stripped = line.strip()
            if language == "bash" and re.search(r"(^|\| |=\S+ )quintet ", stripped):
                found.append((first + offset, stripped, False))
            elif language == "" and stripped.startswith("$ quintet "):
                found.append((first + offset, stripped[2:], False))
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for match in re.finditer(r"`(quintet [^`]+)`", prose):
        number = text[: text.find(match.group(0))].count("\n") + 1
        found.append((number, match.group(1), True))
    return found


def quintet_argv(line: str) -> list[list[str]]:
    """The argument lists (after ``quintet``) a README line stands for."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token == "|":
            segments.append([])
        else:
            segments[-1].append(token)
    for segment in segments:
        while segment and re.match(r"^[A-Z_]+=", segment[0]):
            segment.pop(0)  # VAR=value prefixes
        if segment and segment[0] == "quintet":
            return _concrete(segment[1:])
    raise AssertionError(f"no quintet command in {line!r}")


def _concrete(argv: list[str]) -> list[list[str]]:
    """A synopsis as real command lines: brackets dropped, TASK as each task, ``...`` as
    the sub-command's required arguments (or nothing after a repeatable value)."""
    out: list[str] = []
    for index, token in enumerate(argv):
        token = token.strip("[]")
        if token == "...":
            previous = argv[index - 1] if index else ""
            if "=" not in previous and not previous.isupper():
                out += ELLIPSIS.get(argv[0], [])
            continue
        if token:
            out.append(PLACEHOLDERS.get(token, token))
    if "TASK" in out:
        return [[task if t == "TASK" else t for t in out] for task in TASKS]
    return [out]


COMMANDS = readme_commands()


def test_the_readme_has_commands_of_every_kind() -> None:
    names = {argv[0] for _, line, _ in COMMANDS for argv in quintet_argv(line)}
    assert {"translate", "summarize", "qa", "classify", "chat", "eval", "finetune", "recipes",
            "models", "serve", "ui"} <= names  # fmt: skip
    shown = {c.split("  #")[0].strip() for _, c, _ in COMMANDS}
    for line in EXECUTED:
        assert line in shown, f"README no longer has: {line}"


@pytest.mark.parametrize(
    ("number", "line", "inline"), COMMANDS, ids=[f"L{n}" for n, _, _ in COMMANDS]
)
def test_every_readme_command_parses(number: int, line: str, inline: bool, capsys) -> None:
    parser = build_parser()
    for argv in quintet_argv(line):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code == 0 and "--help" in argv:
                continue
            error = capsys.readouterr().err
            if inline and _names_a_command(argv) and "arguments are required" in error:
                continue  # prose naming a command ("`quintet models pull` installs ...")
            pytest.fail(f"README.md:{number}: `quintet {' '.join(argv)}` is refused:\n"
                        f"{error}")  # fmt: skip
        assert callable(args.func)


def _names_a_command(argv: list[str]) -> bool:
    """True when ``argv`` is only sub-command names, e.g. ``["models", "pull"]``."""
    parser = build_parser()
    for word in argv:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if not choices or word not in choices:
            return False
        parser = choices[word]
    return True


def _run(line: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "QUINTET_HOME": str(home),
    }
    return subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def _error_examples() -> list[tuple[str, list[str]]]:
    """The ``$ quintet ...`` examples of plain blocks and the lines shown under each."""
    examples = []
    for language, _, body in _blocks(README.read_text(encoding="utf-8")):
        if language:
            continue
        for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
            command, *shown = chunk.rstrip("\n").split("\n")
            examples.append((command, shown))
    return examples


@pytest.mark.parametrize(("command", "shown"), _error_examples())
def test_readme_error_examples_print_what_the_readme_shows(
    command: str, shown: list[str], real_store: ModelStore, tmp_path: Path
) -> None:
    done = _run(command, tmp_path, real_store.home)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-len(shown):] == shown  # fmt: skip


@pytest.mark.parametrize("line", list(EXECUTED))
def test_offline_readme_commands_run(line: str, real_store: ModelStore, tmp_path: Path) -> None:
    done = _run(line, tmp_path, real_store.home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and EXECUTED[line] in done.stdout
    assert "Traceback" not in done.stderr


def _python_snippets() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(first, body) for language, first, body in _blocks(text) if language == "python"]


@pytest.mark.parametrize(("number", "code"), _python_snippets(), ids=lambda v: str(v)[:12])
def test_python_snippets_compile_and_their_imports_exist(number: int, code: str) -> None:
    tree = ast.parse(code, filename=f"README.md:{number}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "openai":
                continue  # the client of the server example, not a Quintet dependency
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), (
                    f"README.md:{number}: {node.module}.{alias.name}"
                )
