"""Continuous batching for onnxruntime-genai: one scheduler per loaded causal model.

Every user of a model decoded by the ONNX Runtime GenAI backend (generators, chat
sessions, the server's requests) submits *jobs* here instead of running an engine of its
own. One background thread drives onnxruntime-genai's ``og.Engine``: each call of
``Engine.run`` advances every request of a batch by one step, each with its own decoding
settings (``TurnOptions``), and each request leaves the batch as soon as it is done.

On CPU this build of the engine batches *statically*: its dynamic batching needs a paged
KV cache, which the model builder only makes for CUDA and WebGPU. A static batch takes new
requests only while it is empty, so a request arriving mid-batch would wait for the
batch's longest member. The scheduler therefore keeps several engines (*lanes*, four by
default, of at most four requests each: the most this engine batches on CPU) over the same
weights: a request that arrives while one lane decodes starts on
another lane at the next step, and the two batches share the CPU step by step. When every
lane is running, a young batch with free slots *re-forms* (recompute, as vLLM preempts):
its requests end their engine turns and start again with their prompt plus what they have
generated, next to the waiting ones. The recomputation is bounded: only while the batch's
requests have generated at most ``regroup_tokens`` tokens, and a batch re-forms at most
once per ``gather_s`` (the oldest waiting request must have waited that long), so a burst
of arrivals joins in one or a few re-formings. Jobs beyond the free slots wait in arrival
order.

The driver thread only talks to the engines and hands token ids to each job's queue; the
jobs' owners turn them into text, check stop strings and cancel in their own threads, so
one slow consumer never holds up the batch.

Many requests with the same settings at once (a burst of greedy API calls, an evaluation
sent as separate requests) decode as one *wide batch* instead: one padded ``og.Generator``
over all of them, which this engine batches without the limit of four and sizes to the
requests' own length. On this CPU 16 greedy requests of 48 tokens decoded at 259 tokens/s
that way against 151 on four lanes of four (32: 308). A wide batch takes no one once it has
started; its rows leave as they end. Requests wait up to ``gather_s`` for others like them
while the scheduler is busy (a lone request on an idle scheduler never waits), and requests
with the settings of a running wide batch wait for it to end, or until as many wait as it
still decodes, and then form the next one: under load the requests stay in a few wide
batches instead of trickling onto lanes that slow the wide one down (32 closed-loop clients:
290 tokens/s against 204).

Requests without a session keep their KV cache too, in a small pool of finished requests
(``prefix_pool``): a later request whose prompt extends one of them exactly (the next
message of a conversation sent as separate HTTP requests) sends the engine only the new
tokens, as llama.cpp's server does with ``cache_prompt``. Idle requests hold no slot the
engine needs: it evicts them when a batch wants their room.

A job may belong to a :class:`Session` (a chat): its next turn appends only the new tokens
to the request that holds the earlier turns in the engine's KV cache, or rewinds to the
last turn boundary the new prompt shares. When the engine has evicted the session (its
slot went to other requests), or its lane is busy, the turn starts a fresh request with
the whole prompt.

Lifetime: the scheduler hangs on the :class:`~quintet.core.models.Loaded` it serves
(``Loaded.attachment``); the model cache closes it when the model is dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnxruntime_genai as og

from quintet.core.config import DecodeConfig
from quintet.core.decoding import guidance
from quintet.core.decoding.rows import Row
from quintet.core.errors import ConfigError, ModelLoadError, QuintetError

log = logging.getLogger(__name__)

# og.GeneratorParams search options for (config, rows, longest prompt).
SearchOptions = Callable[[DecodeConfig, int, int], dict[str, Any]]

# The engine reports events as bit flags (the pybind enum has no operator for them).
_TOKEN = int(og.EngineEventFlags.TOKEN)
_FINISHED = int(og.EngineEventFlags.TURN_FINISHED)
_FAILED = int(og.EngineEventFlags.FAILED)


@dataclass(frozen=True)
class SchedulerSettings:
    """How many requests decode together and how long one may grow.

    Attributes:
        max_batch_size: requests decoded in one step of one lane; more wait their turn.
            Chat sessions keep their KV cache in these slots between turns while no one
            else needs them. This build's CPU engine decodes at most 4 requests per static
            batch whatever it is configured with (measured: with 8 configured, and reported
            by ``configured_max_batch_size``, the other 4 waited inside the engine for the
            first 4 to end), so more requests at once need more lanes, not bigger batches.
        max_session_tokens: prompt plus generated tokens one request (a chat, across its
            turns) may reach. The engine reserves this much KV cache per slot, so it bounds
            memory (about 46 KB a token for SmolLM2-135M) and step time: reserving the
            model's whole context (8192) halved one request's speed on this engine.
        lanes: engines over the shared weights, stepped in turn. This build's CPU engine
            batches statically: a request joins a running batch only while it is empty, so
            with one engine a late request waits for the whole batch to end. Four lanes of
            four decode 16 requests at once: 16 requests at once got their first tokens
            within 2.1 s instead of 4.8 s with two lanes of "8", in the same total time.
        gather_s: how long a lane waits for more requests before its batch starts, while
            another lane is decoding (a lone request on an idle scheduler never waits), and
            how long a request waits before a running batch re-forms to take it.
        regroup_tokens: a running batch with free slots re-forms for waiting requests
            while its requests have generated at most this many tokens (each is recomputed,
            prompt and output, in the new batch); 0 never re-forms.
        prefix_pool: finished requests whose KV cache is kept for a follow-up request that
            extends them; 0 keeps none.
        wide_batch_size: the most requests of one wide batch (see the module docstring):
            more than ``max_batch_size`` waiting requests with the same settings form one;
            0 never does.
        threads: CPU threads of the engine's session.
    """

    max_batch_size: int = 4
    max_session_tokens: int = 2048
    lanes: int = 4
    gather_s: float = 0.1
    regroup_tokens: int = 32
    prefix_pool: int = 8
    wide_batch_size: int = 32
    threads: int = 2

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1 (got {self.max_batch_size})")
        if self.max_session_tokens < 2:
            raise ConfigError(
                f"max_session_tokens must be at least 2 (got {self.max_session_tokens})"
            )
        if self.gather_s < 0:
            raise ConfigError(f"gather_s must be >= 0 (got {self.gather_s})")
        if self.lanes < 1:
            raise ConfigError(f"lanes must be at least 1 (got {self.lanes})")
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1 (got {self.threads})")
        if self.regroup_tokens < 0 or self.prefix_pool < 0 or self.wide_batch_size < 0:
            raise ConfigError("regroup_tokens, prefix_pool and wide_batch_size must be >= 0")


def turn_options(request: Any, config: DecodeConfig, copy: int = 0) -> Any:
    """The engine's ``TurnOptions`` for one output decoded with ``config``.

    The one place a :class:`DecodeConfig` becomes per-request engine settings: sampling,
    limits and constrained output (``set_guidance``, the grammar of :mod:`.guidance`).
    ``copy`` numbers the outputs of one prompt (``num_return_sequences``): a seeded request
    seeds its copies ``seed + copy`` so they differ yet repeat exactly.
    """
    options = og.TurnOptions(request)
    options.set_max_generated_tokens(config.max_new_tokens)
    if config.min_new_tokens:
        options.set_min_generated_tokens(config.min_new_tokens)
    options.set_do_sample(config.do_sample)
    if config.do_sample:
        options.set_temperature(config.temperature)
        options.set_top_k(config.top_k)  # 0 disables top-k, as in DecodeConfig
        options.set_top_p(config.top_p)
        if config.seed is not None:  # (with dynamic batching only: see OnnxGenAIBackend)
            options.set_seed(config.seed + copy)
    if config.repetition_penalty != 1.0:
        options.set_repetition_penalty(config.repetition_penalty)
    if config.no_repeat_ngram_size:
        options.set_no_repeat_ngram_size(config.no_repeat_ngram_size)
    constraint = guidance.guidance(config)
    if constraint is not None:
        options.set_guidance(*constraint)
    # Stop strings stay with the caller's check: this engine takes them only with dynamic
    # batching, which needs a paged KV cache that the builder's graphs do not have.
    return options


@dataclass
class JobEnd:
    """How a job ended: the engine's finish reason and the prompt tokens it reused."""

    reason: str  # eos, stop_string, length, cancelled, failed
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0


