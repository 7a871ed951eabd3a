"""What one request may ask of the server: body bytes (before the body reaches FastAPI),
characters of text, and tokens to generate (documented by ``quintet serve --help``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quintet.apps.server.config import ServerConfig
from quintet.apps.server.errors import APIError, bad_request


class BodyLimit:
    """ASGI middleware: answer 413 to a request whose body exceeds ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused without reading anything; a
    chunked body is read up to the limit and refused as soon as it passes it, so a client
    cannot make the server buffer more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Disconnected before the body ended: nothing to answer.
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            # The buffered body once, then the real channel (for http.disconnect).
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = APIError(
            413,
            f"request body too large: the limit is {self.max_bytes} bytes",
            "invalid_request_error",
            None,
            "request_too_large",
            {"Connection": "close"},
        )
        await error.response()(scope, receive, send)


def _characters(value: Any) -> int:
    """Characters of text in a parsed request: every string, however deeply nested."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_characters(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_characters(item) for item in value)
    return 0


def check_input_size(body: BaseModel, config: ServerConfig) -> None:
    """413 when ``body`` carries more than ``config.max_input_chars`` characters of text.

    The body limit counts bytes; this counts what reaches the models (texts, messages,
    labels, question and context together), so one request cannot hand an encoder or a
    generator unbounded work within an allowed body size.
    """
    size = _characters(body.model_dump(exclude={"model"}))
    if size > config.max_input_chars:
        raise APIError(
            413,
            f"the request carries {size} characters of text, over this server's limit of "
            f"{config.max_input_chars} (split it into several requests)",
            "invalid_request_error",
            None,
            "input_too_large",
        )


def check_generation_budget(
    config: ServerConfig, outputs: int, max_tokens: int, param: str = "max_tokens"
) -> None:
    """400 when ``outputs`` generations of up to ``max_tokens`` tokens each (prompts x n)
    exceed ``config.max_request_tokens``."""
    total = outputs * max_tokens
    if total > config.max_request_tokens:
        raise bad_request(
            f"{outputs} outputs x {param} {max_tokens} = {total} tokens, over this server's "
            f"limit of {config.max_request_tokens} per request: lower {param} or send fewer "
            "prompts (or a smaller n)",
            param,
        )
