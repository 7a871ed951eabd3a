"""Multi-process fine-tuning throughput (`make bench`): 2 processes vs 1, same global batch.

MiniLM-L6 (the packaged all-MiniLM-L6-v2 with a new 2-class head) fine-tuned on the first
2,000 SST-2 training sentences for a fixed number of optimizer steps, global batch 32:

- baseline: one process, batch 32, one thread;
- DDP: ``torchrun --standalone --nproc-per-node 2``, batch 16 per process, one thread each
  (gloo on CPU; more threads per process would spin-wait against each other on 2 cores).

Examples/s is read from each run's ``log.jsonl`` (the trainer's own per-step figure, summed
over processes), skipping the first steps (warm-up). The ratio is what a second CPU process
buys on this machine; on GPUs DDP with NCCL overlaps the all-reduce with the backward pass,
which a 2-core CPU cannot.

Usage: ``python -m benchmarks.training [--steps 40] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SST2_TRAIN = ROOT / "data" / "classification" / "sst2" / "train.tsv"
GLOBAL_BATCH = 32
WARMUP_STEPS = 5


def _run(
    launcher: list[str], batch: int, steps: int, data: Path, home: Path, name: str, accum: int
) -> dict:
    command = [
        *launcher, "-m", "quintet.apps.cli", "finetune", "classification", "--model", "minilm-l6",
        "--data", str(data), "--batch-size", str(batch), "--max-steps", str(steps),
        "--eval-every", str(10 * steps), "--save-every", str(10 * steps), "--output", name,
        "--grad-accum", str(accum),
    ]  # fmt: skip
    env = {**os.environ, "QUINTET_HOME": str(home), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}  # fmt: skip
    # The store's packaged models are shared: link them into the private home.
    began = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - began
    records = [json.loads(line) for line in (home / "runs" / name / "log.jsonl").open()]
    speeds = [r["examples_per_s"] for r in records if "examples_per_s" in r][WARMUP_STEPS:]
    return {"examples_per_s": statistics.median(speeds), "wall_s": round(wall, 1),
            "steps": steps}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rows", type=int, default=2000)
    # Gradients are averaged across processes once per optimizer step: accumulating several
    # batches per step spreads that all-reduce over more compute.
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    store_home = Path(os.environ.get("QUINTET_HOME", Path.home() / ".cache" / "quintet"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "models").mkdir(parents=True)
        # Runs write into this private home; the packaged base model is linked from the store.
        os.symlink(store_home / "models" / "minilm-l6", home / "models" / "minilm-l6")
        data = Path(tmp) / "train.tsv"
        lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()
        data.write_text("\n".join(lines[: args.rows + 1]) + "\n", encoding="utf-8")
        one = _run([sys.executable], GLOBAL_BATCH, args.steps, data, home, "one", args.grad_accum)
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2"]  # fmt: skip
        two = _run(torchrun, GLOBAL_BATCH // 2, args.steps, data, home, "two", args.grad_accum)
    result = {
        "benchmark": "training",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "model": "minilm-l6 (+2-class head)",
        "global_batch": GLOBAL_BATCH,
        "grad_accum": args.grad_accum,
        "one_process": one,
        "two_processes": two,
        "speedup": round(two["examples_per_s"] / one["examples_per_s"], 2),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