class Session:
    """A multi-turn conversation whose KV cache stays in the engine between turns.

    Pass the same session to each turn's :meth:`Scheduler.submit` with the *whole* prompt
    (history included): the scheduler sends the engine only what the cache lacks.
    ``reused_tokens`` says how many prompt tokens the last turn took from the cache.
    Only the scheduler's thread touches the engine objects; :meth:`close` is safe anywhere.
    """

    def __init__(self) -> None:
        self.request: Any = None
        self.lane = 0  # the engine that holds its cache
        self.tokens: list[int] = []  # what the engine's sequence holds
        self.turns: list[tuple[int, int]] = []  # (turn id, tokens before it began)
        self.reused_tokens = 0
        self.closed = False
        self.pooled = False  # the scheduler's own, for prefix reuse (see prefix_pool)
        self._scheduler: Scheduler | None = None

    def close(self) -> None:
        """Free the session's cache (its next turn, if any, starts over)."""
        self.closed = True
        if self._scheduler is not None:
            self._scheduler._close_session(self)


@dataclass(eq=False)
class Job:
    """One output being generated. Its queue receives ``(row, "token", id)`` per token and
    one final ``(row, "end", JobEnd)`` or ``(row, "error", exception)``."""

    prompt: list[int]
    config: DecodeConfig
    sink: queue.Queue
    row: int = 0
    copy: int = 0
    session: Session | None = None
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    done: bool = False
    output: Row = field(default_factory=Row)
    turn_id: int = 0
    request: Any = None
    lane: int = 0
    recomputed: int = 0  # generated tokens fed back as prompt when its batch re-formed
    _scheduler: Scheduler | None = None

    @property
    def generated(self) -> list[int]:
        """The tokens generated so far."""
        return self.output.ids

    def send(self, token: int) -> None:
        """Hand one generated token to the job's owner."""
        self.sink.put((self.row, "token", token))

    def cancel(self) -> None:
        """Stop this job now: a waiting job leaves the queue, a running one its slot."""
        if self._scheduler is not None and not self.done:
            self.cancelled = True
            self._scheduler._wake()


