"""OpenAI's ``response_format`` against a live `quintet serve` on the onnxruntime-genai
engine (the one that constrains output): json_schema and json_object with the official
client, streamed and not, and OpenAI-shaped 400s for impossible formats."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("onnxruntime_genai")
openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

from quintet.core.store import ModelStore  # noqa: E402
from tests.apps.server.conftest import (  # noqa: E402
    API_KEY,
    CHAT_MODEL,
    Server,
    start_server,
    stop_server,
)

CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "population_millions": {"type": "number", "minimum": 0, "maximum": 100},
        "continent": {"enum": ["Europe", "Asia", "Africa", "America", "Oceania"]},
        "landmarks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 40}},
                "required": ["name"],
                "additionalProperties": False,
            },
            "maxItems": 2,
        },
    },
    "required": ["city", "country", "population_millions", "continent", "landmarks"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}


@pytest.fixture(scope="module")
def engine_server(
    real_store: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The chat model alone, on onnxruntime-genai, from a store of the module's own (the
    model and any conversion the real store has are linked in; nothing is written there)."""
    home = tmp_path_factory.mktemp("structured-serve")
    (home / "models").mkdir()
    for folder in real_store.models_dir.glob(f"{CHAT_MODEL}*"):
        if folder.name == CHAT_MODEL or "-ortgenai-" in folder.name:
            (home / "models" / folder.name).symlink_to(folder, target_is_directory=True)
    running = start_server(
        home, home / "server.log", "--models", CHAT_MODEL, "--backend", "onnxruntime-genai"
    )
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(engine_server: Server) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{engine_server.url}/v1", api_key=API_KEY, max_retries=0, timeout=300
    )


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_json_schema_response_is_valid(client: openai.OpenAI) -> None:
    for question in ["Tell me about Paris.", "Describe Tokyo as JSON.", "Hi there!"]:
        reply = client.chat.completions.create(
            model=CHAT_MODEL, messages=ask(question), response_format=FORMAT,
            temperature=0, max_tokens=300,
        )  # fmt: skip
        choice = reply.choices[0]
        assert choice.finish_reason == "stop", choice.message.content
        jsonschema.validate(json.loads(choice.message.content), CITY)


def test_streamed_json_schema_and_sampled_json_object(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=ask("Tell me about Rome."), response_format=FORMAT,
        temperature=0, max_tokens=300, stream=True,
    )  # fmt: skip
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    jsonschema.validate(json.loads(text), CITY)
    reply = client.chat.completions.create(
        model=CHAT_MODEL, messages=ask("Give me a JSON object."),
        response_format={"type": "json_object"}, temperature=0.7, seed=1, max_tokens=300,
    )  # fmt: skip
    if reply.choices[0].finish_reason == "stop":  # cut at max_tokens, JSON may be unfinished
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    plain = client.chat.completions.create(
        model=CHAT_MODEL, messages=ask("Say hi."), response_format={"type": "text"},
        temperature=0, max_tokens=10,
    )  # fmt: skip
    assert plain.choices[0].message.content


@pytest.mark.parametrize(
    ("response_format", "message"),
    [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}},
         "json_schema constraint"),
        ({"type": "json_schema"}, "needs a json_schema object"),
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}},
         "response_format.json_schema.name"),
    ],
)  # fmt: skip
def test_impossible_formats_are_openai_400s(
    engine_server: Server, response_format: dict, message: str
) -> None:
    for stream in (False, True):
        answer = httpx.post(
            f"{engine_server.url}/v1/chat/completions",
            headers=engine_server.headers(),
            json={"model": CHAT_MODEL, "messages": ask("hi"), "stream": stream,
                  "response_format": response_format},
            timeout=120,
        )  # fmt: skip
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error" and message in (
            error["message"] + str(error.get("param"))
        ), error
