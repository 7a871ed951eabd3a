"""Requests that once took unbounded memory or time, grew /metrics, or reached a tokenizer
with broken text: each is refused with an OpenAI-shaped 4xx (or bounded), and the server
keeps answering another client right after."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.apps.server.conftest import CHAT_MODEL, EMBED_MODEL, Server, start_server

BAD = "\ud800"  # a lone surrogate: json.dumps writes it as the escape "\ud800"

# Every route that takes text, with a body whose text fields are ``text`` (and a label).
ROUTES: dict[str, Callable[[str], dict]] = {
    "chat": lambda t: {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": t}],
        "max_tokens": 4,
    },
    "chat streamed": lambda t: {
        "model": CHAT_MODEL,
        "stream": True,
        "max_tokens": 4,
        "messages": [{"role": "user", "content": t}],
    },
    "completions": lambda t: {"model": CHAT_MODEL, "prompt": t, "max_tokens": 4},
    "embeddings": lambda t: {"model": EMBED_MODEL, "input": t},
    "classify texts": lambda t: {"texts": [t], "labels": ["good", "bad"]},
    "classify labels": lambda t: {"texts": ["fine"], "labels": ["good", t]},
    "translate": lambda t: {"texts": t, "src": "en", "tgt": "de", "max_tokens": 4},
    "summarize": lambda t: {"texts": t, "max_length": 8},
    "qa": lambda t: {"question": "who?", "context": t},
}
PATHS = {
    "chat": "/v1/chat/completions", "chat streamed": "/v1/chat/completions",
    "completions": "/v1/completions", "embeddings": "/v1/embeddings",
    "classify texts": "/v1/classify", "classify labels": "/v1/classify",
    "translate": "/v1/translate", "summarize": "/v1/summarize", "qa": "/v1/qa",
}  # fmt: skip


def _post(server: Server, path: str, body: dict) -> httpx.Response:
    # json.dumps escapes non-ASCII (a lone surrogate as "\ud800", as any client would send it).
    headers = {**server.headers(), "Content-Type": "application/json"}
    return httpx.post(f"{server.url}{path}", content=json.dumps(body), headers=headers, timeout=120)


def assert_still_serving(server: Server) -> None:
    """A normal request from another client succeeds."""
    reply = _post(server, "/v1/embeddings", {"model": EMBED_MODEL, "input": "still here"})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]["embedding"]) == 384


def assert_error(reply: httpx.Response, status: int, fragment: str) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"], error
    return error


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_lone_surrogate_is_a_400_on_every_route(route: str, server: Server) -> None:
    reply = _post(server, PATHS[route], ROUTES[route](f"hello {BAD} world"))
    error = assert_error(reply, 400, "is a lone surrogate (\\ud800)")
    assert error["type"] == "invalid_request_error"
    assert_still_serving(server)


def test_an_escaped_surrogate_pair_is_still_text(server: Server) -> None:
    reply = _post(server, "/v1/embeddings", {"model": EMBED_MODEL, "input": "smile \U0001f600"})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("beams", [1000, 1000000])
def test_num_beams_over_the_limit_is_a_400_at_once(beams: int, server: Server) -> None:
    body = {"texts": "Hello.", "src": "en", "tgt": "de", "num_beams": beams}
    reply = _post(server, "/v1/translate", body)
    error = assert_error(reply, 400, f"num_beams is {beams}, over this server's limit of 16")
    assert error["param"] == "num_beams"
    assert reply.elapsed.total_seconds() < 5
    assert_still_serving(server)


def test_prompts_times_max_tokens_over_the_budget_is_a_400(server: Server) -> None:
    body = {"model": CHAT_MODEL, "prompt": ["Hi"] * 40, "max_tokens": 1024}
    error = assert_error(_post(server, "/v1/completions", body), 400, "40 outputs x max_tokens")
    assert "32768" in error["message"] and error["param"] == "max_tokens"
    body = {"model": CHAT_MODEL, "prompt": "Hi", "n": 17, "temperature": 1}
    assert_error(_post(server, "/v1/completions", body), 400, "n")
    assert_still_serving(server)


@pytest.mark.parametrize("seed", [10**30, 2**31, -1])
def test_a_seed_out_of_range_says_the_range(seed: int, server: Server) -> None:
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 2, "temperature": 1, "seed": seed}  # fmt: skip
    assert_error(_post(server, "/v1/chat/completions", body), 400, "seed must be in 0..2147483647")
    assert_still_serving(server)


def test_unknown_methods_and_paths_do_not_grow_metrics(server: Server) -> None:
    def series() -> set[str]:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line[:1] != "#"}

    def abuse(client: httpx.Client, method: str) -> None:
        client.request(method, f"{server.url}/v1/models/{random.random()}")
        client.request(method, f"{server.url}/{random.random()}")

    with httpx.Client(timeout=10) as client:
        abuse(client, "WARMUP")
        series()  # /metrics counts itself from its first scrape on
        before = series()
        for _ in range(300):
            abuse(client, "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=12)))
        after = series()
    assert after == before, sorted(after ^ before)[:10]
    assert any('method="other"' in s and 'route="unmatched"' in s for s in after)
    assert_still_serving(server)


@pytest.fixture(scope="module")
def strict_server(real_store, tmp_path_factory) -> Server:
    """A server with a small text limit and /metrics behind the key."""
    from tests.apps.server.conftest import stop_server

    log = tmp_path_factory.mktemp("strict") / "server.log"
    running = start_server(
        real_store.home, log, "--max-input-chars", "5000", "--metrics-require-key"
    )
    yield running
    stop_server(running)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_text_over_the_input_limit_is_a_413_on_every_route(
    route: str, strict_server: Server
) -> None:
    # 24,000 characters: far under the 1 MB body limit, over the 5,000-character one.
    reply = _post(strict_server, PATHS[route], ROUTES[route]("word " * 4800))
    error = assert_error(reply, 413, "over this server's limit of 5000")
    assert error["code"] == "input_too_large"
    assert reply.elapsed.total_seconds() < 5
    assert_still_serving(strict_server)


def test_metrics_can_require_the_key(strict_server: Server) -> None:
    url = f"{strict_server.url}/metrics"
    assert_error(httpx.get(url, timeout=10), 401, "missing API key")
    reply = httpx.get(url, headers=strict_server.headers(), timeout=10)
    assert reply.status_code == 200 and "quintet_requests_total" in reply.text
    assert httpx.get(f"{strict_server.url}/health", timeout=10).status_code == 200


def test_metrics_require_key_needs_a_key(real_store) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quintet.apps.cli", "serve", "--metrics-require-key"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "QUINTET_HOME": str(real_store.home)},
    )  # fmt: skip
    assert done.returncode == 2 and "metrics_require_key needs an API key" in done.stderr


def test_a_model_deleted_while_served_leaves_ready_and_the_list(tmp_path: Path) -> None:
    from quintet.core.store import ModelStore
    from quintet.core.testing import tiny_model_dir
    from tests.apps.server.conftest import stop_server

    store = ModelStore(tmp_path / "home")
    for name in ("tiny-a", "tiny-b"):
        with store.staging(name) as staged:
            shutil.copytree(tiny_model_dir("bert", kind="encoder"), staged, dirs_exist_ok=True)
            store.commit(staged, name, {"kind": "encoder"})
    server = start_server(store.home, tmp_path / "server.log", "--models", "tiny-a", "tiny-b")
    try:
        assert set(httpx.get(f"{server.url}/ready").json()["models"]) == {"tiny-a", "tiny-b"}
        done = subprocess.run(
            [sys.executable, "-m", "quintet.apps.cli", "models", "delete", "tiny-a"],
            capture_output=True, text=True, env={"QUINTET_HOME": str(store.home),
                                                 "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 200 and set(ready.json()["models"]) == {"tiny-b"}
        listed = httpx.get(f"{server.url}/v1/models", headers=server.headers()).json()["data"]
        assert [card["id"] for card in listed] == ["tiny-b"]
        reply = _post(server, "/v1/embeddings", {"model": "tiny-a", "input": "x"})
        assert_error(reply, 404, "not served here")
        reply = _post(server, "/v1/embeddings", {"model": "tiny-b", "input": "x"})
        assert reply.status_code == 200, reply.text
    finally:
        stop_server(server)
