"""Ray scale-out on one machine: 2 workers x 1 thread vs 1 x 1 thread (`make bench`).

Two batch jobs, each run three ways in a fresh process: on one thread without Ray (the
single-process path), on a local Ray cluster with 1 worker x 1 thread, and with 2 workers x
1 thread. The batch functions are the ones ``--ray`` ships to the actors for
``classify --input`` (5,000 SST-2 sentences, minilm-l6 zero-shot, the default engine,
batches of 64) and ``translate --input --output`` (500 FLORES sentences, a random Marian
model shaped like opus-mt-en-de, 32 new tokens per line, greedy, chunks of 16 lines).

Each batch records when it started and ended (wall clock) and which process ran it.
Throughput is the rows of the batches started from the moment every worker has begun its
first batch, over the time from that moment to the last batch's end: what the workers
sustain once their models are loaded. Start-up is the time from the call to that moment
(Ray: starting the cluster and the actors, loading the models), reported separately. The
results of all three ways must be equal (the files ``--ray`` writes from them are then
byte-identical; the tests check that on the files).

Usage: ``python -m benchmarks.cluster [--rows 5000] [--sentences 500] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SST2_TRAIN = ROOT / "data" / "classification" / "sst2" / "train.tsv"
RESULT_PREFIX = "BENCH-RESULT "
RUNS = (("local", 0), ("ray", 1), ("ray", 2))  # (path, workers)
CLASSIFY_BATCH = 64  # classify_file's default
TRANSLATION_TOKENS = 32
TRANSLATION_CHUNK = 16  # lines per batch: 500 lines make 32 batches to share


def sst2_rows(rows: int) -> list[str]:
    """``rows`` real SST-2 sentences (train split, repeated if asked for more)."""
    lines = SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0] for line in lines]
    return [sentences[i % len(sentences)] for i in range(rows)]


def flores_lines(count: int) -> list[str]:
    from benchmarks.decoding import FLORES_EN

    lines = FLORES_EN.read_text(encoding="utf-8").splitlines()
    return [lines[i % len(lines)] for i in range(count)]


@dataclass(frozen=True)
class Timed:
    """Wraps a batch-function factory: each batch returns ``(result, started, ended, pid)``."""

    factory: Any

    def __call__(self):
        run = self.factory()

        def timed(rows: list) -> tuple[Any, float, float, int]:
            started = time.time()
            result = run(rows)
            return result, started, time.time(), os.getpid()

        return timed


def factory(job: dict) -> Any:
    """The factory ``--ray`` builds for the job's command."""
    if job["task"] == "classification":
        from quintet.apps.classification.api import ClassifyOnActor
        from quintet.core.config import ModelSpec

        return ClassifyOnActor(ModelSpec("minilm-l6"), ["negative", "positive"],
                               False, {}, 1.0, 32, "auto", None, 0.5)  # fmt: skip
    from quintet.apps.translation.api import TranslateOnActor

    decode = {"max_new_tokens": TRANSLATION_TOKENS, "min_new_tokens": TRANSLATION_TOKENS}
    return TranslateOnActor(job["model"], "auto", "auto", 16, "en", "de", decode)


def worker(job: dict) -> dict:
    """One way in this process: every batch's result and times."""
    from quintet.core.cluster import ClusterOptions, run_batches

    rows = json.loads(Path(job["input"]).read_text())
    size = CLASSIFY_BATCH if job["task"] == "classification" else TRANSLATION_CHUNK
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    started = time.time()
    if job["path"] == "local":
        run = Timed(factory(job))()
        timed = [run(batch) for batch in batches]
    else:
        options = ClusterOptions(workers=job["workers"])
        timed = [result for _, result in run_batches(batches, Timed(factory(job)), options)]
    # The window opens when the last worker starts its first batch (workers that load their
    # model later must not count as idle time) and closes at the last batch's end; only
    # batches started inside it count.
    firsts: dict[int, float] = {}
    for _, begun, _, pid in timed:
        firsts[pid] = min(begun, firsts.get(pid, begun))
    ready, last = max(firsts.values()), max(t[2] for t in timed)
    counted = sum(len(batch) for batch, t in zip(batches, timed, strict=True) if t[1] >= ready)
    results = [t[0] for t in timed]
    if job["task"] == "translation":  # what the file gets; seconds differ from run to run
        results = [[r.text for r in batch] for batch in results]
    Path(job["output"]).write_bytes(pickle.dumps(results))
    return {
        "rows": len(rows),
        "rows_per_s": round(counted / (last - ready), 2),
        "startup_s": round(ready - started, 2),
        "total_s": round(time.time() - started, 2),
    }


def run(job: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "benchmarks.cluster", "--worker", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{job['task']} {job['path']} failed:\n{done.stderr[-3000:]}")


def section(task: str, tmp: Path, rows: list[str], model: str = "") -> dict:
    source = tmp / f"{task}.json"
    source.write_text(json.dumps(rows))
    results: dict = {}
    outputs = []
    for path, workers in RUNS:
        name = "local, 1 thread" if path == "local" else f"ray, {workers} x 1 thread"
        output = tmp / f"{task}-{path}-{workers}.pickle"
        job = {"task": task, "path": path, "workers": workers, "input": str(source),
               "output": str(output), "model": model}  # fmt: skip
        results[name] = run(job)
        outputs.append(pickle.loads(output.read_bytes()))
        print(f"  {name:<18} {json.dumps(results[name])}", flush=True)
    one, two = results["ray, 1 x 1 thread"], results["ray, 2 x 1 thread"]
    local = results["local, 1 thread"]
    return {
        "runs": results,
        "speedup_2_vs_1_workers": round(two["rows_per_s"] / one["rows_per_s"], 2),
        "speedup_2_workers_vs_local": round(two["rows_per_s"] / local["rows_per_s"], 2),
        "ray_startup_s": two["startup_s"],
        "outputs_identical": all(o == outputs[0] for o in outputs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows to classify")
    parser.add_argument("--sentences", type=int, default=500, help="sentences to translate")
    parser.add_argument("--skip", nargs="*", default=[], choices=["classification", "translation"])
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    import ray

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, ray {ray.__version__}"
    print(f"# Ray scale-out benchmark ({machine})", flush=True)
    results: dict = {"machine": machine, "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "classification" not in args.skip:
            print(f"classification: {args.rows} rows, minilm-l6 zero-shot", flush=True)
            results["classification"] = section("classification", tmp, sst2_rows(args.rows))
        if "translation" not in args.skip:
            from benchmarks.decoding import build_opus_shaped_marian

            print(f"translation: {args.sentences} FLORES sentences, opus-mt-en-de-shaped "
                  f"Marian, {TRANSLATION_TOKENS} tokens each", flush=True)  # fmt: skip
            model = build_opus_shaped_marian(tmp / "marian")
            results["translation"] = section(
                "translation", tmp, flores_lines(args.sentences), str(model)
            )
    failed = False
    for task in ("classification", "translation"):
        if task in results:
            r = results[task]
            ok = r["speedup_2_vs_1_workers"] >= 1.6 and r["outputs_identical"]
            failed |= not ok
            print(f"{task}: 2 workers {r['speedup_2_vs_1_workers']}x 1 worker "
                  f"({r['speedup_2_workers_vs_local']}x the single process), Ray start-up "
                  f"{r['ray_startup_s']} s, outputs identical: {r['outputs_identical']} "
                  f"[{'ok' if ok else 'MISSED'} target >= 1.6x]")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
