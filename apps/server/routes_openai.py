"""The OpenAI-compatible routes: chat completions, completions, models, embeddings."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from quintet.apps.server import errors
from quintet.apps.server.auth import require_key
from quintet.apps.server.generation import (
    chat_prompt,
    decode_config,
    finish_reason,
    stream_response,
)
from quintet.apps.server.limits import check_generation_budget, check_input_size
from quintet.apps.server.schemas import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Embedding,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    ModelCard,
    ModelList,
    ResponseMessage,
    Usage,
    new_id,
    now,
)
from quintet.core.decoding.types import GenerationResult

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


def _outputs(result: GenerationResult) -> list[GenerationResult]:
    return [result, *result.alternatives]


def _usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def _record(request: Request, model: str, results: list[GenerationResult]) -> None:
    """Generated tokens and generation time for /metrics (a batch's time counted once)."""
    tokens = sum(o.num_tokens for r in results for o in _outputs(r))
    seconds = max((r.timings.total_s for r in results), default=0.0)
    request.app.state.metrics.observe_generation(model, tokens, seconds)


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The served models (loading ones too), with their kind and endpoints."""
    created = request.app.state.started
    request.app.state.registry.prune()
    cards = [
        ModelCard(id=name, created=created, kind=m.kind, endpoints=m.endpoints())
        for name, m in request.app.state.registry.models.items()
    ]
    return ModelList(data=cards)


@router.get("/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, request: Request) -> ModelCard:
    """One served model (404 when it is not served)."""
    model = request.app.state.registry.models.get(model_id)
    if model is None:
        raise errors.model_not_found(model_id)
    created = request.app.state.started
    return ModelCard(id=model_id, created=created, kind=model.kind, endpoints=model.endpoints())


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """OpenAI chat completions, streamed as server-sent events with ``stream: true``."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task("chat", body.model, state.executor)
    prompt = chat_prompt(body.messages)
    decode = decode_config(body, state.config)
    check_generation_budget(state.config, body.n, decode.max_new_tokens)
    ident, created = new_id("chatcmpl"), now()
    if body.stream:
        if body.n > 1:
            raise errors.bad_request("streaming returns one choice: set n to 1", "n")

        def chunk(delta: str | None, finish: str | None) -> dict[str, Any]:
            return {
                "id": ident, "object": "chat.completion.chunk", "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": {} if delta is None else {"content": delta},
                             "logprobs": None, "finish_reason": finish}],
            }  # fmt: skip

        first = chunk(None, None)
        first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
        return await stream_response(
            model, prompt, decode, state.executor, state.config.request_timeout_s, chunk,
            _usage_chunk(ident, created, body.model, "chat.completion.chunk", body),
            lambda result: _record(request, model.name, [result]), first,
        )  # fmt: skip

    result = await state.batcher.generate(model, prompt, decode)
    _record(request, model.name, [result])
    outputs = _outputs(result)
    choices = [
        ChatChoice(index=i, message=ResponseMessage(content=o.text), finish_reason=finish_reason(o))
        for i, o in enumerate(outputs)
    ]
    usage = _usage(result.prompt_tokens, sum(o.num_tokens for o in outputs))
    return ChatCompletion(id=ident, created=created, model=body.model, choices=choices, usage=usage)


def _usage_chunk(ident: str, created: int, model: str, kind: str, body: Any):
    """The usage event for ``stream_options.include_usage`` (None when not asked)."""
    if body.stream_options is None or not body.stream_options.include_usage:
        return None

    def usage(result: GenerationResult) -> dict[str, Any]:
        counts = _usage(result.prompt_tokens, result.num_tokens)
        return {
            "id": ident, "object": kind, "created": created, "model": model,
            "choices": [], "usage": counts.model_dump(),
        }  # fmt: skip

    return usage


@router.post("/completions", response_model=Completion)
async def completions(body: CompletionRequest, request: Request) -> Any:
    """OpenAI (legacy) text completions: one prompt or a list, ``n`` choices each."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task("completions", body.model, state.executor)
    prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
    if not prompts:
        raise errors.bad_request("prompt is an empty list", "prompt")
    decode = decode_config(body, state.config)
    check_generation_budget(state.config, len(prompts) * body.n, decode.max_new_tokens)
    ident, created = new_id("cmpl"), now()
    if body.stream:
        if body.n > 1 or len(prompts) > 1:
            raise errors.bad_request("streaming takes one prompt and n = 1", "stream")
        prefix = prompts[0] if body.echo else ""

        def chunk(delta: str | None, finish: str | None) -> dict[str, Any]:
            return {
                "id": ident, "object": "text_completion", "created": created,
                "model": body.model,
                "choices": [{"index": 0, "text": delta or "", "logprobs": None,
                             "finish_reason": finish}],
            }  # fmt: skip

        first = chunk(prefix, None) if prefix else None
        return await stream_response(
            model, prompts[0], decode, state.executor, state.config.request_timeout_s, chunk,
            _usage_chunk(ident, created, body.model, "text_completion", body),
            lambda result: _record(request, model.name, [result]), first,
        )  # fmt: skip

    results = await state.batcher.generate_many(model, prompts, decode)
    _record(request, model.name, results)
    choices = []
    for prompt, result in zip(prompts, results, strict=True):
        for output in _outputs(result):
            text = prompt + output.text if body.echo else output.text
            choices.append(
                CompletionChoice(index=len(choices), text=text, finish_reason=finish_reason(output))
            )
    usage = _usage(
        sum(r.prompt_tokens for r in results),
        sum(o.num_tokens for r in results for o in _outputs(r)),
    )
    return Completion(id=ident, created=created, model=body.model, choices=choices, usage=usage)


@router.post("/embeddings", response_model=EmbeddingList)
async def embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingList:
    """Sentence embeddings (mean-pooled, L2-normalised), as floats or base64 float32."""
    state = request.app.state
    check_input_size(body, state.config)
    model = await state.registry.for_task("embeddings", body.model, state.executor)
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if any(not text.strip() for text in texts):
        raise errors.bad_request("input must not contain empty strings", "input")

    def work() -> tuple[np.ndarray, int]:
        import torch

        from quintet.apps.classification.zero_shot import embed

        loaded = model.current()  # a model rebuilt on disk answers from its new weights
        # The model's own lock: the weights and tokenizer are shared with every other user
        # of this model in the process (the task endpoints, a UI, an evaluation).
        with loaded.lock, torch.inference_mode():
            vectors = embed(loaded, texts).cpu().numpy()
            tokens = sum(len(ids) for ids in loaded.tokenizer(texts)["input_ids"])
        return vectors, tokens

    vectors, tokens = await model.run(work, state.executor, state.config.request_timeout_s)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        raise errors.bad_request(
            f"{body.model} gives {vectors.shape[1]} dimensions (got dimensions={body.dimensions})",
            "dimensions",
        )
    data = []
    for index, vector in enumerate(vectors):
        if body.encoding_format == "base64":
            value: list[float] | str = base64.b64encode(vector.astype("<f4").tobytes()).decode()
        else:
            value = vector.astype(float).tolist()
        data.append(Embedding(index=index, embedding=value))
    usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    return EmbeddingList(data=data, model=body.model, usage=usage)
