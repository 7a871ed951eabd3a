"""Ray scale-out on one machine: 2 workers x 1 thread vs 1 x 1 thread (`make bench`).

Two batch jobs, each run three ways in a fresh process: on one thread without Ray (the
single-process path), on a local Ray cluster with 1 worker x 1 thread, and with 2 workers x
1 thread. The jobs are what ``--ray`` runs: ``classify_file`` (5,000 SST-2 sentences,
minilm-l6 zero-shot, the default engine) and ``translate_file`` (500 FLORES sentences, a
random Marian model shaped like opus-mt-en-de, 32 new tokens per line, greedy).

Each way runs twice: on the whole input and on a small one (two batches per worker). The
difference cancels what both pay once (Ray: starting the cluster, the actors and their
model loads), so the throughput reported is what the workers sustain:
``(rows - small rows) / (seconds - small seconds)``; the start-up is the small run's
seconds less its rows at that rate. End-to-end throughput (start-up included) is reported
too. Outputs of the three whole runs must be byte-identical.
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
    """One run in this process: the seconds of the job's call."""
    from core.cluster import ClusterOptions

    cluster = ClusterOptions(workers=job["workers"]) if job["path"] == "ray" else None
    progress = False

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
    return {"seconds": time.perf_counter() - started}


def run(job: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-m", "benchmarks.cluster", "--worker", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"{job['task']} {job['path']} failed:\n{done.stderr[-3000:]}")


def section(task: str, tmp: Path, write, rows: int, batch: int, model: str = "") -> dict:
    """The three ways on ``rows`` rows written by ``write(path, rows)``, each against its
    small run (two batches of ``batch`` rows per worker)."""
    suffix = ".csv" if task == "classification" else ".txt"
    results: dict = {}
    outputs = []
    for path, workers in RUNS:
        name = "local, 1 thread" if path == "local" else f"ray, {workers} x 1 thread"
        small_rows = min(rows - 1, 2 * batch * max(1, workers))
        seconds = {}
        for size in (small_rows, rows):
            source = tmp / f"{task}-{size}{suffix}"
            if not source.exists():
                write(source, size)
            output = tmp / f"{task}-{path}-{workers}-{size}{suffix}"
            job = {"task": task, "path": path, "workers": workers, "input": str(source),
                   "output": str(output), "model": model}  # fmt: skip
            seconds[size] = run(job)["seconds"]
        outputs.append(output.read_bytes())
        rate = (rows - small_rows) / (seconds[rows] - seconds[small_rows])
        results[name] = {
            "rows": rows,
            "seconds": round(seconds[rows], 2),
            "steady_rows_per_s": round(rate, 2),
            "startup_s": round(seconds[small_rows] - small_rows / rate, 2),
            "end_to_end_rows_per_s": round(rows / seconds[rows], 2),
        }
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
            results["classification"] = section("classification", tmp, write_rows, args.rows, 64)
        if "translation" not in args.skip:
            from benchmarks.decoding import build_opus_shaped_marian

            print(f"translation: {args.sentences} FLORES sentences, opus-mt-en-de-shaped "
                  f"Marian, {TRANSLATION_TOKENS} tokens each", flush=True)  # fmt: skip
            model = build_opus_shaped_marian(tmp / "marian")
            results["translation"] = section(
                "translation", tmp, write_sentences, args.sentences, TRANSLATION_CHUNK, str(model)
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
