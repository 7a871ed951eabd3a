"""Encoder throughput on the default path (`make bench`).

Each figure is a ratio against a baseline measured in the same run: plain torch fp32, the
model's forward pass over batches of 32 in input order (what a hand-written loop or a
transformers pipeline does), on the same inputs.

1. Classification: SST-2 dev (872 sentences), ``Classifier(model).classify`` (backend auto).
2. Extractive QA: the first 500 questions of the shipped SQuAD v1.1 dev articles,
   ``QuestionAnswerer(model).answer_many`` (backend auto), windows of 384 tokens.

The models are minilm-l6-sst2 / minilm-l6-squad when the recipes are built, else MiniLM-L6
with an untrained head of the same shape (speed does not depend on the weights; the
report says which). Each path runs in a fresh process and reports its peak memory; the
engine conversions (ONNX, CTranslate2) are built beforehand in a process of their own, so the
timed one measures the steady state (a conversion in the same process had cost the
classification path a quarter of its speed and 330 MB of peak memory, 2026-12-07).

Usage: ``python -m benchmarks.encoders [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SST2_DEV = ROOT / "data" / "classification" / "sst2" / "dev.tsv"
SQUAD = ROOT / "data" / "qa" / "squad_v1.1" / "dev-v1.1.articles-00-23.json"
RESULT_PREFIX = "BENCH-RESULT "
BASELINE_BATCH = 32


def sst2_texts() -> list[str]:
    lines = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines]


def squad_pairs(n: int) -> list[tuple[str, str]]:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    pairs = [
        (qa["question"], paragraph["context"])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return pairs[:n]


def model_for(task: str, folder: Path) -> tuple[str, str]:
    """The recipe model if built, else MiniLM-L6 with an untrained head: (path, note)."""
    from quintet.core.store import ModelStore

    recipe = {"classification": "minilm-l6-sst2", "qa": "minilm-l6-squad"}[task]
    store = ModelStore()
    if store.has(recipe):
        return str(store.path(recipe)), recipe
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    cls = (
        AutoModelForSequenceClassification
        if task == "classification"
        else AutoModelForQuestionAnswering
    )
    base = store.path("minilm-l6")
    model = cls.from_pretrained(base, **({"num_labels": 2} if task == "classification" else {}))
    model.save_pretrained(folder)
    for file in base.iterdir():
        if file.name.startswith(("tokenizer", "special_tokens", "vocab")):
            (folder / file.name).write_bytes(file.read_bytes())
    return str(folder), f"minilm-l6 with an untrained {task} head ({recipe} not built)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Workers (each in a fresh process) ---------------------------------------------------------


def worker_classification(job: dict) -> dict:
    texts = sst2_texts()[: 8 if job.get("prepare") else None]
    if job["path"] == "baseline":
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(job["model"])
        model = AutoModelForSequenceClassification.from_pretrained(job["model"]).eval()

        def run() -> None:
            with torch.inference_mode():
                for begin in range(0, len(texts), BASELINE_BATCH):
                    batch = tokenizer(
                        texts[begin : begin + BASELINE_BATCH],
                        padding=True,
                        truncation=True,
                        return_tensors="pt",
                    )
                    model(**batch)

    else:
        from quintet.apps.classification import Classifier

        classifier = Classifier(job["model"], backend=job["backend"])

        def run() -> None:
            classifier.classify(texts)

    run()  # warm-up (and the conversion, on first use)
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    return {"examples_per_s": len(texts) / seconds, "seconds": seconds,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def worker_qa(job: dict) -> dict:
    pairs = squad_pairs(8 if job.get("prepare") else job["questions"])
    if job["path"] == "baseline":
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        from quintet.core.examples import QAExample
        from quintet.core.training import features as feats

        tokenizer = AutoTokenizer.from_pretrained(job["model"])
        model = AutoModelForQuestionAnswering.from_pretrained(job["model"]).eval()
        examples = [QAExample(str(i), q, c, ()) for i, (q, c) in enumerate(pairs)]
        windows = feats.span_features(
            tokenizer, examples, max_length=384, doc_stride=128, training=False
        )
        pad = tokenizer.pad_token_id or 0

        def run() -> None:
            with torch.inference_mode():
                for begin in range(0, len(windows), BASELINE_BATCH):
                    model(**feats.collate(windows[begin : begin + BASELINE_BATCH], pad))

    else:
        from quintet.apps.qa import QuestionAnswerer

        qa = QuestionAnswerer(job["model"], backend=job["backend"], batch_size=BASELINE_BATCH)

        def run() -> None:
            qa.answer_many(pairs)

    run()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    return {"examples_per_s": len(pairs) / seconds, "seconds": seconds,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


WORKERS = {"classification": worker_classification, "qa": worker_qa}


def run_worker(job: dict) -> dict:
    command = [sys.executable, "-m", "benchmarks.encoders", "--worker", json.dumps(job)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("QUINTET_BACKEND", None)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError(f"benchmark worker {job['section']}/{job['path']} failed:\n{done.stderr}")


PATHS = [
    ("baseline", None, "torch fp32, batch 32, input order (baseline)"),
    ("default", "auto", "quintet DEFAULT path (backend auto)"),
    ("reference", "transformers", "quintet on torch fp32 (backend transformers)"),
]


def section(task: str, tmp: Path, extra: dict) -> dict:
    model, note = model_for(task, tmp / task)
    rows = []
    for path, backend, label in PATHS:
        if backend is not None:  # builds the path's conversion into the store, untimed
            run_worker({"section": task, "path": path, "backend": backend,
                        "model": model, "prepare": True, **extra})  # fmt: skip
        result = run_worker({"section": task, "path": path, "backend": backend,
                             "model": model, **extra})  # fmt: skip
        rows.append({"path": label, **result})
        print(f"  {label}: {result['examples_per_s']:.1f} examples/s", flush=True)
    for row in rows:
        row["speedup"] = row["examples_per_s"] / rows[0]["examples_per_s"]
    return {"model": note, "rows": rows}


def print_section(title: str, result: dict) -> None:
    print(f"\n## {title}\nmodel: {result['model']}")
    print(f"{'path':<52}{'examples/s':>12}{'x baseline':>12}{'peak MB':>10}")
    for row in result["rows"]:
        print(f"{row['path']:<52}{row['examples_per_s']:>12.1f}"
              f"{row['speedup']:>11.2f}x{row['peak_rss_mb']:>10.0f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(RESULT_PREFIX + json.dumps(WORKERS[job["section"]](job)), flush=True)
        return 0
    import onnxruntime
    import torch

    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    )
    print(f"# Encoder benchmark ({machine})", flush=True)
    results: dict = {"machine": machine, "date": time.strftime("%Y-%m-%d")}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results["classification"] = section("classification", Path(tmp), {})
        results["classification"]["data"] = "SST-2 dev, 872 sentences"
        print_section("Classification, SST-2 dev (872)", results["classification"])
        results["qa"] = section("qa", Path(tmp), {"questions": args.questions})
        results["qa"]["data"] = f"SQuAD v1.1 dev articles 0-23, first {args.questions} questions"
        print_section(f"Extractive QA, SQuAD ({args.questions} questions)", results["qa"])
    results["seconds"] = time.perf_counter() - started
    print(f"\nbenchmark took {results['seconds'] / 60:.1f} minutes")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
