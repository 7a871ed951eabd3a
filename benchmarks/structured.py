"""Lookup decoding and constrained output on onnxruntime-genai (`make bench`).

1. Prompt lookup decoding (``DecodeConfig.lookup``) against plain greedy decoding, one
   request at a time (the interactive case; lookup decodes one sequence at a time anyway),
   SmolLM2-135M-Instruct on the int8 (default) and fp32 conversions:
   - summarization of the SAMSum dialogues the ``smollm2-135m-samsum`` recipe held back
     (the summarization app's prompt);
   - grounded QA: a SQuAD v1.1 dev paragraph and question, "answer from the context".
   Reported per row: generated tokens per second (all tokens over all time), the ratio to
   plain decoding of the same precision, and how many outputs are token-for-token
   identical to plain decoding's.
2. JSON-schema constrained output (``DecodeConfig.json_schema``) against unconstrained
   decoding of the same prompts on int8: tokens per second and the ratio (the grammar
   masks every step's vocabulary).

Every ratio is within one run, on one machine, in one process (one engine: no other
thread pool runs beside it).

Usage: ``python -m benchmarks.structured [--items 12] [--lookup 4] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.task_prompts import summarize_prompt

ROOT = Path(__file__).resolve().parent.parent
SAMSUM = ROOT / "data" / "summarization" / "samsum" / "val.csv"
SQUAD = ROOT / "data" / "qa" / "squad_v1.1" / "dev-v1.1.articles-00-23.json"
MODEL = "smollm2-135m-instruct"

RECORD = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "people": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 30},
                    "role": {"enum": ["speaker", "mentioned", "other"]},
                },
                "required": ["name", "role"],
                "additionalProperties": False,
            },
        },
        "mood": {"enum": ["positive", "negative", "neutral"]},
        "summary": {"type": "string", "maxLength": 120},
    },
    "required": ["title", "people", "mood", "summary"],
    "additionalProperties": False,
}


def samsum_heldout(count: int) -> list[str]:
    """The first ``count`` held-out SAMSum dialogues (as the summarization harness's
    ``split=heldout``)."""
    from quintet.apps.finetune.recipes import get_recipe
    from quintet.apps.summarization.harness import HELDOUT_RECIPE
    from quintet.core.data import read_pairs, split_for_task

    config = get_recipe(HELDOUT_RECIPE).config
    examples = read_pairs(SAMSUM)
    _, heldout = split_for_task("summarization", examples, config.validation_fraction, config.seed)
    return [ex.source_text for ex in heldout[:count]]


def squad_items(count: int) -> list[tuple[str, str]]:
    """(context, question) from the first paragraphs of SQuAD dev, one question each."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    items = []
    for article in data:
        for paragraph in article["paragraphs"]:
            items.append((paragraph["context"], paragraph["qas"][0]["question"]))
            if len(items) == count:
                return items
    return items


def grounded_prompt(context: str, question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": (
        f"Answer the question from the context, in one sentence that repeats its words."
        f"\n\nContext: {context}\n\nQuestion: {question}"
    )}]  # fmt: skip


def timed(generator: Generator, prompts: list, config: DecodeConfig) -> tuple[list, float]:
    """Outputs one prompt at a time, and the wall time of them all."""
    started = time.perf_counter()
    results = [generator.complete(prompt, config) for prompt in prompts]
    return results, time.perf_counter() - started


def lookup_rows(generator: Generator, precision: str, task: str, prompts: list,
                max_new_tokens: int, lookup: int) -> list[dict]:  # fmt: skip
    plain_config = DecodeConfig(max_new_tokens=max_new_tokens)
    generator.complete(prompts[0], DecodeConfig(max_new_tokens=4, lookup=lookup))  # warm up
    plain, plain_s = timed(generator, prompts, plain_config)
    fast, fast_s = timed(generator, prompts, DecodeConfig(max_new_tokens=max_new_tokens,
                                                         lookup=lookup))  # fmt: skip
    plain_tokens = sum(r.num_tokens for r in plain)
    fast_tokens = sum(r.num_tokens for r in fast)
    plain_rate, fast_rate = plain_tokens / plain_s, fast_tokens / fast_s
    identical = sum(a.token_ids == b.token_ids for a, b in zip(plain, fast, strict=True))
    base = {"section": "lookup", "task": task, "precision": precision, "items": len(prompts),
            "max_new_tokens": max_new_tokens}  # fmt: skip
    return [
        {**base, "path": "plain", "lookup": 0, "tokens": plain_tokens,
         "seconds": round(plain_s, 2), "tokens_per_s": round(plain_rate, 1),
         "ratio": 1.0, "identical": len(prompts)},
        {**base, "path": f"lookup={lookup}", "lookup": lookup, "tokens": fast_tokens,
         "seconds": round(fast_s, 2), "tokens_per_s": round(fast_rate, 1),
         "ratio": round(fast_rate / plain_rate, 2), "identical": identical},
    ]  # fmt: skip


