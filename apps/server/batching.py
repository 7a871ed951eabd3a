"""Generation calls for chat and completions, batched when requests arrive close together.

Requests for the same model with the same decoding settings that arrive within
``batch_window_ms`` of the first, or while the model is busy, run as one
:meth:`Generator.generate` call (up to ``max_batch`` prompts). Seeded requests run
alone: a seed reproduces one request's output only when nothing else shares its batch.
A batch that fails on one request's input (a prompt too long) is rerun request by
request, so only that request gets the error. Models whose engine schedules requests per
step (onnxruntime-genai) skip all this: each request joins the running batch at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from quintet.apps.server.config import ServerConfig
from quintet.apps.server.metrics import Metrics
from quintet.apps.server.models import ServedModel, timed_out
from quintet.core.config import DecodeConfig
from quintet.core.decoding.types import GenerationResult
from quintet.core.errors import QuintetError


@dataclass
class _Batch:
    requests: list[tuple[list[Any], asyncio.Future]] = field(default_factory=list)
    size: int = 0  # prompts so far


class Batcher:
    """Collects generation requests per (model, settings) and runs them in batches."""

    def __init__(self, config: ServerConfig, executor: Executor, metrics: Metrics) -> None:
        self.config = config
        self.executor = executor
        self.metrics = metrics
        self._open: dict[tuple[str, DecodeConfig], _Batch] = {}
        self._tasks: set[asyncio.Task] = set()

    async def generate(
        self, model: ServedModel, prompt: Any, decode: DecodeConfig
    ) -> GenerationResult:
        """One prompt's result (with its ``n`` outputs in ``alternatives``)."""
        return (await self.generate_many(model, [prompt], decode))[0]

    async def generate_many(
        self, model: ServedModel, prompts: Sequence[Any], decode: DecodeConfig
    ) -> list[GenerationResult]:
        """Results for ``prompts`` in order, run alone or in a batch with other requests."""
        prompts = list(prompts)
        timeout = self.config.request_timeout_s
        window = self.config.batch_window_ms / 1000
        # A scheduled model batches per step, across settings and with streams: no window.
        alone = window == 0 or decode.seed is not None or len(prompts) >= self.config.max_batch
        if alone or model.scheduled:
            return await model.run(
                lambda: model.generator.generate(prompts, decode, progress=False),
                self.executor,
                timeout,
            )
        model.admit()  # 429 here, before joining, when the model's queue is full
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        future.add_done_callback(lambda _f: model.leave())
        key = (model.name, decode)
        batch = self._open.get(key)
        if batch is None or batch.size + len(prompts) > self.config.max_batch:
            batch = _Batch()
            self._open[key] = batch
            task = loop.create_task(self._dispatch(key, batch, model, decode, window))
            # The loop keeps only weak references to tasks: hold it until it is done.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        batch.requests.append((prompts, future))
        batch.size += len(prompts)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise timed_out(model.name) from None

    async def _dispatch(
        self,
        key: tuple[str, DecodeConfig],
        batch: _Batch,
        model: ServedModel,
        decode: DecodeConfig,
        window: float,
    ) -> None:
        timeout = self.config.request_timeout_s
        try:
            await asyncio.sleep(window)
            # The batch stays open while the model is busy: requests arriving meanwhile
            # join it instead of each waiting for a turn of their own.
            await model.acquire(timeout, admit=False)
        except BaseException as exc:  # noqa: BLE001 - handed to every request
            if self._open.get(key) is batch:
                del self._open[key]
            for _, future in batch.requests:
                _fail(future, exc)
            return
        if self._open.get(key) is batch:
            del self._open[key]
        prompts = [p for request, _ in batch.requests for p in request]
        self.metrics.observe_batch(model.name, len(batch.requests))
        try:
            results = await model.run(
                lambda: model.generator.generate(prompts, decode, progress=False),
                self.executor,
                timeout,
                admit=False,
                locked=True,
            )
        except QuintetError as exc:
            if len(batch.requests) == 1:
                _fail(batch.requests[0][1], exc)
                return
            # One request's input broke the batch: run each alone, so only it fails.
            for request, future in batch.requests:
                try:
                    alone = await model.run(
                        lambda r=request: model.generator.generate(r, decode, progress=False),
                        self.executor,
                        timeout,
                        admit=False,
                    )
                except BaseException as exc:  # noqa: BLE001 - handed to that request
                    _fail(future, exc)
                else:
                    if not future.done():
                        future.set_result(alone)
            return
        except BaseException as exc:  # noqa: BLE001 - handed to every request
            for _, future in batch.requests:
                _fail(future, exc)
            return
        position = 0
        for request, future in batch.requests:
            if not future.done():
                future.set_result(results[position : position + len(request)])
            position += len(request)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved here: a timed-out request may never read it
