"""Build the recipe models in the background, one at a time, after first set-up.

A fresh machine has only the packaged models (smollm2-135m-instruct, minilm-l6), so the
task pages start on fallbacks (a prompted QA model, a zero-shot classifier). ``quintet ui``
therefore starts :func:`start_builder`: a separate process, niced and on one thread so the
suite stays responsive, that runs the missing recipes of :data:`ORDER` one after the other
into the store. The pages read its progress from the run's ``log.jsonl`` (the trainer writes
it) and switch to the task model when it lands.

* One builder at a time across processes: the builder holds the lock of
  ``<store>/runs/recipes-builder`` (:mod:`quintet.core.locks`); a second one exits at once. The lock
  file holds the builder's pid and the recipe it is on, which is what the pages read.
* Resumable: a killed builder leaves its recipe's checkpoint; the next one resumes from it.
* Stops with the suite: started with ``--parent PID``, it stops (at once, resumable) when
  that process is gone, so closing ``quintet ui`` does not leave a trainer running.
* Opt out with ``QUINTET_NO_RECIPES=1`` or ``quintet ui --no-recipes``; never started when
  ``CI`` is set, nor by ``make test`` (which never runs ``quintet ui``).

Run by hand: ``python -m quintet.apps.finetune.background`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quintet.apps.finetune.recipes import RECIPES, get_recipe
from quintet.core import paths
from quintet.core.errors import OutputInUseError
from quintet.core.locks import exclusive_output, lock_path
from quintet.core.processes import pid_alive
from quintet.core.store import ModelStore
from quintet.core.tasks import get_task

# The order the builder takes: the task whose fallback is worst first (a prompted 135M model
# answers extractive questions badly), then the summarizer, then the sentiment classifier
# (the zero-shot fallback is usable).
ORDER: tuple[str, ...] = ("minilm-l6-squad", "smollm2-135m-samsum", "minilm-l6-sst2")
OPT_OUT_ENV = "QUINTET_NO_RECIPES"
BUILDER = "recipes-builder"  # runs/recipes-builder.lock (the lock), .log (its output)
FAILED = "background-failed.txt"  # in a recipe's run folder: why the builder gave up on it


@dataclass(frozen=True)
class RecipeProgress:
    """How far a recipe's run is, read from its ``log.jsonl``."""

    name: str
    step: int
    total: int
    phase: str  # "starting", "training", "saved" (the model is in the store)
    seconds_left: float | None = None

    @property
    def percent(self) -> int:
        return int(100 * self.step / self.total) if self.total else 0


@dataclass(frozen=True)
class BuilderStatus:
    """The running builder: its pid, the recipe it is on and those after it."""

    pid: int
    recipe: str | None
    queue: tuple[str, ...]
    progress: RecipeProgress | None


def runs_dir(store: ModelStore) -> Path:
    return store.home / "runs"


def opted_out(flag: bool = False) -> str | None:
    """Why the builder must not start (``--no-recipes``, the env switch, CI), or None."""
    if flag:
        return "--no-recipes"
    if os.environ.get(OPT_OUT_ENV, "").strip() not in ("", "0"):
        return f"{OPT_OUT_ENV}={os.environ[OPT_OUT_ENV]}"
    if os.environ.get("CI", "").strip() not in ("", "0", "false"):
        return "CI is set"
    return None


def failure(store: ModelStore, name: str) -> str | None:
    """Why the builder gave up on recipe ``name`` (its last attempt failed), or None."""
    path = runs_dir(store) / name / FAILED
    return path.read_text().strip() if path.is_file() else None


def pending(store: ModelStore, names: Sequence[str] = ORDER) -> list[str]:
    """The recipes of ``names`` the builder would build now: not in the store, their base
    model and training data present (an installed package without the checkout's ``data/``
    builds nothing), and not given up on (a failed attempt is retried by hand only, with
    ``quintet recipes run NAME`` after deleting its ``background-failed.txt``)."""
    return [
        name
        for name in names
        if not store.has(name)
        and store.has(get_recipe(name).base)
        and (paths.data_root() / get_recipe(name).train).is_file()
        and failure(store, name) is None
    ]


def read_progress(store: ModelStore, name: str) -> RecipeProgress | None:
    """The progress of recipe ``name``'s run from its ``log.jsonl``; None before it starts.

    The trainer appends one JSON record per step (``step``), validation and checkpoint and
    a ``start`` record with ``total_steps`` (a resumed run starts the file again from its
    checkpoint's records), then ``done`` once the model is in the store. A line cut short by
    a kill is skipped.
    """
    from quintet.core.training.trainer import LOG_FILE

    path = runs_dir(store) / name / LOG_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    total, step, phase = 0, 0, "starting"
    started_at: tuple[float, int] | None = None  # (time, step) of the latest start record
    last_at: float | None = None
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("event") == "start":
            total = int(record.get("total_steps") or 0)
            step = int(record.get("step") or 0)
            started_at = (float(record.get("time") or 0), step)
            phase = "starting" if step == 0 else "training"
        elif record.get("event") == "done":
            step, phase = int(record.get("step") or step), "saved"
        elif "loss" in record and "step" in record:
            step, phase = int(record["step"]), "training"
            last_at = float(record.get("time") or 0) or None
    if not total:
        return None
    left = None
    if phase == "training" and started_at and last_at and step > started_at[1]:
        per_step = (last_at - started_at[0]) / (step - started_at[1])
        left = per_step * (total - step)
    return RecipeProgress(name, min(step, total), total, phase, left)


