"""Multi-process fine-tuning (DDP through accelerate) on 2 CPU processes with gloo.

A 2-process run with per-process batch 4 must train the same model as a 1-process run with
batch 8: same loss curve, same final weights. A 2-process run killed after a checkpoint must
resume (with 2 processes) to the weights of the uninterrupted run. Before the fix, every
process of ``torchrun`` trained alone and they all wrote the same checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from quintet.core.config import ModelSpec, TrainConfig
from quintet.core.errors import QuintetError
from quintet.core.examples import ChatExample
from quintet.core.models import load_fresh
from quintet.core.store import ModelStore
from quintet.core.testing import CORPUS, tiny_model_dir
from quintet.core.training import features as feats
from quintet.core.training.batching import global_batches, loss_units, loss_weight, process_part
from quintet.core.training.trainer import finetune
from tests.core.training.test_trainer import _sentiment_csv

ROOT = Path(__file__).resolve().parents[3]
STEPS = 120  # long enough that the kill test lands between checkpoints, still ~2 s of training
TRAIN_FLAGS = ["--max-steps", str(STEPS), "--lr", "1e-3", "--save-every", "4", "--eval-every", "40"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data, and a tiny BERT without dropout: dropout masks are drawn per process, so with
    dropout a 2-process run can only match a 1-process run in distribution."""
    root = tmp_path_factory.mktemp("ddp")
    base = root / "bert-no-dropout"
    base.mkdir()
    for item in tiny_model_dir("bert").iterdir():
        (base / item.name).write_bytes(item.read_bytes())
    config = json.loads((base / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (base / "config.json").write_text(json.dumps(config))
    return {"root": root, "base": base, "data": _sentiment_csv(root / "train.csv")}


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# `accelerate launch --num_processes 2` alone starts ONE process on a machine without GPUs
# (accelerate's simple launcher); --multi_gpu selects its torch.distributed launcher, which
# on CPU runs the processes with gloo.
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--main_process_port", "0"]  # fmt: skip


def _torchrun(
    setup: dict[str, Path], output: str, *extra: str, launcher: list[str] = TORCHRUN
) -> subprocess.Popen:
    command = [
        *launcher, "-m", "quintet.apps.cli", "finetune", "classification",
        "--model", str(setup["base"]),
        "--data", str(setup["data"]), "--batch-size", "4", "--output", output,
        *TRAIN_FLAGS, *extra,
    ]  # fmt: skip
    env = {**os.environ, "QUINTET_HOME": str(setup["root"] / "home"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants: torchrun starts each worker in a session
    of its own, so killing torchrun's process group would leave the workers training."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    descendants = children.read_text().split() if children.exists() else []
    for child in descendants:
        _kill_tree(int(child))
    with contextlib.suppress(ProcessLookupError):  # it ended by itself meanwhile
        os.kill(pid, signal.SIGKILL)


def _finish(process: subprocess.Popen, timeout: float = 240) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process.pid)
        raise
    assert process.returncode == 0, out[-3000:]
    return out


def _losses(log: Path) -> list[float]:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def _weights(store: ModelStore, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(store.get(name).path / "model.safetensors"))


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def two_process_run(setup: dict[str, Path]) -> str:
    return _finish(_torchrun(setup, "ddp-2x4"))


def test_two_processes_train_like_one_with_the_global_batch(
    setup: dict[str, Path], two_process_run: str
) -> None:
    store = ModelStore(setup["root"] / "home")
    config = TrainConfig(max_steps=STEPS, learning_rate=1e-3, batch_size=8, save_every=4,
                         eval_every=40)  # fmt: skip
    finetune("classification", str(setup["base"]), setup["data"], "one-x8", config,
             store=store, progress=False)  # fmt: skip

    assert "rank 1/2" in two_process_run and "rank 0/2" in two_process_run
    assert two_process_run.count("stored at") == 1  # rank 0 reports, rank 1 waits
    one = _losses(store.home / "runs/one-x8/log.jsonl")
    two = _losses(store.home / "runs/ddp-2x4/log.jsonl")
    assert len(one) == len(two) == STEPS
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-4
    assert one[-1] < one[0] - 0.1  # it learned something: the comparison is not of noise
    base = load_file(str(setup["base"] / "model.safetensors"))
    trained = _weights(store, "one-x8")
    moved = max(float((trained[f"bert.{k}"] - v).abs().max()) for k, v in base.items())
    assert moved > 1e-2
    assert _close(trained, _weights(store, "ddp-2x4"), 1e-4) < 1e-4
    meta = json.loads((store.home / "runs/ddp-2x4/checkpoint/state.json").read_text())["meta"]
    assert meta["processes"] == 2


def test_a_killed_two_process_run_resumes_to_the_same_weights(
    setup: dict[str, Path], two_process_run: str
) -> None:
    store = ModelStore(setup["root"] / "home")
    log = store.home / "runs/ddp-killed/log.jsonl"
    process = _torchrun(setup, "ddp-killed")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and '"checkpoint"' in log.read_text():
            _kill_tree(process.pid)  # every process of the run, mid-training
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert not store.has("ddp-killed"), "the run ended before it could be killed"
    saved = json.loads((store.home / "runs/ddp-killed/checkpoint/state.json").read_text())
    assert 0 < saved["state"]["step"] < STEPS

    out = _finish(_torchrun(setup, "ddp-killed", "--resume"))
    assert f"resuming ddp-killed at step {saved['state']['step']}" in out
    assert _close(_weights(store, "ddp-killed"), _weights(store, "ddp-2x4"), 1e-5) < 1e-5


def test_accelerate_launch_trains_the_same_model(
    setup: dict[str, Path], two_process_run: str
) -> None:
    out = _finish(_torchrun(setup, "ddp-accelerate", launcher=ACCELERATE))
    assert "rank 1/2" in out and out.count("stored at") == 1
    store = ModelStore(setup["root"] / "home")
    assert _close(_weights(store, "ddp-accelerate"), _weights(store, "ddp-2x4"), 1e-5) < 1e-5


def test_resume_refuses_another_process_count(setup: dict[str, Path], two_process_run: str) -> None:
    store = ModelStore(setup["root"] / "home")
    with pytest.raises(QuintetError, match="2-process run; resume it with the same number"):
        finetune("classification", str(setup["base"]), setup["data"], "ddp-2x4",
                 TrainConfig(max_steps=STEPS, batch_size=8), store=store, resume=True,
                 progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("family", "kind"),
    [("bert", "sequence-classification"), ("llama", "causal"), ("t5", "seq2seq")],
)
def test_weighted_parts_give_the_loss_of_the_whole_global_batch(family: str, kind: str) -> None:
    """The per-process loss weights make DDP's gradient average equal the 1-process mean,
    also for parts of unequal size and for token-averaged language-model losses."""
    loaded = load_fresh(ModelSpec(str(tiny_model_dir(family, kind=kind)), kind=kind, device="cpu"))
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(1)
    texts = [" ".join(rng.sample(CORPUS, rng.randint(1, 4))) for _ in range(7)]

    def encoded(text: str) -> dict[str, list[int]]:
        ids = tokenizer(text)["input_ids"]
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}

    if kind == "causal":
        turns = [({"role": "user", "content": t}, {"role": "assistant", "content": t[::-1]})
                 for t in texts]  # fmt: skip
        chats = [ChatExample(messages) for messages in turns]
        rows, _ = feats.causal_sft_features(tokenizer, chats, max_length=128)
    elif kind == "seq2seq":
        rows = [{**encoded(t), "labels": tokenizer(t[::-1])["input_ids"]} for t in texts]
    else:
        rows = [{**encoded(t), "labels": i % 2} for i, t in enumerate(texts)]

    def loss_of(part: list[dict]) -> float:
        with torch.no_grad():
            return float(model(**feats.collate(part, pad)).loss)

    # 7 rows over 2 processes: parts of 3 and 4 rows with different numbers of label tokens.
    parts = [[rows[i] for i in process_part(list(range(7)), p, 2)] for p in range(2)]
    assert [len(p) for p in parts] == [3, 4]
    averaged = sum(loss_weight(kind, p, rows, 2) * loss_of(p) for p in parts) / 2
    assert averaged == pytest.approx(loss_of(rows), rel=1e-5)
    assert loss_units(kind, rows) == sum(loss_units(kind, p) for p in parts)


def test_global_batches_are_shared_out_without_empty_parts() -> None:
    batches = global_batches(list(range(21)), 4, 2, seed=3)  # 8 + 8 + 5 rows
    assert sorted(i for b in batches for i in b) == list(range(21))
    for batch in batches:
        parts = [process_part(batch, p, 2) for p in range(2)]
        assert parts[0] + parts[1] == batch and all(parts)
    # 9 rows: 8 + a lone row that one of two processes could not share: dropped.
    assert sorted(len(b) for b in global_batches(list(range(9)), 4, 2, seed=0)) == [8]
