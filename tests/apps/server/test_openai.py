"""The official `openai` client against a live `quintet serve`: chat (plain and streamed),
completions, models and embeddings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

from tests.apps.server.conftest import API_KEY, CHAT_MODEL, EMBED_MODEL, Server

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    # No retries: a failure must show as it is, not be retried into a timeout.
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def test_models_lists_the_served_models(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {CHAT_MODEL, EMBED_MODEL}
    assert models[CHAT_MODEL].owned_by == "quintet"
    assert client.models.retrieve(EMBED_MODEL).id == EMBED_MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, max_tokens=8, temperature=0
    )
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == CHAT_MODEL
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_chat_adds_up_to_the_plain_reply(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, max_tokens=10, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=CHAT_MODEL, messages=QUESTION, max_tokens=10, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # greedy: the same reply
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == plain.choices[0].finish_reason and not any(finishes[:-1])
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_stream_ends_with_done(server: Server) -> None:
    body = {"model": CHAT_MODEL, "messages": QUESTION, "max_tokens": 4, "temperature": 0,
            "stream": True}  # fmt: skip
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers=server.headers(),
        timeout=60,
    ) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_stop_and_seed(client: openai.OpenAI) -> None:
    first, second = (
        client.chat.completions.create(
            model=CHAT_MODEL, messages=QUESTION, max_tokens=8, temperature=0.9, seed=7
        )
        .choices[0]
        .message.content
        for _ in range(2)
    )
    assert first == second  # a seed repeats a sampled reply
    stopped = client.chat.completions.create(
        model=CHAT_MODEL, messages=QUESTION, max_tokens=12, temperature=0, stop=["Paris"]
    ).choices[0]
    assert "Paris" not in stopped.message.content


def test_completions_with_several_prompts_and_choices(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=CHAT_MODEL, prompt=["Once upon a time", "The sky is"], max_tokens=6,
        temperature=0.8, n=2,
    )  # fmt: skip
    assert reply.object == "text_completion"
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert all(c.text for c in reply.choices)
    assert reply.usage.prompt_tokens > 4
    assert 4 <= reply.usage.completion_tokens <= 4 * 6


def test_embeddings_base64_and_float_agree(client: openai.OpenAI, server: Server) -> None:
    texts = ["A cat sits on the mat.", "Stock markets fell today."]
    # The client asks for base64 by default and decodes it.
    vectors = np.array(
        [d.embedding for d in client.embeddings.create(model=EMBED_MODEL, input=texts).data]
    )
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    plain = httpx.post(
        f"{server.url}/v1/embeddings", headers=server.headers(), timeout=60,
        json={"model": EMBED_MODEL, "input": texts, "encoding_format": "float"},
    ).json()  # fmt: skip
    assert np.allclose(np.array([d["embedding"] for d in plain["data"]]), vectors, atol=1e-6)
    assert plain["usage"]["prompt_tokens"] > 4


def test_concurrent_chat_requests_are_batched(server: Server) -> None:
    """Requests with the same settings arriving together run as one generate() call."""

    def batches() -> tuple[int, int]:
        text = httpx.get(f"{server.url}/metrics").text
        counts = []
        for name in ("quintet_batches_total", "quintet_batched_requests_total"):
            line = next((ln for ln in text.splitlines() if ln.startswith(f"{name}{{")), "")
            counts.append(int(float(line.rsplit(" ", 1)[1])) if line else 0)  # "3.0"
        return counts[0], counts[1]

    before = batches()
    questions = [f"What is {a} plus {a}?" for a in range(1, 7)]
    body = {"model": CHAT_MODEL, "max_tokens": 6, "temperature": 0}
    with ThreadPoolExecutor(len(questions)) as pool:
        replies = list(pool.map(
            lambda q: httpx.post(
                f"{server.url}/v1/chat/completions", headers=server.headers(), timeout=120,
                json={**body, "messages": [{"role": "user", "content": q}]},
            ),
            questions,
        ))  # fmt: skip
    assert all(
        r.status_code == 200 and r.json()["choices"][0]["message"]["content"] for r in replies
    )
    after = batches()
    batch_count, requests = after[0] - before[0], after[1] - before[1]
    assert requests == len(questions)
    assert batch_count < len(questions)  # at least one batch held several requests


def test_a_bad_request_in_a_batch_fails_alone(server: Server) -> None:
    """A prompt over the context window fails with 400; its batch-mates still answer."""
    body = {"model": CHAT_MODEL, "max_tokens": 4, "temperature": 0}
    contents = ["Say hi.", "word " * 9000, "Say bye.", "Count to three."]  # 9000 > 8192 tokens
    with ThreadPoolExecutor(len(contents)) as pool:
        replies = list(pool.map(
            lambda c: httpx.post(
                f"{server.url}/v1/chat/completions", headers=server.headers(), timeout=120,
                json={**body, "messages": [{"role": "user", "content": c}]},
            ),
            contents,
        ))  # fmt: skip
    assert [r.status_code for r in replies] == [200, 400, 200, 200]
    assert "token" in replies[1].json()["error"]["message"]
