"""Ray scale-out on one machine: 2 workers x 1 thread vs 1 x 1 thread (`make bench`).

Two batch jobs, each run three ways in a fresh process: on one thread without Ray (the
single-process path), on a local Ray cluster with 1 worker x 1 thread, and with 2 workers x
1 thread. The jobs are what ``--ray`` runs: ``classify_file`` (5,000 SST-2 sentences,
minilm-l6 zero-shot, the default engine) and ``translate_file`` (500 FLORES sentences, a
random Marian model shaped like opus-mt-en-de, 32 new tokens per line, greedy).

Reported per run: steady throughput (rows after the first delivered batch, over the time
from that batch to the last: what the workers sustain), end-to-end throughput, and the
start-up: seconds from the call to the first delivered batch (Ray: starting the cluster,
the actors and their model loads). Outputs of all three runs must be byte-identical.
Target: 2 Ray workers >= 1.6x the 1-worker steady throughput (2 cores; run it on a quiet
machine).

Usage: ``python -m benchmarks.cluster [--rows 5000] [--sentences 500] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SST2_TRAIN = ROOT / "data" / "classification" / "sst2" / "train.tsv"
RESULT_PREFIX = "BENCH-RESULT "
RUNS = (("local", 0), ("ray", 1), ("ray", 2))  # (path, workers)
TRANSLATION_TOKENS = 32
TRANSLATION_CHUNK = 16  # lines per batch: 500 lines make 32 batches to share


def write_rows(path: Path, rows: int) -> None:
    """``rows`` real SST-2 sentences (train split, repeated if asked for more)."""
    with SST2_TRAIN.open(encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "sentence"])
        writer.writerows([i, sentences[i % len(sentences)]] for i in range(rows))


def write_sentences(path: Path, sentences: int) -> None:
    from benchmarks.decoding import FLORES_EN

    lines = FLORES_EN.read_text(encoding="utf-8").splitlines()
    path.write_text("".join(lines[i % len(lines)] + "\n" for i in range(sentences)))


def worker(job: dict) -> dict:
    """One run in this process: the job's call, timed batch by batch."""
    from core.cluster import ClusterOptions

    cluster = ClusterOptions(workers=job["workers"]) if job["path"] == "ray" else None
    deliveries: list[tuple[float, int]] = []
    started = time.perf_counter()

    def progress(done: int, _total: int) -> None:
        if done:  # the first call reports what an earlier run left: nothing here
            deliveries.append((time.perf_counter(), done))

    if job["task"] == "classification":
        from apps.classification import Classifier
        from apps.classification.batch import classify_file

        # The single-process path loads its model before the call; so does the driver here
        # (classify_file needs the label set), and the Ray actors load theirs in the call.
        classifier = Classifier("minilm-l6", labels=["negative", "positive"])
        started = time.perf_counter()
        classify_file(classifier, job["input"], job["output"], progress=progress,
                      cluster=cluster)  # fmt: skip
    else:
        from apps.translation import Translator

        translator = Translator(job["model"])
        if cluster is None:
            translator.translate("Warm up.", "en", "de", max_new_tokens=1)  # load it
        started = time.perf_counter()
        translator.translate_file(
            job["input"], job["output"], "en", "de", progress=progress, cluster=cluster,
            chunk_lines=TRANSLATION_CHUNK, max_new_tokens=TRANSLATION_TOKENS,
            min_new_tokens=TRANSLATION_TOKENS,
        )  # fmt: skip
    ended = time.perf_counter()
    (first, first_rows), (last, rows) = deliveries[0], deliveries[-1]
    return {
        "rows": rows,
        "startup_s": round(first - started, 2),
        "total_s": round(ended - started, 2),
        "steady_rows_per_s": round((rows - first_rows) / (last - first), 2),
        "end_to_end_rows_per_s": round(rows / (ended - started), 2),
    }


def run(job: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "benchmarks.cluster", "--worker", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{job['task']} {job['path']} failed:\n{done.stderr[-3000:]}")


def section(task: str, tmp: Path, source: Path, model: str = "") -> dict:
    results: dict = {}
    outputs = []
    for path, workers in RUNS:
        name = "local, 1 thread" if path == "local" else f"ray, {workers} x 1 thread"
        output = tmp / f"{task}-{path}-{workers}{'.csv' if task == 'classification' else '.txt'}"
        job = {"task": task, "path": path, "workers": workers, "input": str(source),
               "output": str(output), "model": model}  # fmt: skip
        results[name] = run(job)
        outputs.append(output.read_bytes())
        print(f"  {name:<18} {json.dumps(results[name])}", flush=True)
    one, two = results["ray, 1 x 1 thread"], results["ray, 2 x 1 thread"]
    local = results["local, 1 thread"]
    return {
        "runs": results,
        "speedup_2_vs_1_workers": round(two["steady_rows_per_s"] / one["steady_rows_per_s"], 2),
        "speedup_2_workers_vs_local": round(
            two["steady_rows_per_s"] / local["steady_rows_per_s"], 2
        ),
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
            write_rows(tmp / "rows.csv", args.rows)
            results["classification"] = section("classification", tmp, tmp / "rows.csv")
        if "translation" not in args.skip:
            from benchmarks.decoding import build_opus_shaped_marian

            print(f"translation: {args.sentences} FLORES sentences, opus-mt-en-de-shaped "
                  f"Marian, {TRANSLATION_TOKENS} tokens each", flush=True)  # fmt: skip
            model = build_opus_shaped_marian(tmp / "marian")
            write_sentences(tmp / "sentences.txt", args.sentences)
            results["translation"] = section("translation", tmp, tmp / "sentences.txt", str(model))
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