class _Lane:
    """One ``og.Engine`` over the shared model: a static batch that new requests join only
    while it is empty (see the module docstring)."""

    def __init__(self, model: Any, capacity: int) -> None:
        self.engine = og.Engine(model)
        self.buffer = self.engine.create_event_buffer(max(64, 4 * capacity))
        self.jobs: dict[int, Job] = {}  # id(og.Request) -> job
        self.open = True  # no step has run since it last drained: it takes new requests
        self.first_at = 0.0  # when its first request of this batch arrived


class _WideBatch:
    """Requests with the same settings decoded as one right-padded ``og.Generator`` batch
    (see the module docstring). Only the scheduler's thread touches it."""

    def __init__(
        self, model: Any, jobs: list[Job], pad_id: int, options: SearchOptions, key: tuple
    ) -> None:
        self.jobs = jobs
        self.key = key
        self.active = set(range(len(jobs)))
        self.steps = 0
        longest = max(len(job.prompt) for job in jobs)
        config = replace(jobs[0].config, max_new_tokens=max(j.config.max_new_tokens for j in jobs))
        params = og.GeneratorParams(model)
        params.set_search_options(**options(config, len(jobs), longest))
        self.generator = og.Generator(model, params)
        padded = [job.prompt + [pad_id] * (longest - len(job.prompt)) for job in jobs]
        self.generator.append_tokens(np.asarray(padded, dtype=np.int32))

    def step(self, end_ids: frozenset[int]) -> list[tuple[Job, str]]:
        """One token for every row still going; the jobs that ended, with their reason."""
        self.generator.generate_next_token()
        self.steps += 1
        tokens = self.generator.get_next_tokens()
        ended: dict[int, str] = {}
        for row in sorted(self.active):
            job = self.jobs[row]
            output = job.output
            if output.take(int(tokens[row]), end_ids, job.config.max_new_tokens, on_token=job.send):
                ended[row] = "eos" if output.ended else "length"
        if self.generator.is_done():  # every row at its end, or the batch at its length
            ended.update({row: "length" for row in self.active if row not in ended})
        self.active -= set(ended)
        return [(self.jobs[row], reason) for row, reason in ended.items()]

    def past_half(self) -> bool:
        """Whether it has run at least as many steps as its longest row may still take."""
        left = max((self.jobs[row].config.max_new_tokens for row in self.active), default=0)
        return left - self.steps <= self.steps

    def drop(self, job: Job) -> None:
        """Stop decoding ``job``'s row (its tokens are no longer read)."""
        self.active.discard(self.jobs.index(job))


