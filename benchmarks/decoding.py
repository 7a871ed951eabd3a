"""Decoding speed and output agreement (`make bench`).

Every figure is a ratio against a baseline measured in the same run, on the same machine:
plain transformers ``generate``, one input at a time, float32, default settings.

1. Batch translation throughput: a Marian model shaped like opus-mt-en-de (random weights:
   speed does not depend on them; the output length is fixed so every path does the same
   work), FLORES-200 dev English sentences, beam 4.
2. Chat decode speed: SmolLM2-135M-Instruct, batch 1, greedy, 128 new tokens (fixed), with
   time to first token; the default path is ``ChatSession().send`` (backend auto).
3. Batch chat generation: 16 instructions at once on the default path, against the
   one-at-a-time fp32 baseline of section 2.
4. Output agreement of the faster paths with the float32 reference: SmolLM2 on 100 real
   instructions, greedy.

Every row also reports the peak resident memory of its process (``peak_rss_mb``).

Each path runs in its own process: PyTorch and CTranslate2 bring separate OpenMP thread
pools whose idle spinning slows whichever runs next in a shared process, which would
make the order of the paths part of the result.

Usage: ``python -m benchmarks.decoding [--translation-sentences 500] [--baseline-sentences 100]
[--agreement-prompts 100] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLORES_EN = ROOT / "data" / "translation" / "flores200_dev" / "eng_Latn.dev"
FLORES_DE = ROOT / "data" / "translation" / "flores200_dev" / "deu_Latn.dev"
ALPACA = ROOT / "data" / "chat" / "alpaca_demo" / "alpaca_en_demo.json"
RESULT_PREFIX = "BENCH-RESULT "


def has_ctranslate2() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


# Models and data -------------------------------------------------------------------------


def build_opus_shaped_marian(folder: Path, seed: int = 0) -> Path:
    """A random Marian model with opus-mt-en-de's shape and a sentencepiece vocabulary
    trained on FLORES en+de, so token counts are realistic."""
    import io

    import sentencepiece
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    corpus = FLORES_EN.read_text().splitlines() + FLORES_DE.read_text().splitlines()
    model_bytes = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model_bytes,
        vocab_size=8000,
        hard_vocab_limit=False,
        model_type="unigram",
        pad_id=-1,
        bos_id=-1,
        eos_id=1,
        unk_id=0,
        minloglevel=2,
    )
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(model_bytes.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=model_bytes.getvalue())
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    # opus-mt-en-de has 58101 entries with <pad> last; fill the gap so the output layer (the
    # largest matrix of the decoder) and every converter see the real size.
    for index in range(len(vocab), 58100):
        vocab[f"<unused{index}>"] = index
    vocab["<pad>"] = 58100
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json")
    )
    tokenizer.save_pretrained(folder)
    config = MarianConfig(
        vocab_size=58101,
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_position_embeddings=512,
        pad_token_id=58100,
        eos_token_id=1,
        decoder_start_token_id=58100,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    model.generation_config.forced_eos_token_id = None
    model.save_pretrained(folder)
    return folder


def instructions(n: int) -> list[str]:
    data = json.loads(ALPACA.read_text())
    return [d["instruction"] for d in data if not d.get("input")][:n]


# Workers (each runs in a fresh process) ---------------------------------------------------


def _generator(model: str, path: str, store: str | None, **kwargs):
    """The Quintet generator for a path name: default (backend auto), hf-fp32, hf-int8,
    ct2-int8[-tN], ct2-float32, ort-int4[-tN], ort-int4mixed, ort-int8[-tN], ort-int8block32,
    ort-fp32."""
    from quintet.core.decoding import Generator
    from quintet.core.models import load
    from quintet.core.store import ModelStore

    if path == "default":
        return Generator(load(model), **kwargs)
    if path == "hf-fp32":
        return Generator(load(model), "transformers", **kwargs)
    if path == "hf-int8":
        return Generator(load(model, quantize="int8"), "transformers", **kwargs)
    backend, quantization, *rest = path.split("-")
    engine = {"ct2": "ctranslate2", "ort": "onnxruntime-genai"}[backend]
    quantization = {"int4mixed": "int4-mixed", "int8block32": "int8-block32"}.get(
        quantization, quantization
    )
    setting = "quantization" if backend == "ct2" else "precision"
    options = {setting: quantization, "store": ModelStore(store) if store else None}
    if rest:
        options["threads"] = int(rest[0].removeprefix("t"))
    return Generator(load(model), engine, **options, **kwargs)


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_translation(job: dict) -> dict:
    import torch

    from quintet.core.config import DecodeConfig
    from quintet.core.models import load

    sentences = FLORES_EN.read_text().splitlines()[: job["sentences"]]
    tokens = job["new_tokens"]
    fixed = {"max_new_tokens": tokens, "min_new_tokens": tokens, "num_beams": 4}
    if job["path"] == "baseline":
        loaded = load(job["model"])
        sentences = sentences[: job["baseline_sentences"]]

        def run() -> int:
            produced = 0
            with torch.inference_mode():
                for text in sentences:
                    inputs = loaded.tokenizer(text, return_tensors="pt")
                    produced += loaded.model.generate(**inputs, **fixed).shape[1] - 1
            return produced

        run_warm = sentences[:1]
        with torch.inference_mode():
            loaded.model.generate(**loaded.tokenizer(run_warm[0], return_tensors="pt"), **fixed)
    else:
        # With a fixed output length no hypothesis ends early, so early stopping changes no
        # work; CTranslate2 only implements early_stopping=True.
        config = DecodeConfig(**fixed, early_stopping=True)
        # The default path decodes as Translator does by default (batch 16).
        batch = 16 if job["path"] == "default" else job["batch"]
        generator = _generator(job["model"], job["path"], job["store"], batch_size=batch)
        generator.generate(sentences[:2], config, progress=False)  # warm-up, conversion

        def run() -> int:
            results = generator.generate(sentences, config, progress=False)
            return sum(r.num_tokens for r in results)

    started = time.perf_counter()
    produced = run()
    seconds = time.perf_counter() - started
    return {"tokens": produced, "seconds": seconds, "tokens_per_s": produced / seconds,
            "sentences": len(sentences), "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def worker_chat(job: dict) -> dict:
    import torch

    from quintet.core.config import DecodeConfig
    from quintet.core.models import load

    chats = [[{"role": "user", "content": p}] for p in instructions(job["prompts"])]
    tokens = job["new_tokens"]
    rates, ttfts = [], []
    if job["path"] == "baseline":
        loaded = load(job["model"])
        encoded = [
            loaded.tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            for chat in chats
        ]
        with torch.inference_mode():
            loaded.model.generate(**encoded[0], max_new_tokens=8)  # warm-up
            for inputs in encoded:
                started = time.perf_counter()
                loaded.model.generate(**inputs, max_new_tokens=1)
                ttfts.append(time.perf_counter() - started)
                started = time.perf_counter()
                loaded.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens)
                rates.append(tokens / (time.perf_counter() - started))
    elif job["path"] == "default":
        # What a user runs: a ChatSession on the default model choice and engine.
        from quintet.apps.chat import ChatSession

        engine = None
        for chat in [chats[0], *chats]:  # the first one warms up (and converts)
            session = ChatSession(job["model"])
            reply = session.send(chat[0]["content"], max_new_tokens=tokens, min_new_tokens=tokens)
            engine = reply.backend
            rates.append(reply.tokens_per_s)
            ttfts.append(reply.time_to_first_token_s)
        rates, ttfts = rates[1:], ttfts[1:]
        return {"tokens_per_s": statistics.mean(rates), "ttft_s": statistics.mean(ttfts),
                "engine": engine, "peak_rss_mb": peak_rss_mb()}  # fmt: skip
    else:
        config = DecodeConfig(max_new_tokens=tokens, min_new_tokens=tokens)
        generator = _generator(job["model"], job["path"], job["store"], batch_size=1)
        generator.complete(chats[0], max_new_tokens=8)  # warm-up, conversion
        for chat in chats:
            result = generator.complete(chat, config)
            rates.append(result.timings.tokens_per_s)
            ttfts.append(result.timings.time_to_first_token_s)
    return {"tokens_per_s": statistics.mean(rates), "ttft_s": statistics.mean(ttfts),
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def worker_batch_chat(job: dict) -> dict:
    """Many instructions at once on one generator (natural lengths, up to the limit)."""
    from quintet.core.config import DecodeConfig

    chats = [[{"role": "user", "content": p}] for p in instructions(job["prompts"])]
    config = DecodeConfig(max_new_tokens=job["new_tokens"])
    generator = _generator(job["model"], job["path"], job["store"], batch_size=len(chats))
    generator.complete(chats[0], max_new_tokens=8)  # warm-up, conversion
    started = time.perf_counter()
    results = generator.generate(chats, config, progress=False)
    seconds = time.perf_counter() - started
    tokens = sum(r.num_tokens for r in results)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "engine": results[0].backend, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def worker_agreement(job: dict) -> dict:
    from quintet.core.config import DecodeConfig

    chats = [[{"role": "user", "content": p}] for p in instructions(job["prompts"])]
    config = DecodeConfig(max_new_tokens=job["new_tokens"])
    generator = _generator(job["model"], job["path"], job["store"], batch_size=1)
    generator.complete(chats[0], max_new_tokens=4)  # warm-up, conversion
    started = time.perf_counter()
    results = generator.generate(chats, config, progress=False)
    return {
        "seconds": time.perf_counter() - started,
        "outputs": [r.token_ids for r in results],
    }


WORKERS = {
    "translation": worker_translation,
    "chat": worker_chat,
    "batch_chat": worker_batch_chat,
    "agreement": worker_agreement,
}


def run_worker(job: dict) -> dict:
    """Run one path in a fresh Python process and return its result."""
    command = [sys.executable, "-m", "benchmarks.decoding", "--worker", json.dumps(job)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("QUINTET_BACKEND", None)  # "default" means the default choice
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError(f"benchmark worker {job['section']}/{job['path']} failed:\n{done.stderr}")


# Sections --------------------------------------------------------------------------------


def ct2_paths(*paths: str) -> list[str]:
    return list(paths) if has_ctranslate2() else []


def ort_paths(*paths: str) -> list[str]:
    import importlib.util

    return list(paths) if importlib.util.find_spec("onnxruntime_genai") else []


def section_batch_chat(args: argparse.Namespace, tmp: Path, baseline_rate: float) -> dict:
    base = {"section": "batch_chat", "model": args.model, "store": None,
            "prompts": args.batch_prompts, "new_tokens": args.chat_tokens}  # fmt: skip
    rows = [{"path": LABELS["baseline"].format(batch=1), "tokens_per_s": baseline_rate}]
    for path in ["default", *ort_paths("ort-int4-t1")]:
        result = run_worker({**base, "path": path})
        rows.append({"path": LABELS[path].format(batch=args.batch_prompts), **result})
        print(f"  {rows[-1]['path']}: {result['tokens_per_s']:.1f} tokens/s", flush=True)
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / baseline_rate
    return {
        "model": args.model,
        "decode": f"{args.batch_prompts} Alpaca instructions in one call, greedy, up to "
        f"{args.chat_tokens} new tokens each (baseline: section 2's, 1 at a time, fp32)",
        "rows": rows,
    }


def section_translation(args: argparse.Namespace, tmp: Path) -> dict:
    folder = build_opus_shaped_marian(tmp / "marian")
    base = {"section": "translation", "model": str(folder), "store": str(tmp / "store"),
            "sentences": args.translation_sentences, "new_tokens": args.translation_tokens,
            "baseline_sentences": args.baseline_sentences, "batch": args.batch_size}  # fmt: skip
    paths = ["baseline", "default", "hf-fp32", "hf-int8", *ct2_paths("ct2-int8", "ct2-int8-t1")]
    rows = []
    for path in paths:
        result = run_worker({**base, "path": path})
        label = LABELS[path].format(batch=16 if path == "default" else args.batch_size)
        rows.append({"path": label, **result})
        print(f"  {label}: {result['tokens_per_s']:.1f} tokens/s", flush=True)
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
    return {
        "model": "random Marian, opus-mt-en-de shape (6+6 layers, d512, vocab 58101)",
        "data": f"FLORES-200 dev eng_Latn, {args.translation_sentences} sentences "
        f"(baseline: the first {args.baseline_sentences})",
        "decode": f"beam 4, exactly {args.translation_tokens} new tokens",
        "rows": rows,
    }


def section_chat(args: argparse.Namespace, tmp: Path) -> dict:
    base = {"section": "chat", "model": args.model, "store": None,
            "prompts": args.chat_prompts, "new_tokens": args.chat_tokens}  # fmt: skip
    paths = [
        "baseline",
        "default",
        "hf-fp32",
        "hf-int8",
        *ct2_paths("ct2-int8", "ct2-float32"),
        *ort_paths("ort-int8block32", "ort-int8-t1", "ort-int4mixed", "ort-int4", "ort-int4-t1"),
    ]
    rows = []
    for path in paths:
        result = run_worker({**base, "path": path})
        rows.append({"path": LABELS[path].format(batch=1), **result})
        print(f"  {rows[-1]['path']}: {result['tokens_per_s']:.1f} tokens/s", flush=True)
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
    return {
        "model": args.model,
        "decode": f"batch 1, greedy, exactly {args.chat_tokens} new tokens, "
        f"mean over {args.chat_prompts} Alpaca instructions",
        "rows": rows,
    }


def section_agreement(args: argparse.Namespace, tmp: Path) -> dict:
    base = {"section": "agreement", "model": args.model, "store": None,
            "prompts": args.agreement_prompts, "new_tokens": args.agreement_tokens}  # fmt: skip
    reference = run_worker({**base, "path": "hf-fp32"})
    rows = [{"path": "quintet transformers fp32 (reference)", "seconds": reference["seconds"]}]
    paths = ["default", "hf-int8", *ct2_paths("ct2-int8"),
             *ort_paths("ort-int8block32", "ort-int4", "ort-int4mixed")]  # fmt: skip
    for path in paths:
        result = run_worker({**base, "path": path})
        pairs = list(zip(reference["outputs"], result["outputs"], strict=True))
        rows.append(
            {
                "path": LABELS[path].format(batch=1),
                "seconds": result["seconds"],
                "identical_outputs": statistics.mean(a == b for a, b in pairs),
                "mean_shared_prefix": statistics.mean(
                    _common_prefix(a, b) / max(1, len(a)) for a, b in pairs
                ),
            }
        )
        print(f"  {rows[-1]['path']}: {rows[-1]['identical_outputs']:.0%} identical", flush=True)
    return {
        "model": args.model,
        "data": f"first {args.agreement_prompts} Alpaca demo instructions without input",
        "decode": f"greedy, up to {args.agreement_tokens} new tokens, batch 1",
        "rows": rows,
    }


LABELS = {
    "baseline": "transformers generate, 1 at a time (baseline)",
    "hf-fp32": "quintet transformers fp32, batch {batch}",
    "hf-int8": "quintet transformers int8, batch {batch}",
    "ct2-int8": "quintet ctranslate2 int8, batch {batch}",
    "ct2-int8-t1": "quintet ctranslate2 int8, forced 1 thread, batch {batch}",
    "ct2-int8-t2": "quintet ctranslate2 int8, forced 2 threads, batch {batch}",
    "ct2-float32": "quintet ctranslate2 fp32, batch {batch}",
    "default": "quintet DEFAULT path (backend auto), batch {batch}",
    "ort-int4": "quintet onnxruntime-genai int4, batch {batch}",
    "ort-int4-t1": "quintet onnxruntime-genai int4, 1 thread, batch {batch}",
    "ort-int4-t2": "quintet onnxruntime-genai int4, 2 threads, batch {batch}",
    "ort-int4mixed": "quintet onnxruntime-genai int4-mixed, batch {batch}",
    "ort-int8": "quintet onnxruntime-genai int8, batch {batch}",
    "ort-int8block32": "quintet onnxruntime-genai int8, block 32 (old), batch {batch}",
    "ort-int8-t1": "quintet onnxruntime-genai int8, 1 thread, batch {batch}",
    "ort-int8-t2": "quintet onnxruntime-genai int8, 2 threads, batch {batch}",
}


def _common_prefix(a: list[int], b: list[int]) -> int:
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


# Report ----------------------------------------------------------------------------------


def print_section(title: str, section: dict, columns: list[tuple[str, str, str]]) -> None:
    print(f"\n## {title}")
    for key in ("model", "data", "decode"):
        if key in section:
            print(f"{key}: {section[key]}")
    print(f"{'path':<52}" + "".join(f"{label:>15}" for label, _, _ in columns))
    for row in section["rows"]:
        cells = "".join(
            f"{(fmt.format(row[key]) if key in row else '-'):>15}" for _, key, fmt in columns
        )
        print(f"{row['path']:<52}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--translation-sentences", type=int, default=500)
    parser.add_argument("--baseline-sentences", type=int, default=100)
    parser.add_argument("--translation-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chat-prompts", type=int, default=3)
    parser.add_argument("--chat-tokens", type=int, default=128)
    parser.add_argument("--batch-prompts", type=int, default=16)
    parser.add_argument("--agreement-prompts", type=int, default=100)
    parser.add_argument("--agreement-tokens", type=int, default=48)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["translation", "chat", "batch_chat", "agreement"],
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        job = json.loads(args.worker)
        print(RESULT_PREFIX + json.dumps(WORKERS[job["section"]](job)), flush=True)
        return 0

    import torch

    engines = f"torch {torch.__version__}"
    if has_ctranslate2():
        import ctranslate2

        engines += f", ctranslate2 {ctranslate2.__version__}"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {engines}"
    print(f"# Decoding benchmark ({machine})", flush=True)
    results: dict = {"machine": machine, "date": time.strftime("%Y-%m-%d")}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if "translation" not in args.skip:
            results["translation"] = section_translation(args, Path(tmp))
            columns = [("tokens/s", "tokens_per_s", "{:.1f}"), ("x baseline", "speedup", "{:.2f}x"),
                       ("peak MB", "peak_rss_mb", "{:.0f}")]  # fmt: skip
            print_section("Batch translation throughput", results["translation"], columns)
        if "chat" not in args.skip:
            results["chat"] = section_chat(args, Path(tmp))
            print_section("Chat decode speed", results["chat"], [
                ("tokens/s", "tokens_per_s", "{:.1f}"), ("TTFT s", "ttft_s", "{:.3f}"),
                ("x baseline", "speedup", "{:.2f}x"),
                ("peak MB", "peak_rss_mb", "{:.0f}")])  # fmt: skip
            if "batch_chat" not in args.skip:
                baseline = results["chat"]["rows"][0]["tokens_per_s"]
                results["batch_chat"] = section_batch_chat(args, Path(tmp), baseline)
                print_section("Batch chat generation", results["batch_chat"], [
                    ("tokens/s", "tokens_per_s", "{:.1f}"), ("x baseline", "speedup", "{:.2f}x"),
                    ("peak MB", "peak_rss_mb", "{:.0f}")])  # fmt: skip
        if "agreement" not in args.skip:
            results["agreement"] = section_agreement(args, Path(tmp))
            print_section("Output agreement with the fp32 reference", results["agreement"], [
                ("identical", "identical_outputs", "{:.0%}"),
                ("shared prefix", "mean_shared_prefix", "{:.0%}"),
                ("seconds", "seconds", "{:.1f}")])  # fmt: skip
    results["seconds"] = time.perf_counter() - started
    print(f"\nbenchmark took {results['seconds'] / 60:.1f} minutes")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
