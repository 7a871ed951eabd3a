"""Chat: ``ChatSession(model, system_prompt).send(message)`` / ``.stream(message)``.

The history is OpenAI-style ``messages``, rendered with the model's own chat template. An
instruct model whose tokenizer has no template gets ChatML
(:data:`quintet.core.decoding.prompts.DEFAULT_CHAT_TEMPLATE`:
``<|im_start|>role\\ncontent<|im_end|>``
per message, then ``<|im_start|>assistant\\n``), the format SmolLM2 and Qwen2.5 were trained on.

Before each turn the rendered chat plus ``max_new_tokens`` must fit the context window
(the model's, or ``max_context_tokens``); when it does not, the oldest turns leave the
model's view, dropped or summarized (:mod:`quintet.apps.chat.context`), and the reply says so in
``context_notice``. The whole conversation stays in :attr:`ChatSession.messages` (and in the
saved file); only what the model sees shrinks.

Example::

    >>> chat = ChatSession(system_prompt="You are terse.")                # doctest: +SKIP
    >>> chat.send("What is 2 + 2?").text
    'The answer to this classic math problem is 4.'
    >>> stream = chat.stream("And of Italy?")
    >>> for delta in stream:                       # or st.write_stream(stream)
    ...     print(delta, end="")
    >>> stream.result.tokens_per_s, stream.result.time_to_first_token_s
    >>> chat.save("conversation.json")             # atomic; ChatSession.load() continues it
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from quintet.apps.chat import context
from quintet.apps.chat.history import ChatError, read_conversation, to_json, write_atomic
from quintet.apps.chat.settings import DEFAULT_MAX_NEW_TOKENS, STRATEGIES
from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.decoding.generator import TextStream
from quintet.core.decoding.prompts import encode
from quintet.core.decoding.types import GenerationResult, Message
from quintet.core.defaults import default_model
from quintet.core.errors import ConfigError
from quintet.core.models import Loaded, load

FALLBACK_WINDOW = 2048  # for a model whose config states no context window


@dataclass(frozen=True)
class ChatReply:
    """The assistant's reply with timings and what context management did.

    ``finish_reason``: ``stop`` (the model ended it or a stop string did), ``length``
    (``max_new_tokens`` reached), ``cancelled`` (a stream stopped by :meth:`ChatStream.cancel`
    or abandoned; ``text`` is what had been produced) or ``empty``.
    """

    text: str
    finish_reason: str
    num_tokens: int
    prompt_tokens: int
    time_to_first_token_s: float | None
    tokens_per_s: float
    seconds: float
    context_notice: str = ""
    backend: str | None = None  # the engine that wrote it

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"


def _reply(result: GenerationResult, notice: str, text: str | None = None) -> ChatReply:
    t = result.timings
    return ChatReply(
        result.text if text is None else text,
        result.finish_reason,
        result.num_tokens,
        result.prompt_tokens,
        t.time_to_first_token_s,
        t.tokens_per_s,
        t.total_s,
        notice,
        result.backend,
    )


class ChatStream:
    """Text deltas of a reply as they are generated.

    Iterate it (or pass it to ``st.write_stream``); ``"".join(deltas) == stream.result.text``.
    :meth:`cancel` (from any thread: the stop button) ends it after the current token. When
    it ends, is cancelled, or the consumer stops iterating, the reply (the text shown so far,
    ``finish_reason="cancelled"`` if cut) joins the history and :attr:`result` is set.
    :attr:`context_notice` is known before the first token.
    """

    def __init__(self, session: ChatSession, stream: TextStream, notice: str) -> None:
        self._session, self._stream = session, stream
        self.context_notice = notice
        self._shown: list[str] = []
        self._ended = False  # the underlying stream has delivered its end
        self._reply: ChatReply | None = None
        # Two threads may read one reply: a page run interrupted by Stop closes its reading
        # while the next run finishes the reply. The underlying stream ends once (one end
        # marker): reads are serialised and a reader after the end returns at once, where
        # it waited for a marker already taken, and the page hung.
        self._read_lock = threading.Lock()
        self._finish_lock = threading.Lock()

    def _read(self) -> Iterator[str]:
        """The underlying stream's deltas, safe to read from several threads."""
        while True:
            with self._read_lock:
                if self._ended:
                    return
                try:
                    # A fresh iterator per delta: an interrupt (Ctrl-C) while waiting takes
                    # no delta and leaves the stream readable, where it would end a shared
                    # iterator before the stream's end (and the worker, still writing, was
                    # never waited for).
                    delta = next(iter(self._stream))
                except StopIteration:
                    self._ended = True
                    return
                except Exception:  # the stream's own error, raised after its end
                    self._ended = True
                    raise
            yield delta

    def __iter__(self) -> Iterator[str]:
        if self._reply is not None:
            return
        try:
            for delta in self._read():
                self._shown.append(delta)
                yield delta
        except GeneratorExit:  # the consumer stopped reading: stop generating too
            self._stream.cancel()
            raise
        except Exception:
            self._ended = True
            self._session._abandon_turn(self)
            raise
        finally:
            if self._reply is None and self._session._streaming is self:
                self._finish()

    def cancel(self) -> None:
        """Stop generating; what was produced so far is kept as the reply."""
        self._stream.cancel()

    @property
    def result(self) -> ChatReply:
        """The reply; reading it before the stream ended waits for the end."""
        if self._reply is None:
            for _ in self:
                pass
        assert self._reply is not None
        return self._reply

    @property
    def text(self) -> str:
        """The text shown so far."""
        return "".join(self._shown)

    def _finish(self) -> None:
        with self._finish_lock:
            if self._reply is None:
                self._finish_once()

    def _finish_once(self) -> None:
        if not self._ended:  # abandoned mid-way: wait for the worker to stop
            self._stream.cancel()
            try:
                for _ in self._read():
                    pass
            except Exception:  # noqa: BLE001 - the turn is abandoned anyway
                pass
        result = self._stream.result
        shown = "".join(self._shown)
        if result is None:
            self._reply = ChatReply(shown, "cancelled", 0, 0, None, 0.0, 0.0, self.context_notice)
        elif result.finish_reason == "cancelled" or self._stream.cancelled:
            # What the user saw is what the history keeps (text held back for a possible stop
            # string was never shown).
            cut = _reply(result, self.context_notice, shown)
            self._reply = replace(cut, finish_reason="cancelled")
        else:
            self._reply = _reply(result, self.context_notice)
        self._session._add_reply(self, self._reply)


