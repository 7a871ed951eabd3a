"""Background fine-tuning runs as the Fine-tuning page starts them: real processes, tiny model."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from quintet.apps.finetune import runs
from quintet.core.errors import QuintetError
from quintet.core.store import ModelStore
from quintet.core.testing import CORPUS, tiny_model_dir


def sentiment_csv(path: Path, n: int = 64) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(n):
            writer.writerow([f"{CORPUS[i % len(CORPUS)]} {'good' if i % 2 else 'bad'}",
                             "pos" if i % 2 else "neg"])  # fmt: skip
    return path


def wait_for(predicate, timeout: float = 240.0, every: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


@pytest.mark.slow  # two process starts and 100 steps: about 1-2 minutes on 2 cores
def test_start_stop_resume_finish(tmp_home: Path, tmp_path: Path) -> None:
    store = ModelStore()
    data = sentiment_csv(tmp_path / "train.csv")
    base = str(tiny_model_dir("bert"))
    # Enough steps that the run is still going when it is stopped.
    options = {"max_steps": 100, "batch_size": 4, "save_every": 5, "eval_every": 50}
    runs.start_run("classification", base, str(data), "bg-run", options)
    assert runs.status("bg-run").state == "running"
    with pytest.raises(QuintetError, match="already running"):
        runs.start_run("classification", base, str(data), "bg-run", options)

    # Live progress is readable while it runs; stop once a checkpoint exists.
    wait_for(lambda: runs.status("bg-run").resumable and runs.status("bg-run").step >= 6)
    live = runs.status("bg-run")
    assert live.total_steps == 100 and live.losses and live.task == "classification"
    runs.stop_run("bg-run")
    stopped = runs.status("bg-run")
    assert stopped.state == "stopped" and stopped.resumable
    assert stopped.step < 100 and not store.has("bg-run")
    with pytest.raises(QuintetError, match="resume it"):
        runs.start_run("classification", base, str(data), "bg-run", options)

    runs.resume_run("bg-run")
    finished = wait_for(
        lambda: (s := runs.status("bg-run")).state in ("finished", "failed") and s, timeout=400
    )
    assert finished.state == "finished", finished.console_tail
    assert [r["step"] for r in finished.losses] == list(range(1, 101))
    assert finished.done_record["model"] == "bg-run"
    assert [v["step"] for v in finished.validations] == [50, 100]
    assert store.has("bg-run")


def test_bad_data_is_a_failed_run_with_its_message(tmp_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nonly one row,\n")
    runs.start_run("classification", str(tiny_model_dir("bert")), str(bad), "bad-run", {})
    failed = wait_for(lambda: (s := runs.status("bad-run")).state != "running" and s, 120)
    assert failed.state == "failed"
    assert "bad.csv" in failed.console_tail and "error:" in failed.console_tail


def test_a_name_taken_in_the_store_is_refused(real_store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(QuintetError, match="already holds a model"):
        runs.start_run("chat", "x", str(tmp_path), "smollm2-135m-instruct", {}, store=real_store)


def test_a_run_command_line_is_the_cli_parse_of_its_options() -> None:
    """The page's options become ``quintet finetune`` flags read off the command's own parser,
    and the command line parses back into the same settings."""
    from quintet.apps.cli import build_parser, train_config
    from quintet.core.config import TrainConfig

    options = {
        "max_steps": 60,
        "epochs": 1.5,
        "learning_rate": 3e-4,
        "eval_every": 0,  # 0: left to the default
        "early_stopping_patience": 2,
        "multi_label": True,
        "text_field": "sentence",
    }
    command = runs.build_command("classification", "m", "d.csv", "out", options, lora=True)
    assert command[3:5] == ["finetune", "classification"]
    args = build_parser().parse_args(command[3:])
    assert train_config(args) == TrainConfig(
        max_steps=60, epochs=1.5, learning_rate=3e-4, early_stopping_patience=2,
        multi_label=True, lora=True,
    )  # fmt: skip
    assert [args.model, args.data, args.output, args.text_field] == [
        "m",
        "d.csv",
        "out",
        "sentence",
    ]
    with pytest.raises(QuintetError, match="unknown fine-tuning option.*max_stepz"):
        runs.build_command("classification", "m", "d.csv", "out", {"max_stepz": 5})
