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


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


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


class TaskResponse(BaseModel):
    """What the task's Python API returned: one result per input, as JSON objects."""

    object: str
    model: str
    results: list[Any]
