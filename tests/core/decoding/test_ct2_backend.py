"""The CTranslate2 backend: conversion into the store, and decoding that matches transformers.

Tiny random models cover each family in a temporary store; SmolLM2 (converted once per
module, int8 and float32) shows real behaviour.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("ctranslate2")

from quintet.core.config import DecodeConfig  # noqa: E402
from quintet.core.decoding import ct2_backend  # noqa: E402
from quintet.core.decoding.ct2_backend import (  # noqa: E402
    CTranslate2Backend,
    convert_to_ctranslate2,
    store_name,
)
from quintet.core.errors import ConfigError, ModelLoadError  # noqa: E402
from quintet.core.models import Loaded, clear_cache, load  # noqa: E402
from quintet.core.store import ModelStore  # noqa: E402
from quintet.core.testing import tiny_model_dir  # noqa: E402

# MarianTokenizer warns on every load that sacremoses is not installed; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Recommended:UserWarning")

SENTENCES = [
    "the house is small",
    "Paris is the capital of France.",
    "We are going to the market to buy fresh bread",
]
CHATS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for learning Python.",
]


@pytest.fixture(scope="module")
def ct2_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStore]:
    """One temporary store for the module's conversions; engines are dropped at the end."""
    yield ModelStore(tmp_path_factory.mktemp("ct2-store"))
    clear_cache()


def tiny(family: str) -> Loaded:
    return load(str(tiny_model_dir(family)))


def hf_greedy(loaded: Loaded, prompt: list[int], max_new_tokens: int) -> tuple[list[int], bool]:
    """transformers' greedy new tokens, without a final end token, and whether the model
    ended them (an end token forced at the last step, as Marian and BART do, is the length
    limit's doing)."""
    with torch.inference_mode():
        out = loaded.model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
        )[0].tolist()
    new = out[len(prompt) :] if loaded.kind == "causal" else out[1:]
    eos = loaded.model.generation_config.eos_token_id
    ends = {eos} if isinstance(eos, int) else set(eos)
    if new and new[-1] in ends:
        forced = loaded.model.generation_config.forced_eos_token_id is not None
        return new[:-1], not (forced and len(new) == max_new_tokens)
    return new, False


def chat_ids(loaded: Loaded, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    encoded = loaded.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True
    )
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


# Agreement with transformers -------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "marian", "t5", "bart"])
def test_float32_greedy_matches_transformers_on_tiny_models(
    family: str, ct2_store: ModelStore
) -> None:
    loaded = tiny(family)
    backend = CTranslate2Backend(loaded, quantization="float32", store=ct2_store)
    prompts = [loaded.tokenizer(s).input_ids for s in SENTENCES]
    finished: list[int] = []
    outputs = backend.generate(
        prompts, DecodeConfig(max_new_tokens=16), on_row_done=finished.append
    )
    assert [len(o) for o in outputs] == [1, 1, 1]
    assert sorted(finished) == [0, 1, 2]  # each row reported once, as it ended
    for prompt, (got,) in zip(prompts, outputs, strict=True):
        expected, ended = hf_greedy(loaded, prompt, 16)
        assert got.token_ids == expected
        assert got.ended_by_eos == ended
        assert got.first_token_time is not None and got.score is not None


def test_forced_bos_is_generated_first_as_transformers_does(ct2_store: ModelStore) -> None:
    loaded = tiny("bart")
    loaded.model.generation_config.forced_bos_token_id = loaded.tokenizer.bos_token_id
    backend = CTranslate2Backend(loaded, quantization="float32", store=ct2_store)
    prompt = loaded.tokenizer(SENTENCES[0]).input_ids
    ((got,),) = backend.generate([prompt], DecodeConfig(max_new_tokens=8))
    expected, _ = hf_greedy(loaded, prompt, 8)
    assert got.token_ids[0] == loaded.tokenizer.bos_token_id
    assert got.token_ids == expected
    streamed: list[int] = []
    backend.stream(prompt, DecodeConfig(max_new_tokens=8), streamed.append, lambda r, i: False)
    assert streamed == expected


def test_greedy_logprobs_match_transformers(ct2_store: ModelStore) -> None:
    loaded = tiny("llama")
    backend = CTranslate2Backend(loaded, quantization="float32", store=ct2_store)
    prompt = loaded.tokenizer(SENTENCES[1]).input_ids
    ((got,),) = backend.generate([prompt], DecodeConfig(max_new_tokens=8, output_logprobs=True))
    with torch.inference_mode():
        out = loaded.model.generate(
            torch.tensor([prompt]),
            do_sample=False,
            max_new_tokens=8,
            output_logits=True,
            return_dict_in_generate=True,
        )
    steps = torch.stack(out.logits, dim=1).log_softmax(-1)[0]
    expected = steps.gather(-1, out.sequences[0, len(prompt) :, None]).squeeze(-1)
    assert got.token_logprobs == pytest.approx(expected.tolist(), abs=1e-4)
    assert got.score == pytest.approx(sum(got.token_logprobs), abs=1e-4)


# SmolLM2 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2(real_store: ModelStore) -> Loaded:
    return load("smollm2-135m-instruct", store=real_store)


