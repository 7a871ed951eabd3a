"""The server's settings, fixed when it starts (``quintet serve`` flags)."""

from __future__ import annotations

from dataclasses import dataclass

from quintet.core.config import non_finite_problems
from quintet.core.errors import ConfigError
from quintet.core.input_limits import DEFAULT_MAX_INPUT_CHARS

# Served out of the box: both come from `make models` / `quintet models pull`, offline.
DEFAULT_MODELS: tuple[str, ...] = ("smollm2-135m-instruct", "minilm-l6")


@dataclass(frozen=True)
class ServerConfig:
    """How one server runs.

    Args:
        host, port: where to listen; loopback unless told otherwise.
        models: the names served (catalog or store names); requests may name only these.
        api_keys: accepted keys; empty means no authentication.
        allow_any_model: let a request name any model (hub id, path), loaded on first use.
        backend: decoding engine for generative models (``auto`` or a name from
            ``quintet.core.config.BACKENDS``); encoders follow it (``transformers`` pins torch).
        device: where models run.
        max_body_bytes: larger request bodies get 413.
        max_input_chars: the most characters of text one request may carry, all its texts,
            messages, labels, questions and contexts together (413 above it).
        max_tokens_limit: the most ``max_tokens`` a request may ask for (400 above it).
        max_request_tokens: the most tokens one request may ask to generate in all: prompts
            x ``n`` x ``max_tokens`` (400 above it).
        max_beams: the most beams (``num_beams``) a translation may ask for (400 above it).
        metrics_require_key: ``/metrics`` needs the API key too (it is open by default, as
            Prometheus scrapers expect).
        default_max_tokens: ``max_tokens`` when a request gives none.
        max_queue: requests waiting or running per model before 429.
        request_timeout_s: a request still waiting or generating after this gets 504.
        batch_window_ms: chat/completion requests for one model arriving this close together
            run as one batch (0 turns batching off).
        max_batch: the most requests in one batch.
        threads: worker threads for model calls (the event loop never runs a model). A
            non-streamed request holds one while its engine decodes it, so this bounds how
            many decode at once on a scheduled model (which takes 48 by default: four lanes
            of four and a wide batch of 32).
        graceful_timeout_s: on SIGTERM, how long in-flight requests may take to finish.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = DEFAULT_MODELS
    api_keys: tuple[str, ...] = ()
    allow_any_model: bool = False
    backend: str = "auto"
    device: str = "auto"
    max_body_bytes: int = 1_000_000
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    max_tokens_limit: int = 1024
    max_request_tokens: int = 32_768
    max_beams: int = 16
    metrics_require_key: bool = False
    default_max_tokens: int = 256
    max_queue: int = 64
    request_timeout_s: float = 300.0
    batch_window_ms: float = 10.0
    max_batch: int = 16
    threads: int = 64
    graceful_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not self.models and not self.allow_any_model:
            problems.append("no models to serve: name at least one with --models")
        if not 0 < self.port < 65536:
            problems.append(f"port must be in 1..65535 (got {self.port})")
        for name in ("max_body_bytes", "max_input_chars", "max_tokens_limit",
                     "max_request_tokens", "max_beams", "default_max_tokens", "max_queue",
                     "max_batch", "threads"):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.metrics_require_key and not self.api_keys:
            problems.append("metrics_require_key needs an API key (--api-key or QUINTET_API_KEYS)")
        if self.request_timeout_s <= 0 or self.graceful_timeout_s < 0:
            problems.append("timeouts must be positive")
        if self.batch_window_ms < 0:
            problems.append(f"batch_window_ms must be >= 0 (got {self.batch_window_ms})")
        problems.extend(non_finite_problems(self))  # NaN passes every comparison above
        if problems:
            raise ConfigError("invalid server settings: " + "; ".join(problems))
