"""Faults: a client killed mid-stream, a full queue (429), SIGTERM with requests in flight."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.apps.server.conftest import CHAT_MODEL, Server

PROMPT = [{"role": "user", "content": "Write a long story about a dragon."}]


def _stream_body(max_tokens: int) -> dict:
    return {"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": max_tokens,
            "temperature": 0, "stream": True}  # fmt: skip


def _queue_depth(server: Server) -> int:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf'quintet_queue_depth{{model="{CHAT_MODEL}"}} (\d+)', text)
    return int(match.group(1)) if match else 0


def _wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_client_killed_mid_stream_leaves_the_server_serving(server: Server) -> None:
    address = urlparse(server.url)
    payload = json.dumps(_stream_body(1000)).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {server.headers()['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    sock.sendall(request)
    received = b""
    while b'"content": "' not in received.split(b'"role"')[-1]:  # a first text delta
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream before any text"
        received += chunk
    sock.close()  # the client dies mid-stream
    # The generation is cancelled (1000 tokens take about a minute here) and the model is free.
    assert _wait_for(lambda: _queue_depth(server) == 0, 15), "the generation was not cancelled"
    reply = httpx.post(
        f"{server.url}/v1/chat/completions", headers=server.headers(), timeout=60,
        json={"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": 4, "temperature": 0},
    )  # fmt: skip
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]


def test_429_with_retry_after_when_the_queue_is_full(fresh_server) -> None:
    server = fresh_server("--max-queue", "1", "--models", CHAT_MODEL)
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=_stream_body(64),
        headers=server.headers(), timeout=60,
    ) as streaming:  # fmt: skip
        lines = streaming.iter_lines()
        next(line for line in lines if line.startswith("data: "))  # holds the only place
        refused = httpx.post(
            f"{server.url}/v1/chat/completions", headers=server.headers(), timeout=30,
            json={"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": 4},
        )  # fmt: skip
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) >= 1
        assert [line for line in lines if line][-1] == "data: [DONE]"  # stream untouched


def test_sigterm_finishes_in_flight_requests_and_exits(fresh_server) -> None:
    server = fresh_server("--models", CHAT_MODEL, "--graceful-timeout", "60")
    plain: dict = {}

    def send_plain() -> None:
        try:
            plain["response"] = httpx.post(
                f"{server.url}/v1/chat/completions", headers=server.headers(), timeout=90,
                json={"model": CHAT_MODEL, "messages": PROMPT, "max_tokens": 12,
                      "temperature": 0},
            )  # fmt: skip
        except httpx.HTTPError as exc:
            plain["error"] = exc

    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=_stream_body(40),
        headers=server.headers(), timeout=90,
    ) as streaming:  # fmt: skip
        lines = streaming.iter_lines()
        next(line for line in lines if '"content"' in line)
        worker = threading.Thread(target=send_plain)
        worker.start()
        assert _wait_for(lambda: _queue_depth(server) == 2, 30)  # both are in flight
        server.process.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line]
    # The stream in flight ran to its end...
    assert rest[-1] == "data: [DONE]"
    assert json.loads(rest[-2][len("data: ") :])["choices"][0]["finish_reason"] in (
        "stop", "length",
    )  # fmt: skip
    worker.join(90)
    # ...and the queued request finished too, or got a clean 503, never a dropped connection.
    assert "error" not in plain, plain.get("error")
    assert plain["response"].status_code in (200, 503), plain["response"].text
    server.process.wait(60)
    # New connections are refused once it has gone.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=5)


def test_allow_any_model_loads_a_named_model_on_first_use(fresh_server) -> None:
    server = fresh_server("--models", CHAT_MODEL, "--allow-any-model")
    listed = httpx.get(f"{server.url}/v1/models", headers=server.headers()).json()["data"]
    assert [m["id"] for m in listed] == [CHAT_MODEL]
    body = {"model": "minilm-l6", "input": "loaded on demand"}
    reply = httpx.post(
        f"{server.url}/v1/embeddings", json=body, headers=server.headers(), timeout=120
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]["embedding"]) == 384
    missing = httpx.post(
        f"{server.url}/v1/embeddings", headers=server.headers(), timeout=120,
        json={**body, "model": "/no/such/model/dir"},
    )  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_a_stream_past_the_timeout_ends_with_an_error_event(fresh_server) -> None:
    server = fresh_server("--models", CHAT_MODEL, "--timeout", "2")
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=_stream_body(1000),
        headers=server.headers(), timeout=60,
    ) as streaming:  # fmt: skip
        events = [line for line in streaming.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][len("data: ") :])["error"]["code"] == "timeout"
    # The generation was cancelled with the stream: the model is free again at once.
    assert _wait_for(lambda: _queue_depth(server) == 0, 10)