@pytest.fixture(scope="module")
def smol_float32(smollm2: Loaded, ct2_store: ModelStore) -> CTranslate2Backend:
    return CTranslate2Backend(smollm2, quantization="float32", store=ct2_store)


@pytest.fixture(scope="module")
def smol_int8(smollm2: Loaded, ct2_store: ModelStore) -> CTranslate2Backend:
    return CTranslate2Backend(smollm2, store=ct2_store)


def test_smollm2_float32_greedy_matches_transformers_on_chat_prompts(
    smollm2: Loaded, smol_float32: CTranslate2Backend
) -> None:
    prompts = [chat_ids(smollm2, question) for question in CHATS]
    outputs = smol_float32.generate(prompts, DecodeConfig(max_new_tokens=32))
    for prompt, (got,) in zip(prompts, outputs, strict=True):
        expected, ended = hf_greedy(smollm2, prompt, 32)
        assert got.token_ids == expected
        assert got.ended_by_eos == ended


def test_smollm2_int8_conversion_answers_paris(
    smollm2: Loaded, smol_int8: CTranslate2Backend, ct2_store: ModelStore
) -> None:
    assert smol_int8.quantization == "int8"
    assert smol_int8.model_path.name == "smollm2-135m-instruct-ct2-int8"
    manifest = ct2_store.get("smollm2-135m-instruct-ct2-int8").manifest
    assert manifest["backend"] == "ctranslate2" and manifest["quantization"] == "int8"
    assert manifest["kind"] == "causal" and manifest["base"] == "smollm2-135m-instruct"
    # The tokenizer stays the HF one: nothing but CTranslate2's files is written.
    assert not list(smol_int8.model_path.glob("tokenizer*"))
    prompt = chat_ids(smollm2, CHATS[0])
    ((got,),) = smol_int8.generate([prompt], DecodeConfig(max_new_tokens=24))
    assert "Paris" in smollm2.tokenizer.decode(got.token_ids, skip_special_tokens=True)


# Conversion into the store ---------------------------------------------------------------


