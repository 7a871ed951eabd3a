"""The documentation's examples, checked so they cannot drift from the code.

The documents are README.md, CHANGELOG.md, every page of ``docs/`` and the example reports'
README (:data:`DOCUMENTS`); each test runs per document.

* Every ``quintet ...`` command line (fenced ``bash`` blocks, ``$`` lines of plain and
  ``console`` blocks, and inline code spans) is parsed by the real parser
  (``build_parser().parse_args``, nothing runs). Synopsis lines are made concrete first
  (``[--model M]`` -> ``--model M``, ``TASK`` -> each task, ``...`` -> the command's
  required arguments) so they are checked too.
* The ``$ ...`` examples of plain blocks (no language) are executed on the packaged models
  and the default engines (what a user gets) and must print the lines shown under them: an
  ``error:`` example on stderr with exit status 2, any other on stdout with status 0.
  ``console`` blocks show real output that varies (timings, ids) and are parsed only.
* Cheap offline commands on the packaged models are executed verbatim through bash
  (:data:`EXECUTED`: zero-shot classify, translate routed offline to SmolLM2, a one-shot
  chat; about 20 s together). The others need data files, built recipe models, the hub,
  a server or a terminal, and are parsed only.
* Python snippets are compiled, every name they import must exist and every ``quintet.NAME``
  they use must be public API. README's tour is executed (slow).
* Links stay inside the repository and point at files (and headings) that exist; every page
  is reachable from README.md, which stays within :data:`README_MAX_LINES` lines.
* CHANGELOG.md's newest version is ``quintet.__version__``.
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

import quintet
from quintet.apps.cli import build_parser
from quintet.core.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
DOCUMENTS = [
    README,
    CHANGELOG,
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "docs" / "reports" / "README.md",
]
IDS = [str(path.relative_to(ROOT)) for path in DOCUMENTS]
README_MAX_LINES = 200
BIN = Path(sys.executable).parent
TASKS = ("translation", "summarization", "qa", "classification", "chat")
# What "..." stands for in a documented line, by sub-command: its required arguments.
ELLIPSIS = {"finetune": ["--model", "M", "--data", "D", "--output", "O"], "eval": ["--data", "D"]}
# Synopsis placeholders that must be typed values.
PLACEHOLDERS = {"N": "1", "B": "auto"}
# A shell line that runs quintet: at its start, after a pipe, or after VAR=value prefixes.
QUINTET_LINE = re.compile(r"(^|\| |=\S+ )quintet ")

# Run verbatim (cheap, offline, packaged models only): line -> what the output must hold.
EXECUTED = {
    'quintet classify --model minilm-l6 --labels sports,business,politics "The striker scored"': (
        "sports\t"
    ),
    'quintet translate --src en --tgt de "The house is small." "Where is the station?"': "",
    'echo "What is the capital of France?" | quintet chat': "",
}

documents = pytest.mark.parametrize("path", DOCUMENTS, ids=IDS)


def _blocks(text: str) -> Iterator[tuple[str, int, str]]:
    """(language, first line number, body) of each fenced code block."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
        yield match.group(1), text[: match.start()].count("\n") + 2, match.group(2)


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def commands(path: Path) -> list[tuple[int, str, bool]]:
    """(line number, shell line, whether it is an inline span) of every ``quintet`` command
    in the document."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, str, bool]] = []
    for language, first, body in _blocks(text):
        if language not in ("bash", "", "console"):
            continue
        body = re.sub(r"\\\n\s*", " ", body)  # continuation lines
        for offset, line in enumerate(body.splitlines()):
            stripped = line.strip()
            if language != "bash":
                if not stripped.startswith("$ "):
                    continue  # output shown under a command
                stripped = stripped[2:]
            if QUINTET_LINE.search(stripped):
                found.append((first + offset, stripped, False))
    for match in re.finditer(r"`(quintet [^`]+)`", _prose(text)):
        number = text[: text.find(match.group(0))].count("\n") + 1
        found.append((number, match.group(1), True))
    return found


def quintet_argv(line: str) -> list[list[str]]:
    """The argument lists (after ``quintet``) a documented line stands for."""
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


def test_the_docs_have_commands_of_every_kind() -> None:
    lines = [line for path in DOCUMENTS for _, line, _ in commands(path)]
    names = {argv[0] for line in lines for argv in quintet_argv(line)}
    assert {"translate", "summarize", "qa", "classify", "chat", "eval", "finetune", "recipes",
            "models", "serve", "ui"} <= names  # fmt: skip
    shown = {line.split("  #")[0].strip() for line in lines}
    for line in EXECUTED:
        assert line in shown, f"no document has: {line}"


@documents
def test_every_command_parses(path: Path, capsys) -> None:
    refused = []
    for number, line, inline in commands(path):
        for argv in quintet_argv(line):
            problem = _parse_problem(argv, inline, capsys)
            if problem:
                refused.append(f"{path.name}:{number}: `quintet {' '.join(argv)}`: {problem}")
    assert not refused, "\n".join(refused)


def _parse_problem(argv: list[str], inline: bool, capsys) -> str | None:
    """Why the real parser refuses ``argv``, or None when it takes it."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and ("--help" in argv or "--version" in argv):
            return None
        error = capsys.readouterr().err
        if inline and _names_a_command(argv) and "arguments are required" in error:
            return None  # prose naming a command ("`quintet models pull` installs ...")
        return error.strip().splitlines()[-1] if error.strip() else f"exit {exc.code}"
    return None if callable(args.func) else "no command"


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


