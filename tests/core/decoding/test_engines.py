"""backend="auto" and the onnxruntime-genai engine, on the real SmolLM2 and tiny models.

Conversions go to a temporary store (the base model is loaded by its folder in the real
store), so the user's store is never written.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime_genai")

from quintet.core.config import DecodeConfig  # noqa: E402
from quintet.core.decoding import Generator, engines  # noqa: E402
from quintet.core.decoding import ort_backend as ort  # noqa: E402
from quintet.core.decoding.prompts import encode  # noqa: E402
from quintet.core.errors import ConfigError, ModelLoadError  # noqa: E402
from quintet.core.models import Loaded, load  # noqa: E402
from quintet.core.store import ModelStore  # noqa: E402
from quintet.core.testing import tiny_model_dir  # noqa: E402

pytestmark = pytest.mark.default_backend

CHATS = [
    [{"role": "user", "content": "Name three colours."}],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "What is 2+2?"},
    ],
    [{"role": "user", "content": "Tell me one fact about the moon, in one sentence."}],
]


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory: pytest.TempPathFactory, real_store: ModelStore) -> Iterator[Path]:
    """One temporary store for the module: each conversion is built once here. SmolLM2 is
    linked in from the real store, so commands run by name without writing there."""
    home = tmp_path_factory.mktemp("engine-home")
    (home / "models").mkdir()
    name = "smollm2-135m-instruct"
    (home / "models" / name).symlink_to(real_store.path(name), target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUINTET_HOME", str(home))
        patch.delenv("QUINTET_BACKEND", raising=False)
        yield home


@pytest.fixture(scope="module")
def smollm2(engine_home: Path, real_store: ModelStore) -> Loaded:
    """SmolLM2 loaded from its folder, so conversions are named after that folder."""
    return load(str(real_store.path("smollm2-135m-instruct")))


@pytest.fixture(autouse=True)
def _module_home(engine_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(engine_home))


# The choice --------------------------------------------------------------------------------


def test_auto_runs_causal_models_on_onnx_genai_int8(smollm2: Loaded, engine_home: Path) -> None:
    generator = Generator(smollm2)
    assert generator.backend_choice.name == "onnxruntime-genai"
    assert "int8" in generator.backend_choice.reason
    result = generator.complete(CHATS[0], max_new_tokens=24)
    assert result.backend == "onnxruntime-genai" and result.num_tokens > 0 and result.text
    # The conversion is a store model like any other: staged, with sha256 per file.
    stored = ModelStore(engine_home).get(ort.store_name(smollm2, "int8"))
    assert stored is not None and stored.manifest["backend"] == "onnxruntime-genai"
    assert stored.manifest["precision"] == "int8"
    assert {"model.onnx", "model.onnx.data", "genai_config.json"} <= set(stored.manifest["files"])
    assert ModelStore(engine_home).verify(stored.name) == []
    # Every matrix product at 8 bits with one scale per 128 weights (the gated default).
    assert _matmul_bits_and_blocks(stored.path) == {(8, 128)}
    # A conversion is reached through its base model, never picked or loaded by name.
    from quintet.apps.ui.widgets import model_choices

    assert stored.name not in {c.name for c in model_choices("chat", ModelStore(engine_home))}
    with pytest.raises(ModelLoadError, match="copy of"):
        load(stored.name)


def test_env_pins_the_engine_and_names_are_checked(
    smollm2: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUINTET_BACKEND", "transformers")
    choice = Generator(smollm2).backend_choice
    assert (choice.name, choice.reason) == ("transformers", "set by QUINTET_BACKEND")
    monkeypatch.setenv("QUINTET_BACKEND", "llamacpp")
    with pytest.raises(ConfigError, match="unknown backend 'llamacpp'"):
        Generator(smollm2)
    monkeypatch.delenv("QUINTET_BACKEND")
    with pytest.raises(ConfigError, match="unknown backend 'fastest'"):
        Generator(smollm2, "fastest")


def test_seq2seq_models_go_to_ctranslate2(engine_home: Path) -> None:
    pytest.importorskip("ctranslate2")
    generator = Generator(str(tiny_model_dir("marian")))
    assert generator.backend_choice.name == "ctranslate2"
    result = generator.complete("the house is small", max_new_tokens=8)
    assert result.backend == "ctranslate2"


def test_a_model_the_engine_cannot_run_falls_back_with_one_line(
    engine_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The tiny Llama's 8-wide attention heads are converted, but ONNX Runtime's attention
    # kernel refuses them when it runs: auto must notice at load time, not mid-request.
    with caplog.at_level(logging.WARNING, logger="core"):
        generator = Generator(str(tiny_model_dir("llama")))
    assert generator.backend_choice.name == "transformers"
    assert generator.backend_choice.reason.startswith("fallback: onnxruntime-genai cannot run")
    lines = [r.getMessage() for r in caplog.records if "decoding" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert generator.complete("hello", max_new_tokens=4).backend == "transformers"
    with pytest.raises(ModelLoadError, match="cannot run"):
        Generator(str(tiny_model_dir("llama")), "onnxruntime-genai")


def test_requests_the_engine_cannot_honour_run_on_transformers(
    smollm2: Loaded, caplog: pytest.LogCaptureFixture
) -> None:
    generator = Generator(smollm2)
    with caplog.at_level(logging.WARNING, logger="core"):
        beams = generator.complete(CHATS[0], max_new_tokens=6, num_beams=2)
        again = generator.complete(CHATS[0], max_new_tokens=6, num_beams=2)
    assert beams.backend == again.backend == "transformers"
    notes = [r.getMessage() for r in caplog.records if "run on transformers" in r.getMessage()]
    assert len(notes) == 1 and "beam search" in notes[0]  # once per reason, not per call
    assert generator.engine_for(DecodeConfig(min_p=0.1, do_sample=True)) == "transformers"
    assert generator.engine_for(DecodeConfig()) == "onnxruntime-genai"
    named = Generator(smollm2, "onnxruntime-genai")
    with pytest.raises(ConfigError, match="cannot do beam search"):
        named.complete(CHATS[0], num_beams=2)


# The engine ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fp32_engine(smollm2: Loaded) -> Generator:
    return Generator(smollm2, "onnxruntime-genai", precision="fp32", batch_size=4)


def test_fp32_engine_reproduces_transformers_greedy_tokens(
    smollm2: Loaded, fp32_engine: Generator
) -> None:
    """Mixed lengths in one batch (right padding) and a history holding end-of-turn tokens
    (the model's pad token) decode exactly as transformers does."""
    reference = Generator(smollm2, "transformers", batch_size=4)
    expected = reference.generate(CHATS, max_new_tokens=24)
    got = fp32_engine.generate(CHATS, max_new_tokens=24)
    assert [g.token_ids for g in got] == [e.token_ids for e in expected]
    assert [g.finish_reason for g in got] == [e.finish_reason for e in expected]
    assert {g.backend for g in got} == {"onnxruntime-genai"}
    # A minimum length holds the end token back as transformers does.
    forced = {"max_new_tokens": 20, "min_new_tokens": 20}
    expected = reference.complete(CHATS[1], **forced)
    got_forced = fp32_engine.complete(CHATS[1], **forced)
    assert got_forced.token_ids == expected.token_ids and got_forced.num_tokens == 20
    # Greedy log-probabilities are the model's own, as transformers reports them.
    expected = reference.generate(CHATS, max_new_tokens=12, output_logprobs=True)
    got = fp32_engine.generate(CHATS, max_new_tokens=12, output_logprobs=True)
    for g, e in zip(got, expected, strict=True):
        assert g.token_ids == e.token_ids
        assert g.token_logprobs == pytest.approx(e.token_logprobs, abs=1e-3)
        assert g.score == pytest.approx(e.score, abs=1e-2)


def test_a_prompt_holding_the_pad_id_is_decoded_alone(fp32_engine: Generator) -> None:
    backend = fp32_engine.backend
    ids = encode(fp32_engine.loaded, CHATS[0])
    with_pad = [*ids[:3], backend.pad_id, *ids[3:]]
    config = DecodeConfig(max_new_tokens=8)
    alone = backend.generate([with_pad], config)[0][0].token_ids
    batched = backend.generate([ids, with_pad, ids[:-2]], config)
    assert batched[1][0].token_ids == alone
    assert batched[0][0].token_ids == backend.generate([ids], config)[0][0].token_ids


def test_streaming_stop_strings_and_cancel(fp32_engine: Generator) -> None:
    stream = fp32_engine.stream(CHATS[0], max_new_tokens=30)
    deltas = list(stream)
    assert "".join(deltas) == stream.result.text and len(deltas) > 1
    assert stream.result.backend == "onnxruntime-genai"
    first = fp32_engine.complete(CHATS[0], max_new_tokens=30)
    cut = first.text.split()[2]
    stopped = fp32_engine.complete(CHATS[0], max_new_tokens=30, stop_strings=[cut])
    assert stopped.finish_reason == "stop" and cut not in stopped.text
    assert first.text.startswith(stopped.text)
    stream = fp32_engine.stream(CHATS[2], max_new_tokens=200)
    next(iter(stream))
    stream.cancel()
    assert stream.text is not None and stream.result.finish_reason == "cancelled"
    assert stream.result.num_tokens < 200


def test_progress_per_prompt_and_growing_text_on_the_engine(fp32_engine: Generator) -> None:
    """SmolLM2's answers end at different steps of one batch: progress hears of each as
    it ends; a single answer's text can be shown as it grows, same tokens as without."""
    calls: list[int] = []
    results = fp32_engine.generate(CHATS, max_new_tokens=40, progress=lambda d, t: calls.append(d))
    assert calls == [1, 2, 3]
    texts: list[str] = []
    shown = fp32_engine.complete(CHATS[0], max_new_tokens=40, on_text=texts.append)
    assert shown.token_ids == results[0].token_ids and texts[-1] == shown.text
    assert len(texts) > 3 and all(b.startswith(a) for a, b in itertools.pairwise(texts))


def test_seeded_sampling_repeats_and_several_samples_differ(fp32_engine: Generator) -> None:
    options = {"max_new_tokens": 16, "do_sample": True, "top_p": 0.95, "seed": 7}
    one = fp32_engine.complete(CHATS[2], num_return_sequences=3, **options)
    two = fp32_engine.complete(CHATS[2], num_return_sequences=3, **options)
    samples = [one, *one.alternatives]
    assert [s.token_ids for s in samples] == [t.token_ids for t in [two, *two.alternatives]]
    assert len({tuple(s.token_ids) for s in samples}) > 1


def test_conversion_is_reused_and_redone_when_the_model_changes(
    tmp_path: Path, engine_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "llama"
    shutil.copytree(tiny_model_dir("llama"), folder)
    store = ModelStore(engine_home)
    first = ort.convert_to_onnx_genai(load(str(folder)), "fp32", store)
    before = json.loads((first / "quintet.json").read_text())["base_fingerprint"]

    def must_not_build(*args, **kwargs) -> None:
        raise AssertionError("converted again")

    with monkeypatch.context() as patch:
        patch.setattr(ort, "_build", must_not_build)
        assert ort.convert_to_onnx_genai(load(str(folder)), "fp32", store) == first
    config = json.loads((folder / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5  # retrained in place: the conversion is stale
    (folder / "config.json").write_text(json.dumps(config))
    again = ort.convert_to_onnx_genai(load(str(folder)), "fp32", store)
    assert again == first  # same name, rebuilt for the new files
    assert json.loads((again / "quintet.json").read_text())["base_fingerprint"] != before
    # New builder options for a precision (as when int8's block grew from 32 to 128) make
    # the stored conversion stale too.
    with monkeypatch.context() as patch:
        patch.setitem(ort._BUILDER_PRECISION, "fp32", ("fp32", ("block_size=64",)))
        rebuilt = ort.convert_to_onnx_genai(load(str(folder)), "fp32", store)
    assert json.loads((rebuilt / "quintet.json").read_text())["builder_options"] == [
        "block_size=64"
    ]


def test_a_failed_conversion_is_one_line_and_leaves_nothing(
    tmp_path: Path, engine_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GPT-2 is a causal family onnxruntime-genai's builder does not know.
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    llama = tiny_model_dir("llama")
    tokenizer_files = [f for f in llama.iterdir() if f.name.startswith(("tokenizer", "special"))]
    vocab = json.loads((llama / "config.json").read_text())["vocab_size"]
    config = GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=vocab)
    GPT2LMHeadModel(config).save_pretrained(folder)
    for file in tokenizer_files:
        shutil.copy(file, folder / file.name)
    loaded = load(str(folder))
    with pytest.raises(ModelLoadError) as error:
        ort.convert_to_onnx_genai(loaded, "int4", ModelStore(engine_home))
    assert "\n" not in str(error.value) and "cannot convert" in str(error.value)
    assert ModelStore(engine_home).get(ort.store_name(loaded, "int4")) is None
    with caplog.at_level(logging.WARNING, logger="core"):
        assert Generator(loaded).backend_choice.name == "transformers"


def test_cli_says_which_engine_ran(engine_home: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "quintet.apps.cli",
            "chat",
            "--message",
            "Hi!",
            "--max-new-tokens",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "on onnxruntime-genai (int8" in done.stderr
    assert engines.ONNX_GENAI in engines.BACKENDS


@pytest.mark.slow  # the builder's k-quant search takes ~40 s on this CPU
def test_int4_mixed_keeps_the_sensitive_products_at_8_bits(
    smollm2: Loaded, engine_home: Path
) -> None:
    """The opt-in int4-mixed precision is built with k-quant 4-bit weights and the output
    projection (plus the sensitive layers) at 8 bits, and decodes."""
    import onnx

    generator = Generator(smollm2, "onnxruntime-genai", precision="int4-mixed")
    result = generator.complete(CHATS[0], max_new_tokens=16)
    assert result.backend == "onnxruntime-genai" and result.num_tokens > 0
    stored = ModelStore(engine_home).get(ort.store_name(smollm2, "int4-mixed"))
    assert stored is not None and stored.manifest["precision"] == "int4-mixed"
    graph = onnx.load(str(stored.path / "model.onnx"), load_external_data=False).graph
    bits = {
        node.name: next(a.i for a in node.attribute if a.name == "bits")
        for node in graph.node
        if node.op_type == "MatMulNBits"
    }
    assert set(bits.values()) == {4, 8}
    assert any("lm_head" in name and b == 8 for name, b in bits.items())


def _matmul_bits_and_blocks(folder: Path) -> set[tuple[int, int]]:
    """The (bits, block size) pairs of a conversion's quantized matrix products."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    return {
        tuple(next(a.i for a in node.attribute if a.name == key) for key in ("bits", "block_size"))
        for node in graph.node
        if node.op_type == "MatMulNBits"
    }
