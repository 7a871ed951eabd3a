"""Every error status in OpenAI's error shape, at the HTTP level (httpx)."""

from __future__ import annotations

import httpx
import pytest

from tests.apps.server.conftest import API_KEY, CHAT_MODEL, EMBED_MODEL, Server

CHAT = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {API_KEY}"}],
    ids=["no-key", "wrong-key", "not-bearer"],
)
def test_401_without_a_valid_key(server: Server, headers: dict) -> None:
    response = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=headers)
    assert _error(response, 401)["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == "Bearer"


def test_open_service_routes_need_no_key(server: Server) -> None:
    for path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{server.url}{path}").status_code == 200, path


def test_404_unknown_model_and_no_hub_id_from_a_request(server: Server) -> None:
    for name in ("gpt-4o", "Qwen/Qwen2.5-0.5B-Instruct", "/etc"):
        body = {**CHAT, "model": name}
        response = httpx.post(
            f"{server.url}/v1/chat/completions", json=body, headers=server.headers()
        )
        error = _error(response, 404)
        assert error["code"] == "model_not_found" and error["param"] == "model"


@pytest.mark.parametrize(
    "change, param",
    [
        ({"temperature": 3}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"n": 2, "temperature": 0}, "n"),
        ({"stop": [""]}, "stop"),
        ({"model": EMBED_MODEL}, "model"),
    ],
)
def test_400_invalid_parameters(server: Server, change: dict, param: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions", json={**CHAT, **change}, headers=server.headers()
    )
    error = _error(response, 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_400_malformed_json(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=b'{"model": "smollm2-135m-instruct", "messages": [',
        headers={**server.headers(), "Content-Type": "application/json"},
    )
    assert "not valid JSON" in _error(response, 400)["message"]


def test_413_body_too_large(server: Server) -> None:
    big = {"model": EMBED_MODEL, "input": "word " * 50_000}  # 250 kB over a 100 kB limit
    response = httpx.post(f"{server.url}/v1/embeddings", json=big, headers=server.headers())
    assert _error(response, 413)["code"] == "request_too_large"

    def chunked():  # no Content-Length: refused once the body passes the limit
        for _ in range(30):
            yield b"x" * 10_000

    response = httpx.post(
        f"{server.url}/v1/embeddings", content=chunked(), headers=server.headers()
    )
    _error(response, 413)


def test_404_unknown_route_in_the_same_shape(server: Server) -> None:
    _error(httpx.get(f"{server.url}/v1/nothing", headers=server.headers()), 404)
