"""Background jobs for pages: long work off the page, progress read by the page.

A Streamlit script that runs a long job itself blocks its own page, and any click reruns
the script and abandons the job. A :class:`Job` instead runs elsewhere; the page only reads
``job.done / job.total`` and redraws (with ``st.fragment(run_every=...)``). Jobs live in a
process-wide registry keyed by id, so a browser reload, or a second tab, finds the job still
running.

Two places to run one:

* :func:`start_process_job`: a worker process (spawned, niced), for heavy work (an
  evaluation). Its models, its threads and its CPU time are its own, so the server process
  keeps answering every other tab: with an evaluation in a thread of the server, a Chat tab
  took 27 s to draw its message box and a reply waited for the evaluation's model. The
  worker sends progress, notes and the result back over a queue; a cancel ends it.
* :func:`start_job`: a daemon thread of the server, for light work that needs the server's
  own objects.

Example:
    >>> job = start_process_job("eval-1", "Evaluating", evaluate_models, {"task": "qa"})
    >>> job.state, job.done, job.total                     # doctest: +SKIP
    ('running', 12, 50)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ProgressCallback = Callable[[int, int], None]

_jobs: dict[str, Job] = {}
_jobs_lock = threading.Lock()


@dataclass
class Job:
    """One background job and what the page shows of it."""

    id: str
    label: str
    done: int = 0
    total: int = 0
    note: str = ""  # what the job is doing now ("model 2/3: opus-mt-en-de")
    started: float = field(default_factory=time.time)
    finished: float | None = None
    result: Any = None
    error: BaseException | None = None
    details: str = ""  # the traceback of an unexpected error, for the details expander
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def state(self) -> str:
        """``running``, ``done`` or ``failed``."""
        if self.finished is None:
            return "running"
        return "failed" if self.error is not None else "done"

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def progress(self, done: int, total: int) -> None:
        """The ``(done, total)`` callback handed to the work."""
        self.done, self.total = done, total


def start_job(job_id: str, label: str, work: Callable[[Job], Any]) -> Job:
    """Run ``work(job)`` in a daemon thread; a job with this id still running is returned as is.

    ``work`` reports through ``job.progress(done, total)`` and ``job.note`` and may check
    ``job.cancel``; its return value becomes ``job.result``, an exception ``job.error``.
    """
    with _jobs_lock:
        existing = _jobs.get(job_id)
        if existing is not None and existing.state == "running":
            return existing
        job = _jobs[job_id] = Job(job_id, label)

    def run() -> None:
        try:
            job.result = work(job)
        except BaseException as exc:  # noqa: BLE001 - kept on the job and shown by the page
            job.error = exc
            job.details = "".join(traceback.format_exception(exc))
        finally:
            job.finished = time.time()

    threading.Thread(target=run, name=f"quintet-job-{job_id}", daemon=True).start()
    return job


def get_job(job_id: str) -> Job | None:
    """The job with this id (running or finished), or None."""
    with _jobs_lock:
        return _jobs.get(job_id)


def all_jobs(prefix: str = "") -> list[Job]:
    """Jobs whose id starts with ``prefix``, newest first."""
    with _jobs_lock:
        found = [job for job in _jobs.values() if job.id.startswith(prefix)]
    return sorted(found, key=lambda job: job.started, reverse=True)


# Worker processes ----------------------------------------------------------------------

WORKER_NICENESS = 10  # below the server's priority: pages stay responsive while it works
_SPAWN = multiprocessing.get_context("spawn")  # no fork of a threaded server
_START_LOCK = threading.Lock()


class _WorkerJob:
    """What ``work`` sees in the worker process: the :class:`Job` interface, sent back."""

    def __init__(self, job_id: str, label: str, queue: Any) -> None:
        self.id, self.label, self._queue = job_id, label, queue
        self.done = self.total = 0
        self._note = ""
        self.cancel = threading.Event()  # the parent cancels by ending the process

    @property
    def note(self) -> str:
        return self._note

    @note.setter
    def note(self, value: str) -> None:
        self._note = value
        self._queue.put(("note", value))

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        self._queue.put(("progress", (done, total)))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else an equivalent that does (same message; a
    QuintetError stays one, so the page still shows it as a one-line message)."""
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception class with an unusual constructor
        from quintet.core.errors import QuintetError

        if isinstance(exc, QuintetError):
            return QuintetError(str(exc))
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _worker_main(job_id: str, label: str, work: Callable[..., Any], kwargs: dict, queue) -> None:
    with contextlib.suppress(OSError):  # not permitted here: the server's priority then
        os.nice(WORKER_NICENESS)
    job = _WorkerJob(job_id, label, queue)
    try:
        queue.put(("result", work(job, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - sent to the page, which shows it
        queue.put(("error", (_portable(exc), "".join(traceback.format_exception(exc)))))


def start_process_job(
    job_id: str, label: str, work: Callable[..., Any], kwargs: dict[str, Any] | None = None
) -> Job:
    """Run ``work(job, **kwargs)`` in a worker process; a job with this id still running is
    returned as is.

    ``work`` must be importable (a module-level function) and ``kwargs`` picklable. It reports
    as with :func:`start_job` (``job.progress``, ``job.note``); its return value becomes
    ``job.result``, an exception ``job.error`` (with the worker's traceback in
    ``job.details``). Setting ``job.cancel`` ends the process.
    """
    with _jobs_lock:
        existing = _jobs.get(job_id)
        if existing is not None and existing.state == "running":
            return existing
        job = _jobs[job_id] = Job(job_id, label)
    queue = _SPAWN.Queue()
    process = _SPAWN.Process(
        target=_worker_main,
        args=(job_id, label, work, kwargs or {}, queue),
        name=f"quintet-job-{job_id}",
        daemon=True,
    )
    _start_without_main(process)
    threading.Thread(
        target=_follow, args=(job, process, queue), name=f"quintet-job-{job_id}", daemon=True
    ).start()
    return job


def _start_without_main(process: Any) -> None:
    """Start ``process`` without re-running ``__main__`` in it.

    A spawned child first re-imports the parent's ``__main__``, and under ``streamlit run``
    that is the page script: the child would draw the page and start the job again, and
    again. The child needs nothing from it (``work`` is importable), so it is shown an empty
    ``__main__`` for the moment the process starts.
    """
    with _START_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


def _follow(job: Job, process: Any, queue: Any) -> None:
    """Copy what the worker sends onto ``job`` until it ends (or is cancelled)."""
    import queue as queues

    ended = False
    try:
        while not ended:
            if job.cancel.is_set() and process.is_alive():
                process.terminate()
            try:
                kind, value = queue.get(timeout=0.2)
            except queues.Empty:
                if not process.is_alive():  # nothing more can come: drain, then stop
                    try:
                        kind, value = queue.get(timeout=1.0)
                    except queues.Empty:
                        break
                else:
                    continue
            if kind == "progress":
                job.progress(*value)
            elif kind == "note":
                job.note = value
            elif kind == "result":
                job.result, ended = value, True
            elif kind == "error":
                (job.error, job.details), ended = value, True
        if not ended:
            why = "cancelled" if job.cancel.is_set() else f"exit code {process.exitcode}"
            job.error = RuntimeError(f"the worker process ended without a result ({why})")
    finally:
        process.join(timeout=10)
        job.finished = time.time()