def schema_rows(generator: Generator, dialogues: list[str], max_new_tokens: int) -> list[dict]:
    prompts = [[{"role": "user", "content": (
        f"Describe this dialogue as a JSON record: a title, the people, the mood and a "
        f"one-sentence summary.\n\n{d.strip()}"
    )}] for d in dialogues]  # fmt: skip
    plain_config = DecodeConfig(max_new_tokens=max_new_tokens)
    schema_config = DecodeConfig(max_new_tokens=max_new_tokens, json_schema=RECORD)
    generator.complete(prompts[0], DecodeConfig(max_new_tokens=4, json_schema=RECORD))
    rows = []
    rates = {}
    for path, config in (("unconstrained", plain_config), ("json_schema", schema_config)):
        results, seconds = timed(generator, prompts, config)
        tokens = sum(r.num_tokens for r in results)
        rates[path] = tokens / seconds
        valid = None
        if path == "json_schema":
            valid = sum(_valid(r.text) for r in results)
        rows.append({"section": "json_schema", "task": "dialogue record", "precision": "int8",
                     "path": path, "items": len(prompts), "tokens": tokens,
                     "seconds": round(seconds, 2), "tokens_per_s": round(rates[path], 1),
                     "ratio": round(rates[path] / rates["unconstrained"], 2),
                     "valid_json": valid})  # fmt: skip
    return rows


def _valid(text: str) -> bool:
    try:
        import jsonschema
    except ImportError:  # the dev extra has it; without it, parsing is the check
        jsonschema = None
    try:
        value = json.loads(text)
        if jsonschema is not None:
            jsonschema.validate(value, RECORD)
    except Exception:  # noqa: BLE001 - any failure is "not valid"
        return False
    return True


def table(rows: list[dict]) -> str:
    lines = [f"{'section':<12}{'task':<16}{'prec':<6}{'path':<15}{'tok/s':>8}{'ratio':>7}"
             f"{'tokens':>8}  identical/valid"]  # fmt: skip
    for r in rows:
        check = r.get("identical", r.get("valid_json"))
        check = "" if check is None else f"{check}/{r['items']}"
        lines.append(
            f"{r['section']:<12}{r['task']:<16}{r['precision']:<6}{r['path']:<15}"
            f"{r['tokens_per_s']:>8.1f}{r['ratio']:>7.2f}{r['tokens']:>8}  {check}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12, help="prompts per task")
    parser.add_argument("--lookup", type=int, default=4, help="draft tokens per step")
    parser.add_argument("--summary-tokens", type=int, default=96)
    parser.add_argument("--qa-tokens", type=int, default=64)
    parser.add_argument("--json-tokens", type=int, default=200)
    parser.add_argument("--precisions", nargs="+", default=["int8", "fp32"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    dialogues = samsum_heldout(args.items)
    summaries = [[{"role": "user", "content": summarize_prompt(d)}] for d in dialogues]
    questions = [grounded_prompt(c, q) for c, q in squad_items(args.items)]
    rows: list[dict] = []
    for precision in args.precisions:
        generator = Generator(MODEL, "onnxruntime-genai", precision=precision)
        rows += lookup_rows(generator, precision, "samsum summary", summaries,
                            args.summary_tokens, args.lookup)  # fmt: skip
        rows += lookup_rows(generator, precision, "grounded qa", questions, args.qa_tokens,
                            args.lookup)  # fmt: skip
        if precision == "int8":
            rows += schema_rows(generator, dialogues, args.json_tokens)
        print(table(rows), flush=True)
    report = {
        "benchmark": "structured",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },  # fmt: skip
        "settings": vars(args) | {"out": str(args.out) if args.out else None},
        "rows": rows,
    }
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        args.out.with_suffix(".txt").write_text(table(rows) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
