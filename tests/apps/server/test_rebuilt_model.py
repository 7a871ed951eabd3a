"""A model rebuilt on disk while a server and a chat session hold it: their next request
answers from the new weights, on engines converted from them, as a fresh process does.

SmolLM2 is copied to a plain directory and served on the default engine (onnxruntime-genai
int8, converted into a temporary store). "Rebuilding" writes new weights into the same
folder: the last layers' MLP outputs zeroed, which changes the greedy answer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from safetensors.torch import load_file, save_file

from quintet.apps.chat import ChatSession
from quintet.core.store import MANIFEST, ModelStore
from tests.apps.server.conftest import API_KEY, Server, start_server, stop_server

pytestmark = [pytest.mark.default_backend, pytest.mark.slow]
NAME = "smollm2-135m-instruct"
QUESTION = "What is the capital of France? Answer in one sentence."
TOKENS = 24


def _copy_model(real_store: ModelStore, folder: Path) -> Path:
    """SmolLM2 as a plain model directory (no store manifest: fingerprinted by its files)."""
    shutil.copytree(real_store.path(NAME), folder, ignore=shutil.ignore_patterns(MANIFEST))
    return folder


def _rebuild(folder: Path) -> None:
    """New weights in place, written as a training run would: a new weights file."""
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    for name in tensors:
        if ".mlp.down_proj." in name and int(name.split(".")[2]) >= 20:
            tensors[name] = tensors[name] * 0
    staged = folder / "model.safetensors.tmp"
    save_file(tensors, str(staged), metadata={"format": "pt"})
    staged.replace(weights)


def _ask(server: Server, model: str) -> str:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={
            "model": model,
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": TOKENS,
            "temperature": 0,
        },
        timeout=300,
    )
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_a_rebuilt_model_answers_from_its_new_weights_in_a_server_and_a_chat(
    real_store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("QUINTET_HOME", str(home))
    model = str(_copy_model(real_store, tmp_path / "smol"))
    args = ("--models", model)
    server = start_server(home, tmp_path / "server.log", *args)
    try:
        chat = ChatSession(model, max_new_tokens=TOKENS, do_sample=False)
        assert chat.generator.backend_choice.name == "onnxruntime-genai"
        before = _ask(server, model)
        assert chat.send(QUESTION).text == before
        chat.reset()

        _rebuild(Path(model))
        after_server = _ask(server, model)
        after_chat = chat.send(QUESTION).text
    finally:
        stop_server(server)
    assert chat.generator.backend_choice.name == "onnxruntime-genai"

    fresh = start_server(home, tmp_path / "fresh.log", *args)
    try:
        expected = _ask(fresh, model)
    finally:
        stop_server(fresh)
    assert expected != before  # the rebuild changed the answer, so the test can tell
    assert after_server == expected, server.tail()
    assert after_chat == expected
