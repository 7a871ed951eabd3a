"""quintet.core.models.load: every way to name a model, every architecture family, every bad
input."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from quintet.core.errors import ConfigError, ModelLoadError, ModelNotFoundError, OfflineError
from quintet.core.models import cached_models, detect_kind, load, resolve
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir

FAMILY_KINDS = [
    ("marian", "seq2seq"),
    ("t5", "seq2seq"),
    ("bart", "seq2seq"),
    ("llama", "causal"),
    ("bert", "encoder"),
    ("bert", "span"),
    ("bert", "sequence-classification"),
    ("distilbert", "encoder"),
    ("distilbert", "span"),
    ("distilbert", "sequence-classification"),
]


@pytest.mark.parametrize(("family", "kind"), FAMILY_KINDS)
def test_tiny_model_of_each_family_loads_with_detected_kind(family: str, kind: str) -> None:
    folder = tiny_model_dir(family, kind=None if kind in ("seq2seq", "causal") else kind)
    loaded = load(str(folder))
    assert loaded.kind == kind
    assert loaded.resolved.origin == "directory"
    assert loaded.device.type == "cpu" and loaded.dtype == torch.float32
    assert not loaded.model.training
    batch = loaded.tokenizer(["the house is small"], return_tensors="pt")
    with torch.no_grad():
        if kind in ("seq2seq", "causal"):
            out = loaded.model.generate(**batch, max_new_tokens=4, do_sample=False)
            assert isinstance(loaded.tokenizer.decode(out[0], skip_special_tokens=True), str)
        else:
            out = loaded.model(**batch)
            assert out is not None


def test_kind_override_puts_a_head_on_an_encoder(real_store: ModelStore) -> None:
    span = load("minilm-l6", kind="span")
    assert span.kind == "span"
    assert type(span.model).__name__ == "BertForQuestionAnswering"
    batch = span.tokenizer("Who?", "Ada wrote it.", return_tensors="pt")
    with torch.no_grad():
        out = span.model(**batch)
    assert out.start_logits.shape == batch["input_ids"].shape


def test_smollm2_answers_a_real_question(real_store: ModelStore) -> None:
    chat = load("smollm2-135m-instruct")
    assert chat.kind == "causal" and chat.resolved.origin == "store"
    assert chat.context_window == 8192
    prompt = chat.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = chat.model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = chat.tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_int8_quantization_keeps_greedy_output(real_store: ModelStore) -> None:
    full = load("smollm2-135m-instruct")
    int8 = load("smollm2-135m-instruct", quantize="int8")
    assert int8 is not full
    # Every Linear layer became a dynamically quantized one; the parameter count is unchanged.
    assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())
    assert any("quantized" in type(m).__module__ for m in int8.model.modules())
    assert int8.parameters == full.parameters > 130_000_000
    # Greedy continuations of int8 and float32 part ways on some CPUs (kernels round
    # differently), so the check is on the next-token ranking: float32's choice stays among
    # int8's top 5. One scale per weight tensor fails it (rank 9 on "Paris").
    prompts = ["The capital of France is", "Water boils at a temperature of",
               "The opposite of hot is", "One, two, three,"]  # fmt: skip
    for text in prompts:
        prompt = full.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = full.model(**prompt).logits[0, -1].argmax()
            logits = int8.model(**prompt).logits[0, -1]
        rank = int((logits > logits[expected]).sum())
        assert rank < 5, (
            f"{text!r}: float32's {full.tokenizer.decode(expected)!r} is int8's #{rank + 1}"
        )


def test_models_are_cached_per_process(real_store: ModelStore) -> None:
    first = load("minilm-l6")
    started = time.perf_counter()
    second = load("minilm-l6")
    assert second is first and time.perf_counter() - started < 0.1
    assert load("minilm-l6", kind="span") is not first
    assert first in cached_models()


def test_cache_is_safe_under_concurrent_loads(real_store: ModelStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: load("minilm-l6"), range(4)))
    assert all(r is results[0] for r in results)


def test_store_name_wins_over_nothing_and_resolves_to_the_store(real_store: ModelStore) -> None:
    resolved = resolve("smollm2-135m-instruct", store=real_store)
    assert resolved.origin == "store" and resolved.entry is not None


def test_unknown_name_suggests_close_names(tmp_home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="Did you mean smollm2-135m-instruct"):
        load("smollm2-135m-instuct")


def test_packaged_model_not_pulled_says_how(tmp_home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="quintet models pull minilm-l6"):
        load("minilm-l6")


def test_recipe_model_not_built_says_so(tmp_home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="quintet recipes run minilm-l6-sst2"):
        load("minilm-l6-sst2")


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model directory: it has no config.json"):
        load(str(tmp_path))


def test_config_without_weights(tmp_path: Path) -> None:
    shutil.copy(tiny_model_dir("llama") / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelLoadError, match="no weights"):
        load(str(tmp_path))


def _copy_model(tmp_path: Path, family: str = "llama") -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir(family), target)
    return target


def test_truncated_safetensors_is_a_clear_error(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is truncated .*expected"):
        load(str(folder))


def test_garbage_safetensors_is_a_clear_error(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="is corrupt"):
        load(str(folder))


def test_pickle_weights_are_refused_unless_allowed(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="only pickle weights.*allow_pickle_weights"):
        load(str(folder))
    loaded = load(str(folder), allow_pickle_weights=True)
    assert loaded.kind == "causal"


def _ran_while_loading() -> str:
    return "this ran while loading"


class _Runs:
    """Unpickles by calling a function: what a malicious pickle does (here harmless). A
    function of this module, not a builtin: libraries replace builtins such as print (Ray
    does, once imported), which would change the name torch reports."""

    def __reduce__(self):
        return (_ran_while_loading, ())


def test_a_pickle_that_would_run_code_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save({**state, "extra": _Runs()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError) as info:
        load(str(folder), allow_pickle_weights=True)
    message = str(info.value)
    assert message.startswith(f"torch refused to unpickle the weights of '{folder}'")
    assert "(it references tests.core.test_models._ran_while_loading)" in message
    assert "\n" not in message


def test_unreadable_config_is_a_clear_error(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="cannot read the config"):
        load(str(folder))


def test_config_with_unknown_architecture_asks_for_kind(tmp_path: Path) -> None:
    folder = _copy_model(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LlamaSomethingElse"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="pass kind="):
        load(str(folder))
    assert load(str(folder), kind="causal").kind == "causal"


def test_hub_id_offline_fails_at_once_with_alternatives(no_hub: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(OfflineError) as info:
        load("Helsinki-NLP/opus-mt-en-de")
    assert time.perf_counter() - started < 5  # no 30-second retries
    message = str(info.value)
    assert "Helsinki-NLP/opus-mt-en-de" in message and "cannot be reached" in message
    assert "smollm2-135m-instruct" in message


def test_catalog_hub_name_offline_names_the_hub_id(no_hub: Path) -> None:
    with pytest.raises(OfflineError, match="distilbert-base-cased-distilled-squad.*minilm-l6"):
        load("distilbert-squad")


def test_hf_hub_offline_is_respected(no_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE is set"):
        load("Qwen/Qwen2.5-0.5B-Instruct")


def test_hub_model_in_the_hf_cache_loads_offline(no_hub: Path) -> None:
    """A hub id already in the HF cache loads without any network access."""
    repo = no_hub / "models--someone--tiny-llama"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(tiny_model_dir("llama"), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = load("someone/tiny-llama")
    assert loaded.resolved.origin == "hub" and loaded.kind == "causal"


def test_requesting_missing_cuda_is_a_clear_error(real_store: ModelStore) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        load("minilm-l6", device="cuda")


def test_int8_needs_cpu_float32() -> None:
    with pytest.raises(ConfigError, match="float32"):
        load("minilm-l6", quantize="int8", dtype="bfloat16")


def test_explicit_dtype_is_honoured(real_store: ModelStore) -> None:
    loaded = load("minilm-l6", dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_detect_kind_reads_architectures() -> None:
    from transformers import PretrainedConfig

    assert detect_kind(PretrainedConfig(architectures=["MarianMTModel"])) == "seq2seq"
    assert detect_kind(PretrainedConfig(architectures=["GPT2LMHeadModel"])) == "causal"
    assert detect_kind(PretrainedConfig(architectures=["T5ForConditionalGeneration"])) == "seq2seq"
    with pytest.raises(ModelLoadError):
        detect_kind(PretrainedConfig(architectures=None))


def test_encoder_passes_take_at_most_rows_per_pass_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of many rows (windows of a long text) runs in parts; the joined output has
    the batch's shape and the one-pass values (within float rounding)."""
    from quintet.core import models
    from quintet.core.testing import tiny_model_dir

    loaded = load(str(tiny_model_dir("bert", kind="sequence-classification", labels=["a", "b"])))
    batch = loaded.tokenizer(["a short text", "a somewhat longer text here"] * 35,
                             padding=True, return_tensors="pt")  # fmt: skip
    with torch.inference_mode():
        whole = loaded.model(**batch).logits
        sizes: list[int] = []
        model = loaded.model

        def recording(**part):
            sizes.append(len(part["input_ids"]))
            return model(**part)

        monkeypatch.setattr(loaded, "model", recording)
        joined = loaded.forward(**batch).logits
    assert sizes == [models.ROWS_PER_PASS, models.ROWS_PER_PASS, 70 - 2 * models.ROWS_PER_PASS]
    assert joined.shape == whole.shape and torch.allclose(joined, whole, atol=1e-5)