def test_conversion_happens_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = tiny("llama")
    store = ModelStore(tmp_path)
    path = convert_to_ctranslate2(loaded, "float32", store)
    assert path == store.path(store_name(loaded, "float32"))
    assert path.name.startswith("dir-") and path.name.endswith("-ct2-float32")
    assert store.verify(path.name) == []
    mtime = (path / "model.bin").stat().st_mtime_ns

    def must_not_convert(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(ct2_backend.CompatibleConverter, "convert", must_not_convert)
    assert convert_to_ctranslate2(loaded, "float32", store) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime


def test_interrupted_conversion_leaves_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = tiny("llama")
    store = ModelStore(tmp_path)
    convert = ct2_backend.CompatibleConverter.convert

    def interrupted(self, output_dir, *args, **kwargs):
        convert(self, output_dir, *args, **kwargs)  # every file written ...
        raise KeyboardInterrupt  # ... and then Ctrl-C before the commit

    monkeypatch.setattr(ct2_backend.CompatibleConverter, "convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_to_ctranslate2(loaded, "int8", store)
    assert store.list() == []
    assert os.listdir(store.models_dir) == []
    monkeypatch.undo()
    assert convert_to_ctranslate2(loaded, "int8", store).is_dir()


def test_bad_inputs_are_one_line_errors(ct2_store: ModelStore) -> None:
    with pytest.raises(ModelLoadError, match="encoder model and cannot generate"):
        CTranslate2Backend(load(str(tiny_model_dir("bert"))), store=ct2_store)
    with pytest.raises(ModelLoadError, match="cannot generate"):
        convert_to_ctranslate2(load(str(tiny_model_dir("bert"))), store=ct2_store)
    with pytest.raises(ConfigError, match="unknown CTranslate2 quantization 'int4'"):
        CTranslate2Backend(tiny("llama"), quantization="int4", store=ct2_store)


# Decoding options ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_ct2(ct2_store: ModelStore) -> CTranslate2Backend:
    return CTranslate2Backend(tiny("llama"), quantization="float32", store=ct2_store)


def prompts_of(backend: CTranslate2Backend) -> list[list[int]]:
    return [backend.loaded.tokenizer(s).input_ids for s in SENTENCES]


def test_stop_check_stops_only_its_row(llama_ct2: CTranslate2Backend) -> None:
    prompts = prompts_of(llama_ct2)
    config = DecodeConfig(max_new_tokens=10)
    free = llama_ct2.generate(prompts, config)
    seen: set[int] = set()

    def stop_second_row(row: int, ids) -> bool:
        seen.add(row)
        return row == 1 and len(ids) >= 3

    stopped = llama_ct2.generate(prompts, config, stop_second_row)
    assert seen == {0, 1, 2}
    assert stopped[1][0].token_ids == free[1][0].token_ids[:3]
    assert stopped[1][0].extra == {"stopped_by_check": True} and not stopped[1][0].hit_length
    for row in (0, 2):
        assert stopped[row][0].token_ids == free[row][0].token_ids
        assert len(stopped[row][0].token_ids) == 10 and stopped[row][0].hit_length


@pytest.mark.parametrize("family", ["llama", "marian"])
def test_beam_search_returns_the_asked_number_of_scored_outputs(
    family: str, ct2_store: ModelStore
) -> None:
    backend = CTranslate2Backend(tiny(family), quantization="float32", store=ct2_store)
    config = DecodeConfig(
        max_new_tokens=8, num_beams=3, num_return_sequences=2, early_stopping=True
    )
    assert backend.unsupported(config) == []
    outputs = backend.generate(prompts_of(backend), config)
    assert [len(o) for o in outputs] == [2, 2, 2]
    for first, second in outputs:
        assert isinstance(first.score, float) and first.score >= second.score
        assert first.token_ids != second.token_ids
        assert first.token_ids and second.token_ids


@pytest.mark.parametrize("family", ["llama", "marian"])
def test_beam_batches_split_over_replicas_give_the_one_engine_results(
    family: str, ct2_store: ModelStore
) -> None:
    """Large beam batches on CPU decode on one single-threaded replica per core, each given
    a part of the sentences; the hypotheses must be those of one engine on the whole batch."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        loaded = tiny(family)
        split = CTranslate2Backend(loaded, quantization="int8", store=ct2_store)
        whole = CTranslate2Backend(loaded, quantization="int8", store=ct2_store, threads=2)
        config = DecodeConfig(max_new_tokens=8, num_beams=4, early_stopping=True)
        prompts = prompts_of(split) * 4  # 12 prompts x 4 beams: large work
        assert split.replicas_for(config, len(prompts)) == 2
        assert whole.replicas_for(config, len(prompts)) == 1  # a fixed thread count is kept
        assert split.replicas_for(DecodeConfig(max_new_tokens=8), len(prompts)) == 1
        got, expected = split.generate(prompts, config), whole.generate(prompts, config)
        assert [o[0].token_ids for o in got] == [o[0].token_ids for o in expected]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine[0].score == pytest.approx(theirs[0].score, abs=1e-4)
    finally:
        torch.set_num_threads(before)


def test_sampling_with_a_seed_is_reproducible(llama_ct2: CTranslate2Backend) -> None:
    prompts = prompts_of(llama_ct2)

    def sample(seed: int) -> list[list[list[int]]]:
        config = DecodeConfig(
            max_new_tokens=10, do_sample=True, top_p=0.95, num_return_sequences=2, seed=seed
        )
        return [[s.token_ids for s in row] for row in llama_ct2.generate(prompts, config)]

    first = sample(7)
    assert [len(row) for row in first] == [2, 2, 2]
    assert sample(7) == first
    assert sample(8) != first
    # A top_k above the vocabulary size means the whole vocabulary, as in transformers.
    config = DecodeConfig(max_new_tokens=4, do_sample=True, top_k=100_000, seed=1)
    assert len(llama_ct2.generate(prompts, config)[0][0].token_ids) == 4


def test_unsupported_names_what_ctranslate2_cannot_do(llama_ct2: CTranslate2Backend) -> None:
    assert llama_ct2.unsupported(DecodeConfig()) == []
    assert llama_ct2.unsupported(DecodeConfig(do_sample=True, top_k=5, temperature=0.7)) == []
    assert any(m.startswith("min_p") for m in llama_ct2.unsupported(
        DecodeConfig(do_sample=True, min_p=0.1)
    ))  # fmt: skip
    beams = llama_ct2.unsupported(DecodeConfig(num_beams=2, output_logprobs=True))
    assert any("output_logprobs" in m for m in beams)
    assert any(m.startswith("early_stopping=False") for m in beams)
    assert any(
        m.startswith("repetition_penalty")
        for m in llama_ct2.unsupported(DecodeConfig(repetition_penalty=1.3))
    )


def test_stream_gives_the_greedy_tokens_one_by_one(ct2_store: ModelStore) -> None:
    for family in ("llama", "marian"):
        backend = CTranslate2Backend(tiny(family), quantization="float32", store=ct2_store)
        prompt = prompts_of(backend)[1]
        config = DecodeConfig(max_new_tokens=12)
        ((expected,),) = backend.generate([prompt], config)
        received: list[int] = []
        raw = backend.stream(prompt, config, received.append, lambda row, ids: False)
        assert received == raw.token_ids == expected.token_ids
        assert raw.first_token_time is not None and not raw.extra

        received.clear()
        raw = backend.stream(prompt, config, received.append, lambda row, ids: len(ids) >= 4)
        assert received == raw.token_ids == expected.token_ids[:4]
        assert raw.extra == {"stopped_by_check": True} and not raw.ended_by_eos


def test_loading_an_engine_leaves_torch_on_its_threads(ct2_store: ModelStore) -> None:
    """CTranslate2 sets the loading thread's OpenMP count to the engine's (one thread for a
    single prompt); torch must keep its own for the rest of the process."""
    clear_cache()  # so that this call loads a fresh engine
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        backend = CTranslate2Backend(tiny("llama"), quantization="float32", store=ct2_store)
        assert backend.threads_for(1) == 1
        backend.generate(prompts_of(backend)[:1], DecodeConfig(max_new_tokens=2))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
