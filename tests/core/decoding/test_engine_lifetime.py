"""Engines live and die with their model: they hang on the cached model they were converted
from (``Loaded.attachment``), close when the cache drops it, and follow a rebuilt model.

CTranslate2 on a tiny Llama (float32: its conversion takes a second); the attachment rules
themselves on a tiny model with counting helpers.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.model_cache import CacheLimits, ModelCache
from quintet.core.models import Loaded, clear_cache, current, load, load_fresh
from quintet.core.testing import build_tiny_model, tiny_model_dir

pytest.importorskip("ctranslate2")


class Helper:
    """Counts its builds and closes."""

    built = 0

    def __init__(self) -> None:
        Helper.built += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def tiny() -> Loaded:
    return load(str(tiny_model_dir("llama")), device="cpu")


def test_two_threads_asking_for_one_engine_build_it_once(tiny: Loaded) -> None:
    Helper.built = 0

    def slow() -> Helper:
        time.sleep(0.2)
        return Helper()

    found: list[Helper] = []
    threads = [
        threading.Thread(target=lambda: found.append(tiny.attachment("engine", slow)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Helper.built == 1 and len({id(h) for h in found}) == 1


def test_a_new_version_closes_every_engine_of_the_old_one(tiny: Loaded) -> None:
    old_a = tiny.attachment(("engine", 1), Helper, version="v1")
    old_b = tiny.attachment(("engine", 2), Helper, version="v1")
    other = tiny.attachment(("other", 1), Helper, version="w1")
    assert tiny.attachment(("engine", 1), Helper, version="v1") is old_a
    new = tiny.attachment(("engine", 1), Helper, version="v2")
    assert new is not old_a and old_a.closed and old_b.closed and not other.closed
    assert ("engine", 2) not in tiny.attachments


def test_the_cache_dropping_a_model_closes_its_engines(tiny: Loaded, tmp_home: Path) -> None:
    from quintet.core.decoding.ct2_backend import CTranslate2Backend

    backend = CTranslate2Backend(tiny, quantization="float32")
    assert any(key[0] == "ctranslate2" for key in tiny.attachments)
    clear_cache()
    assert tiny.attachments == {}
    # Its holder still decodes: the engine is loaded again, onto the model put back.
    ((out,),) = backend.generate([[5, 6, 7]], DecodeConfig(max_new_tokens=3))
    assert len(out.token_ids) == 3 and any(k[0] == "ctranslate2" for k in tiny.attachments)


def test_an_evicted_model_with_unchanged_files_is_put_back() -> None:
    cache: ModelCache[Loaded] = ModelCache(CacheLimits(max_models=1))
    first = load(str(tiny_model_dir("llama")), device="cpu", cache=cache)
    load(str(tiny_model_dir("bert")), device="cpu", cache=cache)  # evicts the first
    assert current(first) is first
    # The cache holds those same weights again (a copy sharing them and their engines).
    again = load(str(tiny_model_dir("llama")), device="cpu", cache=cache)
    assert again.model is first.model and again.attachments is first.attachments


def test_a_generator_follows_a_model_rebuilt_on_disk(tmp_path: Path, tmp_home: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir("llama"), folder)
    generator = Generator(str(folder), "ctranslate2", quantization="float32")
    old = generator.loaded
    prompt = "the house is small"
    before = generator.complete(prompt, max_new_tokens=8).text
    build_tiny_model("llama", folder, seed=1)  # new weights in place

    after = generator.complete(prompt, max_new_tokens=8).text
    assert generator.loaded is not old and old.attachments == {}
    fresh = Generator(load_fresh(str(folder)), "ctranslate2", quantization="float32")
    assert after == fresh.complete(prompt, max_new_tokens=8).text != before
    # A model outside the cache is its own current copy.
    assert current(fresh.loaded) is fresh.loaded
