"""Fine-tuning runs started from the Fine-tuning page, as background processes.

A run is ``quintet finetune ...`` in its own process (its own session, so a Stop stops the
whole group), with its output in ``$QUINTET_HOME/runs/NAME/``: the trainer writes
``log.jsonl`` (start, loss, validation, checkpoint, done) and ``checkpoint/``; this module
adds ``ui-process.json`` (the pid and the command) and ``console.log`` (the process's
output). Everything the page shows is read back from those files, so a browser reload,
another tab, or a restarted server sees the same run.

Example:
    >>> run = start_run("classification", "minilm-l6", "train.tsv", "my-sentiment",
    ...                 {"max_steps": 30})                          # doctest: +SKIP
    >>> status("my-sentiment").state                                 # doctest: +SKIP
    'running'
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quintet.core.errors import QuintetError
from quintet.core.processes import pid_alive
from quintet.core.store import ModelStore, validate_name
from quintet.core.training.checkpoint import find_checkpoint
from quintet.core.training.trainer import LOG_FILE

REPO = Path(__file__).resolve().parents[2]
PROCESS_FILE = "ui-process.json"
CONSOLE_FILE = "console.log"
# Popen objects of the runs this process started: polled so finished children are reaped
# (a zombie would still answer os.kill(pid, 0)).
_children: dict[int, subprocess.Popen] = {}


@dataclass
class RunStatus:
    """What a run folder says about its run."""

    name: str
    folder: Path
    state: str  # running | finished | stopped | failed
    step: int = 0
    total_steps: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    resumable: bool = False
    console_tail: str = ""
    task: str = ""
    base: str = ""

    @property
    def losses(self) -> list[dict[str, float]]:
        return [{"step": r["step"], "loss": r["loss"]} for r in self.records if "loss" in r]

    @property
    def validations(self) -> list[dict[str, float]]:
        """One row per validation: step and each metric (``primary`` left out)."""
        return [
            {"step": r["step"], **{k: v for k, v in r["validation"].items() if k != "primary"}}
            for r in self.records
            if "validation" in r and "event" not in r
        ]

    @property
    def done_record(self) -> dict[str, Any] | None:
        return next((r for r in reversed(self.records) if r.get("event") == "done"), None)


def runs_dir(store: ModelStore | None = None) -> Path:
    return (store or ModelStore()).home / "runs"


def finetune_flags() -> dict[str, str]:
    """``quintet finetune``'s options by setting name (``{"max_steps": "--max-steps", ...}``),
    read from the command's own parser: one source for the CLI and the page's runs."""
    from quintet.apps.cli import build_parser  # the CLI builds its parser without torch

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tune = commands.choices["finetune"]
    given_by_run = {"help", "model", "data", "output", "validation", "lora", "resume"}
    return {
        a.dest: a.option_strings[0]
        for a in tune._actions
        if a.option_strings and a.dest not in given_by_run
    }


def build_command(
    task: str,
    base: str,
    data: str,
    output: str,
    options: dict[str, Any],
    validation: str | None = None,
    lora: bool = False,
) -> list[str]:
    """The ``quintet finetune`` command line of a run (as ``python -m quintet.apps.cli``);
    ``options`` are TrainConfig fields or the field-name settings (``text_field`` ...), unset
    when None, empty or 0."""
    command = [sys.executable, "-m", "quintet.apps.cli", "finetune", task, "--model", base,
               "--data", data, "--output", output]  # fmt: skip
    if validation:
        command += ["--validation", validation]
    if lora:
        command.append("--lora")
    flags = finetune_flags()
    unknown = sorted(set(options) - set(flags))
    if unknown:
        raise QuintetError(f"unknown fine-tuning option(s) {', '.join(unknown)}")
    for key, value in options.items():
        if value is True:  # an on/off flag (--multi-label)
            command.append(flags[key])
        elif value not in (None, "", 0):
            command += [flags[key], str(value)]
    return command


def _launch(folder: Path, command: list[str]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    console = open(folder / CONSOLE_FILE, "ab")  # noqa: SIM115 - the child owns it
    console.write(f"\n$ {' '.join(command)}\n".encode())
    console.flush()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "5"}
    child = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=console,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own process group: Stop ends it and its children
    )
    console.close()
    _children[child.pid] = child
    info = {"pid": child.pid, "command": command, "started": time.time()}
    (folder / PROCESS_FILE).write_text(json.dumps(info, indent=2))
    return child.pid


def start_run(
    task: str,
    base: str,
    data: str,
    output: str,
    options: dict[str, Any],
    validation: str | None = None,
    lora: bool = False,
    store: ModelStore | None = None,
) -> int:
    """Start ``quintet finetune`` in the background; returns its pid.

    Raises:
        QuintetError: a bad name, an unknown option, a run of that name still running or
            with a checkpoint (resume it instead), or a store model of that name.
    """
    store = store or ModelStore()
    validate_name(output)
    command = build_command(task, base, data, output, options, validation, lora)
    folder = runs_dir(store) / output
    current = status(output, store) if folder.is_dir() else None
    if current is not None and current.state == "running":
        raise QuintetError(f"a run named {output!r} is already running: stop it first")
    if current is not None and current.resumable:
        raise QuintetError(
            f"a run named {output!r} has a checkpoint: resume it, or choose another name"
        )
    if store.has(output):
        raise QuintetError(
            f"the store already holds a model named {output!r}: choose another output name "
            "(or delete that model on the Models page)"
        )
    if folder.is_dir():
        for stale in (LOG_FILE, CONSOLE_FILE, PROCESS_FILE):
            (folder / stale).unlink(missing_ok=True)  # a failed attempt's leftovers
    return _launch(folder, command)


def resume_run(name: str, store: ModelStore | None = None) -> int:
    """Start a stopped run again with ``--resume``; returns the new pid."""
    current = status(name, store)
    if current.state == "running":
        raise QuintetError(f"{name} is still running")
    if not current.resumable or not current.command:
        raise QuintetError(f"{name} has no checkpoint to resume from: start it again instead")
    command = [part for part in current.command if part != "--resume"] + ["--resume"]
    return _launch(current.folder, command)


def stop_run(name: str, store: ModelStore | None = None, wait_s: float = 10.0) -> None:
    """Stop a running run (SIGTERM to its process group, SIGKILL after ``wait_s``).

    The last checkpoint stays: ``resume_run`` continues from it.
    """
    info = _process_info(runs_dir(store) / name)
    pid = info.get("pid")
    if not pid or not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + wait_s
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid) and time.time() < deadline + 5:
            time.sleep(0.2)


def _process_info(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / PROCESS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it once it has exited
    return pid_alive(pid)


def read_log(folder: Path) -> list[dict[str, Any]]:
    """The run's log records; a line cut short by a kill is skipped."""
    records = []
    try:
        lines = (folder / LOG_FILE).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def console_tail(folder: Path, lines: int = 15) -> str:
    """The last lines of the run's console output, tqdm redraws collapsed."""
    try:
        text = (folder / CONSOLE_FILE).read_text(errors="replace")
    except OSError:
        return ""
    cleaned = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join([line for line in cleaned if line.strip()][-lines:])


