"""Request and response models: OpenAI's protocol for the /v1 generation and embedding
routes, and Quintet's own for the task routes.

Unknown request fields are ignored (clients send fields such as ``user`` or
``logit_bias`` that have no meaning here), as OpenAI-compatible servers do.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quintet.core.unicode import find_lone_surrogate


def new_id(prefix: str) -> str:
    """A response id, e.g. ``chatcmpl-3f2a...``."""
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _unicode_only(cls, data: Any) -> Any:
        """Refuse a lone surrogate (JSON's ``"\\ud800"``) anywhere in the request: a 400
        naming the field, before any text reaches a tokenizer."""
        problem = find_lone_surrogate(data)
        if problem is not None:
            raise ValueError(problem)
        return data


# Chat and completions -------------------------------------------------------------------


class ChatMessage(_Request):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    # Text, or OpenAI's content parts ([{"type": "text", "text": ...}]).
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Request):
    include_usage: bool = False


class _Sampling(_Request):
    """Decoding fields shared by chat and completions (OpenAI's names and defaults)."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    # For newer clients: the same limit under its new name.
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class JSONSchemaFormat(_Request):
    """OpenAI's ``response_format.json_schema``: the schema under ``schema``. Output is
    always held to the schema (``strict`` is accepted; there is no looser mode)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    # "schema" would shadow a BaseModel attribute: stored as schema_, read as "schema".
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    """OpenAI's ``response_format``: plain text, any JSON object, or JSON valid against a
    schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    response_format: ResponseFormat | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str | None = None


# Models and embeddings ------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "quintet"
    # Quintet's additions: what the model is and which endpoints serve it.
    kind: str | None = None
    endpoints: list[str] = []


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingRequest(_Request):
    model: str
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# Task endpoints ---------------------------------------------------------------------------


class TranslateRequest(_Request):
    texts: str | list[str]
    src: str = Field(description="source language: ISO 639-1 or FLORES-200 code")
    tgt: str = Field(description="target language")
    model: str | None = Field(default=None, description="a served model; default: the server's")
    max_tokens: int | None = Field(default=None, ge=1)
    num_beams: int | None = Field(default=None, ge=1)


class SummarizeRequest(_Request):
    texts: str | list[str]
    model: str | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    style: Literal["default", "one_sentence", "bullets", "detailed"] = "default"


class QARequest(_Request):
    question: str
    context: str
    model: str | None = None
    top_k: int = Field(default=1, ge=1, le=20)
    max_answer_len: int = Field(default=30, ge=1)
    allow_no_answer: bool = False


class ClassifyRequest(_Request):
    texts: str | list[str]
    labels: list[str] | None = Field(
        default=None, description="labels for zero-shot classification"
    )
    model: str | None = None
    multi_label: bool | None = None
    top_k: int | None = Field(default=None, ge=1)
    threshold: float = Field(default=0.5, ge=0, le=1)


# Task responses: one typed row per input, the fields of the app's result dataclass
# (TranslationResult, SummaryResult, Answer, Classification; tests/apps/server check that
# they match), so /docs shows what each endpoint returns.


class TranslationRow(BaseModel):
    """One translated text (:class:`quintet.apps.translation.api.TranslationResult`)."""

    text: str
    source: str
    model: str
    route: str = Field(description="the model or pivot route that translated it")
    style: str
    pieces: int = Field(description="how many pieces the text was split into")
    seconds: float
    num_tokens: int = 0
    truncated: bool = Field(
        default=False, description="a piece stopped at max_tokens: raise it for the rest"
    )
    backend: str | None = Field(default=None, description="the decoding engine that wrote it")


class ChunkRow(BaseModel):
    """How a long input was split (:class:`quintet.apps.summarization.api.ChunkInfo`)."""

    count: int
    spans: list[tuple[int, int]] = Field(default=[], description="character spans of chunks")
    rounds: int = 0


class SummaryRow(BaseModel):
    """One summary (:class:`quintet.apps.summarization.api.SummaryResult`)."""

    text: str
    model: str
    mode: Literal["seq2seq", "prompted"]
    dialogue: bool
    chunks: ChunkRow
    seconds: float
    num_tokens: int = 0
    extra: dict[str, Any] = {}
    backend: str | None = None
    truncated: bool = Field(default=False, description="the summary stopped at max_length")


class AnswerRow(BaseModel):
    """An answer span, ``context[start:end] == text`` (:class:`quintet.apps.qa.api.Answer`);
    ``text == ""`` means no answer."""

    text: str
    start: int
    end: int
    score: float
    probability: float
    window: int = Field(default=0, description="the context window it came from, -1: none")
    windows: int = 1
    grounded: bool = Field(default=True, description="generative mode: found in the context")
    generated: str = Field(default="", description="generative mode: what the model said")


class ClassificationRow(BaseModel):
    """One text's labels (:class:`quintet.apps.classification.api.Classification`)."""

    label: str
    score: float
    scores: dict[str, float] = Field(description="every label (or the top_k) with its probability")
    labels: list[str] = Field(default=[], description="the chosen label(s)")
    mode: str = ""


class TranslateResponse(BaseModel):
    object: Literal["translation"] = "translation"
    model: str
    results: list[TranslationRow]


class SummarizeResponse(BaseModel):
    object: Literal["summary"] = "summary"
    model: str
    results: list[SummaryRow]


class QAResponse(BaseModel):
    object: Literal["qa"] = "qa"
    model: str
    results: list[AnswerRow] = Field(description="the top_k answers, best first")


class ClassifyResponse(BaseModel):
    object: Literal["classification"] = "classification"
    model: str
    results: list[ClassificationRow]