def _check_causal(loaded: Loaded) -> None:
    if loaded.kind != "causal":
        raise ChatError(
            f"{loaded.name} is a {loaded.kind} model: chat needs a decoder-only instruct model "
            "(smollm2-135m-instruct, Qwen/Qwen2.5-0.5B-Instruct ...)"
        )


class ChatSession:
    """A conversation with an instruct model.

    Args:
        model: name, hub id or directory of a causal instruct model, a loaded model, or a
            :class:`quintet.core.decoding.Generator` (shared weights); None: the chat default
            (``quintet.core.defaults.default_model("chat")``, offline SmolLM2-135M-Instruct).
        system_prompt: kept first in every request, never dropped.
        backend: ``"auto"`` (the fastest installed engine, see
            :mod:`quintet.core.decoding.engines`), ``"transformers"``, ``"ctranslate2"`` or
            ``"onnxruntime-genai"``.
        context_strategy: ``"drop"`` the oldest turns or ``"summarize"`` them when the
            history outgrows the window.
        max_context_tokens: treat the window as this many tokens (at most the model's).
        decode: default :class:`quintet.core.config.DecodeConfig` fields for every turn
            (``max_new_tokens`` defaults to 256: that much room is kept for each reply).

    Raises:
        ChatError: the model is not a decoder-only model.
        ConfigError: an unknown strategy or decoding option.
    """

    def __init__(
        self,
        model: str | Loaded | Generator | None = None,
        system_prompt: str | None = None,
        *,
        backend: str = "auto",
        context_strategy: str = "drop",
        max_context_tokens: int | None = None,
        device: str = "auto",
        **decode,
    ) -> None:
        if context_strategy not in STRATEGIES:
            raise ConfigError(
                f"context_strategy {context_strategy!r}: choose one of {', '.join(STRATEGIES)}"
            )
        self.decode = {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, **decode}
        DecodeConfig.from_overrides(None, **self.decode)  # fail now, not at the first message
        if isinstance(model, Generator):
            self.generator = model
        else:
            if model is None:
                model = default_model("chat").name
            loaded = model if isinstance(model, Loaded) else load(model, device=device)
            _check_causal(loaded)
            self.generator = Generator(loaded, backend, batch_size=1)
        _check_causal(self.loaded)
        self.system_prompt = system_prompt or None
        self.context_strategy = context_strategy
        window = self.loaded.context_window or FALLBACK_WINDOW
        if max_context_tokens is not None and max_context_tokens < 1:
            raise ConfigError(f"max_context_tokens must be positive (got {max_context_tokens})")
        self.max_context_tokens = min(max_context_tokens or window, window)
        self._turns: list[Message] = []  # user/assistant messages, oldest first
        self._start = 0  # the first turn the model still sees
        self.summary = ""  # summary of the turns before _start ("summarize")
        self._streaming: ChatStream | None = None
        # The latest reply (its timings and how it ended), for a page that shows them after
        # a rerun; None when the history no longer ends with it.
        self.last_reply: ChatReply | None = None
        self._lock = threading.RLock()
        # The engine-side KV cache of this conversation (None where the engine keeps none):
        # each turn sends the whole context, the engine computes only what it lacks.
        self._kv = self.generator.new_session()
        self._kv_backend = self.generator.backend

    @property
    def loaded(self) -> Loaded:
        """The model the next turn runs on (the generator's: it follows a rebuilt model)."""
        return self.generator.loaded

    @property
    def model_name(self) -> str:
        return self.loaded.name

    def _session(self) -> Any:
        """The conversation's KV cache on the engine the next turn runs on: after the model
        was rebuilt on disk, a new engine decodes it and the cache starts afresh there."""
        self.generator.refresh()
        if self.generator.backend is not self._kv_backend:
            self._kv_backend = self.generator.backend
            self._kv = self.generator.new_session()
        return self._kv

    # History ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The whole conversation as OpenAI-style messages (system prompt first, if any)."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [dict(m) for m in self._turns]

    @property
    def context_messages(self) -> list[Message]:
        """What the model sees next turn: system prompt (+ summary note) and the recent turns."""
        return self._request(self._turns[self._start :], self.summary)

    @property
    def streaming(self) -> ChatStream | None:
        """The reply being streamed, if any (a page can cancel and finish it on a rerun)."""
        return self._streaming

    @property
    def hidden_messages(self) -> int:
        """How many of the oldest messages the model no longer sees (dropped or summarized)."""
        return self._start

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        with self._lock:
            self._check_idle()
            self._turns.clear()
            self._start, self.summary = 0, ""
            self.last_reply = None

    def set_system_prompt(self, text: str | None) -> None:
        """Change the system prompt (None or "" removes it); the turns stay."""
        self.system_prompt = text or None

    def edit(self, index: int, content: str) -> None:
        """Change the text of message ``index`` of :attr:`messages` (0 is the system prompt
        when there is one). Later messages stay as they are; :meth:`retry` regenerates the
        last reply."""
        if not isinstance(content, str):
            raise ChatError(f"message content must be text, got {type(content).__name__}")
        with self._lock:
            self._check_idle()
            offset = 1 if self.system_prompt else 0
            if not 0 <= index < len(self._turns) + offset:
                raise ChatError(
                    f"no message {index}: the conversation has {len(self._turns) + offset}"
                )
            if index < offset:
                self.system_prompt = content or None
                return
            turn = self._turns[index - offset]
            self._turns[index - offset] = {"role": turn["role"], "content": content}
            self.last_reply = None

    def undo(self) -> str | None:
        """Remove the last user message and the reply to it; returns that user message."""
        with self._lock:
            self._check_idle()
            self.last_reply = None
            while self._turns:
                removed = self._turns.pop()
                if removed["role"] == "user":
                    self._start = min(self._start, len(self._turns))
                    return removed["content"]
            return None

    def retry(self, **decode) -> ChatReply:
        """Regenerate the reply to the last user message (e.g. with sampling on)."""
        message = self.undo()
        if message is None:
            raise ChatError("nothing to retry: the conversation has no user message")
        return self.send(message, **decode)

    def to_json(self) -> str:
        """The conversation as JSON: ``{"model", "messages": [...]}`` (+ ``"summary"``)."""
        return to_json(self.model_name, self.messages, self.summary, self._start)

    def save(self, path: str | os.PathLike) -> None:
        """Write the conversation to ``path`` atomically (a crash keeps the previous file)."""
        write_atomic(path, self.to_json())

    @classmethod
    def load(
        cls,
        source: str | os.PathLike,
        model: str | Loaded | Generator | None = None,
        **options,
    ) -> ChatSession:
        """A session continuing a saved conversation (a path, or the JSON text itself).

        The saved model is used unless ``model`` is given.

        Raises:
            ChatError: no such file, not JSON, or a message with a bad role or content
                (the error names the file, the message number and the problem).
        """
        saved = read_conversation(source)
        messages = saved.messages
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        session = cls(model or saved.model, system, **options)
        session._turns = [m for m in messages if m["role"] != "system"]
        session.summary = saved.summary
        session._start = min(saved.context_start, len(session._turns))
        return session

    # Turns --------------------------------------------------------------------------------

    def send(self, message: str, **decode) -> ChatReply:
        """Send a user message and wait for the whole reply.

        Raises:
            ChatError: an empty message, or a reply still streaming.
            InputTooLongError: the message alone does not fit the window.
        """
        with self._lock:
            self._check_idle()
            config, notice = self._prepare(message, decode)
            try:
                kv = self._session()
                if kv is not None and config.num_return_sequences == config.num_beams == 1:
                    # As a stream, so the turn continues the conversation's KV cache.
                    text_stream = self.generator.stream(self.context_messages, config, session=kv)
                    text_stream.text  # noqa: B018 - waits for the end (raises its error)
                    result = text_stream.result
                else:
                    result = self.generator.complete(self.context_messages, config)
            except BaseException:
                self._turns.pop()  # the user message had no reply: leave no dangling turn
                raise
            reply = _reply(result, notice)
            self._turns.append({"role": "assistant", "content": reply.text})
            self.last_reply = reply
            return reply

    def stream(self, message: str, **decode) -> ChatStream:
        """Send a user message and stream the reply (see :class:`ChatStream`)."""
        with self._lock:
            self._check_idle()
            config, notice = self._prepare(message, decode, streaming=True)
            try:
                text_stream = self.generator.stream(
                    self.context_messages, config, session=self._session()
                )
            except BaseException:
                self._turns.pop()
                raise
            self._streaming = ChatStream(self, text_stream, notice)
            return self._streaming

    def _check_idle(self) -> None:
        if self._streaming is not None:
            raise ChatError("a reply is still streaming: read it to the end or cancel it first")

    def _add_reply(self, stream: ChatStream, reply: ChatReply) -> None:
        with self._lock:
            if self._streaming is stream:
                self._turns.append({"role": "assistant", "content": reply.text})
                self._streaming = None
                self.last_reply = reply

    def _abandon_turn(self, stream: ChatStream) -> None:
        """A stream failed: drop its user message so the history has no unanswered turn."""
        with self._lock:
            if self._streaming is stream:
                self._turns.pop()
                self._streaming = None

    def _request(self, turns: list[Message], summary: str) -> list[Message]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return context.with_summary(system + [dict(m) for m in turns], summary)

    def _count(self, turns, summary: str) -> int:
        with self.loaded.lock:  # the tokenizer is shared by every user of the model
            return len(encode(self.loaded, self._request(list(turns), summary)))

    def _prepare(
        self, message: str, decode: dict, streaming: bool = False
    ) -> tuple[DecodeConfig, str]:
        """Check the message and options, fit the window, add the user message."""
        if not isinstance(message, str) or not message.strip():
            raise ChatError("empty message: type something to send")
        config = DecodeConfig.from_overrides(None, **{**self.decode, **decode})
        if streaming:
            config.check_streamable()
        visible = self._turns[self._start :] + [{"role": "user", "content": message}]
        budget = self.max_context_tokens - config.max_new_tokens
        decision = context.fit(
            visible,
            count=self._count,
            budget=budget,
            window=self.max_context_tokens,
            max_new_tokens=config.max_new_tokens,
            strategy=self.context_strategy,
            summary=self.summary,
            summarize=self._summarize,
        )  # raises InputTooLongError before the history changes
        self._turns.append({"role": "user", "content": message})
        self._start += decision.dropped
        self.summary = decision.summary
        return config, decision.notice

    def _summarize(self, dropped, previous: str) -> str:
        prompt = context.summary_prompt(dropped, previous)
        result = self.generator.complete(
            prompt, max_new_tokens=context.SUMMARY_MAX_NEW_TOKENS, stop_strings=("\n\n",)
        )
        return result.text.strip()