def status(name: str, store: ModelStore | None = None) -> RunStatus:
    """Where run ``name`` stands, from its folder."""
    folder = runs_dir(store) / name
    records = read_log(folder)
    info = _process_info(folder)
    starts = [r for r in records if r.get("event") == "start"]
    steps = [r["step"] for r in records if "loss" in r]
    run = RunStatus(
        name=name,
        folder=folder,
        state="stopped",
        step=steps[-1] if steps else 0,
        total_steps=starts[-1]["total_steps"] if starts else 0,
        records=records,
        command=info.get("command", []),
        resumable=find_checkpoint(folder / "checkpoint") is not None,
        console_tail=console_tail(folder),
        task=starts[-1].get("task", "") if starts else "",
        base=starts[-1].get("base", "") if starts else "",
    )
    if info.get("pid") and _alive(info["pid"]):
        run.state = "running"
    elif run.done_record is not None or (store or ModelStore()).has(name):
        run.state = "finished"  # (an older run without log.jsonl: its model is stored)
    elif "error:" in run.console_tail or "Traceback" in run.console_tail:
        run.state = "failed"
    return run


def all_runs(store: ModelStore | None = None) -> list[RunStatus]:
    """Every run folder, newest first."""
    root = runs_dir(store)
    if not root.is_dir():
        return []
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    return [status(p.name, store) for p in folders]
