"""The served models: each loaded once, with one lock and a bounded queue.

A request takes a slot on its model (429 when ``max_queue`` requests already wait or run),
and, unless the model's engine schedules concurrent requests itself (onnxruntime-genai:
its requests decode together, see :mod:`quintet.core.decoding.scheduler`), waits for the
model's lock without holding a thread (an :class:`asyncio.Lock`), then runs
the model in the server's thread pool; the event loop never runs a model. The lock is
released only when the model call has really ended, even when the client timed out or went
away, so two calls never share one model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

from quintet.apps.server import errors
from quintet.apps.server.config import ServerConfig
from quintet.core import catalog
from quintet.core.errors import QuintetError
from quintet.core.store import MANIFEST
from quintet.core.tasks import task_specs

log = logging.getLogger(__name__)
T = TypeVar("T")

# The OpenAI endpoints that are no task's: which model kinds serve each, preferred first.
OPENAI_KINDS: dict[str, tuple[str, ...]] = {
    "completions": ("causal", "seq2seq"),
    catalog.EMBEDDINGS: catalog.EMBEDDING_KINDS,
}


def endpoint_kinds() -> dict[str, tuple[str, ...]]:
    """Which model kinds serve each endpoint, in order of preference for the default choice:
    the OpenAI ones and each task's route (its spec's kinds, :mod:`quintet.core.tasks`)."""
    routes = {spec.route: spec.kinds for spec in task_specs() if spec.route}
    # Chat first, then the rest of the OpenAI API, then the task endpoints: /v1/models' order.
    chat = {"chat": routes.pop("chat")} if "chat" in routes else {}
    return {**chat, **OPENAI_KINDS, **routes}


LOADING, READY, FAILED = "loading", "ready", "failed"
CLASSIFIER_CACHE = 16  # zero-shot classifiers kept per model, by label set


class ServedModel:
    """One served model: the loaded weights, its generator and task objects, a lock, a queue.

    Loading happens in a worker thread (:meth:`load`); everything else on the event loop.
    """

    def __init__(self, name: str, config: ServerConfig) -> None:
        self.name = name
        self.config = config
        self.state = LOADING
        self.error = ""
        self._loaded: Any = None
        self.generator: Any = None
        self.lock = asyncio.Lock()
        self.queued = 0  # requests admitted and not finished (waiting, batched or running)
        self._tools: dict[str, Any] = {}
        self._classifiers: OrderedDict[tuple, Any] = OrderedDict()
        self._tools_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        # The store folder the weights came from, if any: `quintet models delete` empties it.
        self.store_folder: Path | None = None

    @property
    def deleted(self) -> bool:
        """True once the model's store copy is gone (deleted while served): the task objects
        that reload it by name would fail, so it is no longer offered."""
        folder = self.store_folder
        return folder is not None and not (folder / MANIFEST).is_file()

    @property
    def loaded(self) -> Any:
        """The weights requests run on: the generator's for a generative model (it follows a
        model rebuilt on disk, see ``Generator.refresh``), else those loaded at start."""
        if self.generator is not None:
            return self.generator.loaded
        return self._loaded

    @property
    def scheduled(self) -> bool:
        """Whether the model's engine batches concurrent requests itself (no model lock)."""
        backend = getattr(self.generator, "backend", None)
        return bool(getattr(backend, "concurrent", False))

    def scheduler_stats(self) -> dict[str, float] | None:
        """Running and waiting requests and batch occupancy of the model's scheduler."""
        if not self.scheduled:
            return None
        return self.generator.backend.scheduler.stats()

    @property
    def kind(self) -> str | None:
        return self.loaded.kind if self.loaded is not None else None

    def endpoints(self) -> list[str]:
        """The endpoints (keys of :func:`endpoint_kinds`) this model can serve."""
        return [task for task, kinds in endpoint_kinds().items() if self.kind in kinds]

    def load(self) -> None:
        """Load the weights and build the generator or encoder engine (blocking)."""
        from quintet.core.models import load

        try:
            loaded = load(self.name, device=self.config.device)
            if loaded.kind in ("causal", "seq2seq"):
                from quintet.core.decoding import Generator

                # One request's n outputs or one dynamic batch per call.
                self.generator = Generator(
                    loaded, self.config.backend, batch_size=self.config.max_batch
                )
            elif loaded.kind == "encoder":
                from quintet.core.encoders import encoder_backend, with_engine

                # The engine lives on the cached model (closed with it); this copy runs on it.
                loaded, _ = with_engine(loaded, encoder_backend(self.config.backend, loaded))
            if loaded.resolved.origin == "store":
                self.store_folder = Path(loaded.resolved.location)
            self._loaded = loaded
            self.state = READY
        except Exception as exc:  # noqa: BLE001 - reported by /ready and on each request
            self.error = str(exc) if isinstance(exc, QuintetError) else repr(exc)
            self.state = FAILED
            log.error("could not load %s: %s", self.name, self.error)

    def current(self) -> Any:
        """The weights to run a request on now (blocking: call it from a worker thread).

        A generative model's generator follows a rebuilt model on its own; the weights
        loaded at start follow it here (:func:`quintet.core.encoders.follow`): loaded again,
        with an engine converted from the new weights. Task objects follow on their own.
        """
        if self.generator is not None:
            return self.generator.loaded
        from quintet.core.encoders import encoder_backend, follow

        with self._refresh_lock:  # concurrent requests switch once
            held = self._loaded
            found = follow(held, encoder_backend(self.config.backend, held))
            if found is not None:
                self._loaded = found[0]
            return self._loaded

    def tool(self, key: str, build: Callable[[], T]) -> T:
        """The task object ``key`` (a Summarizer, a QuestionAnswerer ...), built once."""
        with self._tools_lock:
            if key not in self._tools:
                self._tools[key] = build()
            return self._tools[key]

    def classifier(self, key: tuple, build: Callable[[], T]) -> T:
        """A classifier for one label set, kept in a small LRU (building one embeds labels)."""
        with self._tools_lock:
            if key in self._classifiers:
                self._classifiers.move_to_end(key)
                return self._classifiers[key]
            built = build()
            self._classifiers[key] = built
            if len(self._classifiers) > CLASSIFIER_CACHE:
                self._classifiers.popitem(last=False)
            return built

    # Slots ------------------------------------------------------------------------------

    def admit(self) -> None:
        """Count a request into this model's queue (429 when ``max_queue`` are in it)."""
        if self.queued >= self.config.max_queue:
            raise errors.queue_full(self.name)
        self.queued += 1

    def leave(self) -> None:
        """A request admitted by :meth:`admit` has finished (event-loop thread only)."""
        self.queued -= 1

    async def acquire(self, timeout: float, admit: bool = True) -> None:
        """Join the queue (unless already admitted, as a batch's requests are) and wait for
        the lock, without holding a thread."""
        if admit:
            self.admit()
        if self.scheduled:
            return  # the engine's scheduler runs concurrent requests together
        try:
            await asyncio.wait_for(self.lock.acquire(), timeout)
        except BaseException as exc:
            if admit:
                self.leave()
            if isinstance(exc, TimeoutError):
                raise timed_out(self.name) from None
            raise

    def release(self, admitted: bool = True) -> None:
        """Give the lock back, and the queue place taken by :meth:`acquire` (event loop only)."""
        if not self.scheduled:
            self.lock.release()
        if admitted:
            self.leave()

    def release_threadsafe(self, loop: asyncio.AbstractEventLoop) -> None:
        """:meth:`release` from a worker thread."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone anyway
            loop.call_soon_threadsafe(self.release)

    async def run(
        self,
        fn: Callable[[], T],
        executor: Executor,
        timeout: float,
        admit: bool = True,
        locked: bool = False,
    ) -> T:
        """Run ``fn`` on this model in the thread pool, holding the model's lock.

        ``locked``: the caller already holds the lock (taken with ``acquire(admit=False)``);
        it is released here all the same. On timeout (504) or cancellation the call cannot
        be interrupted: the lock is then released when it really ends, so the next request
        never overlaps it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not locked:
            await self.acquire(timeout, admit)
        try:
            future = loop.run_in_executor(executor, fn)
        except BaseException:
            self.release(admit)
            raise

        def release_after(done: asyncio.Future) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: no "exception was never retrieved" noise
            self.release(admit)

        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise timed_out(self.name) from None
        finally:
            if future.done():
                self.release(admit)
            else:
                future.add_done_callback(release_after)


