"""The task endpoints return what the Python APIs return; /metrics counts them."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.apps.server.conftest import CHAT_MODEL, EMBED_MODEL, Server


def _post(server: Server, path: str, body: dict) -> dict:
    response = httpx.post(f"{server.url}{path}", json=body, headers=server.headers(), timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def test_classify_zero_shot_on_the_encoder(server: Server) -> None:
    reply = _post(server, "/v1/classify", {
        "texts": ["I loved every minute of this film", "The food was cold and awful"],
        "labels": ["positive", "negative"],
    })  # fmt: skip
    assert reply["model"] == EMBED_MODEL
    first, second = reply["results"]
    assert first["mode"] == "zero-shot-embedding"
    assert set(first["scores"]) == {"positive", "negative"}
    assert abs(sum(first["scores"].values()) - 1) < 1e-6
    assert (first["label"], second["label"]) == ("positive", "negative")


def test_classify_without_labels_is_a_clear_400(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/classify", json={"texts": ["x"]}, headers=server.headers()
    )
    assert response.status_code == 400
    assert "labels" in response.json()["error"]["message"]


def test_qa_returns_a_span_with_offsets(server: Server) -> None:
    context = "The final was held in Santa Clara in 2016."
    reply = _post(server, "/v1/qa", {"question": "Where was the final held?", "context": context})
    answer = reply["results"][0]
    assert reply["model"] == CHAT_MODEL
    assert context[answer["start"] : answer["end"]] == answer["text"]
    assert {"score", "probability", "grounded"} <= set(answer)


def test_translate_and_summarize(server: Server) -> None:
    translated = _post(server, "/v1/translate", {
        "texts": ["The house is small."], "src": "en", "tgt": "de", "max_tokens": 12,
    })["results"][0]  # fmt: skip
    assert translated["model"] == CHAT_MODEL and translated["text"]
    assert translated["source"] == "The house is small." and translated["style"] == "prompted"
    summary = _post(server, "/v1/summarize", {
        "texts": "The council met on Monday to discuss the park. After a long debate the "
        "members voted to fund it next year.", "max_length": 12,
    })["results"][0]  # fmt: skip
    assert summary["text"] and summary["chunks"]["count"] == 1 and summary["num_tokens"] <= 12


def test_translate_refuses_an_unknown_language(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/translate", json={"texts": "x", "src": "en", "tgt": "klingon"},
        headers=server.headers(),
    )  # fmt: skip
    assert response.status_code == 400


def test_health_ready_and_metrics(server: Server) -> None:
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready").json()
    assert ready["models"] == {CHAT_MODEL: "ready", EMBED_MODEL: "ready"}
    _post(server, "/v1/classify", {"texts": ["fine"], "labels": ["a", "b"]})
    text = httpx.get(f"{server.url}/metrics").text
    # Parsed, not matched as text: prometheus_client writes labels in its own order.
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = (("method", "POST"), ("route", "/v1/classify"), ("status", "200"))
    assert samples[("quintet_requests_total", key)] >= 1
    key = (("le", "+Inf"), ("route", "/v1/classify"))
    assert samples[("quintet_request_duration_seconds_bucket", key)] >= 1
    assert samples[("quintet_queue_depth", (("model", EMBED_MODEL),))] == 0
    assert "# TYPE quintet_generated_tokens_total counter" in text
