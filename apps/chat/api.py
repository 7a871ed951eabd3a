"""Chat: ``ChatSession(model, system_prompt).send(message)`` / ``.stream(message)``.

The history is OpenAI-style ``messages``, rendered with the model's own chat template (an
instruct model without one gets ChatML, :data:`core.decoding.prompts.DEFAULT_CHAT_TEMPLATE`).
Before each turn the rendered history plus ``max_new_tokens`` must fit the context window;
when it does not, the oldest user/assistant turns are dropped (``context_strategy="drop"``)
or replaced by a summary the same model writes (``"summarize"``). The system prompt and the
newest message are always kept, and the reply says what happened (``context_notice``).

Example::

    >>> chat = ChatSession(system_prompt="You are terse.")                # doctest: +SKIP
    >>> chat.send("What is the capital of France?").text
    'The capital of France is Paris.'
    >>> for delta in chat.stream("And of Italy?"):
    ...     print(delta, end="")
    >>> chat.save("conversation.json")
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.config import DecodeConfig
from core.decoding import Generator
from core.decoding.generator import TextStream
from core.decoding.prompts import InputTooLongError, encode
from core.decoding.types import GenerationResult, Message
from core.defaults import default_model
from core.errors import ConfigError, QuintetError
from core.models import Loaded, load

STRATEGIES = ("drop", "summarize")
DEFAULT_MAX_NEW_TOKENS = 256


class ChatError(QuintetError):
    """A chat request or a saved conversation is not usable as it is."""


@dataclass(frozen=True)
class ChatReply:
    """The assistant's reply with timings and what context management did."""

    text: str
    finish_reason: str
    num_tokens: int
    prompt_tokens: int
    time_to_first_token_s: float | None
    tokens_per_s: float
    seconds: float
    context_notice: str = ""


class ChatStream:
    """Text deltas of a reply as they are generated (iterate it, or pass it to
    ``st.write_stream``); :meth:`cancel` stops it. When it ends or is cancelled the reply
    (the text so far) joins the history and :attr:`reply` is set."""

    def __init__(self, session: ChatSession, stream: TextStream, notice: str) -> None:
        self._session, self._stream, self._notice = session, stream, notice
        self.reply: ChatReply | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._stream
        finally:
            self._finish()

    def cancel(self) -> None:
        """Stop generating; what was generated so far is kept as the reply."""
        self._stream.cancel()

    def _finish(self) -> None:
        if self.reply is not None:
            return
        result = self._stream.result
        if result is None:  # cancelled before the worker reported: keep what was shown
            text = self._stream.text
            self.reply = ChatReply(text, "cancelled", 0, 0, None, 0.0, 0.0, self._notice)
        else:
            self.reply = _reply(result, self._notice)
        self._session._add_reply(self.reply)


def _reply(result: GenerationResult, notice: str) -> ChatReply:
    t = result.timings
    return ChatReply(
        result.text,
        result.finish_reason,
        result.num_tokens,
        result.prompt_tokens,
        t.time_to_first_token_s,
        t.tokens_per_s,
        t.total_s,
        notice,
    )