def _shown_examples() -> list[tuple[str, str, list[str]]]:
    """(document, command, the lines shown under it) of the ``$`` examples of plain blocks."""
    examples = []
    for path, name in zip(DOCUMENTS, IDS, strict=True):
        for language, first, body in _blocks(path.read_text(encoding="utf-8")):
            if language:
                continue
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, *shown = chunk.rstrip("\n").split("\n")
                examples.append((f"{name}:{first}", command, shown))
    return examples


SHOWN = _shown_examples()


@pytest.mark.default_backend  # what a user gets: the docs show the default engines' output
@pytest.mark.parametrize(("where", "command", "shown"), SHOWN, ids=[w for w, _, _ in SHOWN])
def test_shown_examples_print_what_the_docs_show(
    where: str, command: str, shown: list[str], real_store: ModelStore, tmp_path: Path
) -> None:
    done = _run(command, tmp_path, real_store.home)
    if shown and shown[0].startswith("error:"):
        assert done.returncode == 2, f"{where}: {done.stderr}"
        assert done.stderr.strip().splitlines()[-len(shown):] == shown  # fmt: skip
    else:
        assert done.returncode == 0, f"{where}: {done.stderr}"
        assert done.stdout.rstrip("\n").splitlines() == shown, where


@pytest.mark.default_backend
@pytest.mark.parametrize("line", list(EXECUTED))
def test_offline_commands_run(line: str, real_store: ModelStore, tmp_path: Path) -> None:
    done = _run(line, tmp_path, real_store.home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and EXECUTED[line] in done.stdout
    assert "Traceback" not in done.stderr


def _python_snippets(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(first, body) for language, first, body in _blocks(text) if language == "python"]


@documents
def test_python_snippets_compile_and_their_names_exist(path: Path) -> None:
    for number, code in _python_snippets(path):
        where = f"{path.name}:{number}"
        tree = ast.parse(code, filename=where)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] == "openai":
                    continue  # the client of the server example, not a Quintet dependency
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{where}: {node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "quintet"
            ):
                assert node.attr in quintet.__all__, f"{where}: quintet.{node.attr}"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _links(path: Path) -> list[str]:
    """The targets of the document's Markdown links and images (outside code)."""
    prose = re.sub(r"`[^`\n]*`", "", _prose(path.read_text(encoding="utf-8")))
    return LINK.findall(prose)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the document's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", _prose(path.read_text(encoding="utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@documents
def test_links_stay_inside_the_repository_and_resolve(path: Path) -> None:
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z]+:", target):
            broken.append(f"{target}: outside the repository")
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{path.name}: " + "; ".join(broken)


def test_the_readme_is_a_front_door_to_every_page() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"
    reached, todo = {README}, [README]
    while todo:
        page = todo.pop()
        for target in _links(page):
            file = (page.parent / target.partition("#")[0]).resolve()
            if file.suffix == ".md" and file.is_file() and file not in reached:
                reached.add(file)
                todo.append(file)
    unreached = [name for path, name in zip(DOCUMENTS, IDS, strict=True) if path not in reached]
    assert not unreached, f"not reachable from README.md: {unreached}"


def test_the_changelog_starts_with_the_current_version() -> None:
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", CHANGELOG.read_text(encoding="utf-8"), re.M)
    assert versions and versions[0] == quintet.__version__, versions
    as_tuples = [tuple(int(part) for part in v.split(".")) for v in versions]
    assert as_tuples == sorted(as_tuples, reverse=True), "CHANGELOG.md: newest first"


@pytest.mark.slow
@pytest.mark.default_backend
def test_the_readme_tour_runs(real_store: ModelStore, tmp_path: Path) -> None:
    """README's Python tour, run as written (from the repository root, where its data
    paths point) on the packaged models; its evaluation run goes to a scratch home."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(real_store.models_dir)
    code = "\n".join(body for _, body in _python_snippets(README))
    env = {**os.environ, "QUINTET_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
