"""quintet.core.cluster on a real local Ray cluster: order, identical outputs, errors, a crashed
actor.

The batch functions here are real (minilm-l6 classifying, or plain Python where the test is
about Ray itself); the crash is a real ``os._exit`` of a real actor process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from quintet.core.cluster import ClusterError, ClusterOptions, run_batches
from quintet.core.errors import ModelNotFoundError

TWO = ClusterOptions(workers=2)
TEXTS = [
    "a joy to watch from start to finish",
    "dull and lifeless",
    "the striker scored twice in the final",
    "shares fell after the earnings report",
] * 10


@dataclass(frozen=True)
class Classify:
    """Builds minilm-l6 zero-shot once per actor (the model name travels, not the model)."""

    model: str = "minilm-l6"

    def __call__(self):
        from quintet.apps.classification import Classifier

        classifier = Classifier(self.model, labels=["positive", "negative", "sports", "money"])
        return lambda texts: [(r.label, r.scores) for r in classifier.classify(texts)]


@dataclass(frozen=True)
class Double:
    """Plain Python: doubles numbers, fails on ``bad``, and (once, when ``crash_marker``
    exists) kills its own process on ``crash_on``: the marker is removed first, so the
    restarted actor gets through."""

    bad: int | None = None
    crash_on: int | None = None
    crash_marker: str = ""

    def __call__(self):
        def run(rows: list[int]) -> list[tuple[int, int]]:
            if self.bad in rows:
                raise ValueError(f"row {self.bad} is bad")
            if self.crash_on in rows and os.path.exists(self.crash_marker):
                os.remove(self.crash_marker)
                os._exit(1)  # a real crash: the actor process dies mid-batch
            return [(row * 2, os.getpid()) for row in rows]

        return run


def test_real_model_results_equal_local_in_input_order(ray_cluster, real_store) -> None:
    batches = [TEXTS[i : i + 6] for i in range(0, len(TEXTS), 6)]
    local = Classify()()
    expected = [local(batch) for batch in batches]
    seen = list(run_batches(batches, Classify(), TWO))
    assert [batch for batch, _ in seen] == batches  # in input order, batches unchanged
    # Same labels, and the same probabilities up to float rounding: an actor runs its
    # encoder on one thread, this process on two, and a row's products are summed in
    # another order (rows no longer share a batch, so nothing else moves them).
    results = [result for _, result in seen]
    assert [[label for label, _ in batch] for batch in results] == [
        [label for label, _ in batch] for batch in expected
    ]
    for got, want in zip(results, expected, strict=True):
        for (_, got_scores), (_, want_scores) in zip(got, want, strict=True):
            assert got_scores == pytest.approx(want_scores, abs=1e-5)


def test_a_crashed_actor_is_retried_and_an_error_stops_in_order(
    ray_cluster, tmp_path: Path
) -> None:
    marker = tmp_path / "crash-once"
    marker.write_text("")
    batches = [[i] for i in range(12)]
    delivered = []
    with pytest.raises(ValueError, match="row 9 is bad"):
        for batch, result in run_batches(
            batches, Double(bad=9, crash_on=4, crash_marker=str(marker)), TWO
        ):
            delivered.append((batch, result))
    assert not marker.exists()  # the actor holding batch 4 died, and was restarted
    # Every batch before the bad one arrived once, in order (batch 4 retried), none after.
    assert [batch for batch, _ in delivered] == batches[:9]
    assert [result[0][0] for _, result in delivered] == [2 * i for i in range(9)]


def test_a_factory_error_is_the_local_error(ray_cluster, real_store) -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        list(run_batches([["a text"]], Classify("no-such-model"), TWO))


def test_a_cluster_too_small_is_one_line(ray_cluster) -> None:
    with pytest.raises(ClusterError, match="--workers 3 needs 3 CPU"):
        list(run_batches([[1]], Double(), ClusterOptions(workers=3)))
    with pytest.raises(ClusterError, match="has 0 GPU"):
        list(run_batches([[1]], Double(), ClusterOptions(workers=1, gpus_per_worker=1)))
    with pytest.raises(ClusterError, match="--workers must be at least 1"):
        list(run_batches([[1]], Double(), ClusterOptions(workers=0)))


def test_no_batches_starts_nothing() -> None:
    assert list(run_batches([], Double(), ClusterOptions(address="127.0.0.1:1"))) == []
