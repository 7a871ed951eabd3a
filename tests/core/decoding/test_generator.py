"""The Generator on the transformers backend: every option, batching, streaming, bad input.

Tiny random models cover each architecture family; SmolLM2 shows real behaviour.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import torch

from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator, InputTooLongError, OutOfMemoryError
from quintet.core.decoding.prompts import DEFAULT_CHAT_TEMPLATE, encode
from quintet.core.errors import ConfigError, ModelLoadError
from quintet.core.models import load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

SENTENCES = [
    "the house is small",
    "I like green tea and fresh bread in the morning",
    "hello",
    "where is the station",
    "we will travel to the mountains next summer with our friends",
]


@pytest.fixture(scope="module")
def tiny_llama() -> Generator:
    return Generator(str(tiny_model_dir("llama")), batch_size=2)


@pytest.fixture(scope="module", params=["marian", "t5", "bart"])
def tiny_seq2seq(request) -> Generator:
    return Generator(str(tiny_model_dir(request.param)), batch_size=2)


@pytest.fixture(scope="module")
def smollm2() -> Generator:
    if not ModelStore().has("smollm2-135m-instruct"):
        pytest.fail("smollm2-135m-instruct missing from the store: run `make models`")
    return Generator("smollm2-135m-instruct", batch_size=4)


# Batching ---------------------------------------------------------------------------------


def test_batched_results_match_one_at_a_time_in_input_order(tiny_llama: Generator) -> None:
    config = DecodeConfig(max_new_tokens=6)
    batched = tiny_llama.generate(SENTENCES, config, progress=False)
    single = [tiny_llama.complete(s, config) for s in SENTENCES]
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]
    assert all(r.finish_reason == "length" and r.num_tokens == 6 for r in batched)


@pytest.mark.parametrize("beams", [1, 3])
def test_row_limits_give_each_prompt_its_own_cap(tiny_seq2seq: Generator, beams: int) -> None:
    """Each prompt stops at its own limit, as if run alone with that max_new_tokens (beam
    search included, where the limit changes the hypotheses)."""
    limits = [2, 7, 4, 7, 1]
    config = DecodeConfig(max_new_tokens=9, num_beams=beams)
    batched = tiny_seq2seq.generate(SENTENCES, config, progress=False, row_limits=limits)
    for sentence, limit, result in zip(SENTENCES, limits, batched, strict=True):
        alone = tiny_seq2seq.complete(sentence, config, max_new_tokens=limit)
        assert result.token_ids == alone.token_ids and result.num_tokens <= limit
        assert result.finish_reason == alone.finish_reason
    with pytest.raises(ConfigError, match="row_limits has 1 values for 5 prompts"):
        tiny_seq2seq.generate(SENTENCES, config, progress=False, row_limits=[3])


def test_seq2seq_families_generate_in_order(tiny_seq2seq: Generator) -> None:
    config = DecodeConfig(max_new_tokens=5)
    batched = tiny_seq2seq.generate(SENTENCES, config, progress=False)
    single = [tiny_seq2seq.complete(s, config) for s in SENTENCES]
    assert [r.token_ids for r in batched] == [r.token_ids for r in single]
    # Marian and BART force their end token at the last step: 4 tokens + end, cut by length.
    assert all(isinstance(r.text, str) and r.num_tokens in (4, 5) for r in batched)
    assert all(r.finish_reason == "length" for r in batched)


def test_seq2seq_beam_search_returns_alternatives(tiny_seq2seq: Generator) -> None:
    result = tiny_seq2seq.complete(
        "the house is small", max_new_tokens=5, num_beams=4, num_return_sequences=3
    )
    assert len(result.alternatives) == 2
    assert result.score is not None
    assert result.score >= max(a.score for a in result.alternatives)


def test_progress_callback_and_bar(tiny_llama: Generator) -> None:
    calls: list[tuple[int, int]] = []
    tiny_llama.generate(SENTENCES, max_new_tokens=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(n, 5) for n in range(1, 6)]  # each prompt once, in batches of 2
    tiny_llama.generate(SENTENCES, max_new_tokens=2, progress=True)  # a tqdm bar, no error


def test_progress_moves_inside_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch of five: each prompt is reported as it finishes, while the engine is
    still generating the others, not all at once when the batch returns."""
    generator = Generator(str(tiny_model_dir("llama")), batch_size=8)
    real = generator.backend.generate
    inside = {"now": False}

    def generate(*args, **kwargs):
        inside["now"] = True
        try:
            return real(*args, **kwargs)
        finally:
            inside["now"] = False

    monkeypatch.setattr(generator.backend, "generate", generate)
    calls: list[tuple[int, bool]] = []
    generator.generate(
        SENTENCES, max_new_tokens=6, progress=lambda d, t: calls.append((d, inside["now"]))
    )
    assert calls == [(n, True) for n in range(1, 6)]
    # Several samples of a prompt: the prompt is done when its last sample is.
    calls.clear()
    generator.generate(
        SENTENCES[:2], max_new_tokens=4, do_sample=True, seed=1, num_return_sequences=3,
        progress=lambda d, t: calls.append((d, inside["now"])),
    )  # fmt: skip
    assert calls == [(1, True), (2, True)]