class ChatSession:
    """A conversation with an instruct model.

    Args:
        model: name, hub id or directory of a causal instruct model; None: the chat default.
        system_prompt: kept first in every request, never dropped.
        context_strategy: ``"drop"`` the oldest turns or ``"summarize"`` them when the
            history outgrows the window.
        max_context_tokens: treat the window as this many tokens (default: the model's).
        decode: default :class:`core.config.DecodeConfig` fields for every turn.
    """

    def __init__(
        self,
        model: str | Loaded | Generator | None = None,
        system_prompt: str | None = None,
        *,
        backend: str = "transformers",
        context_strategy: str = "drop",
        max_context_tokens: int | None = None,
        device: str = "auto",
        **decode,
    ) -> None:
        if context_strategy not in STRATEGIES:
            raise ConfigError(f"context_strategy must be one of {STRATEGIES}")
        if isinstance(model, Generator):
            self.generator = model
        else:
            if model is None:
                model = default_model("chat").name
            loaded = model if isinstance(model, Loaded) else load(model, device=device)
            if loaded.kind != "causal":
                raise ChatError(
                    f"{loaded.name} is a {loaded.kind} model: chat needs a decoder-only "
                    "instruct model (smollm2-135m-instruct, Qwen/Qwen2.5-0.5B-Instruct ...)"
                )
            self.generator = Generator(loaded, backend, batch_size=1)
        self.loaded = self.generator.loaded
        self.system_prompt = system_prompt
        self.context_strategy = context_strategy
        window = self.loaded.context_window or 2048
        self.max_context_tokens = min(max_context_tokens or window, window)
        self.decode = {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, **decode}
        DecodeConfig(**self.decode)  # validate now, not at the first message
        self._turns: list[Message] = []  # user/assistant messages, oldest first
        self.summary: str = ""  # summary of dropped turns ("summarize" strategy)
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.loaded.name

    # History ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The conversation as OpenAI-style messages (system prompt first, if any)."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [dict(m) for m in self._turns]

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self._turns.clear()
        self.summary = ""

    def edit(self, index: int, content: str) -> None:
        """Change the text of turn ``index`` (0 = first user message; system excluded)."""
        if not 0 <= index < len(self._turns):
            raise ChatError(f"no turn {index}: the conversation has {len(self._turns)} turns")
        self._turns[index] = {"role": self._turns[index]["role"], "content": content}

    def undo(self) -> None:
        """Remove the last user message and the reply to it."""
        while self._turns:
            removed = self._turns.pop()
            if removed["role"] == "user":
                break

    def to_json(self) -> str:
        """The conversation as JSON: ``{"model", "messages": [...]}``."""
        return json.dumps(
            {"model": self.model_name, "messages": self.messages}, indent=2, ensure_ascii=False
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the conversation to ``path`` atomically (the old file survives a crash)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(
        cls, source: str | os.PathLike, model: str | Loaded | None = None, **options
    ) -> ChatSession:
        """A session continuing a saved conversation (a path, or the JSON text itself).

        The saved model is used unless ``model`` is given."""
        text = str(source)
        path = Path(text) if not text.lstrip().startswith(("{", "[")) else None
        if path is not None:
            if not path.is_file():
                raise ChatError(f"{path}: no such conversation file")
            text = path.read_text(encoding="utf-8")
        where = str(path) if path else "conversation"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChatError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
        messages = data.get("messages") if isinstance(data, dict) else data
        if not isinstance(messages, list):
            raise ChatError(f'{where}: expected {{"messages": [...]}} or a list of messages')
        for i, m in enumerate(messages):
            if not (
                isinstance(m, dict)
                and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)
            ):
                raise ChatError(
                    f"{where}: message {i} must be {{'role': system|user|assistant, "
                    f"'content': text}}, got {str(m)[:80]}"
                )
            if m["role"] == "system" and i != 0:
                raise ChatError(f"{where}: message {i} is a system message; only the first may be")
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        saved_model = data.get("model") if isinstance(data, dict) else None
        session = cls(model or saved_model, system, **options)
        session._turns = [dict(m) for m in messages if m["role"] != "system"]
        return session

    # Turns --------------------------------------------------------------------------------

    def send(self, message: str, **decode) -> ChatReply:
        """Send a user message and wait for the whole reply."""
        with self._lock:
            config, notice = self._prepare(message, decode)
            result = self.generator.complete(self._request(), config)
            reply = _reply(result, notice)
            self._add_reply(reply)
            return reply

    def stream(self, message: str, **decode) -> ChatStream:
        """Send a user message and stream the reply (see :class:`ChatStream`)."""
        with self._lock:
            config, notice = self._prepare(message, decode)
            return ChatStream(self, self.generator.stream(self._request(), config), notice)

    def _add_reply(self, reply: ChatReply) -> None:
        self._turns.append({"role": "assistant", "content": reply.text})

    def _request(self) -> list[Message]:
        messages = self.messages
        if self.summary:
            note = f"Summary of the earlier conversation: {self.summary}"
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}
            else:
                messages.insert(0, {"role": "system", "content": note})
        return messages

    def _prepare(self, message: str, decode: dict) -> tuple[DecodeConfig, str]:
        if not isinstance(message, str) or not message.strip():
            raise ChatError("empty message: type something to send")
        if self._turns and self._turns[-1]["role"] == "user":
            self._turns.pop()  # a turn whose reply failed: replace it, do not stack users
        config = DecodeConfig(**{**self.decode, **decode})
        self._turns.append({"role": "user", "content": message})
        try:
            notice = self._fit(config.max_new_tokens)
        except InputTooLongError:
            self._turns.pop()
            raise
        return config, notice

    def _tokens(self) -> int:
        return len(encode(self.loaded, self._request()))

    def _fit(self, max_new_tokens: int) -> str:
        """Drop or summarize the oldest turns until the request fits; say what was done."""
        budget = self.max_context_tokens - max_new_tokens
        if self._tokens() <= budget:
            return ""
        dropped: list[Message] = []
        while self._tokens() > budget and len(self._turns) > 1:
            dropped += self._turns[:2] if self._turns[1]["role"] == "assistant" else self._turns[:1]
            del self._turns[: 2 if self._turns[1]["role"] == "assistant" else 1]
        if self._tokens() > budget:
            tokens = self._tokens()
            self._turns = dropped + self._turns  # refuse the message, keep the history
            raise InputTooLongError(
                f"the message is {tokens} tokens with the system prompt, more than the "
                f"{budget} that fit ({self.max_context_tokens}-token window minus "
                f"max_new_tokens {max_new_tokens}): shorten it or lower max_new_tokens"
            )
        turns = len(dropped)
        if self.context_strategy == "summarize" and dropped:
            self.summary = self._summarize(dropped)
            if self._tokens() > budget:  # the summary itself does not fit: drop it too
                self.summary = ""
                return f"dropped the {turns} oldest messages to fit the context window"
            return f"summarized the {turns} oldest messages to fit the context window"
        return f"dropped the {turns} oldest messages to fit the context window"

    def _summarize(self, dropped: list[Message]) -> str:
        transcript = "\n".join(f"{m['role']}: {m['content']}" for m in dropped)
        if self.summary:
            transcript = f"(earlier: {self.summary})\n{transcript}"
        prompt = [
            {
                "role": "user",
                "content": f"Summarize this conversation in two sentences.\n\n{transcript[-4000:]}",
            }
        ]
        return self.generator.complete(prompt, max_new_tokens=80).text.strip()
