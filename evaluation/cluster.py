"""``quintet eval --ray``: the prediction loop of :mod:`quintet.evaluation.harness` on Ray actors.

The runner keeps everything else (resume, the log, timing, scoring): this module only
turns "predict these batches" into ordered ``(batch, predictions)`` pairs from
:func:`quintet.core.cluster.run_batches`. Each actor opens the task's app once with
:func:`quintet.evaluation.run.open_predictor` (the run's model, decoding, options and engine);
the harness, the run's settings and its :class:`EvalSet` (what :meth:`TaskHarness.read`
found) travel to it by value.

An empty first batch asks the actor that takes it what it opened (model name and settings),
so the runner can check a resumed run against them before any prediction is written, and
``restore`` the scoring state only the opened model knows, as it does without Ray.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from quintet.core.cluster import ClusterOptions, run_batches
from quintet.evaluation.protocol import EvalItem, EvalSet, Prediction, TaskHarness
from quintet.evaluation.run import EvalRun, open_predictor


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
    run: EvalRun  # EvalRun.for_actor(): no progress callback, no cluster

    def __call__(self):
        predictor = open_predictor(self.harness, self.eval_set, self.run)
        opened = Opened(predictor.model_name, dict(predictor.settings))

        def predict(items: list[EvalItem]) -> list[Prediction] | Opened:
            return predictor.predict(items) if items else opened

        return predict


def predict_on_cluster(
    harness: TaskHarness, eval_set: EvalSet, run: EvalRun, todo: Sequence[EvalItem]
) -> tuple[Opened, Iterator[tuple[list[EvalItem], list[Prediction]]]]:
    """Start ``todo`` on ``run.cluster`` in batches of ``run.batch_size``; returns what the
    actors opened (once the first actor has) and the ``(batch, predictions)`` pairs in order.
    Close the iterator to stop early.
    """
    assert run.cluster is not None, "predict_on_cluster needs a run with cluster options"
    size = run.batch_size
    batches = [[]] + [list(todo[i : i + size]) for i in range(0, len(todo), size)]
    opener = _OpenOnActor(harness, eval_set, run.for_actor())
    results = run_batches(batches, opener, run.cluster)
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
