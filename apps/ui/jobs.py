"""Background jobs for pages: long work in a thread, progress read by the page.

A Streamlit script that runs a long job itself blocks its own page, and any click reruns
the script and abandons the job. A :class:`Job` instead runs in a daemon thread of the
server process; the page only reads ``job.done / job.total`` and redraws (with
``st.fragment(run_every=...)``). Jobs live in a process-wide registry keyed by id, so a
browser reload, or a second tab, finds the job still running.

Example:
    >>> job = start_job("eval-1", "Evaluating", lambda progress: evaluate(..., progress=progress))
    >>> job.state, job.done, job.total                     # doctest: +SKIP
    ('running', 12, 50)
"""

from __future__ import annotations

import threading
import time
import traceback
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