def test_on_text_shows_a_single_output_growing(tiny_llama: Generator) -> None:
    texts: list[str] = []
    result = tiny_llama.complete("hello", max_new_tokens=12, on_text=texts.append)
    plain = tiny_llama.complete("hello", max_new_tokens=12)
    assert result.token_ids == plain.token_ids and result.text == plain.text
    assert len(texts) > 1 and texts[-1] == result.text
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    # Several prompts, or a request that cannot stream, run as before and never call it.
    untouched: list[str] = []
    tiny_llama.generate(SENTENCES[:2], max_new_tokens=4, on_text=untouched.append)
    tiny_llama.complete("hello", max_new_tokens=4, num_beams=2, on_text=untouched.append)
    assert untouched == []


def test_out_of_memory_halves_the_batch(
    tiny_llama: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tiny_llama.backend.generate
    sizes: list[int] = []

    def tight_memory(prompts, config, stop_check=None, on_row_done=None):
        sizes.append(len(prompts))
        if len(prompts) > 1:  # what a GPU raises when the batch does not fit
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(prompts, config, stop_check, on_row_done)

    monkeypatch.setattr(tiny_llama.backend, "generate", tight_memory)
    results = tiny_llama.generate(SENTENCES, max_new_tokens=3, progress=False)
    assert len(results) == 5 and all(r.num_tokens == 3 for r in results)
    assert tiny_llama.last_batch_size == 1 and sizes[0] == 2

    def no_memory(prompts, config, stop_check=None, on_row_done=None):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(tiny_llama.backend, "generate", no_memory)
    with pytest.raises(OutOfMemoryError, match="even one input at a time"):
        tiny_llama.generate(SENTENCES[:2], max_new_tokens=3, progress=False)


# Options ----------------------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_seed(tiny_llama: Generator) -> None:
    config = DecodeConfig(max_new_tokens=8, do_sample=True, temperature=1.5, seed=7)
    first = tiny_llama.generate(SENTENCES[:3], config, progress=False)
    second = tiny_llama.generate(SENTENCES[:3], config, progress=False)
    assert [r.token_ids for r in first] == [r.token_ids for r in second]
    other = tiny_llama.generate(SENTENCES[:3], DecodeConfig.from_overrides(config, seed=8))
    assert [r.token_ids for r in other] != [r.token_ids for r in first]


def test_top_k_one_sampling_equals_greedy(tiny_llama: Generator) -> None:
    greedy = tiny_llama.complete("hello", max_new_tokens=8)
    top1 = tiny_llama.complete("hello", max_new_tokens=8, do_sample=True, top_k=1, seed=3)
    assert top1.token_ids == greedy.token_ids
    tiny_p = tiny_llama.complete("hello", max_new_tokens=8, do_sample=True, top_p=1e-6, seed=3)
    assert tiny_p.token_ids == greedy.token_ids
    min_p = tiny_llama.complete("hello", max_new_tokens=8, do_sample=True, min_p=0.999, seed=3)
    assert min_p.token_ids == greedy.token_ids


def test_no_repeat_ngram_and_repetition_penalty(tiny_llama: Generator) -> None:
    out = tiny_llama.complete("hello", max_new_tokens=30, no_repeat_ngram_size=2).token_ids
    bigrams = list(zip(out, out[1:], strict=False))
    assert len(bigrams) == len(set(bigrams))
    penalised = tiny_llama.complete("hello", max_new_tokens=30, repetition_penalty=100.0)
    plain = tiny_llama.complete("hello", max_new_tokens=30)
    assert len(set(penalised.token_ids)) >= len(set(plain.token_ids))


def test_stop_token_ids_and_min_new_tokens(tiny_llama: Generator) -> None:
    plain = tiny_llama.complete("hello", max_new_tokens=10).token_ids
    stop_at = plain[2]
    stopped = tiny_llama.complete("hello", max_new_tokens=10, stop_token_ids=[stop_at])
    first = plain.index(stop_at)
    assert stopped.token_ids == plain[:first] and stopped.finish_reason == "stop"
    held = tiny_llama.complete(
        "hello", max_new_tokens=10, min_new_tokens=first + 2, stop_token_ids=[stop_at]
    )
    assert held.num_tokens >= first + 2


def test_stop_strings_cut_the_text(smollm2: Generator) -> None:
    chat = [{"role": "user", "content": "List three fruits, one per line."}]
    full = smollm2.complete(chat, max_new_tokens=40)
    assert "\n" in full.text
    cut = smollm2.complete(chat, max_new_tokens=40, stop_strings=["\n"])
    assert cut.finish_reason == "stop" and cut.stop_string == "\n"
    assert "\n" not in cut.text and full.text.startswith(cut.text)
    assert cut.num_tokens < full.num_tokens  # generation stopped early, not just trimmed


def test_logprobs_and_scores(tiny_llama: Generator) -> None:
    result = tiny_llama.complete("hello", max_new_tokens=6, output_logprobs=True)
    assert len(result.token_logprobs) == 6 and all(lp <= 0 for lp in result.token_logprobs)
    assert result.score == pytest.approx(sum(result.token_logprobs))
    beams = tiny_llama.complete(
        "hello", max_new_tokens=6, num_beams=3, num_return_sequences=2, output_logprobs=True
    )
    assert len(beams.token_logprobs) == beams.num_tokens and beams.score is not None


def test_timings_are_reported(smollm2: Generator) -> None:
    result = smollm2.complete("The capital of France is", max_new_tokens=8)
    timings = result.timings
    assert 0 < timings.time_to_first_token_s <= timings.total_s
    assert timings.tokens_per_s > 0 and timings.num_tokens == result.num_tokens
    assert result.prompt_tokens > 0


# Prompts ----------------------------------------------------------------------------------


def test_chat_template_is_applied(smollm2: Generator) -> None:
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = encode(smollm2.loaded, chat)
    text = smollm2.loaded.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    answer = smollm2.complete(chat, max_new_tokens=20)
    assert "Paris" in answer.text and answer.finish_reason == "stop"


def test_default_template_for_models_without_one(tmp_path: Path) -> None:
    folder = tmp_path / "llama"
    shutil.copytree(tiny_model_dir("llama"), folder)
    (folder / "chat_template.jinja").unlink()
    loaded = load(str(folder))
    assert not getattr(loaded.tokenizer, "chat_template", None)
    ids = encode(loaded, [{"role": "user", "content": "hi"}])
    assert loaded.tokenizer.decode(ids).endswith("<|im_start|>assistant\n")
    assert "im_start" in DEFAULT_CHAT_TEMPLATE


def test_bad_prompts(tiny_llama: Generator, tiny_seq2seq: Generator) -> None:
    with pytest.raises(ConfigError, match="role 'robot'"):
        tiny_llama.complete([{"role": "robot", "content": "hi"}])
    with pytest.raises(ConfigError, match="need a decoder-only"):
        tiny_seq2seq.complete([{"role": "user", "content": "hi"}])
    with pytest.raises(ConfigError, match="takes a list of prompts"):
        tiny_llama.generate("just one string")
    with pytest.raises(ConfigError, match="must be text"):
        tiny_llama.complete(42)  # type: ignore[arg-type]


def test_empty_input_gives_empty_output(tiny_llama: Generator) -> None:
    results = tiny_llama.generate(["", "hello", "   "], max_new_tokens=3, progress=False)
    assert [r.finish_reason for r in results] == ["empty", "length", "empty"]
    assert results[0].text == "" and results[0].num_tokens == 0
    assert [d for d in tiny_llama.stream("")] == []


def test_input_over_the_window_is_refused(tiny_llama: Generator) -> None:
    window = tiny_llama.loaded.context_window
    long_text = " ".join(["house"] * (window + 10))
    with pytest.raises(InputTooLongError, match=f"context window of {window} tokens"):
        tiny_llama.generate(["hello", long_text], max_new_tokens=4)


def test_non_generative_models_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="cannot generate text"):
        Generator(str(tiny_model_dir("bert")))
    with pytest.raises(ConfigError, match="unknown backend"):
        Generator(str(tiny_model_dir("llama")), backend="llamacpp")


