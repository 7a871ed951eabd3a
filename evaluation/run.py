"""One evaluation's settings, :class:`EvalRun`: what ``quintet eval``, the Evaluation page and
:func:`quintet.evaluation.harness.evaluate` ask for, passed down as one object.

The runner (:mod:`quintet.evaluation.harness`) reads every setting from here, and
:func:`open_predictor` opens a task's app with the run's model, decoding and engine, the
same way in this process and on a Ray actor (:mod:`quintet.evaluation.cluster`). No setting
travels through environment variables.

Example::

    >>> from quintet.evaluation.harness import run_evaluation
    >>> run = EvalRun("classification", "minilm-l6-sst2", "data/classification/sst2/dev.tsv",
    ...               backend="transformers", limit=100, bootstrap=0)
    >>> report = run_evaluation(run)                                    # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quintet.core.config import BACKENDS
from quintet.core.errors import QuintetError
from quintet.core.progress import ProgressCallback
from quintet.core.store import default_home
from quintet.evaluation.protocol import DataOptions, EvalSet, Predictor, TaskHarness

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions


class EvaluationError(QuintetError):
    """An evaluation cannot run as asked (mismatched resume, bad predictions file ...)."""


def check_resamples(resamples: int) -> None:
    """Refuse a negative ``--bootstrap`` count rather than silently drawing none."""
    if resamples < 0:
        raise EvaluationError(
            f"--bootstrap must be 0 (no intervals) or a positive number of resamples "
            f"(got {resamples})"
        )


@dataclass(frozen=True)
class EvalRun:
    """Everything one evaluation is asked to do.

    Args:
        task: translation, summarization, qa, classification or chat.
        model: a model name, hub id or directory; None: the task's default.
        data: a dataset file, ``hf:NAME[:CONFIG]:SPLIT``, or None when ``options`` names
            plain source/reference files (translation).
        backend: the engine every model of the run decodes or encodes on (the chat judge's
            too): ``auto`` (the default choice, which ``$QUINTET_BACKEND`` may pin) or a
            name from :data:`quintet.core.config.BACKENDS`.
        decode: decoding options for generative tasks (``DecodeConfig`` fields).
        options: field names and task options for reading the data.
        limit: evaluate only the first ``limit`` items.
        bootstrap: resamples for the 95% intervals (0: none); capped at
            ``bootstrap_seconds`` of resampling (at least 20 are always drawn).
        bootstrap_seconds: the cap on resampling time.
        cluster: predict on Ray actors (:mod:`quintet.core.cluster`) instead of in this
            process: the same batches, predictions, resume and report.
        out: the run folder (default ``$QUINTET_HOME/eval/<task>-<model>-<data>-<time>``).
            A folder that already holds some predictions of the same run is resumed (only
            the missing items run); one holding another evaluation is refused.
        batch_size: items per call of the app; each finished batch is written at once, so
            a killed run loses at most the batch in flight.
        progress: a tqdm bar (True), nothing (False), or ``callback(done, total)`` called
            after every batch.
        predictions_file: score these predictions instead of running a model: plain text,
            one per line (read as the sacrebleu command line reads a system output), JSONL
            with ``id``/``prediction``, or SQuAD's ``{id: answer}`` JSON.
    """

    task: str
    model: str | None = None
    data: str | None = None
    backend: str = "auto"
    decode: dict[str, Any] = field(default_factory=dict)
    options: DataOptions = field(default_factory=DataOptions)
    limit: int | None = None
    bootstrap: int = 1000
    bootstrap_seconds: float = 30.0
    cluster: ClusterOptions | None = None
    out: str | os.PathLike | None = None
    batch_size: int = 16
    progress: bool | ProgressCallback = True
    predictions_file: str | None = None

    def __post_init__(self) -> None:
        # None means "nothing given" for the two dicts-of-settings, as the old keywords did.
        if self.decode is None:
            object.__setattr__(self, "decode", {})
        if self.options is None:
            object.__setattr__(self, "options", DataOptions())

    @property
    def dataset(self) -> str:
        """The data as named in reports: the ``data`` argument or the translation source."""
        return self.data or self.options.source_file or ""

    def check(self) -> None:
        """One-line errors for settings that cannot run, before any file is read."""
        if self.limit is not None and self.limit < 1:
            raise EvaluationError(f"--limit must be at least 1 (got {self.limit})")
        if self.batch_size < 1:
            raise EvaluationError(f"--batch-size must be at least 1 (got {self.batch_size})")
        check_resamples(self.bootstrap)
        if self.cluster is not None and self.predictions_file is not None:
            raise EvaluationError("--ray runs a model; --predictions scores a file: not both")
        if self.backend not in BACKENDS:
            raise EvaluationError(
                f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}"
            )

    def out_dir(self) -> Path:
        """``out``, or the default run folder named after the task, model and data."""
        if self.out is not None:
            return Path(self.out)
        who = Path(self.predictions_file).stem if self.predictions_file else self.model
        return default_out_dir(self.task, who or "default", self.dataset)

    def for_actor(self) -> EvalRun:
        """This run without what stays in the calling process (the progress callback, which
        may not pickle, and the cluster itself): what a Ray actor needs to open the app."""
        return replace(self, progress=False, cluster=None)


def default_out_dir(task: str, model: str, dataset: str) -> Path:
    """``$QUINTET_HOME/eval/<task>-<model>-<dataset>-<timestamp>``, where a run is written
    when no ``out`` is given."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return default_home() / "eval" / f"{task}-{_slug(model)}-{_slug(dataset)}-{stamp}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(text).name if text else "data").strip("-")[:40]


def open_predictor(harness: TaskHarness, eval_set: EvalSet, run: EvalRun) -> Predictor:
    """``harness.open`` on the run's model, decoding, data options and engine.

    A harness whose ``open`` takes no ``backend`` (a plugin written before it was added) is
    opened as before when the engine is ``auto``; naming an engine for it is an error
    rather than a setting silently ignored.
    """
    if run.backend == "auto":
        return harness.open(eval_set, run.model, dict(run.decode), run.options)
    if not accepts_keyword(harness.open, "backend"):
        raise EvaluationError(
            f"the {harness.task} harness cannot choose an engine: run it with --backend auto"
        )
    return harness.open(eval_set, run.model, dict(run.decode), run.options, backend=run.backend)


def accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` takes ``name=`` (by name or through ``**kwargs``): harness
    plugins written before a keyword was added are called as they were."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