def timed_out(model: str) -> errors.APIError:
    return errors.APIError(
        504, f"the request to {model} timed out", "timeout_error", None, "timeout"
    )


class ModelRegistry:
    """The models one server serves, by name (state on the app, not in this module)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.models: dict[str, ServedModel] = {
            name: ServedModel(name, config) for name in config.models
        }
        self._add_lock = asyncio.Lock()
        # Set on SIGTERM: new requests get 503 while the ones in flight finish.
        self.closing = False

    def prune(self) -> None:
        """Stop serving the models deleted from the store since they loaded (their in-flight
        requests finish on the weights already in memory)."""
        for name in [name for name, model in self.models.items() if model.deleted]:
            log.warning("%s was deleted from the store: no longer served", name)
            del self.models[name]

    def load_all(self) -> None:
        """Load every served model, one after the other (run in a background thread)."""
        for model in list(self.models.values()):
            if model.state == LOADING:
                model.load()

    @property
    def ready(self) -> bool:
        return all(m.state == READY for m in self.models.values())

    def status(self) -> dict[str, str]:
        """Each model's state, with the error for a failed one."""
        self.prune()
        return {
            name: m.state if m.state != FAILED else f"failed: {m.error}"
            for name, m in self.models.items()
        }

    def queue_depths(self) -> dict[str, int]:
        return {name: m.queued for name, m in self.models.items()}

    def scheduler_stats(self) -> dict[str, dict[str, float]]:
        """Each scheduled model's running/waiting requests and batch occupancy."""
        found = {}
        for name, model in self.models.items():
            stats = model.scheduler_stats() if model.state == READY else None
            if stats is not None:
                found[name] = stats
        return found

    def _usable(self, model: ServedModel) -> ServedModel:
        if model.state == LOADING:
            raise errors.unavailable(f"{model.name} is still loading: retry shortly", "loading")
        if model.state == FAILED:
            raise errors.unavailable(f"{model.name} failed to load: {model.error}", "load_failed")
        return model

    async def get(self, name: str, executor: Executor) -> ServedModel:
        """The served model ``name``: 404 unless served (or any model is allowed), 503 while
        it loads or the server shuts down."""
        if self.closing:
            raise errors.unavailable("the server is shutting down", "shutting_down")
        self.prune()
        if name in self.models:
            return self._usable(self.models[name])
        if not self.config.allow_any_model:
            raise errors.model_not_found(name)
        async with self._add_lock:  # one load per new name, however many ask at once
            if name not in self.models:
                model = ServedModel(name, self.config)
                await asyncio.get_running_loop().run_in_executor(executor, model.load)
                if model.state == FAILED:
                    raise errors.APIError(
                        404, model.error, "invalid_request_error", "model", "model_not_found"
                    )
                self.models[name] = model
        return self._usable(self.models[name])

    async def for_task(self, task: str, name: str | None, executor: Executor) -> ServedModel:
        """The model for ``task``: the one named (checked to fit), else the first served
        model of the task's preferred kinds."""
        kinds = endpoint_kinds()[task]
        if self.closing:
            raise errors.unavailable("the server is shutting down", "shutting_down")
        if name:
            model = await self.get(name, executor)
            if model.kind not in kinds:
                wanted = " or ".join(kinds)
                raise errors.bad_request(
                    f"{name} is a {model.kind} model: /v1/{task} needs a {wanted} model",
                    "model",
                    "model_not_supported",
                )
            return model
        self.prune()
        for kind in kinds:
            for model in self.models.values():
                if model.state == READY and model.kind == kind:
                    return model
        if any(m.state == LOADING for m in self.models.values()):
            raise errors.unavailable("the models are still loading: retry shortly", "loading")
        raise errors.APIError(
            404,
            f"no served model can do {task}: it needs a {' or '.join(kinds)} model "
            "(start the server with --models NAME)",
            "invalid_request_error",
            "model",
            "model_not_found",
        )