# Streaming --------------------------------------------------------------------------------


def test_stream_joins_to_the_generated_text(tiny_llama: Generator) -> None:
    stream = tiny_llama.stream("hello", max_new_tokens=12)
    deltas = list(stream)
    assert len(deltas) > 1
    assert "".join(deltas) == stream.result.text
    assert stream.result.token_ids == tiny_llama.complete("hello", max_new_tokens=12).token_ids


def test_stream_on_a_real_model_with_stop_string(smollm2: Generator) -> None:
    chat = [{"role": "user", "content": "List three fruits, one per line."}]
    stream = smollm2.stream(chat, max_new_tokens=40, stop_strings=["\n"])
    text = "".join(stream)
    assert "\n" not in text and text == stream.result.text
    assert stream.result.finish_reason == "stop" and stream.result.stop_string == "\n"
    assert stream.result.timings.time_to_first_token_s > 0


def test_stream_never_shows_a_stop_string(tiny_llama: Generator) -> None:
    full = tiny_llama.complete("hello", max_new_tokens=24).text
    # A three-character piece past the start that occurs nowhere earlier.
    stop = next(
        full[i : i + 3]
        for i in range(4, len(full) - 3)
        if " " not in full[i : i + 3] and full.find(full[i : i + 3]) == i
    )
    stream = tiny_llama.stream("hello", max_new_tokens=24, stop_strings=[stop])
    shown = "".join(stream)
    assert stop not in shown and shown == full[: full.index(stop)].strip()


