"""OpenAI request fields onto :class:`quintet.core.config.DecodeConfig`, and streamed generation.

Streaming: a worker thread drains the generator's :class:`TextStream` into an asyncio
queue and releases the model's lock when the generation has really ended; the response
reads the queue. When the client goes away, Starlette cancels the response and its
``finally`` cancels the generation (after the current token).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

from fastapi.responses import StreamingResponse

from quintet.apps.server import errors
from quintet.apps.server.config import ServerConfig
from quintet.apps.server.models import ServedModel, timed_out
from quintet.apps.server.schemas import ChatMessage, ResponseFormat, _Sampling
from quintet.core.config import DecodeConfig
from quintet.core.decoding.types import GenerationResult
from quintet.core.errors import ConfigError, QuintetError

log = logging.getLogger(__name__)

# OpenAI's finish reasons: a cancelled or empty output ended without hitting a limit.
FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop", "empty": "stop"}


def finish_reason(result: GenerationResult) -> str:
    return FINISH_REASONS.get(result.finish_reason, "stop")


def message_text(message: ChatMessage) -> str:
    """A message's text: a string, or the text of OpenAI's content parts."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise errors.bad_request(
                "only text content parts are supported", "messages", "unsupported_content"
            )
        texts.append(part["text"])
    return "".join(texts)


def chat_prompt(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """OpenAI messages as the chat the generator renders with the model's template."""
    chat = []
    for message in messages:
        if message.role == "tool":
            raise errors.bad_request(
                "tool messages are not supported", "messages", "unsupported_role"
            )
        # "developer" is OpenAI's newer name for the system role.
        role = "system" if message.role == "developer" else message.role
        chat.append({"role": role, "content": message_text(message)})
    return chat


def decode_config(request: _Sampling, config: ServerConfig) -> DecodeConfig:
    """The decoding settings a request asks for (400 for impossible ones).

    temperature 0 is greedy; otherwise (OpenAI's default temperature is 1) sampling with
    that temperature and top_p.
    """
    max_tokens = request.max_completion_tokens or request.max_tokens or config.default_max_tokens
    if max_tokens > config.max_tokens_limit:
        raise errors.bad_request(
            f"max_tokens is {max_tokens}, over this server's limit of {config.max_tokens_limit}",
            "max_tokens",
        )
    temperature = 1.0 if request.temperature is None else request.temperature
    top_p = 1.0 if request.top_p is None else request.top_p
    stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise errors.bad_request("stop takes up to 4 non-empty strings", "stop")
    options: dict[str, Any] = {
        "max_new_tokens": max_tokens,
        "stop_strings": tuple(stops),
        "seed": request.seed,
        "num_return_sequences": request.n,
    }
    schema = response_schema(getattr(request, "response_format", None))
    if schema is not None:
        options["json_schema"] = schema
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_p=top_p)
    elif request.n > 1:
        raise errors.bad_request(
            "n > 1 needs sampling: greedy decoding (temperature 0) gives one answer", "n"
        )
    try:
        return DecodeConfig(**options)
    except ConfigError as exc:
        raise errors.bad_request(str(exc)) from None


def response_schema(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """The JSON schema that ``response_format`` holds the output to (None: plain text).

    ``json_object`` is any JSON object; ``json_schema`` without a schema is one too.
    """
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {"type": "object"}
    if response_format.json_schema is None:
        raise errors.bad_request(
            "response_format of type json_schema needs a json_schema object "
            '({"name": ..., "schema": {...}})',
            "response_format.json_schema",
        )
    return response_format.json_schema.schema_ or {"type": "object"}


def _stream_error(exc: BaseException) -> errors.APIError:
    if isinstance(exc, QuintetError):
        return errors.from_quintet(exc)
    log.error("generation failed mid-stream: %r", exc)
    return errors.APIError(500, "internal server error", "server_error")


def _abandon(started: asyncio.Future, model: ServedModel) -> None:
    """A stream started for a request that is gone: cancel it, free the model."""
    if not started.cancelled() and started.exception() is None:
        started.result().cancel()
    model.release()


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event: ``data: ...`` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


async def stream_response(
    model: ServedModel,
    prompt: Any,
    decode: DecodeConfig,
    executor: Executor,
    timeout: float,
    chunk: Callable[[str | None, str | None], dict[str, Any]],
    usage_chunk: Callable[[GenerationResult], dict[str, Any]] | None,
    on_result: Callable[[GenerationResult], None],
    first: dict[str, Any] | None = None,
) -> StreamingResponse:
    """Stream one generation as server-sent events, ending with ``data: [DONE]``.

    Args:
        chunk: ``chunk(delta, finish_reason)``: the event for a text delta, or (delta None)
            the last one with the finish reason.
        usage_chunk: the usage event sent before ``[DONE]`` (``stream_options.include_usage``).
        on_result: called with the final result (metrics).
        first: an event sent before any text (chat's ``{"role": "assistant"}`` delta).

    Errors before the first byte (bad options, a prompt too long) are ordinary error
    responses; a failure mid-stream is sent as an ``{"error": ...}`` event.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await model.acquire(timeout)
    started = loop.run_in_executor(executor, lambda: model.generator.stream(prompt, decode))
    try:
        text_stream = await asyncio.shield(started)
    except BaseException:
        if started.done():
            model.release()
        else:  # cancelled while the stream starts: stop it as soon as it exists
            started.add_done_callback(lambda done: _abandon(done, model))
        raise
    events: asyncio.Queue = asyncio.Queue()

    def put(item: tuple[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening
            loop.call_soon_threadsafe(events.put_nowait, item)

    def pump() -> None:
        try:
            for delta in text_stream:
                put(("delta", delta))
            put(("end", text_stream.result))
        except BaseException as exc:  # noqa: BLE001 - handed to the response
            put(("error", exc))
        finally:
            model.release_threadsafe(loop)

    threading.Thread(target=pump, name=f"stream-{model.name}", daemon=True).start()

    async def body() -> AsyncIterator[str]:
        try:
            if first is not None:
                yield sse(first)
            while True:
                try:
                    kind, value = await asyncio.wait_for(
                        events.get(), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    yield sse(timed_out(model.name).body())
                    break
                if kind == "delta":
                    yield sse(chunk(value, None))
                elif kind == "end":
                    on_result(value)
                    yield sse(chunk(None, finish_reason(value)))
                    if usage_chunk is not None:
                        yield sse(usage_chunk(value))
                    break
                else:
                    yield sse(_stream_error(value).body())
                    break
            yield sse("[DONE]")
        finally:
            # The client left, timed out or the stream ended: stop generating (no-op when
            # it already ended). The pump releases the lock once the worker stops.
            text_stream.cancel()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
