"""One generator for every generative app: batching, stop strings, streaming, timings.

The generator owns everything that is the same for every backend: turning prompts into
token ids, refusing prompts that overflow the window, length-bucketed batches with
back-off when memory runs out, stop strings, decoding to text, timings, and the order
of results. Backends only turn token ids into token ids.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch

from quintet.core.config import DecodeConfig
from quintet.core.decoding import engines
from quintet.core.decoding.backend import DecodingBackend, RowDone, StopCheck
from quintet.core.decoding.engines import BackendChoice
from quintet.core.decoding.guidance import constraint_name
from quintet.core.decoding.prompts import (
    check_fits,
    check_output_length,
    encode,
    is_empty,
    validate_prompt,
)
from quintet.core.decoding.stops import StopStrings
from quintet.core.decoding.types import GenerationResult, Prompt, RawSequence, Timings
from quintet.core.errors import ConfigError, ModelLoadError, QuintetError
from quintet.core.models import Loaded, current, load
from quintet.core.progress import ProgressCallback, progress_callback

log = logging.getLogger(__name__)

BACKENDS = engines.BACKENDS

TextSink = Callable[[str], None]
"""Called with text: a delta of a stream, or (``on_text``) the whole text so far."""


class OutOfMemoryError(QuintetError):
    """Generation ran out of memory even one input at a time."""


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def make_backend(loaded: Loaded, backend: str, **options) -> DecodingBackend:
    """The named backend over ``loaded``; fast engines convert the model on first use."""
    # Each backend is imported when chosen: the fast ones pull in their engine's package.
    if backend == engines.TRANSFORMERS:
        from quintet.core.decoding.hf_backend import TransformersBackend

        if options:
            raise ConfigError(f"the transformers backend takes no options (got {sorted(options)})")
        return TransformersBackend(loaded)
    if backend in (engines.CTRANSLATE2, engines.ONNX_GENAI, engines.VLLM):
        problem = engines.unavailable(backend, loaded)
        if problem:
            raise ConfigError(problem)
    if backend == engines.CTRANSLATE2:
        from quintet.core.decoding.ct2_backend import CTranslate2Backend

        return CTranslate2Backend(loaded, **options)
    if backend == engines.ONNX_GENAI:
        from quintet.core.decoding.ort_backend import OnnxGenAIBackend

        return OnnxGenAIBackend(loaded, **options)
    if backend == engines.VLLM:
        from quintet.core.decoding.vllm_backend import VllmBackend

        return VllmBackend(loaded, **options)
    named = ", ".join(b for b in BACKENDS if b != engines.AUTO)
    raise ConfigError(f"unknown backend {backend!r}: choose one of {named} or auto")


class TextStream:
    """An iterator of text deltas from one streamed generation.

    Iterate it (``for delta in stream``, or ``st.write_stream(stream)``); call
    :meth:`cancel` from anywhere to stop it; read :attr:`result` once it is exhausted.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self.result: GenerationResult | None = None
        self._error: BaseException | None = None

    def cancel(self) -> None:
        """Stop generating after the current token; the text so far stays in ``result``."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._queue.get()
            if item is None:
                break
            yield item
        if self._error is not None:
            raise self._error

    @property
    def text(self) -> str:
        """The whole text, once the stream has ended (consumes the stream if need be)."""
        for _ in self:
            pass
        return self.result.text if self.result else ""


class Generator:
    """Generate text with any causal or seq2seq model, on the fastest engine that fits.

    Args:
        model: a loaded model, or anything :func:`quintet.core.models.load` accepts.
        backend: ``"auto"`` (default: the fastest installed engine for the model's kind and
            device, see :mod:`quintet.core.decoding.engines`), ``"transformers"`` (reference, every
            option), ``"ctranslate2"``, ``"onnxruntime-genai"`` or ``"vllm"`` (CUDA only).
            Fast engines convert the model into the store once.
        batch_size: inputs per batch; halved automatically if memory runs out. Above 1 it
            marks batch work, which ``auto`` gives to vLLM on CUDA where it is installed.
        backend_options: passed to a named backend (e.g. ``quantization="float32"`` for
            ctranslate2, ``precision="fp32"`` or ``threads=1`` for onnxruntime-genai,
            ``gpu_memory_utilization=0.5`` for vllm).

    With ``auto``, a request the engine cannot honour (beam search on onnxruntime-genai,
    say, or any stream on vLLM) runs on transformers instead, with one logged line;
    ``backend_choice`` says which engine runs and why, and every result's ``backend`` which
    engine produced it. A named backend refuses such a request instead.

    Example:
        >>> gen = Generator("smollm2-135m-instruct")                      # doctest: +SKIP
        >>> gen.backend_choice.name
        'onnxruntime-genai'
        >>> gen.complete([{"role": "user", "content": "What is 2 + 2?"}]).text
        'The answer to this classic math problem is 4.'
        >>> for delta in gen.stream("Once upon a time", max_new_tokens=20):
        ...     print(delta, end="")
    """

    def __init__(
        self,
        model: Loaded | str,
        backend: str = engines.AUTO,
        *,
        batch_size: int = 16,
        **backend_options,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1 (got {batch_size})")
        self._requested = backend
        self._backend_options = backend_options
        # auto may fall back to the reference engine; a named engine must work as asked.
        self.is_auto = backend == engines.AUTO and not backend_options
        self._reference_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._fallbacks_logged: set[str] = set()
        self.batch_size = batch_size
        # The batch size the last generate() ended with (lower after out-of-memory back-off).
        self.last_batch_size = batch_size
        self._use(model if isinstance(model, Loaded) else load(model))

    def _use(self, loaded: Loaded) -> None:
        """Decode ``loaded`` from now on, on the engine chosen for it."""
        choice = engines.choose(loaded, self._requested, self.batch_size)
        try:
            backend = make_backend(loaded, choice.name, **self._backend_options)
        except (ModelLoadError, ConfigError) as exc:
            if not self.is_auto or choice.name == engines.TRANSFORMERS:
                raise
            log.warning("%s: decoding %s with transformers", exc, loaded.name)
            choice = BackendChoice(engines.TRANSFORMERS, f"fallback: {exc}")
            backend = make_backend(loaded, engines.TRANSFORMERS)
        self.loaded, self.backend_choice, self.backend = loaded, choice, backend
        self._reference: DecodingBackend | None = None

    def refresh(self) -> bool:
        """Follow the model to the weights on disk now; True when they changed.

        Called before each request: a model rebuilt or overwritten in place (the model
        cache notices its changed files, see :func:`quintet.core.models.current`) is loaded
        again and gets new engines, converted from the new weights; the old ones close with
        the old model. An evicted model with unchanged files keeps its weights and builds
        its engines again on use.
        """
        fresh = current(self.loaded)
        if fresh is self.loaded:
            return False
        with self._refresh_lock:  # concurrent requests switch once
            if fresh is not self.loaded and fresh.attachments is not self.loaded.attachments:
                log.info("%s changed on disk: decoding with its new weights", fresh.name)
                self._use(fresh)
        return True

    # Public API --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        config: DecodeConfig | None = None,
        *,
        progress: bool | ProgressCallback | None = None,
        on_text: TextSink | None = None,
        row_limits: Sequence[int] | None = None,
        **overrides,
    ) -> list[GenerationResult]:
        """Generate for every prompt; results come back in input order.

        Args:
            prompts: texts and/or chats (lists of ``{"role", "content"}`` messages).
            config: decoding settings; ``overrides`` change single fields of it.
            progress: True for a progress bar, a ``(done, total)`` callback, or None for a
                bar only when there is more than one batch. It moves as each prompt
                finishes, inside a batch too, where the engine can tell (not beam search,
                not vLLM: there it moves per batch); it may be called from an engine's
                own thread.
            on_text: called with the text so far (cut and stripped as the result's text
                will be) while a single prompt is generated, for a page to show it growing.
                Ignored for several prompts, and for requests that cannot stream (beam
                search, several outputs, log-probabilities) or an engine that cannot.
            row_limits: each prompt's own ``max_new_tokens`` (at most the config's), e.g. a
                cap that follows the prompt's length. A prompt's output then depends on
                the prompt and the settings only, never on the other prompts of its batch:
                the engine runs every batch with the config's ``max_new_tokens`` and each
                row stops at its own limit (beam search, whose hypotheses depend on the
                limit, batches prompts of equal limits together and runs them with it).

        Each result is the best output for its prompt; with ``num_return_sequences > 1``
        the others are in ``result.alternatives``. An empty prompt gives an empty result
        (finish reason ``empty``) without running the model.

        The whole call holds the model's lock (:attr:`Loaded.lock`), so every app sharing
        these weights waits for it, except on an engine that schedules requests itself
        (onnxruntime-genai): there concurrent calls decode together.
        """
        self.refresh()
        config = self._config(config, overrides)
        with self._lock_for(config):
            return self._generate(prompts, config, progress, {}, on_text, row_limits)

    def _lock_for(self, config: DecodeConfig, streaming: bool = False) -> Any:
        """The model's lock, or nothing for an engine that batches concurrent requests
        (only the tokenizer is then locked, briefly)."""
        if getattr(self._backend_for(config, streaming), "concurrent", False):
            return contextlib.nullcontext()
        return self.loaded.lock

    def _generate(
        self,
        prompts: Sequence[Prompt],
        config: DecodeConfig | None,
        progress: bool | ProgressCallback | None,
        overrides: dict,
        on_text: TextSink | None = None,
        row_limits: Sequence[int] | None = None,
    ) -> list[GenerationResult]:
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], dict)):
            raise ConfigError("generate() takes a list of prompts: use complete() for one")
        config = self._config(config, overrides)
        limits = _row_limits(row_limits, len(prompts), config.max_new_tokens)
        encoded: dict[int, list[int]] = {}
        results: list[list[GenerationResult] | None] = [None] * len(prompts)
        for index, prompt in enumerate(prompts):
            validate_prompt(prompt)
            if is_empty(prompt):
                results[index] = [_empty_result()]
                continue
            with self.loaded.lock:  # the tokenizer is shared with every other user
                ids = encode(self.loaded, prompt)
            check_fits(self.loaded, index, ids, config.max_new_tokens)
            encoded[index] = ids

        # Longest first: similar lengths share a batch (little padding), and a batch that
        # runs out of memory does so at the start, not after an hour. Beam search with row
        # limits: equal limits first (a batch runs with one limit, see row_limits).
        beams = config.num_beams > 1
        order = sorted(encoded, key=lambda i: (limits[i] if beams else 0, -len(encoded[i])))
        report = _MonotonicProgress(self._progress(progress, len(order)), len(order))
        if on_text is not None and len(order) == 1 and self._streams_text(config):
            index = order[0]
            results[index] = [self._stream_text(encoded[index], config, on_text)]
            report(1)
            return [_with_alternatives(r) for r in results if r is not None]
        done, position, batch_size = 0, 0, self.batch_size
        while position < len(order):
            batch = order[position : position + batch_size]
            if beams:
                batch = [i for i in batch if limits[i] == limits[batch[0]]]
            rows = _RowCounter(config.num_return_sequences, lambda n, d=done: report(d + n))
            try:
                outputs = self._run_batch(
                    [encoded[i] for i in batch],
                    replace(config, max_new_tokens=limits[batch[0]]) if beams else config,
                    rows.row_done,
                    None if beams else [limits[i] for i in batch],
                )
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                if batch_size == 1:
                    raise OutOfMemoryError(
                        "out of memory generating even one input at a time: lower "
                        "max_new_tokens or num_beams, shorten the input, or use a smaller model"
                    ) from None
                batch_size = max(1, batch_size // 2)
                log.warning("out of memory: retrying with batch size %d", batch_size)
                if self.loaded.device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            for index, output in zip(batch, outputs, strict=True):
                results[index] = output
            position += len(batch)
            done += len(batch)
            report(done)
        self.last_batch_size = batch_size
        return [_with_alternatives(r) for r in results if r is not None]

    def complete(
        self,
        prompt: Prompt,
        config: DecodeConfig | None = None,
        *,
        on_text: TextSink | None = None,
        **overrides,
    ) -> GenerationResult:
        """Generate for one prompt (text or chat); ``on_text`` as in :meth:`generate`."""
        return self.generate([prompt], config, progress=False, on_text=on_text, **overrides)[0]

    def stream(
        self,
        prompt: Prompt,
        config: DecodeConfig | None = None,
        *,
        session: Any = None,
        **overrides,
    ) -> TextStream:
        """Start generating for one prompt and return a :class:`TextStream` of text deltas.

        Stop strings are honoured while streaming: text that could be the start of a stop
        string is held back until it is ruled out, and never shown if it is one. The worker
        thread holds the model's lock while it generates (except on an engine that
        schedules requests itself), so do not hold that lock yourself while consuming the
        stream.

        ``session`` (from :meth:`new_session`) keeps a conversation's KV cache between
        calls: pass the whole conversation each time and only what is new is computed.
        """
        self.refresh()
        config = self._config(config, overrides, streaming=True)
        config.check_streamable()
        stream = TextStream()
        validate_prompt(prompt)
        if is_empty(prompt):
            stream.result = _empty_result()
            stream._queue.put(None)
            return stream
        with self.loaded.lock:  # the tokenizer is shared with every other user of the model
            ids = encode(self.loaded, prompt)
        check_fits(self.loaded, 0, ids, config.max_new_tokens)
        worker = threading.Thread(
            target=self._stream_worker, args=(ids, config, stream, session), daemon=True
        )
        worker.start()
        return stream

    def new_session(self) -> Any:
        """A handle that keeps one conversation's KV cache between :meth:`stream` calls,
        or None when the engine cannot (then every call computes the whole prompt)."""
        make = getattr(self.backend, "new_session", None)
        return make() if make is not None else None

    # Internals ---------------------------------------------------------------------------

    def _config(
        self, config: DecodeConfig | None, overrides: dict, streaming: bool = False
    ) -> DecodeConfig:
        config = DecodeConfig.from_overrides(config, **overrides) if overrides else config
        config = config or DecodeConfig()
        check_output_length(self.loaded, config.max_new_tokens)
        backend = self._backend_for(config, streaming)  # refuse now what no engine can do
        check = getattr(backend, "check", None)
        if check is not None:  # e.g. compile a JSON schema before any output
            check(config)
        return config

    def engine_for(self, config: DecodeConfig, streaming: bool = False) -> str:
        """The name of the engine that would run ``config`` (auto may hand it to
        transformers when the chosen engine cannot honour it, or cannot stream)."""
        return self._backend_for(config, streaming).name

    def _backend_for(self, config: DecodeConfig, streaming: bool = False) -> DecodingBackend:
        """The engine that runs ``config``: the chosen one, or for auto the reference one
        when the chosen engine cannot honour it (logged once per reason)."""
        missing = self.backend.unsupported(config)
        if streaming and not self.backend.can_stream:
            missing = [*missing, "streaming (it returns whole outputs only)"]
        constraint = constraint_name(config)
        if constraint and self.backend.name != engines.ONNX_GENAI:
            raise ConfigError(
                f"{constraint} (constrained output) runs on the onnxruntime-genai engine only, "
                f"for causal models on CPU (pip install 'quintet[fast]'); "
                f"{self.backend.name} cannot constrain {self.loaded.name}'s output"
            )
        if constraint and missing:  # the reference engine cannot constrain either
            raise ConfigError(
                f"{constraint} runs on {self.backend.name}, which cannot do "
                f"{', '.join(missing)}: drop those options"
            )
        if not missing:
            return self.backend
        if not self.is_auto:
            raise ConfigError(
                f"the {self.backend.name} backend cannot do {', '.join(missing)}: "
                "use backend='transformers' (or auto) or drop those options"
            )
        reason = ", ".join(missing)
        if reason not in self._fallbacks_logged:
            self._fallbacks_logged.add(reason)
            log.warning(
                "%s cannot do %s: those requests run on transformers", self.backend.name, reason
            )
        with self._reference_lock:
            if self._reference is None:
                self._reference = make_backend(self.loaded, engines.TRANSFORMERS)
            return self._reference

    def _progress(self, progress: bool | ProgressCallback | None, total: int) -> ProgressCallback:
        if callable(progress):
            return progress
        show = progress if progress is not None else total > self.batch_size
        return progress_callback(show, total, desc="generating", unit="input")

    def _decode(self, ids: Sequence[int]) -> str:
        return self.loaded.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _stop_check(self, stops: StopStrings, cancel: threading.Event | None = None):
        """Per-row check for the backends: a stop string appeared, or the user cancelled."""
        # Decode only the tail: a stop string spans at most a few tokens more than its length.
        tail = max(8, stops.longest + 8)

        def check(row: int, ids: Sequence[int]) -> bool:
            if cancel is not None and cancel.is_set():
                return True
            if not stops or stops.find(self._decode(ids[-tail:])) is None:
                return False
            # A tail decoded alone can differ at its first token (a leading space, half a
            # character): confirm on the whole output before stopping.
            return stops.find(self._decode(ids)) is not None

        return check

    def _run_batch(
        self,
        prompts: list[list[int]],
        config: DecodeConfig,
        on_row_done: RowDone | None = None,
        limits: list[int] | None = None,
    ) -> list[list[GenerationResult]]:
        """One engine run; ``limits``: each row's own max_new_tokens (see row_limits)."""
        stops = StopStrings(config.stop_strings)
        backend = self._backend_for(config)
        started = time.perf_counter()
        check = self._stop_check(stops) if stops else None
        limits = limits or [config.max_new_tokens] * len(prompts)
        # A model that forces its end token makes it the last of max_new_tokens: a row
        # whose own limit is lower keeps one token less, as it would run alone.
        forced = getattr(self.loaded.model.generation_config, "forced_eos_token_id", None)
        keep = [
            limit if limit >= config.max_new_tokens or forced is None else limit - 1
            for limit in limits
        ]
        if keep != [config.max_new_tokens] * len(prompts):
            check = _with_limits(check, keep)
        raw = backend.generate(prompts, config, check, on_row_done=on_row_done)
        ended = time.perf_counter()
        return [
            [
                self._finish(
                    _cut(seq, kept, forced_end=kept < limit),
                    replace(config, max_new_tokens=limit),
                    stops,
                    started,
                    ended,
                    len(prompt),
                    backend.name,
                )  # fmt: skip
                for seq in outputs
            ]
            for prompt, outputs, limit, kept in zip(prompts, raw, limits, keep, strict=True)
        ]

    def _finish(
        self,
        seq: RawSequence,
        config: DecodeConfig,
        stops: StopStrings,
        started: float,
        ended: float,
        prompt_tokens: int,
        backend: str,
    ) -> GenerationResult:
        text = self._decode(seq.token_ids)
        found = stops.find(text) if stops else None
        if found is not None:
            text = text[: found[0]]
        if seq.cancelled:
            reason = "cancelled"
        elif seq.ended_by_eos or found is not None:
            reason = "stop"
        elif seq.hit_length or len(seq.token_ids) >= config.max_new_tokens:
            reason = "length"
        else:
            reason = "stop"
        first = seq.first_token_time
        return GenerationResult(
            text=text.strip(),
            token_ids=list(seq.token_ids),
            finish_reason=reason,
            timings=Timings(
                time_to_first_token_s=(first - started) if first else None,
                total_s=ended - started,
                num_tokens=len(seq.token_ids),
            ),
            prompt_tokens=prompt_tokens,
            token_logprobs=seq.token_logprobs,
            score=seq.score,
            stop_string=found[1] if found else None,
            backend=backend,
        )

    def _streams_text(self, config: DecodeConfig) -> bool:
        """Whether ``generate(on_text=...)`` can show this request's text as it grows on
        the engine that would run it anyway (never a switch of engine just to stream)."""
        if config.num_beams > 1 or config.num_return_sequences > 1 or config.output_logprobs:
            return False
        return self._backend_for(config).can_stream

    def _stream_text(
        self, ids: list[int], config: DecodeConfig, on_text: TextSink
    ) -> GenerationResult:
        """Generate one output in this thread, telling ``on_text`` the text so far."""
        shown = [""]

        def on_delta(delta: str) -> None:
            shown[0] += delta
            on_text(shown[0])

        result = self._run_stream(ids, config, on_delta, None)
        if result.text != shown[0]:
            on_text(result.text)
        return result

    def _run_stream(
        self,
        ids: list[int],
        config: DecodeConfig,
        on_delta: TextSink,
        cancel: threading.Event | None,
        session: Any = None,
    ) -> GenerationResult:
        """Stream one output on the backend, handing ``on_delta`` each new piece of visible
        text; the caller holds the model's lock. The deltas add up to the result's text,
        except after a cancel (the result keeps what was generated; the last piece is not
        sent)."""
        stops = StopStrings(config.stop_strings)
        visible = _VisibleText(stops, self._decode)
        base_check = self._stop_check(stops, cancel)

        def on_token(token: int) -> None:
            delta = visible.add(token)
            if delta:
                on_delta(delta)

        def check(row: int, token_ids: Sequence[int]) -> bool:
            return visible.stopped or base_check(row, token_ids)

        started = time.perf_counter()
        backend = self._backend_for(config, streaming=True)
        if session is not None and backend is self.backend:
            raw = backend.stream(ids, config, on_token, check, session=session)
        else:
            raw = backend.stream(ids, config, on_token, check)
        raw.cancelled = cancel is not None and cancel.is_set() and not visible.stopped
        ended = time.perf_counter()
        result = self._finish(raw, config, stops, started, ended, len(ids), backend.name)
        if len(result.text) > visible.emitted and not raw.cancelled:
            on_delta(result.text[visible.emitted :])
        return result

    def _stream_worker(
        self, ids: list[int], config: DecodeConfig, stream: TextStream, session: Any = None
    ) -> None:
        try:
            with self._lock_for(config, streaming=True):
                stream.result = self._run_stream(
                    ids, config, stream._queue.put, stream._cancel, session
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            stream._error = exc
        finally:
            stream._queue.put(None)


class _VisibleText:
    """The text of a stream as it may be shown so far, token by token.

    Stop strings are matched in the raw text, as in generate(); what is shown is that
    text without leading whitespace, and trailing whitespace, a possible start of a stop
    string and half a multi-byte character are held back until more text follows, so the
    deltas add up to the final result's text.
    """

    def __init__(self, stops: StopStrings, decode: Callable[[Sequence[int]], str]) -> None:
        self.stops = stops
        self.decode = decode
        self.received: list[int] = []
        self.emitted = 0
        self.stopped = False

    def add(self, token: int) -> str:
        """Take one token; returns the new visible text (may be empty)."""
        self.received.append(token)
        raw = self.decode(self.received)
        found = self.stops.find(raw) if self.stops else None
        if found is not None:
            self.stopped = True
            limit = found[0]
        else:
            limit = self.stops.safe_length(raw) if self.stops else len(raw)
            # A trailing U+FFFD is half of a multi-byte character: wait for the rest.
            while limit > 0 and raw[limit - 1] == "\ufffd":
                limit -= 1
        visible = raw[:limit].strip()
        if len(visible) <= self.emitted:
            return ""
        delta = visible[self.emitted :]
        self.emitted = len(visible)
        return delta


class _MonotonicProgress:
    """A ``(done, total)`` callback fed with counts that may arrive twice or out of order
    (per row from an engine, then per batch): it passes on each count once, rising."""

    def __init__(self, report: ProgressCallback, total: int) -> None:
        self.report = report
        self.total = total
        self.reported = -1
        self.lock = threading.Lock()

    def __call__(self, done: int) -> None:
        with self.lock:
            if done <= self.reported:
                return
            self.reported = done
        self.report(done, self.total)


class _RowCounter:
    """Turns an engine's per-output ``on_row_done(prompt_index)`` into the number of
    prompts of the batch whose every output has finished."""

    def __init__(self, outputs_per_prompt: int, on_finished: Callable[[int], None]) -> None:
        self.outputs_per_prompt = outputs_per_prompt
        self.on_finished = on_finished
        self.outputs: dict[int, int] = {}
        self.finished = 0
        self.lock = threading.Lock()

    def row_done(self, prompt_index: int) -> None:
        with self.lock:
            count = self.outputs.get(prompt_index, 0) + 1
            self.outputs[prompt_index] = count
            if count != self.outputs_per_prompt:
                return
            self.finished += 1
            finished = self.finished
        self.on_finished(finished)


def _row_limits(row_limits: Sequence[int] | None, count: int, most: int) -> list[int]:
    """Each prompt's max_new_tokens: its own limit (at most ``most``), or ``most``."""
    if row_limits is None:
        return [most] * count
    limits = list(row_limits)
    if len(limits) != count:
        raise ConfigError(f"row_limits has {len(limits)} values for {count} prompts")
    if any(not isinstance(limit, int) or limit < 1 for limit in limits):
        raise ConfigError("row_limits must be whole numbers of at least 1")
    return [min(limit, most) for limit in limits]


def _with_limits(check: StopCheck | None, limits: list[int]) -> StopCheck:
    """``check`` that also stops row ``r`` once it holds ``limits[r]`` tokens."""

    def limited(row: int, ids: Sequence[int]) -> bool:
        return len(ids) >= limits[row] or (check is not None and check(row, ids))

    return limited


def _cut(seq: RawSequence, limit: int, forced_end: bool = False) -> RawSequence:
    """``seq`` without tokens past ``limit`` (an engine may run a step past a stop), and
    not marked stopped when its limit stopped it: that is a length finish (also where
    the model would have forced its end token after ``limit`` tokens: ``forced_end``)."""
    if len(seq.token_ids) < limit or (forced_end and seq.ended_by_eos):
        return seq
    logprobs = seq.token_logprobs[:limit] if seq.token_logprobs is not None else None
    extra = {k: v for k, v in seq.extra.items() if k != "stopped_by_check"}
    return replace(
        seq,
        token_ids=seq.token_ids[:limit],
        token_logprobs=logprobs,
        extra=extra,
        hit_length=True,
    )


def _empty_result() -> GenerationResult:
    return GenerationResult(
        text="",
        token_ids=[],
        finish_reason="empty",
        timings=Timings(time_to_first_token_s=None, total_s=0.0, num_tokens=0),
    )


def _with_alternatives(outputs: list[GenerationResult]) -> GenerationResult:
    best, *others = outputs
    return replace(best, alternatives=tuple(others)) if others else best