def test_stream_can_be_cancelled(tiny_llama: Generator) -> None:
    stream = tiny_llama.stream("hello", max_new_tokens=400)
    received = []
    for delta in stream:
        received.append(delta)
        if len(received) == 3:
            stream.cancel()
    assert stream.result.finish_reason == "cancelled"
    assert stream.result.num_tokens < 400


def test_stream_refuses_beams(tiny_llama: Generator) -> None:
    with pytest.raises(ConfigError, match="streaming cannot use beam search"):
        tiny_llama.stream("hello", num_beams=2)


def test_max_new_tokens_beyond_a_seq2seq_decoder_is_refused_up_front() -> None:
    marian = Generator(str(tiny_model_dir("marian")), batch_size=1)
    window = marian.loaded.model.config.max_position_embeddings
    with pytest.raises(ConfigError, match=f"decoder holds at most {window} tokens"):
        marian.complete("the house is small", max_new_tokens=window + 1)
    with pytest.raises(ConfigError, match="max_new_tokens 1000000000 is more than"):
        marian.stream("the house is small", max_new_tokens=1e9)
    # The whole table is usable: an output that fills it still runs.
    full = marian.complete("the house is small", max_new_tokens=window, min_new_tokens=window)
    assert len(full.token_ids) >= window - 1


@pytest.mark.parametrize("beams", [1, 3])
def test_row_limits_on_ctranslate2(beams: int) -> None:
    """The same on the CTranslate2 engine (the seq2seq default on CPU), whose forced end
    token is handled by the engine itself."""
    pytest.importorskip("ctranslate2")
    generator = Generator(str(tiny_model_dir("marian")), "ctranslate2", batch_size=2)
    limits = [2, 7, 4, 7, 1]
    config = DecodeConfig(max_new_tokens=9, num_beams=beams, early_stopping=True)
    batched = generator.generate(SENTENCES, config, progress=False, row_limits=limits)
    for sentence, limit, result in zip(SENTENCES, limits, batched, strict=True):
        alone = generator.complete(sentence, config, max_new_tokens=limit)
        assert (result.token_ids, result.finish_reason) == (alone.token_ids, alone.finish_reason)
