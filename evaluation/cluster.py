"""``quintet eval --ray``: the prediction loop of :mod:`quintet.evaluation.harness` on Ray actors.

The runner keeps everything else (resume, the log, timing, scoring): this module only
turns "predict these batches" into ordered ``(batch, predictions)`` pairs from
:func:`quintet.core.cluster.run_batches`. Each actor opens the task's app once with
``harness.open(eval_set, model, decode, options)``; the harness and the run's
:class:`EvalSet` (what :meth:`TaskHarness.read` found) travel to it by value.

An empty first batch asks the actor that takes it what it opened (model name and settings),
so the runner can check a resumed run against them before any prediction is written, and
``restore`` the scoring state only the opened model knows, as it does without Ray.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from quintet.core.cluster import ClusterOptions, run_batches
from quintet.evaluation.protocol import DataOptions, EvalItem, EvalSet, Prediction, TaskHarness


@dataclass(frozen=True)
class Opened:
    """What an actor's ``harness.open`` gave: the model it loaded and its settings."""

    model_name: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class _OpenOnActor:
    """The factory each actor calls once: opens the app, returns the batch function."""

    harness: TaskHarness
    eval_set: EvalSet
    model: str | None
    decode: dict[str, Any]
    options: DataOptions

    def __call__(self):
        predictor = self.harness.open(self.eval_set, self.model, self.decode, self.options)
        opened = Opened(predictor.model_name, dict(predictor.settings))

        def predict(items: list[EvalItem]) -> list[Prediction] | Opened:
            return predictor.predict(items) if items else opened

        return predict


def predict_on_cluster(
    harness: TaskHarness,
    eval_set: EvalSet,
    model: str | None,
    decode: dict[str, Any],
    options: DataOptions,
    todo: Sequence[EvalItem],
    batch_size: int,
    cluster: ClusterOptions,
) -> tuple[Opened, Iterator[tuple[list[EvalItem], list[Prediction]]]]:
    """Start ``todo`` on the cluster in batches of ``batch_size``; returns what the actors
    opened (once the first actor has) and the ``(batch, predictions)`` pairs in order.
    Close the iterator to stop early.
    """
    batches = [[]] + [list(todo[i : i + batch_size]) for i in range(0, len(todo), batch_size)]
    opener = _OpenOnActor(harness, eval_set, model, decode, options)
    results = run_batches(batches, opener, cluster)
    try:
        _, opened = next(results)
    except BaseException:
        results.close()
        raise
    return opened, results


def describe(cluster: ClusterOptions) -> str:
    """Where a run went, for the report's ``device``: e.g. ``Ray, 2 workers x 1 CPU``."""
    gpus = f" + {cluster.gpus_per_worker:g} GPU" if cluster.gpus_per_worker else ""
    workers = f"{cluster.workers} worker{'s' if cluster.workers != 1 else ''}"
    return f"Ray, {workers} x {cluster.cpus_per_worker} CPU{gpus}"
