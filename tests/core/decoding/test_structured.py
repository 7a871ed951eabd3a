"""Structured outputs and lookup decoding on the real SmolLM2 int8 (onnxruntime-genai).

Constrained outputs must be valid every time (json.loads + jsonschema, regex fullmatch,
one of the choices) over several prompts; lookup decoding must keep greedy outputs
token for token where the engine computes a multi-token step as it computes single steps
(fp32 weights, and transformers).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime_genai")
jsonschema = pytest.importorskip("jsonschema")

from quintet.core.config import DecodeConfig  # noqa: E402
from quintet.core.decoding import Generator  # noqa: E402
from quintet.core.errors import ConfigError  # noqa: E402
from quintet.core.store import ModelStore  # noqa: E402
from quintet.core.task_prompts import summarize_prompt  # noqa: E402

pytestmark = pytest.mark.default_backend

MODEL = "smollm2-135m-instruct"
REPO = Path(__file__).resolve().parents[3]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "role": {"enum": ["engineer", "teacher", "doctor", "other"]},
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "country": {"type": "string", "maxLength": 40},
            },
            "required": ["city", "country"],
            "additionalProperties": False,
        },
        "skills": {
            "type": "array",
            "items": {"type": "string", "maxLength": 30},
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["name", "age", "role", "address", "skills"],
    "additionalProperties": False,
}
REVIEW = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "negative", "mixed"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "aspects": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "aspect": {"type": "string", "maxLength": 30},
                    "good": {"type": "boolean"},
                },
                "required": ["aspect", "good"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["sentiment", "score", "aspects"],
    "additionalProperties": False,
}
PROMPTS = [
    "Alice is a 34-year-old engineer from Lyon, France, who knows Rust and Python. "
    "Describe her as JSON.",
    "Review: the hotel room was clean and the staff friendly, but breakfast was cold. Return JSON.",
    "Tell me about a doctor you invent, as JSON.",
    "What's the weather like on Mars? Answer in JSON.",
]


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, real_store: ModelStore) -> Iterator[Path]:
    """A store of the module's own: SmolLM2 and any engine conversion the real store holds
    are linked in (read only); a missing conversion is built here, not in the real store."""
    home = tmp_path_factory.mktemp("structured-home")
    (home / "models").mkdir()
    for folder in real_store.models_dir.glob(f"{MODEL}*"):
        if folder.name == MODEL or "-ortgenai-" in folder.name:
            (home / "models" / folder.name).symlink_to(folder, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUINTET_HOME", str(home))
        patch.delenv("QUINTET_BACKEND", raising=False)
        yield home


@pytest.fixture(autouse=True)
def _module_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUINTET_HOME", str(home))


@pytest.fixture(scope="module")
def int8(home: Path) -> Generator:
    generator = Generator(MODEL)
    assert generator.backend_choice.name == "onnxruntime-genai"
    return generator


@pytest.mark.parametrize("schema", [PERSON, REVIEW], ids=["person", "review"])
def test_json_schema_output_is_valid_every_time(int8: Generator, schema: dict) -> None:
    results = int8.generate([chat(p) for p in PROMPTS], json_schema=schema, max_new_tokens=256)
    for result in results:
        assert result.finish_reason == "stop", result.text
        jsonschema.validate(json.loads(result.text), schema)
    # Streaming holds the same constraint.
    stream = int8.stream(chat(PROMPTS[0]), json_schema=schema, max_new_tokens=256)
    jsonschema.validate(json.loads("".join(stream)), schema)


def test_json_object_is_any_object(int8: Generator) -> None:
    result = int8.complete(chat("Give me a small JSON object about cats."), json_schema={
        "type": "object", "maxProperties": 3,
        "additionalProperties": {"type": "string", "maxLength": 40},
    }, max_new_tokens=200)  # fmt: skip
    assert isinstance(json.loads(result.text), dict)


def test_regex_output_matches_the_whole_pattern(int8: Generator) -> None:
    pattern = r"\d{4}-\d{2}-\d{2}"
    prompts = ["When did the Apollo 11 landing happen?", "Give me a date.", "Hello!"]
    for result in int8.generate([chat(p) for p in prompts], regex=pattern, max_new_tokens=20):
        assert re.fullmatch(pattern, result.text), result.text
    phone = r"\+33 [1-9]( [0-9]{2}){4}"
    result = int8.complete(chat("What is a French phone number?"), regex=phone)
    assert re.fullmatch(phone, result.text), result.text


def test_choice_is_one_of_the_list(int8: Generator) -> None:
    labels = ["positive", "negative", "neutral"]
    prompts = [
        "Sentiment of 'I love this film'? Answer with one word.",
        "Sentiment of 'terrible service, never again'?",
        "Is this happy or sad: 'the bus was on time'",
    ]
    results = int8.generate([chat(p) for p in prompts], choices=labels, max_new_tokens=8)
    assert all(r.text in labels for r in results), [r.text for r in results]
    assert int8.complete(chat("Pick one."), choices=["a b", 'say "hi"']).text in (
        "a b",
        'say "hi"',
    )


def test_bad_constraints_fail_before_any_output_in_one_line(int8: Generator) -> None:
    with pytest.raises(ConfigError, match="json_schema constraint: .*nonsense") as caught:
        int8.stream(chat("hi"), json_schema={"type": "nonsense"})
    assert "\n" not in str(caught.value)
    # min_p is not the engine's; the reference engine cannot constrain: one line, no fallback.
    with pytest.raises(ConfigError, match="cannot do min_p"):
        int8.complete("hi", choices=["a"], do_sample=True, min_p=0.1)


def test_transformers_says_which_engine_constrains(home: Path) -> None:
    reference = Generator(MODEL, "transformers")
    with pytest.raises(ConfigError, match="runs on the onnxruntime-genai engine only"):
        reference.complete("hi", regex="[a-z]+")


def _samsum_dialogue() -> str:
    with open(REPO / "data/summarization/samsum/val.csv", encoding="utf-8", newline="") as file:
        return next(csv.DictReader(file))["dialogue"]


LOOKUP_PROMPTS = [
    chat(summarize_prompt(_samsum_dialogue())),
    chat(
        "Context: The Orion spacecraft launched on 16 November 2022 from Kennedy Space "
        "Center and returned on 11 December 2022 after 25 days.\n\nQuestion: When did "
        "Orion launch and from where? Answer from the context."
    ),
    chat("Repeat this list exactly: alpha, beta, gamma, delta, alpha, beta, gamma, delta."),
]


@pytest.mark.slow
def test_lookup_keeps_greedy_tokens_on_fp32_and_transformers(home: Path) -> None:
    config = DecodeConfig(max_new_tokens=48)
    for generator in (Generator(MODEL, "onnxruntime-genai", precision="fp32"),
                      Generator(MODEL, "transformers")):  # fmt: skip
        plain = generator.generate(LOOKUP_PROMPTS, config)
        lookup = generator.generate(LOOKUP_PROMPTS, config, lookup=4)
        assert [r.token_ids for r in lookup] == [r.token_ids for r in plain], generator.backend
        streamed = generator.stream(LOOKUP_PROMPTS[0], config, lookup=4)
        assert streamed.text == plain[0].text
        assert streamed.result.token_ids == plain[0].token_ids


def test_lookup_on_int8_runs_and_refuses_what_it_cannot_verify(int8: Generator) -> None:
    result = int8.complete(LOOKUP_PROMPTS[2], max_new_tokens=40, lookup=4)
    assert result.backend == "onnxruntime-genai" and "alpha" in result.text.lower()
    assert int8.engine_for(DecodeConfig(lookup=4, do_sample=True)) == "transformers"


def test_apps_pass_constraints_and_lookup_through(int8: Generator) -> None:
    from quintet.apps.chat import ChatSession
    from quintet.apps.summarization import Summarizer

    session = ChatSession(int8)
    assert session.send("Is Paris the capital of France?", choices=["yes", "no"]).text in (
        "yes",
        "no",
    )
    streamed = "".join(session.stream("And of Spain?", regex="(yes|no), [A-Z][a-z]+"))
    assert re.fullmatch("(yes|no), [A-Z][a-z]+", streamed), streamed
    summarizer = Summarizer(int8.loaded)
    (summary,) = summarizer.summarize(_samsum_dialogue(), lookup=4)
    assert summary.text


def test_seeded_constrained_samples_differ(int8: Generator) -> None:
    config = DecodeConfig(
        do_sample=True, temperature=1.0, seed=7, num_return_sequences=4, max_new_tokens=24,
        regex="[a-z]+( [a-z]+){0,4}",
    )  # fmt: skip
    (first,) = int8.generate([chat("Write some words.")], config)
    texts = [first.text, *(a.text for a in first.alternatives)]
    assert all(re.fullmatch(config.regex, t) for t in texts), texts
    assert len(set(texts)) > 1, texts
    (again,) = int8.generate([chat("Write some words.")], config)
    assert [again.text, *(a.text for a in again.alternatives)] == texts
