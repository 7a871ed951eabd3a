"""vLLM as an engine: when auto picks it, how it refuses, and what it would be asked to do.

This machine has no GPU and vLLM cannot be installed next to the CPU torch, so the engine
itself never runs here. These tests cover what runs without it: the choice (device and
installation facts injected, never a fake vllm), the one-line refusals on a CPU, the
DecodeConfig -> SamplingParams mapping and the refusals as pure functions, the generator's
stream fallback for an engine that cannot stream, and the CUDA dtype/attention choice of the
transformers path.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from transformers import GenerationConfig

from quintet.core.config import BACKENDS, DecodeConfig
from quintet.core.decoding import Generator, engines
from quintet.core.decoding import vllm_backend as vb
from quintet.core.devices import pick_dtype
from quintet.core.errors import ConfigError, ModelLoadError, QuintetError
from quintet.core.models import Loaded, load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

pytestmark = pytest.mark.default_backend

END = 2  # SmolLM2's end token (<|im_end|>), its tokenizer's end token too


@pytest.fixture(scope="module")
def smollm2(real_store: ModelStore) -> Loaded:
    return load(str(real_store.path("smollm2-135m-instruct")))


def on_cuda(loaded: Loaded) -> Loaded:
    """The same model as if it had been loaded on a GPU: the device fact ``auto`` reads."""
    return dataclasses.replace(loaded, device=torch.device("cuda"))


def installed(*names: str):
    """An ``is_installed`` that reports exactly ``names`` (plus transformers) as installed."""
    return lambda backend: backend == engines.TRANSFORMERS or backend in names


# The choice --------------------------------------------------------------------------------


def test_auto_never_picks_vllm_on_a_cpu(smollm2: Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as everything:
        everything.setattr(engines, "is_installed", installed(*BACKENDS))
        for batch_size in (1, 16, 256):
            assert engines.choose(smollm2, "auto", batch_size).name == engines.ONNX_GENAI
    # Nor on this machine as it is (no vllm, no GPU).
    assert engines.choose(smollm2, "auto", 16).name != engines.VLLM


def test_auto_takes_vllm_for_batch_work_on_cuda_where_installed(
    smollm2: Loaded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = on_cuda(smollm2)
    monkeypatch.setattr(engines, "is_installed", installed(engines.VLLM, engines.CTRANSLATE2))
    batch = engines.choose(gpu, "auto", batch_size=16)
    assert batch.name == engines.VLLM and "batch work on CUDA" in batch.reason
    # An interactive generator (ChatSession uses batch_size=1) stays on transformers.
    chat = engines.choose(gpu, "auto", batch_size=1)
    assert (chat.name, chat.reason) == (engines.TRANSFORMERS, "bf16 with SDPA on CUDA")
    # Without vllm, batch work stays on transformers too, and quietly: vllm is optional.
    monkeypatch.setattr(engines, "is_installed", installed(engines.CTRANSLATE2))
    with caplog.at_level(logging.WARNING, logger="core"):
        quiet = engines.choose(gpu, "auto", batch_size=16)
    assert (quiet.name, quiet.reason) == (engines.TRANSFORMERS, "bf16 with SDPA on CUDA")
    assert not caplog.records
    # A torch-quantized model runs as loaded; QUINTET_BACKEND still pins the engine.
    monkeypatch.setattr(engines, "is_installed", installed(engines.VLLM))
    quantized = dataclasses.replace(gpu, spec=dataclasses.replace(gpu.spec, quantize="int8"))
    assert engines.choose(quantized, "auto", 16).name == engines.TRANSFORMERS
    monkeypatch.setenv(engines.ENV_BACKEND, "transformers")
    assert engines.choose(gpu, "auto", 16).name == engines.TRANSFORMERS


def test_seq2seq_on_cuda_is_not_offered_to_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    marian = on_cuda(load(str(tiny_model_dir("marian"))))
    monkeypatch.setattr(engines, "is_installed", installed(*BACKENDS))
    assert engines.choose(marian, "auto", 16).name == engines.CTRANSLATE2


def test_named_vllm_without_a_gpu_or_the_package_is_one_line(smollm2: Loaded) -> None:
    on_cpu = engines.unavailable(engines.VLLM, smollm2)
    assert on_cpu is not None and "\n" not in on_cpu
    assert "runs on CUDA GPUs only" in on_cpu and "install vllm on a CUDA machine" in on_cpu
    # The package is missing here: on a GPU the message says so.
    assert importlib_missing("vllm")
    no_package = engines.unavailable(engines.VLLM, on_cuda(smollm2))
    assert no_package == (
        "the vllm backend needs the vllm package: install vllm on a CUDA machine (pip install vllm)"
    )
    with pytest.raises(ConfigError, match="runs on CUDA GPUs only") as error:
        Generator(smollm2, "vllm")
    assert "\n" not in str(error.value)


def importlib_missing(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is None


def test_env_pinning_vllm_on_a_cpu_falls_back_with_one_line(
    smollm2: Loaded, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(engines.ENV_BACKEND, "vllm")
    with caplog.at_level(logging.WARNING, logger="core"):
        generator = Generator(smollm2, batch_size=16)
    assert generator.backend_choice.name == engines.TRANSFORMERS
    assert generator.backend_choice.reason.startswith("fallback: the vllm backend runs on CUDA")
    lines = [r.getMessage() for r in caplog.records if "decoding" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]


def test_cli_backend_vllm_on_a_cpu_is_an_error_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quintet.apps.cli", "chat", "--message", "Hi", "--backend", "vllm"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "vllm backend runs on CUDA GPUs only" in errors[0]
    assert "Traceback" not in done.stderr


# What vLLM is asked to do --------------------------------------------------------------------


def test_greedy_maps_to_temperature_zero_and_the_model_end_tokens() -> None:
    config = DecodeConfig(max_new_tokens=40, min_new_tokens=3, stop_token_ids=(7,))
    ends = [END, 7]
    kwargs = vb.sampling_kwargs(config, ends, tokenizer_eos=END)
    assert kwargs == {
        "n": 1,
        "max_tokens": 40,
        "min_tokens": 3,
        "stop_token_ids": [END, 7],
        "ignore_eos": False,
        "repetition_penalty": 1.0,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "seed": None,
        "logprobs": None,
        "stop": [],
        "skip_special_tokens": True,
    }
    assert vb.request_differences(config, ends, END) == []


def test_sampling_maps_field_by_field() -> None:
    config = DecodeConfig(
        max_new_tokens=16,
        do_sample=True,
        temperature=0.7,
        top_k=40,
        min_p=0.05,
        num_return_sequences=3,
        seed=11,
        repetition_penalty=1.2,
        output_logprobs=True,
        stop_strings=("\n\n",),
    )
    kwargs = vb.sampling_kwargs(config, [END], tokenizer_eos=END)
    picked = {k: kwargs[k] for k in ("n", "temperature", "top_k", "top_p", "min_p", "seed")}
    assert picked == {
        "n": 3,
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 1.0,
        "min_p": 0.05,
        "seed": 11,
    }
    assert kwargs["repetition_penalty"] == 1.2 and kwargs["logprobs"] == 0
    assert kwargs["stop"] == ["\n\n"]
    # min_p with top_k alone keeps the same tokens in either order: honoured.
    assert vb.request_differences(config, [END], END) == []


def test_a_tokenizer_end_token_transformers_does_not_stop_on_is_ignored() -> None:
    # A model whose generation config ends on 5 only while its tokenizer's end token is 2:
    # transformers stops on 5, so vLLM must not stop on 2.
    kwargs = vb.sampling_kwargs(DecodeConfig(), [5], tokenizer_eos=2)
    assert kwargs["ignore_eos"] is True and kwargs["stop_token_ids"] == [5]
    # ... and min_new_tokens would hold 2 back too, which transformers does not.
    missing = vb.request_differences(DecodeConfig(min_new_tokens=2), [5], 2)
    assert len(missing) == 1 and "tokenizer end token" in missing[0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"num_beams": 4}, "beam search"),
        ({"no_repeat_ngram_size": 3}, "no_repeat_ngram_size"),
        ({"forced_bos_token_id": 5}, "forced_bos_token_id"),
        ({"do_sample": True, "min_p": 0.1, "top_p": 0.9}, "min_p with top_p"),
        ({"do_sample": True, "temperature": 2.5}, "temperature 2.5"),
        ({"do_sample": True, "temperature": 0.005}, "temperature 0.005"),
        ({"min_new_tokens": 4, "stop_strings": ("END",)}, "min_new_tokens with stop_strings"),
    ],
)
def test_what_vllm_would_decode_differently_is_refused(options: dict, expected: str) -> None:
    missing = vb.request_differences(DecodeConfig(**options), [END], END)
    assert len(missing) == 1 and missing[0].startswith(expected)


def test_model_settings_vllm_ignores_are_found(smollm2: Loaded) -> None:
    assert vb.model_differences(GenerationConfig()) == []
    assert vb.model_differences(smollm2.model.generation_config) == []
    found = vb.model_differences(
        GenerationConfig(suppress_tokens=[3], min_length=4, bad_words_ids=[[9]])
    )
    assert found == [
        "the model's bad_words_ids setting",
        "the model's suppress_tokens setting",
        "the model's min_length setting",
    ]


def test_memory_share_leaves_room_for_what_is_already_on_the_gpu() -> None:
    gib = 1 << 30
    assert vb.memory_share(40 * gib, 80 * gib) == pytest.approx(0.425)
    assert vb.memory_share(80 * gib, 80 * gib, share=0.5) == pytest.approx(0.5)
    with pytest.raises(ModelLoadError, match="no free GPU memory"):
        vb.memory_share(0, 80 * gib)


def test_backend_refuses_a_cpu_model_before_importing_vllm(smollm2: Loaded) -> None:
    with pytest.raises(ConfigError, match="runs on CUDA GPUs only"):
        vb.VllmBackend(smollm2)
    with pytest.raises(ConfigError, match="needs the vllm package"):
        vb.VllmBackend(on_cuda(smollm2))
    with pytest.raises(ModelLoadError, match="causal"):
        vb.VllmBackend(on_cuda(load(str(tiny_model_dir("marian")))))


def completion(token_ids, finish_reason, stop_reason=None, logprobs=None):
    """The fields of a vLLM 0.33 ``CompletionOutput`` that :func:`to_raw` reads."""
    return SimpleNamespace(
        token_ids=token_ids, finish_reason=finish_reason, stop_reason=stop_reason, logprobs=logprobs
    )


def test_outputs_drop_the_end_token_and_keep_its_log_probability_in_the_score() -> None:
    config = DecodeConfig(output_logprobs=True)
    positions = [
        {t: SimpleNamespace(logprob=lp)} for t, lp in ((10, -0.5), (11, -1.0), (END, -0.25))
    ]
    raw = vb.to_raw(completion([10, 11, END], "stop", logprobs=positions), {END}, config)
    assert raw.token_ids == [10, 11] and raw.ended_by_eos and not raw.hit_length
    assert raw.token_logprobs == [-0.5, -1.0] and raw.score == pytest.approx(-1.75)
    cut = vb.to_raw(completion([10, 11], "length"), {END}, DecodeConfig())
    assert cut.token_ids == [10, 11] and cut.hit_length and not cut.ended_by_eos
    assert cut.token_logprobs is None and cut.score is None
    by_string = vb.to_raw(completion([10, 11], "stop", stop_reason="\n"), {END}, DecodeConfig())
    assert not by_string.ended_by_eos and by_string.extra == {"stopped_by_check": True}
    with pytest.raises(QuintetError, match="did not finish an output"):
        vb.to_raw(completion([10], "abort"), {END}, DecodeConfig())


# Streams on an engine that cannot stream -----------------------------------------------------


def test_streams_never_go_to_an_engine_that_cannot_stream(
    smollm2: Loaded, caplog: pytest.LogCaptureFixture
) -> None:
    """vLLM's can_stream is False; a transformers engine told so shows what the generator
    does with it: auto streams on the reference engine, a named engine refuses."""
    generator = Generator(smollm2, "transformers")
    generator.backend.can_stream = False
    with pytest.raises(ConfigError, match="cannot do streaming"):
        generator.stream("Hello", max_new_tokens=4)
    assert generator.engine_for(DecodeConfig()) == "transformers"
    generator.is_auto = True
    with caplog.at_level(logging.WARNING, logger="core"):
        stream = generator.stream("Hello", max_new_tokens=4)
        text = stream.text
    assert stream.result is not None and stream.result.num_tokens > 0 and text
    assert generator._reference is not None and generator._reference is not generator.backend
    notes = [r.getMessage() for r in caplog.records if "streaming" in r.getMessage()]
    assert len(notes) == 1
    # Whole outputs still run on the chosen engine.
    assert generator._backend_for(DecodeConfig()) is generator.backend


# The transformers path on CUDA ------------------------------------------------------------


def test_cuda_loads_in_bf16_with_sdpa_and_cpu_stays_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype(cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_dtype(cuda) == torch.float16
    assert pick_dtype(torch.device("cpu")) == torch.float32
    # transformers picks SDPA by default for the families that have it.
    llama = load(str(tiny_model_dir("llama")))
    assert llama.model.config._attn_implementation == "sdpa"


# On a CUDA machine with vllm installed (skipped here) ------------------------------------

CHATS = [
    [{"role": "user", "content": "Name three colours."}],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "What is 2+2?"},
    ],
    [{"role": "user", "content": "Tell me one fact about the moon, in one sentence."}],
]


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.cuda.is_available() or importlib_missing("vllm"),
    reason="needs a CUDA GPU with vllm installed (this machine has neither)",
)
def test_on_a_gpu_vllm_decodes_as_transformers(real_store: ModelStore) -> None:
    """Never run in this project yet: the first GPU machine with vllm that runs it checks
    the engine against the reference, in float32 so that the tokens can match exactly."""
    loaded = load(str(real_store.path("smollm2-135m-instruct")), device="cuda", dtype="float32")
    reference = Generator(loaded, "transformers", batch_size=4)
    # Default settings: the auto generators below then share this one engine.
    engine = Generator(loaded, "vllm", batch_size=4)
    for options in (
        {"max_new_tokens": 24},
        {"max_new_tokens": 20, "min_new_tokens": 20},
        {"max_new_tokens": 24, "stop_strings": ["."]},
    ):
        expected = reference.generate(CHATS, **options)
        got = engine.generate(CHATS, **options)
        assert [g.token_ids for g in got] == [e.token_ids for e in expected], options
        assert [g.text for g in got] == [e.text for e in expected], options
        assert [g.finish_reason for g in got] == [e.finish_reason for e in expected], options
        assert {g.backend for g in got} == {"vllm"}
    expected = reference.generate(CHATS, max_new_tokens=12, output_logprobs=True)
    got = engine.generate(CHATS, max_new_tokens=12, output_logprobs=True)
    for g, e in zip(got, expected, strict=True):
        assert g.token_logprobs == pytest.approx(e.token_logprobs, abs=1e-3)
        assert g.score == pytest.approx(e.score, abs=1e-2)
    sampled = {"max_new_tokens": 16, "do_sample": True, "top_p": 0.95, "seed": 7}
    one = engine.complete(CHATS[2], num_return_sequences=3, **sampled)
    two = engine.complete(CHATS[2], num_return_sequences=3, **sampled)
    assert [s.token_ids for s in [one, *one.alternatives]] == [
        s.token_ids for s in [two, *two.alternatives]
    ]
    # auto: batch work on vllm, a batch-1 generator and every stream on transformers.
    assert Generator(loaded, batch_size=16).backend_choice.name == "vllm"
    assert Generator(loaded, batch_size=1).backend_choice.name == "transformers"
    stream = Generator(loaded, batch_size=16).stream(CHATS[0], max_new_tokens=8)
    assert stream.text and stream.result.backend == "transformers"