class Scheduler:
    """Runs many generation jobs on one onnxruntime-genai model, batched per step.

    Args:
        model_path: the conversion's folder (with ``genai_config.json``).
        settings: batch size, lanes, session length, threads.
        overlay: extra ``genai_config`` settings (pad and end tokens).
        end_ids: the tokens that end an output (not passed on as tokens).
        vocab_size: the model's vocabulary (ids outside it are refused).
        provider: ``cpu`` or ``cuda``.
        search_options: ``og.GeneratorParams`` search options for a config, a number of
            rows and the longest prompt (for wide batches); None: no wide batches.
    """

    def __init__(
        self,
        model_path: str,
        settings: SchedulerSettings,
        overlay: dict[str, Any],
        end_ids: Sequence[int],
        vocab_size: int,
        provider: str = "cpu",
        search_options: SearchOptions | None = None,
    ) -> None:
        self.settings = settings
        self._search_options = search_options
        self._pad_id = int(overlay.get("model", {}).get("pad_token_id", vocab_size - 1))
        self.end_ids = frozenset(end_ids)
        self.vocab_size = vocab_size
        config = og.Config(model_path)
        config.clear_providers()
        if provider != "cpu":
            config.append_provider(provider)
        session = {"intra_op_num_threads": settings.threads, "inter_op_num_threads": 1}
        merged = json.loads(json.dumps(overlay))
        merged.setdefault("model", {}).setdefault("decoder", {})["session_options"] = session
        merged["engine"] = {"static_batching": {"max_batch_size": settings.max_batch_size}}
        merged["search"] = {"max_length": settings.max_session_tokens}
        config.overlay(json.dumps(merged))
        self._model = og.Model(config)
        self._lanes: list[_Lane] = []
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._sessions_to_close: list[Session] = []
        self._pool: deque[Session] = deque()  # idle pooled sessions, oldest first
        self._wides: list[_WideBatch] = []
        self._wide_ended = 0.0  # when the last wide batch ended
        self._holds = 0  # callers inside hold(): no job starts meanwhile
        self._closed = False
        # Counters for /metrics: engine steps run and requests decoded in them, batches
        # re-formed, and prompt tokens taken from a kept KV cache instead of recomputed.
        self.steps = 0
        self.step_requests = 0
        self.regroups = 0
        self.reused_prompt_tokens = 0
        self.wide_batches = 0
        # Engines only answer the thread that made them: the driver makes them.
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._drive, name="quintet-scheduler", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    # Public API --------------------------------------------------------------------------

    def submit(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        sink: queue.Queue,
        *,
        row: int = 0,
        copy: int = 0,
        session: Session | None = None,
    ) -> Job:
        """Queue one output for ``prompt`` (token ids); events arrive on ``sink``.

        Raises:
            ConfigError: the prompt holds ids outside the vocabulary, or with its output it
                cannot fit in ``max_session_tokens`` (a bad id would fail the whole batch).
        """
        ids = [int(t) for t in prompt]
        if not ids:
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise ConfigError(
                f"the prompt holds token ids outside the vocabulary (0-{self.vocab_size - 1})"
            )
        if not self.fits(len(ids), config.max_new_tokens):
            raise ConfigError(
                f"{len(ids)} prompt tokens plus max_new_tokens={config.max_new_tokens} exceed "
                f"the scheduler's max_session_tokens ({self.settings.max_session_tokens})"
            )
        job = Job(ids, config, sink, row=row, copy=copy, session=session, _scheduler=self)
        with self._cond:
            if self._closed:
                raise QuintetError("the model's scheduler was closed (the model was unloaded)")
            if session is None and self.settings.prefix_pool:
                job.session = session = self._pooled_session(ids)
            if session is not None:
                session._scheduler = self
            self._waiting.append(job)
            self._cond.notify()
        return job

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Start no waiting job until the block ends (running ones go on): jobs submitted
        inside it arrive together, as the rows of one call should (a driver that woke
        between two submissions would start the first alone)."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify()

    def _pooled_session(self, prompt: list[int]) -> Session:
        """The kept request whose tokens ``prompt`` extends the furthest, taken out of the
        pool, or a new pooled session (called with the lock held)."""
        extended = [
            session
            for session in self._pool
            if len(session.tokens) < len(prompt) and prompt[: len(session.tokens)] == session.tokens
        ]
        if extended:
            best = max(extended, key=lambda session: len(session.tokens))
            self._pool.remove(best)
            return best
        session = Session()
        session.pooled = True
        return session

    def fits(self, prompt_tokens: int, max_new_tokens: int) -> bool:
        """Whether a request this long can run here (else decode it another way)."""
        return prompt_tokens + max_new_tokens <= self.settings.max_session_tokens

    def stats(self) -> dict[str, float]:
        """Running and waiting jobs, slots, and mean requests per engine step so far."""
        with self._cond:
            running = sum(len(lane.jobs) for lane in self._lanes)
            running += sum(len(wide.active) for wide in self._wides)
            waiting = len(self._waiting)
        return {
            "running": running,
            "waiting": waiting,
            "max_batch_size": self.settings.max_batch_size,
            "lanes": self.settings.lanes,
            "steps": self.steps,
            "mean_batch": self.step_requests / self.steps if self.steps else 0.0,
            "regroups": self.regroups,
            "reused_prompt_tokens": self.reused_prompt_tokens,
            "wide_batches": self.wide_batches,
        }

    def close(self) -> None:
        """Stop the driver thread, fail what is still queued and drop the engines."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    # Driver ------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _close_session(self, session: Session) -> None:
        with self._cond:
            self._sessions_to_close.append(session)
            self._cond.notify()

    def _busy(self) -> bool:
        return any(lane.jobs for lane in self._lanes) or bool(self._wides)

    def _drive(self) -> None:
        try:
            capacity = self.settings.max_batch_size
            self._lanes = [_Lane(self._model, capacity) for _ in range(self.settings.lanes)]
        except RuntimeError as exc:
            self._start_error = ModelLoadError(f"onnxruntime-genai cannot start its engine: {exc}")
            self._closed = True
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                with self._cond:
                    while not (
                        self._closed
                        or (self._waiting and not self._holds)
                        or self._busy()
                        or self._sessions_to_close
                    ):
                        self._cond.wait()
                    if self._closed:
                        break
                    closing, self._sessions_to_close = self._sessions_to_close, []
                    admitting = not self._holds
                for session in closing:
                    self._release_session(session)
                self._reap_cancelled()
                if admitting:
                    self._admit()
                    if self._regroup():
                        self._admit()
                pause = self._step_lanes()
                if pause is not None:
                    with self._cond:
                        self._cond.wait(pause)
        except Exception:  # a bug here: say so, then fail every job rather than hang them
            log.exception("the onnxruntime-genai scheduler stopped")
            raise
        finally:
            self._shutdown()

    def _step_lanes(self) -> float | None:
        """One step of every lane that may run; the seconds to wait when none could."""
        now = time.perf_counter()
        stepped, pause = False, None
        for index, lane in enumerate(self._lanes):
            if not lane.jobs:
                continue
            gathering = now - lane.first_at
            # A batch cannot take requests once it has started: while another lane keeps
            # the CPU busy, give this one a moment to fill up.
            filling = lane.open and len(lane.jobs) < self.settings.max_batch_size
            if filling and gathering < self.settings.gather_s and self._others_busy(lane):
                left = self.settings.gather_s - gathering
                pause = left if pause is None else min(pause, left)
                continue
            self._step(index)
            stepped = True
        for wide in list(self._wides):
            self._step_wide(wide)
            stepped = True
        if stepped:
            return None
        gathering = self._wide_ended + self.settings.gather_s - now  # see _held
        if self._waiting and gathering > 0:
            pause = gathering if pause is None else min(pause, gathering)
        return pause

    def _step_wide(self, wide: _WideBatch) -> None:
        self.steps += 1
        self.step_requests += len(wide.active)
        try:
            ended = wide.step(self.end_ids)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ended = []
            for row in sorted(wide.active):
                self._finish(wide.jobs[row], error=QuintetError(f"generation failed: {first}"))
            wide.active.clear()
        for job, reason in ended:
            self._finish(job, JobEnd(reason, len(job.prompt)))
        if not wide.active:
            self._retire(wide)

    def _retire(self, wide: _WideBatch) -> None:
        with self._cond:
            self._wides.remove(wide)
            self._wide_ended = time.perf_counter()

    def _others_busy(self, lane: _Lane) -> bool:
        return any(other.jobs and not other.open for other in self._lanes if other is not lane)

    def _reap_cancelled(self) -> None:
        with self._cond:
            gone = [job for job in self._waiting if job.cancelled]
            for job in gone:
                self._waiting.remove(job)
            running = [job for lane in self._lanes for job in lane.jobs.values() if job.cancelled]
        for job in gone:
            self._finish(job, JobEnd("cancelled", len(job.prompt)))
        for wide in list(self._wides):
            for row in sorted(wide.active):
                job = wide.jobs[row]
                if job.cancelled:
                    wide.drop(job)
                    self._finish(job, JobEnd("cancelled", len(job.prompt)))
            if not wide.active:
                self._retire(wide)
        for job in running:
            try:
                job.request.cancel_turn(job.turn_id)
            except RuntimeError as exc:  # already ended in the engine: nothing to free
                log.debug("cancel_turn: %s", exc)
            self._end_running(job, JobEnd("cancelled", len(job.prompt)))

    def _regroup(self) -> bool:
        """Re-form a running batch that has room for the waiting jobs (see the module
        docstring); whether one did."""
        with self._cond:
            if not self._waiting or self.settings.regroup_tokens == 0:
                return False
            waited = time.perf_counter() - self._waiting[0].submitted
        if waited < self.settings.gather_s:
            return False  # requests that arrive together re-form a batch once
        capacity = self.settings.max_batch_size
        candidates = [
            index
            for index, lane in enumerate(self._lanes)
            if lane.jobs
            and not lane.open
            and len(lane.jobs) < capacity
            and all(self._regroupable(job) for job in lane.jobs.values())
        ]
        if not candidates:
            return False
        index = min(candidates, key=lambda i: len(self._lanes[i].jobs))
        lane = self._lanes[index]
        with self._cond:
            jobs = sorted(lane.jobs.values(), key=lambda job: job.submitted)
            lane.jobs.clear()
            lane.open = True
            lane.first_at = jobs[0].submitted  # it has gathered long enough: step at once
        for job in jobs:
            with contextlib.suppress(RuntimeError):
                job.request.cancel_turn(job.turn_id)
            with contextlib.suppress(RuntimeError):
                job.request.close()
            if job.session is not None:
                job.session.request = None
                job.session.tokens, job.session.turns = [], []
            job.request = None
        self.regroups += 1
        for job in jobs:
            try:
                self._rebegin(job, index)
            except (RuntimeError, ValueError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._finish(job, error=QuintetError(f"generation failed: {first}"))
        return True

    def _regroupable(self, job: Job) -> bool:
        """Whether re-forming ``job``'s batch pays: it has generated little (cheap to
        recompute), is far from done, and carries no grammar (a restarted turn would lose
        the grammar's state)."""
        generated = len(job.generated)
        return (
            not job.cancelled
            and generated <= self.settings.regroup_tokens
            and job.config.max_new_tokens - generated >= 8
            and not guidance.is_constrained(job.config)
        )

    def _rebegin(self, job: Job, lane_index: int) -> None:
        """Start ``job`` again on ``lane_index``: its prompt and what it generated so far as
        the new prompt, for the tokens it has left."""
        lane = self._lanes[lane_index]
        done = len(job.generated)
        config = replace(
            job.config,
            max_new_tokens=job.config.max_new_tokens - done,
            min_new_tokens=max(0, job.config.min_new_tokens - done),
        )
        request = lane.engine.create_request()
        tokens = job.prompt + job.generated
        job.turn_id = request.begin_turn(
            np.asarray(tokens, dtype=np.int32), turn_options(request, config, job.copy)
        )
        job.request, job.lane, job.recomputed = request, lane_index, done
        if job.session is not None:
            job.session.request = request
            job.session.lane = lane_index
            job.session.tokens = list(tokens)
            job.session.turns = [(job.turn_id, 0)]
        with self._cond:
            lane.jobs[id(request)] = job

    def _lane_for(self, job: Job) -> int | None:
        """An open lane with a free slot: the session's own when it is open, else the one
        already filling (requests that arrive together decode together)."""
        capacity = self.settings.max_batch_size
        free = [i for i, lane in enumerate(self._lanes) if lane.open and len(lane.jobs) < capacity]
        if not free:
            return None
        session = job.session
        if session is not None and session.lane in free and session.request is not None:
            return session.lane
        return max(free, key=lambda i: len(self._lanes[i].jobs))

    def _admit(self) -> None:
        """Start a wide batch of the waiting jobs that can share one, then waiting jobs on
        open lanes, in arrival order (a job that could join a wide batch waits for others
        like it for up to ``gather_s`` while the scheduler is busy)."""
        self._form_wide()
        with self._cond:
            # An idle scheduler starts what waits at once when it fits one lane: the jobs
            # that arrived together start together, none held back by the first one's start.
            idle = not self._busy() and len(self._waiting) <= self.settings.max_batch_size
        while True:
            with self._cond:
                now = time.perf_counter()
                busy = self._busy() and not idle
                job = next((job for job in self._waiting if not self._held(job, now, busy)), None)
                if job is None:
                    return
                lane = self._lane_for(job)
                if lane is None:
                    return
                self._waiting.remove(job)
            try:
                self._begin(job, lane)
            except (RuntimeError, ValueError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                rejected = ConfigError(f"onnxruntime-genai rejected the request: {first}")
                self._finish(job, error=rejected)

    def _held(self, job: Job, now: float, busy: bool) -> bool:
        """Whether a waiting job stays back from the lanes for a wide batch: for ``gather_s``
        while the scheduler is busy or a wide batch has just ended (its clients come back
        with their next requests), and while a wide batch with its settings runs."""
        key = self._wide_key(job)
        if key is None:
            return False
        gather = self.settings.gather_s
        if (busy and now - job.submitted < gather) or now - self._wide_ended < gather:
            return True
        return self._following(key)

    def _following(self, key: tuple) -> bool:
        """Whether jobs with these settings wait for the wide batch that runs them to end
        (and form the next one together).

        Starting them on lanes instead cost throughput under load: small batches next to
        the wide one, stepped in turn, left 32 closed-loop clients at 204 tokens/s against
        290 when they waited (server_load, 32 clients x 5 requests, same machine and run).
        The wait is bounded: in a batch's first half (by its longest row's limit) as many
        waiting as it still decodes start a second one; 265-283 tokens/s if they always did.
        """
        wides = [wide for wide in self._wides if wide.key == key]
        if not wides:
            return False
        running = sum(len(wide.active) for wide in wides)
        waiting = sum(1 for job in self._waiting if self._wide_key(job) == key)
        return waiting < running or all(wide.past_half() for wide in wides)

    def _wide_key(self, job: Job) -> tuple | None:
        """What a job must share with others to decode in one wide batch (None: it cannot:
        a grammar, a minimum length, a seed, a kept KV cache to continue, the pad id)."""
        if not self.settings.wide_batch_size or self._search_options is None:
            return None
        config, session = job.config, job.session
        if (
            job.cancelled
            or guidance.is_constrained(config)
            or config.min_new_tokens
            or config.lookup
            or (config.do_sample and config.seed is not None)
            or (session is not None and not (session.pooled and session.request is None))
            or self._pad_id in job.prompt
        ):
            return None
        if not config.do_sample:
            return (False, config.repetition_penalty, config.no_repeat_ngram_size)
        sampling = (config.temperature, config.top_k, config.top_p)
        return (True, *sampling, config.repetition_penalty, config.no_repeat_ngram_size)

    def _form_wide(self) -> None:
        """Start one wide batch when more jobs with the same settings wait than a lane
        holds, and the oldest of them has gathered others for ``gather_s`` (or it is full)."""
        with self._cond:
            groups: dict[tuple, list[Job]] = {}
            for job in self._waiting:
                key = self._wide_key(job)
                if key is not None:
                    groups.setdefault(key, []).append(job)
            key, chosen = max(groups.items(), key=lambda item: len(item[1]), default=((), []))
            full = len(chosen) >= self.settings.wide_batch_size
            # The clients of its last rows come back just after a wide batch ends: gather
            # them too, or they would wait a whole batch for the next one.
            since = max(chosen[0].submitted, self._wide_ended) if chosen else 0.0
            if len(chosen) <= self.settings.max_batch_size or not (
                full or time.perf_counter() - since >= self.settings.gather_s
            ):
                return
            if not full and self._following(key):
                return
            chosen = chosen[: self.settings.wide_batch_size]
            for job in chosen:
                self._waiting.remove(job)
        for job in chosen:
            job.session = None  # a fresh pooled session: nothing of it to keep
        assert self._search_options is not None  # _wide_key said so
        try:
            wide = _WideBatch(self._model, chosen, self._pad_id, self._search_options, key)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            for job in chosen:
                self._finish(job, error=ConfigError(f"onnxruntime-genai rejected it: {first}"))
            return
        self.wide_batches += 1
        with self._cond:
            self._wides.append(wide)

    def _begin(self, job: Job, lane_index: int) -> None:
        lane = self._lanes[lane_index]
        session = job.session
        if session is not None and session.request is not None and session.lane != lane_index:
            self._forget(session)  # its cache is in another engine, busy now: start over
        if session is not None and not session.closed:
            request, new_tokens = self._continue(session, job.prompt, lane)
        else:
            request, new_tokens = lane.engine.create_request(), job.prompt
        options = turn_options(request, job.config, job.copy)
        try:
            job.turn_id = request.begin_turn(np.asarray(new_tokens, dtype=np.int32), options)
        except RuntimeError:
            if session is None or request is not session.request or not session.tokens:
                raise
            # The engine evicted the session's cache: start over with the whole prompt.
            self._forget(session)
            request, new_tokens = lane.engine.create_request(), job.prompt
            options = turn_options(request, job.config, job.copy)
            job.turn_id = request.begin_turn(np.asarray(new_tokens, dtype=np.int32), options)
        job.request = request
        job.lane = lane_index
        if session is not None:
            before = len(job.prompt) - len(new_tokens)
            self.reused_prompt_tokens += before
            session.request = request
            session.lane = lane_index
            session.reused_tokens = before
            session.tokens = list(job.prompt)
            session.turns.append((job.turn_id, before))
        with self._cond:
            if not lane.jobs:
                # Counted from its arrival: a job held back for a wide batch has gathered.
                lane.first_at = job.submitted
            lane.jobs[id(request)] = job

    def _continue(self, session: Session, prompt: list[int], lane: _Lane) -> tuple[Any, list[int]]:
        """The session's request and the part of ``prompt`` its cache lacks."""
        if session.request is None:
            return lane.engine.create_request(), prompt
        held = session.tokens
        if len(held) < len(prompt) and prompt[: len(held)] == held:
            return session.request, prompt[len(held) :]
        # An edit, undo or retry (or a reply re-tokenized differently): rewind to the last
        # turn boundary the new prompt still shares.
        while session.turns:
            turn_id, before = session.turns.pop()
            if before < len(prompt) and prompt[:before] == held[:before]:
                try:
                    session.request.rewind_to_start_of_turn(turn_id)
                except RuntimeError:  # evicted: nothing left to rewind
                    break
                session.tokens = held[:before]
                return session.request, prompt[before:]
        self._forget(session)
        return lane.engine.create_request(), prompt

    def _forget(self, session: Session) -> None:
        if session.request is not None:
            try:
                session.request.close()
            except RuntimeError as exc:
                log.debug("closing a session request: %s", exc)
        session.request = None
        session.tokens = []
        session.turns = []

    def _release_session(self, session: Session) -> None:
        if session.request is not None and not any(
            id(session.request) in lane.jobs for lane in self._lanes
        ):
            self._forget(session)

    def _step(self, index: int) -> None:
        lane = self._lanes[index]
        lane.open = False
        self.steps += 1
        self.step_requests += len(lane.jobs)
        try:
            events = lane.engine.run(lane.buffer)
        except RuntimeError as exc:
            self._restart(index, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        unhealthy = False
        for event in events:
            job = lane.jobs.get(id(event.request))
            if job is None or job.turn_id != event.turn_id:
                continue
            flags = int(event.flags)
            finish = event.finish_reason
            if (
                flags & _TOKEN
                and event.token is not None
                and not (finish == og.FinishReason.EOS and int(event.token) in self.end_ids)
            ):
                token = int(event.token)
                job.generated.append(token)  # the engine itself ends it (end, length)
                job.send(token)
            if flags & _FAILED or finish == og.FinishReason.FAILED:
                code = event.error_code.name
                unhealthy = unhealthy or code in _ENGINE_FAILURES
                self._end_running(job, error=QuintetError(f"generation failed ({code})"))
            elif flags & _FINISHED:
                usage = event.usage
                end = JobEnd(
                    _REASONS.get(finish.name, "stop"),
                    int(usage.prompt_tokens) - job.recomputed if usage else 0,
                    int(usage.cached_prompt_tokens) if usage else 0,
                )
                if job.session is not None:
                    # The engine's sequence holds the end token too, though the event does
                    # not say which: with several end tokens the next turn starts over.
                    job.session.tokens = job.prompt + job.generated
                    if end.reason == "eos":
                        only = sorted(self.end_ids) if len(self.end_ids) == 1 else [-1]
                        job.session.tokens += only
                self._end_running(job, end)
        if unhealthy:
            self._restart(index, "the engine failed a step")

    def _restart(self, index: int, reason: str) -> None:
        """Fail what a lane's engine was running and give the lane a fresh engine: after a
        failed step onnxruntime-genai refuses every further call."""
        log.error("onnxruntime-genai engine step failed: %s", reason)
        lane = self._lanes[index]
        for job in list(lane.jobs.values()):
            if job.session is not None:
                job.session.request = None
                job.session.tokens, job.session.turns = [], []
            job.request = None
            self._finish(job, error=QuintetError(f"generation failed: {reason}"))
        with self._cond:
            self._lanes[index] = _Lane(self._model, self.settings.max_batch_size)

    def _end_running(
        self, job: Job, end: JobEnd | None = None, error: BaseException | None = None
    ) -> None:
        lane = self._lanes[job.lane]
        with self._cond:
            lane.jobs.pop(id(job.request), None)
            if not lane.jobs:
                lane.open = True  # drained (a cancel may be what emptied it)
        session = job.session
        if session is not None and session.pooled:
            if error is None and end is not None and end.reason != "cancelled":
                self._keep(session)
            else:
                self._forget(session)
        elif job.session is None or job.session.closed or error is not None:
            if job.session is not None:
                job.session.request = None
                job.session.tokens, job.session.turns = [], []
            try:
                job.request.close()
            except RuntimeError as exc:
                log.debug("closing a request: %s", exc)
        elif end is not None and end.reason == "cancelled":
            # A cancelled turn leaves the cache mid-reply: rewind it to the turn's start.
            turn_id, before = job.session.turns[-1]
            try:
                job.request.rewind_to_start_of_turn(turn_id)
                job.session.tokens = job.prompt[:before]
                job.session.turns.pop()
            except RuntimeError:
                self._forget(job.session)
        job.request = None  # the driver thread owns engine objects: drop them here
        self._finish(job, end, error)

    def _keep(self, session: Session) -> None:
        """Put a finished pooled session back, dropping the oldest beyond ``prefix_pool``."""
        with self._cond:
            self._pool.append(session)
            dropped = []
            while len(self._pool) > self.settings.prefix_pool:
                dropped.append(self._pool.popleft())
        for old in dropped:
            self._forget(old)

    def _finish(
        self, job: Job, end: JobEnd | None = None, error: BaseException | None = None
    ) -> None:
        job.done = True
        if error is not None:
            job.sink.put((job.row, "error", error))
        else:
            job.sink.put((job.row, "end", end))

    def _shutdown(self) -> None:
        closed = QuintetError("the model's scheduler was closed (the model was unloaded)")
        with self._cond:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
            self._pool.clear()
        for job in waiting:
            self._finish(job, error=closed)
        for wide in self._wides:
            for row in sorted(wide.active):
                self._finish(wide.jobs[row], error=closed)
        self._wides = []
        for lane in self._lanes:
            for job in list(lane.jobs.values()):
                with contextlib.suppress(RuntimeError):
                    job.request.cancel_turn(job.turn_id)
                self._end_running(job, error=closed)
        self._lanes = []
        self._model = None


# Error codes after which the engine refuses every further call.
_ENGINE_FAILURES = {"ENGINE_EXECUTION_FAILURE", "ENGINE_CONTRACT_FAILURE"}
_REASONS = {
    "EOS": "eos",
    "STOP_STRING": "stop_string",
    "MAX_GENERATED_TOKENS": "length",
    "MAX_SESSION_TOKENS": "length",
    "CANCELLED": "cancelled",
}
