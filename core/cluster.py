"""Run a batch function over rows on a Ray cluster: ``--ray`` for every batch path.

One job: the caller cuts its rows into batches exactly as its single-process loop does,
and :func:`run_batches` hands back ``(batch, result)`` pairs **in input order** as they
finish, so the caller appends them to its resumable log or output file with the same code
as the local path (a killed run keeps every batch written; the next run skips them).

Under the hood this is Ray Data, not a scheduler of ours: the batches become a dataset
(one row, one block per batch), ``map_batches`` runs them on a fixed actor pool
(``ActorPoolStrategy(size=workers)``), each actor builds the model once from a picklable
factory, and ``preserve_order`` makes ``iter_rows`` yield in input order while the
actors work ahead. A batch keeps its composition (the same rows padded together as
locally), so outputs equal the single-process run's.

- An actor that dies (a crash, an OOM kill) is restarted and its batch retried, up to
  ``max_restarts`` times (Ray's ``max_restarts`` / ``max_task_retries``).
- An exception the batch function raises is sent back and re-raised in the caller when
  its batch's turn comes, after every earlier batch was delivered: a bad row stops the
  run the same way, with the same error, as it does locally.
- ``address=None`` and no ``RAY_ADDRESS``: a local cluster starts (no dashboard, a small
  object store) and is shut down at the end. An address joins that cluster, which is left
  running. Every node needs quintet installed and the models in its store (or the hub).

Example::

    >>> from core.cluster import ClusterOptions, run_batches
    >>> batches = [texts[i : i + 64] for i in range(0, len(texts), 64)]  # doctest: +SKIP
    >>> for batch, labels in run_batches(batches, ClassifyFactory("minilm-l6"),
    ...                                  ClusterOptions(workers=2)):
    ...     write(batch, labels)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import socket
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from quintet.core.errors import QuintetError

Row = TypeVar("Row")
Result = TypeVar("Result")
# What an actor builds once: picklable (shipped to every actor), returns the batch function.
BatchFunctionFactory = Callable[[], Callable[[list[Any]], Any]]

INSTALL_HINT = "Ray is not installed: pip install 'quintet[cluster]'"
# How long a joined cluster's address may take to accept a connection.
CONNECT_TIMEOUT_S = 10.0
# The local cluster's object store only carries batches of text and their outputs.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


class ClusterError(QuintetError):
    """The cluster cannot run the job as asked (Ray missing, too few CPUs or GPUs ...)."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how wide to run a batch job on Ray.

    Args:
        address: a running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None:
            ``$RAY_ADDRESS`` if set, otherwise a local cluster for this job.
        workers: actors, each holding one copy of the model.
        cpus_per_worker: CPUs each actor reserves; its torch / OpenMP / ONNX Runtime
            threads are pinned to this number (more threads than cores spin-wait).
        gpus_per_worker: GPUs each actor reserves (0: CPU only); fractions share a GPU.
        max_restarts: how often a dead actor is restarted and its batch retried.
    """

    address: str | None = None
    workers: int = 2
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    max_restarts: int = 3

    def check(self) -> None:
        """One-line errors for impossible settings, before Ray starts."""
        if self.workers < 1:
            raise ClusterError(f"--workers must be at least 1 (got {self.workers})")
        if self.cpus_per_worker < 1:
            raise ClusterError(f"cpus_per_worker must be at least 1 (got {self.cpus_per_worker})")
        if not math.isfinite(self.gpus_per_worker):  # NaN passes the comparison below
            raise ClusterError(
                f"--gpus-per-worker must be a finite number (got {self.gpus_per_worker})"
            )
        if self.gpus_per_worker < 0:
            raise ClusterError(f"--gpus-per-worker must be 0 or more (got {self.gpus_per_worker})")
        if self.max_restarts < 0:
            raise ClusterError(f"max_restarts must be 0 or more (got {self.max_restarts})")


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`ClusterError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (ray without the [data] extra lacks pyarrow/pandas)
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(options: ClusterOptions) -> Iterator[dict[str, float]]:
    """Connect to (or start) the cluster ``options`` names; yields its total resources.

    A Ray session the caller already opened (``ray.init`` before) is used as it is and left
    open. Otherwise the driver disconnects at the end, which stops a local cluster and
    leaves a joined one running.
    """
    options.check()
    ray = require_ray()
    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        probe(address)
    else:
        _check_local(options)
    settings: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address:
            ray.init(address=address, **settings)
        else:
            ray.init(
                num_cpus=options.workers * options.cpus_per_worker,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                **settings,
            )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise ClusterError(f"cannot connect to {where}: {_first_line(error)}") from None
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A one-line :class:`ClusterError` unless ``HOST:PORT`` (or ``ray://HOST:PORT``)
    resolves and accepts a TCP connection within ``timeout_s``.

    ``ray.init`` retries an address that is down, closed or unresolvable for minutes; a
    plain connection attempt first makes every such case fail at once, in bounded time.
    ``auto`` and ``local`` (Ray finds the cluster itself) are left to Ray.
    """
    if address in ("auto", "local"):
        return
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port_text = bare.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit():
        raise ClusterError(f"Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout_s):
            pass
    except socket.gaierror:
        raise ClusterError(
            f"cannot connect to the Ray cluster at {address}: unknown host {host}"
        ) from None
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else error.strerror or error
        raise ClusterError(
            f"cannot connect to the Ray cluster at {address}: {reason} (is it running? "
            "start one with `ray start --head`)"
        ) from None


def _check_local(options: ClusterOptions) -> None:
    """Refuse more workers than this machine has CPUs for a local cluster: Ray would make
    up the CPUs asked for and the actors would fight over the real ones (or never start)."""
    cpus = os.cpu_count() or 1
    needed = options.workers * options.cpus_per_worker
    if needed > cpus:
        raise ClusterError(
            f"--workers {options.workers} needs {needed} CPU(s) but this machine has {cpus}: "
            f"ask for at most {max(1, cpus // options.cpus_per_worker)} (or join a larger "
            "cluster with --ray-address)"
        )


def run_batches_here_or_on(
    batches: Iterable[Sequence[Row]],
    factory: BatchFunctionFactory,
    options: ClusterOptions | None,
) -> Iterator[tuple[list[Row], Any]]:
    """:func:`run_batches` when ``options`` names a cluster; with None the same in this
    process, so a batch command has one loop for both. Here ``batches`` is read one batch
    at a time and ``factory()`` called once, at the first batch (no batches: no model)."""
    if options is not None:
        yield from run_batches(list(batches), factory, options)
        return
    run = None
    for batch in batches:
        run = run or factory()
        yield list(batch), run(list(batch))


def run_batches(
    batches: Sequence[Sequence[Row]],
    factory: BatchFunctionFactory,
    options: ClusterOptions,
) -> Iterator[tuple[list[Row], Any]]:
    """Run ``factory()(batch)`` on Ray actors for every batch; yield ``(batch, result)`` in
    input order as each finishes.

    ``factory`` is pickled to every actor and called there once (load the model in it);
    the function it returns gets one batch (a list of rows) and returns that batch's result.
    Rows, factory and results must pickle. Stop iterating (or raise) to cancel the rest.

    Raises:
        ClusterError: Ray missing, a cluster too small for one worker, an actor that kept
            dying.
        Exception: whatever the batch function (or the factory) raised, for the first batch
            it failed on, after the batches before it were yielded.
    """
    batches = [list(batch) for batch in batches]
    if not batches:
        return
    with connected(options) as resources:
        _check_fits(options, resources)
        yield from _run(batches, factory, options)


def _run(
    batches: list[list[Row]], factory: BatchFunctionFactory, options: ClusterOptions
) -> Iterator[tuple[list[Row], Any]]:
    import numpy as np
    import ray.data
    from ray.exceptions import RayError

    ds = ray.data.from_items(
        [{"index": i, "payload": pickle.dumps(batch)} for i, batch in enumerate(batches)],
        override_num_blocks=len(batches),  # a batch is delivered as soon as it is done
    )
    context = ds.context  # this dataset's own copy: nothing global changes
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the caller draws its own bar
    context.max_consecutive_actor_init_deaths = options.max_restarts
    threads = options.cpus_per_worker
    with warnings.catch_warnings():
        # max_restarts / max_task_retries have no named parameter yet in Ray 2.60.
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
        mapped = _mapped(ds, factory, options, threads)
    expected = 0
    quiet, handlers = _Quiet(), _data_log_handlers()
    for handler in handlers:
        handler.addFilter(quiet)
    rows = iter(mapped.iter_rows())
    try:
        for row in rows:
            index = int(row["index"])
            if index != expected:  # preserve_order is what makes resume safe: check it
                raise ClusterError(f"Ray returned batch {index} before batch {expected}")
            status, value = pickle.loads(_as_bytes(row["result"], np))
            if status == "error":
                raise _reraise(value)
            yield batches[index], value
            expected += 1
    except RayError as error:
        raise ClusterError(f"the Ray job failed: {_first_line(error)}") from error
    finally:
        # Stopped early (an error, the caller done): end the execution and its actors now.
        getattr(rows, "close", lambda: None)()
        for handler in handlers:
            handler.removeFilter(quiet)
    if expected != len(batches):
        raise ClusterError(f"Ray returned {expected} of {len(batches)} batches")


def _mapped(ds: Any, factory: BatchFunctionFactory, options: ClusterOptions, threads: int) -> Any:
    import ray.data

    return ds.map_batches(
        _Worker,
        fn_constructor_args=(factory, threads),
        batch_size=1,
        batch_format="numpy",
        # No more actors (each loading the model) than there are batches.
        compute=ray.data.ActorPoolStrategy(size=min(options.workers, ds.count())),
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker or None,
        runtime_env={"env_vars": _worker_env(threads)},
        # A dead actor is restarted and its batch retried, a bounded number of times:
        # Ray Data's default (forever) would loop on a batch that always kills its actor.
        max_restarts=options.max_restarts,
        max_task_retries=options.max_restarts,
    )


def _data_log_handlers() -> list[logging.Handler]:
    """The handlers Ray Data's log lines go through (its own, then the root's)."""
    handlers, logger = [], logging.getLogger("ray.data")
    while logger is not None:
        handlers += logger.handlers
        logger = logger.parent if logger.propagate else None
    return handlers


class _Quiet(logging.Filter):
    """Drops Ray Data's per-run INFO lines and its note that progress bars are off (the
    caller draws its own bar); warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        return "Progress bars disabled" not in record.getMessage()


class _Worker:
    """One Ray Data actor: pins its threads, builds the batch function once, runs batches.

    Errors the function raises travel back as values (``("error", ...)``), not as a failed
    task, so Ray does not retry them (they would fail again) and the caller can raise them
    in order.
    """

    def __init__(self, factory: BatchFunctionFactory, threads: int) -> None:
        self.fn: Callable[[list[Any]], Any] | None = None
        self.failed: tuple[str, Any] | None = None
        try:
            # torch starts with $OMP_NUM_THREADS threads (set for this process), and the
            # ONNX Runtime / CTranslate2 engines take torch's count when they are built.
            self.fn = factory()
        except Exception as error:  # e.g. the model is not in this node's store
            self.failed = ("error", _portable(error))
        if "torch" in sys.modules:  # in case the factory changed it
            sys.modules["torch"].set_num_threads(threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = []
        for payload in batch["payload"]:
            if self.failed is not None:
                results.append(pickle.dumps(self.failed))
                continue
            try:
                outcome = ("ok", self.fn(pickle.loads(_as_bytes(payload, np))))
            except Exception as error:
                outcome = ("error", _portable(error))
            results.append(pickle.dumps(outcome))
        return {"index": batch["index"], "result": np.array(results, dtype=object)}


@dataclass(frozen=True)
class _RemoteFailure:
    """An exception that does not survive pickling, as its type name, message and trace."""

    kind: str
    message: str
    trace: str


def _portable(error: BaseException) -> BaseException | _RemoteFailure:
    """``error`` itself if it pickles and unpickles (QuintetError subclasses do), else its
    text: the caller must be able to raise it."""
    try:
        pickle.loads(pickle.dumps(error))
        error.__traceback__ = None  # the worker's frames do not pickle; keep the text
        return error
    except Exception:
        return _RemoteFailure(type(error).__name__, str(error), traceback.format_exc())


def _reraise(value: BaseException | _RemoteFailure) -> BaseException:
    if isinstance(value, _RemoteFailure):
        return ClusterError(f"a Ray worker failed: {value.kind}: {value.message}")
    return value


def _check_fits(options: ClusterOptions, resources: dict[str, float]) -> None:
    """Refuse a job no node could ever start one worker of (Ray would wait forever)."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if options.gpus_per_worker and gpus < options.gpus_per_worker:
        raise ClusterError(
            f"--gpus-per-worker {options.gpus_per_worker:g}: the Ray cluster has "
            f"{gpus:g} GPU(s); drop the flag to run on CPUs"
        )
    if cpus < options.cpus_per_worker:
        raise ClusterError(
            f"each worker needs {options.cpus_per_worker} CPU(s) but the Ray cluster has {cpus:g}"
        )
    needed = options.workers * options.cpus_per_worker
    if cpus < needed:
        raise ClusterError(
            f"--workers {options.workers} needs {needed} CPU(s) but the Ray cluster has "
            f"{cpus:g}: ask for fewer workers or add nodes"
        )


def _worker_env(threads: int) -> dict[str, str]:
    """The actor process's environment: thread counts (OpenMP and MKL read them once, at
    start) and the engine a ``--backend`` flag chose, which nodes started elsewhere lack."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if os.environ.get("QUINTET_BACKEND"):
        env["QUINTET_BACKEND"] = os.environ["QUINTET_BACKEND"]
    return env


def _as_bytes(value: Any, np: Any) -> bytes:
    return value.tobytes() if isinstance(value, np.ndarray) else bytes(value)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
