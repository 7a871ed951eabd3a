"""Decoding speed and output agreement (`make bench`).

Every figure is a ratio against a baseline measured in the same run, on the same machine:
plain transformers ``generate``, one input at a time, float32, default settings.

1. Batch translation throughput: a Marian model shaped like opus-mt-en-de (random weights:
   speed does not depend on them; the output length is fixed so every path does the same
   work), FLORES-200 dev English sentences, beam 4.
2. Chat decode speed: SmolLM2-135M-Instruct, batch 1, greedy, 128 new tokens (fixed), with
   time to first token.
3. Output agreement of the faster paths with the float32 reference: SmolLM2 on 100 real
   instructions, greedy.

Usage: ``python -m benchmarks.decoding [--translation-sentences 500] [--baseline-sentences 100]
[--agreement-prompts 100] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.config import DecodeConfig
from core.decoding import Generator
from core.models import Loaded, load

ROOT = Path(__file__).resolve().parent.parent
FLORES_EN = ROOT / "data" / "translation" / "flores200_dev" / "eng_Latn.dev"
FLORES_DE = ROOT / "data" / "translation" / "flores200_dev" / "deu_Latn.dev"
ALPACA = ROOT / "data" / "chat" / "alpaca_demo" / "alpaca_en_demo.json"


def _has_ctranslate2() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


# 1. Translation --------------------------------------------------------------------------


def build_opus_shaped_marian(folder: Path, seed: int = 0) -> Path:
    """A random Marian model with opus-mt-en-de's shape and a sentencepiece vocabulary
    trained on FLORES en+de, so token counts are realistic."""
    import io

    import sentencepiece
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


def bench_translation(sentences: list[str], baseline_n: int, new_tokens: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_opus_shaped_marian(Path(tmp) / "marian")
        loaded = load(str(folder))
        tokenizer, model = loaded.tokenizer, loaded.model
        fixed = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "num_beams": 4}
        # With a fixed output length no hypothesis ends early, so early stopping changes no
        # work; CTranslate2 only implements early_stopping=True.
        quintet_fixed = {**fixed, "early_stopping": True}

        def baseline() -> int:
            produced = 0
            with torch.inference_mode():
                for text in sentences[:baseline_n]:
                    inputs = tokenizer(text, return_tensors="pt")
                    out = model.generate(**inputs, **fixed)
                    produced += out.shape[1] - 1  # minus the decoder start token
            return produced

        rows = []
        produced, seconds = _timed(baseline)
        rows.append(_row("transformers generate, 1 at a time (baseline)", produced, seconds))
        config = DecodeConfig(**quintet_fixed)

        def run(generator: Generator) -> int:
            results = generator.generate(sentences, config, progress=False)
            return sum(r.num_tokens for r in results)

        paths: list[tuple[str, Callable[[], Generator]]] = [
            (
                f"quintet transformers fp32, batch {batch}",
                lambda: Generator(loaded, batch_size=batch),
            ),
            (
                f"quintet transformers int8, batch {batch}",
                lambda: Generator(load(str(folder), quantize="int8"), batch_size=batch),
            ),
        ]
        if _has_ctranslate2():
            from core.store import ModelStore

            store = ModelStore(Path(tmp) / "store")
            paths.append(
                (
                    f"quintet ctranslate2 int8, batch {batch}",
                    lambda: Generator(loaded, "ctranslate2", batch_size=batch, store=store),
                )
            )
        for label, make in paths:
            generator = make()
            generator.generate(sentences[:2], config, progress=False)  # warm-up
            produced, seconds = _timed(lambda g=generator: run(g))
            rows.append(_row(label, produced, seconds))
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base
    return {
        "model": "random Marian, opus-mt-en-de shape (6+6 layers, d512, vocab 58101)",
        "data": f"FLORES-200 dev eng_Latn, {len(sentences)} sentences "
        f"(baseline on the first {baseline_n})",
        "decode": f"beam 4, exactly {new_tokens} new tokens",
        "rows": rows,
    }


def _row(label: str, tokens: int, seconds: float) -> dict:
    return {"path": label, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


# 2. Chat decode speed --------------------------------------------------------------------


def _instructions(n: int) -> list[str]:
    data = json.loads(ALPACA.read_text())
    return [d["instruction"] for d in data if not d.get("input")][:n]


def bench_chat_speed(loaded: Loaded, prompts: list[str], new_tokens: int) -> dict:
    tokenizer, model = loaded.tokenizer, loaded.model
    chats = [[{"role": "user", "content": p}] for p in prompts]
    fixed = DecodeConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    def baseline() -> list[tuple[float, float]]:
        timings = []
        for chat in chats:
            inputs = tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            started = time.perf_counter()
            with torch.inference_mode():
                first = model.generate(**inputs, max_new_tokens=1, do_sample=False)
                ttft = time.perf_counter() - started
                started = time.perf_counter()
                model.generate(
                    **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
                )
            del first
            timings.append((ttft, time.perf_counter() - started))
        return timings

    rows = []
    baseline()  # warm-up
    timings = baseline()
    rows.append(
        {
            "path": "transformers generate fp32 (baseline)",
            "tokens_per_s": statistics.mean(new_tokens / total for _, total in timings),
            "ttft_s": statistics.mean(t for t, _ in timings),
        }
    )
    paths: list[tuple[str, Callable[[], Generator]]] = [
        ("quintet transformers fp32", lambda: Generator(loaded)),
        ("quintet transformers int8", lambda: Generator(load(loaded.name, quantize="int8"))),
    ]
    if _has_ctranslate2():
        paths += [
            ("quintet ctranslate2 int8", lambda: Generator(loaded, "ctranslate2")),
            (
                "quintet ctranslate2 fp32",
                lambda: Generator(loaded, "ctranslate2", quantization="float32"),
            ),
        ]
    for label, make in paths:
        generator = make()
        generator.complete(chats[0], fixed)  # warm-up
        results = [generator.complete(chat, fixed) for chat in chats]
        rows.append(
            {
                "path": label,
                "tokens_per_s": statistics.mean(r.timings.tokens_per_s for r in results),
                "ttft_s": statistics.mean(r.timings.time_to_first_token_s for r in results),
            }
        )
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base
    return {
        "model": loaded.name,
        "decode": f"batch 1, greedy, exactly {new_tokens} new tokens, {len(prompts)} prompts",
        "rows": rows,
    }


# 3. Agreement ----------------------------------------------------------------------------


def bench_agreement(loaded: Loaded, prompts: list[str], new_tokens: int) -> dict:
    chats = [[{"role": "user", "content": p}] for p in prompts]
    config = DecodeConfig(max_new_tokens=new_tokens)
    reference, seconds = _timed(
        lambda: Generator(loaded, batch_size=1).generate(chats, config, progress=False)
    )
    rows = [{"path": "transformers fp32, batch 1 (reference)", "seconds": seconds}]
    paths: list[tuple[str, Callable[[], Generator]]] = [
        (
            "quintet transformers int8",
            lambda: Generator(load(loaded.name, quantize="int8"), batch_size=1),
        ),
    ]
    if _has_ctranslate2():
        paths += [
            ("quintet ctranslate2 int8", lambda: Generator(loaded, "ctranslate2", batch_size=1)),
            (
                "quintet ctranslate2 fp32",
                lambda: Generator(loaded, "ctranslate2", batch_size=1, quantization="float32"),
            ),
        ]
    for label, make in paths:
        generator = make()
        outputs, seconds = _timed(lambda g=generator: g.generate(chats, config, progress=False))
        exact = sum(a.token_ids == b.token_ids for a, b in zip(reference, outputs, strict=True))
        prefix = [
            _common_prefix(a.token_ids, b.token_ids) / max(1, len(a.token_ids))
            for a, b in zip(reference, outputs, strict=True)
        ]
        rows.append(
            {
                "path": label,
                "seconds": seconds,
                "identical_outputs": exact / len(prompts),
                "mean_shared_prefix": statistics.mean(prefix),
            }
        )
    return {
        "model": loaded.name,
        "data": f"first {len(prompts)} Alpaca demo instructions without input",
        "decode": f"greedy, up to {new_tokens} new tokens",
        "rows": rows,
    }


def _common_prefix(a: list[int], b: list[int]) -> int:
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


# Report ----------------------------------------------------------------------------------


def print_section(title: str, section: dict, columns: list[tuple[str, str]]) -> None:
    print(f"\n## {title}")
    for key in ("model", "data", "decode"):
        if key in section:
            print(f"{key}: {section[key]}")
    header = f"{'path':<44}" + "".join(f"{label:>16}" for label, _ in columns)
    print(header)
    for row in section["rows"]:
        cells = "".join(
            f"{fmt.format(row[key]) if key in row else '-':>16}"
            for (key, fmt) in (c[1].split("|", 1) for c in columns)
        )
        print(f"{row['path']:<44}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--translation-sentences", type=int, default=500)
    parser.add_argument("--baseline-sentences", type=int, default=100)
    parser.add_argument("--translation-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chat-prompts", type=int, default=3)
    parser.add_argument("--chat-tokens", type=int, default=128)
    parser.add_argument("--agreement-prompts", type=int, default=100)
    parser.add_argument("--agreement-tokens", type=int, default=64)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["translation", "chat", "agreement"]
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    machine = (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    print(f"# Decoding benchmark ({machine})")
    results: dict = {"machine": machine, "date": time.strftime("%Y-%m-%d")}
    if "translation" not in args.skip:
        sentences = FLORES_EN.read_text().splitlines()[: args.translation_sentences]
        results["translation"] = bench_translation(
            sentences, args.baseline_sentences, args.translation_tokens, args.batch_size
        )
        print_section(
            "Batch translation throughput",
            results["translation"],
            [("tokens/s", "tokens_per_s|{:.1f}"), ("x baseline", "speedup|{:.2f}x")],
        )
    chat_model = None
    if "chat" not in args.skip:
        chat_model = load(args.model)
        prompts = _instructions(args.chat_prompts)
        results["chat"] = bench_chat_speed(chat_model, prompts, args.chat_tokens)
        print_section(
            "Chat decode speed",
            results["chat"],
            [
                ("tokens/s", "tokens_per_s|{:.1f}"),
                ("TTFT s", "ttft_s|{:.3f}"),
                ("x baseline", "speedup|{:.2f}x"),
            ],
        )
    if "agreement" not in args.skip:
        chat_model = chat_model or load(args.model)
        prompts = _instructions(args.agreement_prompts)
        results["agreement"] = bench_agreement(chat_model, prompts, args.agreement_tokens)
        print_section(
            "Output agreement with the fp32 reference",
            results["agreement"],
            [
                ("identical", "identical_outputs|{:.0%}"),
                ("shared prefix", "mean_shared_prefix|{:.0%}"),
                ("seconds", "seconds|{:.1f}"),
            ],
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
