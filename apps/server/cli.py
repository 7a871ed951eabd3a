"""``quintet serve``: run the HTTP server (FastAPI and uvicorn are imported only when it runs,
so ``quintet --help`` stays fast and works without the ``serve`` extra)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from quintet.apps.server.config import DEFAULT_MODELS, ServerConfig
from quintet.core.config import BACKENDS
from quintet.core.errors import ConfigError
from quintet.core.input_limits import DEFAULT_MAX_INPUT_CHARS


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the settings and models, then serve until SIGINT/SIGTERM (graceful)."""
    try:
        import uvicorn

        from quintet.apps.server.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"quintet serve needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'quintet[serve]'"
        ) from None
    from quintet.apps.server.auth import keys_from
    from quintet.core.models import resolve

    config = ServerConfig(
        host=args.host,
        port=args.port,
        models=tuple(dict.fromkeys(args.models)),
        api_keys=keys_from(args.api_key),
        allow_any_model=args.allow_any_model,
        backend=args.backend,
        device=args.device,
        max_body_bytes=args.max_body_bytes,
        max_input_chars=args.max_input_chars,
        max_tokens_limit=args.max_tokens_limit,
        max_request_tokens=args.max_request_tokens,
        max_beams=args.max_beams,
        metrics_require_key=args.metrics_require_key,
        max_queue=args.max_queue,
        request_timeout_s=args.timeout,
        batch_window_ms=args.batch_window_ms,
        graceful_timeout_s=args.graceful_timeout,
    )
    for name in config.models:
        resolve(name)  # an unknown or missing model fails here, in one line, before binding
    if not _is_loopback(config.host) and not config.api_keys:
        print(
            f"note: serving on {config.host} without an API key: anyone who can reach it can "
            "use it (--api-key or QUINTET_API_KEYS)",
            file=sys.stderr,
        )
    app = create_app(config)

    class Server(uvicorn.Server):
        """uvicorn's server, marking the app as closing on SIGTERM/SIGINT: new requests get
        503 while the ones in flight finish (up to --graceful-timeout)."""

        def handle_exit(self, sig, frame) -> None:  # noqa: ANN001 - uvicorn's signature
            app.state.registry.closing = True
            super().handle_exit(sig, frame)

    server = Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=int(config.graceful_timeout_s),
        )
    )
    server.run()
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``quintet serve`` to the ``quintet`` command."""
    serve = commands.add_parser(
        "serve", help="serve the models over HTTP (OpenAI-compatible API and task endpoints)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: $QUINTET_API_KEYS, "
        "comma-separated; neither: no authentication)",
    )  # fmt: skip
    serve.add_argument(
        "--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
        help=f"the models served (default: {' '.join(DEFAULT_MODELS)})",
    )  # fmt: skip
    serve.add_argument(
        "--allow-any-model", action="store_true",
        help="let requests name any model (hub id or path), downloaded and loaded on first use",
    )  # fmt: skip
    serve.add_argument("--backend", default="auto", choices=BACKENDS, help="decoding engine")
    serve.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    serve.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, help="larger request bodies get 413"
    )
    serve.add_argument(
        "--max-input-chars", type=int, default=DEFAULT_MAX_INPUT_CHARS,
        help="characters of text one request may carry, all fields together (413 above)",
    )  # fmt: skip
    serve.add_argument("--max-tokens-limit", type=int, default=1024, help="cap on max_tokens")
    serve.add_argument(
        "--max-request-tokens", type=int, default=32_768,
        help="cap on prompts x n x max_tokens in one request (400 above)",
    )  # fmt: skip
    serve.add_argument(
        "--max-beams", type=int, default=16, help="cap on a translation's num_beams (400 above)"
    )
    serve.add_argument(
        "--metrics-require-key", action="store_true",
        help="/metrics needs the API key too (default: open to scrapers)",
    )  # fmt: skip
    serve.add_argument("--max-queue", type=int, default=64, help="requests per model before 429")
    serve.add_argument("--timeout", type=float, default=300.0, help="per-request timeout (s)")
    serve.add_argument(
        "--batch-window-ms", type=float, default=10.0,
        help="batch chat/completion requests arriving this close together (0: off)",
    )  # fmt: skip
    serve.add_argument(
        "--graceful-timeout", type=float, default=30.0,
        help="on SIGTERM, seconds in-flight requests get to finish",
    )  # fmt: skip
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=cmd_serve)
