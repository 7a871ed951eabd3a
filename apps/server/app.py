"""The FastAPI application: :func:`create_app` builds one server from a :class:`ServerConfig`.

All state (config, models, metrics, thread pool, batcher) lives on ``app.state``, so two
apps in one process never share anything. Models load in a background thread once the
server starts: ``/health`` answers at once, ``/ready`` says 200 when every model is
loaded, and model requests get 503 with Retry-After until then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from quintet import __version__
from quintet.apps.server import errors, routes_openai, routes_tasks
from quintet.apps.server.auth import require_key
from quintet.apps.server.batching import Batcher
from quintet.apps.server.config import ServerConfig
from quintet.apps.server.limits import BodyLimit
from quintet.apps.server.metrics import (
    CONTENT_TYPE,
    Metrics,
    MetricsMiddleware,
    add_scheduler_gauges,
)
from quintet.apps.server.models import ModelRegistry


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """A Quintet server app: OpenAI-compatible /v1 routes, the task routes, /health,
    /ready, /metrics and the OpenAPI docs at /docs.

    Example::

        >>> import uvicorn                                                    # doctest: +SKIP
        >>> uvicorn.run(create_app(ServerConfig(models=("smollm2-135m-instruct",))))
    """
    config = config or ServerConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.executor = ThreadPoolExecutor(config.threads, thread_name_prefix="quintet-model")
        app.state.batcher = Batcher(config, app.state.executor, app.state.metrics)
        loader = threading.Thread(
            target=app.state.registry.load_all, name="quintet-load", daemon=True
        )
        loader.start()
        try:
            yield
        finally:
            app.state.registry.closing = True
            # In-flight calls have finished (uvicorn waits for them); queued ones are dropped.
            app.state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Quintet",
        version=__version__,
        summary="OpenAI-compatible chat, completions and embeddings, plus translation, "
        "summarization, extractive QA and classification",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.registry = ModelRegistry(config)
    app.state.metrics = Metrics()
    app.state.metrics.add_gauges(
        "quintet_queue_depth", "Requests waiting for or running on each model.",
        app.state.registry.queue_depths,
    )  # fmt: skip
    add_scheduler_gauges(app.state.metrics, app.state.registry.scheduler_stats)
    app.state.started = int(time.time())
    errors.install(app)
    app.include_router(routes_openai.router)
    app.include_router(routes_tasks.router)

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers (models may still be loading)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 200 when every served model is loaded, else 503 with each one's state."""
        registry: ModelRegistry = request.app.state.registry
        ok = registry.ready and not registry.closing
        body = {"status": "ready" if ok else "not ready", "models": registry.status()}
        return JSONResponse(body, status_code=200 if ok else 503)

    # With --metrics-require-key the scrape needs the API key like /v1 does.
    guard = [Depends(require_key)] if config.metrics_require_key else []

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse, dependencies=guard)
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus text: requests, latency histograms, generated tokens, queue depth."""
        return PlainTextResponse(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    # Added last = outermost: the metrics see the 413s that the body limit answers.
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=lambda: app.state.metrics)
    return app