def builder_status(store: ModelStore) -> BuilderStatus | None:
    """The builder running on ``store`` now, or None (none started, finished or killed)."""
    path = lock_path(runs_dir(store) / BUILDER)
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        state = json.loads(text)
        pid = int(state["pid"])
    except (ValueError, KeyError, TypeError):
        return None  # being written this instant: the next poll reads it
    if not pid_alive(pid):
        return None  # killed outright (SIGKILL leaves the file): the kernel freed the lock
    recipe = state.get("recipe")
    progress = read_progress(store, recipe) if recipe else None
    return BuilderStatus(pid, recipe, tuple(state.get("queue") or ()), progress)


def describe(status: BuilderStatus) -> str:
    """One line for a page: "a better QA model is being trained (minilm-l6-squad): 40% …"."""
    if status.recipe is None:
        return "Getting ready to train the task models in the background…"
    task = get_task(get_recipe(status.recipe).task).called
    line = f"A better {task} model is being trained in the background ({status.recipe}): "
    progress = status.progress
    if progress is None or progress.phase == "starting":
        line += "starting"
    elif progress.phase == "saved":
        line += "trained, being saved and checked"
    else:
        line += f"{progress.percent}% (step {progress.step}/{progress.total})"
        if progress.seconds_left is not None:
            line += f", about {max(1, round(progress.seconds_left / 60))} min left"
    if status.queue:
        line += f"; then {', '.join(status.queue)}"
    return line + "."


def start_builder(
    store: ModelStore | None = None,
    *,
    parent: int | None = None,
    names: Sequence[str] | None = None,
    overrides: dict[str, int] | None = None,
) -> subprocess.Popen[bytes] | None:
    """Start the builder process if a recipe is pending; returns it, or None if none is.

    The child runs ``python -m quintet.apps.finetune.background`` niced, on one thread
    (``OMP_NUM_THREADS=1``), its output appended to ``<store>/runs/recipes-builder.log``.
    A builder already running makes the new one exit at once (the lock).
    """
    store = store or ModelStore()
    todo = pending(store, names or ORDER)
    if not todo:
        return None
    runs_dir(store).mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "quintet.apps.finetune.background", "--home", str(store.home)]
    if parent is not None:
        command += ["--parent", str(parent)]
    for name in names or ():
        command += ["--only", name]
    for key, value in (overrides or {}).items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "QUINTET_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": _pythonpath()}  # fmt: skip
    with open(runs_dir(store) / f"{BUILDER}.log", "ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
        )


def build(
    store: ModelStore,
    names: Sequence[str] = ORDER,
    *,
    overrides: dict[str, Any] | None = None,
) -> list[str]:
    """Build the pending recipes of ``names`` one by one, holding the builder lock.

    Returns the names built. A recipe that fails gets a ``background-failed.txt`` in its
    run folder (the pages show it) and the builder goes on with the next.

    Raises:
        OutputInUseError: another builder holds the lock.
    """
    from quintet.apps.finetune.recipes import run_recipe
    from quintet.core.training import checkpoint as ckpt

    built: list[str] = []
    with exclusive_output(runs_dir(store) / BUILDER) as lock:
        todo = pending(store, names)
        for index, name in enumerate(todo):
            _write_state(lock, name, todo[index + 1 :])
            run = runs_dir(store) / name
            resume = ckpt.find_checkpoint(run / "checkpoint") is not None
            print(f"building {name}" + (" (resuming)" if resume else ""), flush=True)
            try:
                # The model is what the pages wait for: the recipe's extra report (ROUGE
                # before/after) is left to `quintet recipes run`.
                run_recipe(name, store=store, resume=resume, overrides=overrides,
                           extra_report=False)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - recorded for the pages; next recipe
                traceback.print_exc()
                run.mkdir(parents=True, exist_ok=True)
                (run / FAILED).write_text(f"{type(exc).__name__}: {exc}\n")
                continue
            built.append(name)
            print(f"built {name}", flush=True)
    return built


def _write_state(lock: Path, recipe: str, queue: Sequence[str]) -> None:
    # In place (same inode): the lock is held on this file, a rename would drop it.
    lock.write_text(json.dumps({"pid": os.getpid(), "recipe": recipe, "queue": list(queue)}))


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH")
    return root + (os.pathsep + current if current else "")


def _watch_parent(pid: int) -> None:
    """Stop this process (SIGTERM, handled as an exit) once ``pid`` is gone."""

    def watch() -> None:
        while pid_alive(pid):
            time.sleep(2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="quintet-parent-watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m quintet.apps.finetune.background",
        description="Build the missing recipe models into the store, one at a time.",
    )
    parser.add_argument("--home", help="the store (default: QUINTET_HOME)")
    parser.add_argument("--only", action="append", choices=sorted(RECIPES),
                        help="build only this recipe (repeatable)")  # fmt: skip
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    parser.add_argument("--max-steps", type=int, help="cap the steps (a quick trial)")
    parser.add_argument("--eval-max-examples", type=int, help="cap the validation set")
    parser.add_argument("--save-every", type=int, help="checkpoint every N steps")
    args = parser.parse_args(argv)
    # SIGTERM (from the parent watch or a user) exits through the `finally`s: the lock file
    # is removed and the last checkpoint stays for the next builder to resume.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(OSError):  # already as nice as allowed
        os.nice(10)
    import torch

    torch.set_num_threads(1)
    if args.parent is not None:
        _watch_parent(args.parent)
    overrides = {key: value for key in ("max_steps", "eval_max_examples", "save_every")
                 if (value := getattr(args, key)) is not None}  # fmt: skip
    store = ModelStore(args.home) if args.home else ModelStore()
    try:
        built = build(store, args.only or ORDER, overrides=overrides or None)
    except OutputInUseError:
        print("another recipe builder is running on this store: leaving it the work", flush=True)
        return 0
    print(f"done: built {', '.join(built) or 'nothing'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
