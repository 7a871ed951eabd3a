"""The model cache (bounded LRU, never stale) and the lock on the loaded model."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from quintet.core.errors import ConfigError
from quintet.core.model_cache import CacheLimits, ModelCache
from quintet.core.models import load
from quintet.core.store import ModelStore
from quintet.core.testing import tiny_model_dir


def _copy(family: str, target: Path) -> Path:
    shutil.copytree(tiny_model_dir(family), target)
    return target


def test_limits_parse_count_size_and_both() -> None:
    assert CacheLimits.parse(None) == CacheLimits()
    assert CacheLimits.parse("3") == CacheLimits(3, None)
    assert CacheLimits.parse("512MB") == CacheLimits(CacheLimits().max_models, 512 << 20)
    assert CacheLimits.parse("2, 1.5gb") == CacheLimits(2, int(1.5 * (1 << 30)))
    with pytest.raises(ConfigError, match="QUINTET_MODEL_CACHE='lots'"):
        CacheLimits.parse("lots")
    with pytest.raises(ConfigError, match="at least one model"):
        CacheLimits.parse("0")


def test_lru_evicts_the_least_recently_used_model(tmp_path: Path) -> None:
    cache = ModelCache(CacheLimits(max_models=2))
    a, b, c = (_copy(f, tmp_path / f) for f in ("llama", "bert", "t5"))
    first_a = load(str(a), cache=cache)
    first_b = load(str(b), cache=cache)
    assert load(str(a), cache=cache) is first_a  # a is now the most recently used
    load(str(c), cache=cache)  # evicts b, not a
    assert len(cache) == 2
    assert load(str(a), cache=cache) is first_a
    assert load(str(b), cache=cache) is not first_b  # loaded again


def test_byte_bound_keeps_only_what_fits(tmp_path: Path) -> None:
    a, b = (_copy(f, tmp_path / f) for f in ("llama", "bert"))
    probe = load(str(a), cache=ModelCache(CacheLimits(8)))
    assert probe.nbytes > 0
    cache = ModelCache(CacheLimits(8, max_bytes=probe.nbytes + 1), size_of=lambda m: m.nbytes)
    first_a = load(str(a), cache=cache)
    load(str(b), cache=cache)  # together they are over the bound: a leaves
    assert cache.values()[-1].resolved.location == str(b.resolve())
    assert len(cache) == 1
    assert load(str(a), cache=cache) is not first_a


def _commit_llama(store: ModelStore, name: str, shift: float) -> torch.Tensor:
    """Store a tiny llama whose weights are shifted by ``shift``; return one weight."""
    with store.staging(name) as staged:
        shutil.copytree(tiny_model_dir("llama"), staged, dirs_exist_ok=True)
        weights = staged / "model.safetensors"
        tensors = {k: v + shift for k, v in load_file(weights).items()}
        save_file(tensors, weights, metadata={"format": "pt"})
        store.commit(staged, name, {"kind": "causal"})
    return tensors["model.embed_tokens.weight"]


def test_delete_and_rebuild_at_the_same_path_loads_the_new_weights(tmp_home: Path) -> None:
    store = ModelStore()
    cache = ModelCache(CacheLimits(4))
    _commit_llama(store, "tiny-rebuilt", 0.0)
    old = load("tiny-rebuilt", store=store, cache=cache)
    assert load("tiny-rebuilt", store=store, cache=cache) is old
    store.delete("tiny-rebuilt")
    assert cache.values() == []  # a deleted model does not stay in memory
    expected = _commit_llama(store, "tiny-rebuilt", 0.5)
    new = load("tiny-rebuilt", store=store, cache=cache)
    assert new is not old
    assert new.resolved.location == old.resolved.location
    assert torch.equal(new.model.get_input_embeddings().weight.detach(), expected)
    # Rebuilt in place without a delete (commit replaces it): also seen.
    expected = _commit_llama(store, "tiny-rebuilt", -0.5)
    newest = load("tiny-rebuilt", store=store, cache=cache)
    assert torch.equal(newest.model.get_input_embeddings().weight.detach(), expected)


def test_replace_keeps_the_lock_shared(tmp_path: Path) -> None:
    from dataclasses import replace

    loaded = load(str(_copy("bert", tmp_path / "bert")), cache=ModelCache())
    assert replace(loaded, encoder=object()).lock is loaded.lock


def test_using_sets_tokenizer_state_under_the_lock(tmp_path: Path) -> None:
    loaded = load(str(_copy("llama", tmp_path / "llama")), cache=ModelCache())
    loaded.tokenizer.src_lang = "eng_Latn"
    seen: list[bool] = []
    with loaded.using(src_lang="deu_Latn"):
        assert loaded.tokenizer.src_lang == "deu_Latn"
        other = threading.Thread(target=lambda: seen.append(loaded.lock.acquire(blocking=False)))
        other.start()
        other.join()
    assert seen == [False]  # another thread could not take the lock meanwhile


def test_translator_and_chat_on_one_cached_model_never_overlap(real_store: ModelStore) -> None:
    """Offline translation and a chat on the same SmolLM2 in two threads: the model's
    forward passes come in two unbroken runs, one per app, never interleaved."""
    from quintet.apps.chat import ChatSession
    from quintet.apps.translation import Translator

    translator = Translator("smollm2-135m-instruct", backend="transformers")
    chat = ChatSession("smollm2-135m-instruct", backend="transformers")
    loaded = chat.loaded
    assert translator._generator("smollm2-135m-instruct").loaded is loaded  # one cached copy

    calls: list[tuple[str, float, float]] = []
    entered: dict[int, float] = {}

    def before(module, args) -> None:
        entered[threading.get_ident()] = time.perf_counter()

    def after(module, args, output) -> None:
        calls.append(
            (threading.current_thread().name, entered[threading.get_ident()], time.perf_counter())
        )

    hooks = [loaded.model.register_forward_pre_hook(before),
             loaded.model.register_forward_hook(after)]  # fmt: skip
    start = threading.Barrier(2)
    spans: dict[str, tuple[float, float]] = {}

    def run(name: str, work) -> None:
        start.wait()
        began = time.perf_counter()
        work()
        spans[name] = (began, time.perf_counter())

    threads = [
        threading.Thread(
            target=run,
            name="translate",
            args=("translate", lambda: translator.translate(
                ["The house is small.", "Where is the station?"], "en", "de",
                max_new_tokens=12)),
        ),
        threading.Thread(
            target=run,
            name="chat",
            args=("chat", lambda: chat.send("What is the capital of France?", max_new_tokens=12)),
        ),
    ]  # fmt: skip
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        for hook in hooks:
            hook.remove()
    assert set(spans) == {"translate", "chat"}
    # Both calls were in flight at the same time ...
    (a0, a1), (b0, b1) = spans["translate"], spans["chat"]
    assert a0 < b1 and b0 < a1
    # ... yet the forward passes form one block per app, and no two passes overlap.
    order = [name for name, _, _ in calls]
    switches = sum(1 for x, y in zip(order, order[1:], strict=False) if x != y)
    assert {"translate", "chat"} <= set(order) and switches == 1, order
    ordered = sorted(calls, key=lambda c: c[1])
    assert all(prev[2] <= nxt[1] for prev, nxt in zip(ordered, ordered[1:], strict=False))
