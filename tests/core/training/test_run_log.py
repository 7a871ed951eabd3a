"""The run folder's log.jsonl: what the Fine-tuning page follows live from another process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from quintet.core.config import TrainConfig
from quintet.core.store import ModelStore
from quintet.core.testing import CORPUS, tiny_model_dir
from quintet.core.training.trainer import LOG_FILE, finetune


def _data(path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(48):
            writer.writerow([f"{CORPUS[i % len(CORPUS)]} {'good' if i % 2 else 'bad'}",
                             "pos" if i % 2 else "neg"])  # fmt: skip
    return path


def _records(store: ModelStore, name: str) -> list[dict]:
    return [json.loads(line) for line in (store.home / "runs" / name / LOG_FILE).open()]


def test_log_follows_a_killed_and_resumed_run(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "home")
    data, base = _data(tmp_path / "train.csv"), str(tiny_model_dir("bert"))
    config = TrainConfig(max_steps=10, batch_size=8, save_every=4, eval_every=5)

    def kill_at_step_6(record: dict) -> None:
        if record.get("step") == 6 and "loss" in record:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune("classification", base, data, "logged", config, store=store,
                 progress=False, on_log=kill_at_step_6)  # fmt: skip
    killed = _records(store, "logged")
    assert killed[0]["event"] == "start" and killed[0]["total_steps"] == 10
    assert [r["step"] for r in killed if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in killed if "validation" in r] == [5]
    assert all("time" in r for r in killed)

    finetune("classification", base, data, "logged", config, store=store, progress=False,
             resume=True)  # fmt: skip
    records = _records(store, "logged")
    # Steps 5 and 6 were lost with the kill (checkpoint at 4) and are logged once, by the resume.
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 11))
    assert [r["step"] for r in records if "validation" in r and "event" not in r] == [5, 10]
    starts = [r for r in records if r.get("event") == "start"]
    assert [(s["step"], s["resumed"]) for s in starts] == [(0, False), (4, True)]
    done = records[-1]
    assert done["event"] == "done" and done["model"] == "logged" and done["step"] == 10
    assert set(done["validation"]) >= {"accuracy", "macro_f1"}
