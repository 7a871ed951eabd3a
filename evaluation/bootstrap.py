"""Bootstrap confidence intervals and paired significance, by resampling items.

Each resample draws ``n`` item indices with replacement and rescores them with the task's
own corpus metric (so BLEU stays corpus BLEU). Resampling stops early at a time cap, and
the report says how many resamples were used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

Scorer = Callable[[Sequence[int]], dict[str, float]]


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_intervals(
    score: Scorer,
    n: int,
    *,
    resamples: int = 1000,
    max_seconds: float = 30.0,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, list[float]], dict[str, float | int]]:
    """Percentile intervals of every metric ``score`` returns.

    Returns ``({metric: [low, high]}, {"resamples": used, "confidence": ...})``; with fewer
    than 2 items or 0 resamples there are no intervals.
    """
    if n < 2 or resamples <= 0:
        return {}, {"resamples": 0, "confidence": confidence}
    samples: dict[str, list[float]] = {}
    deadline = time.perf_counter() + max_seconds
    used = 0
    for idx in _resamples(n, resamples, seed):
        for name, value in score(idx.tolist()).items():
            if isinstance(value, int | float) and math.isfinite(value):
                samples.setdefault(name, []).append(float(value))
        used += 1
        if time.perf_counter() > deadline and used >= 50:
            break
    tail = (1 - confidence) / 2 * 100
    intervals = {
        name: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))]
        for name, v in samples.items()
    }
    return intervals, {"resamples": used, "confidence": confidence, "seed": seed}


def paired_bootstrap(
    score_a: Scorer,
    score_b: Scorer,
    n: int,
    metrics: Sequence[str],
    *,
    resamples: int = 1000,
    max_seconds: float = 60.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap test of B against A on the same items (Koehn 2004).

    For each metric: the observed difference B - A, its 95% interval, and a two-sided
    p-value: how often the resampled difference lands on the other side of zero (doubled),
    with the +1 correction so p is never exactly 0.
    """
    full = list(range(n))
    observed_a, observed_b = score_a(full), score_b(full)
    deltas: dict[str, list[float]] = {m: [] for m in metrics}
    deadline = time.perf_counter() + max_seconds
    used = 0
    for idx in _resamples(n, resamples, seed):
        a, b = score_a(idx.tolist()), score_b(idx.tolist())
        for m in metrics:
            deltas[m].append(b[m] - a[m])
        used += 1
        if time.perf_counter() > deadline and used >= 50:
            break
    result = {}
    for m in metrics:
        d = np.asarray(deltas[m])
        observed = observed_b[m] - observed_a[m]
        if observed > 0:
            other_side = int((d <= 0).sum())
        elif observed < 0:
            other_side = int((d >= 0).sum())
        else:
            other_side = len(d)
        p = min(1.0, 2 * (other_side + 1) / (len(d) + 1))
        result[m] = {
            "a": observed_a[m],
            "b": observed_b[m],
            "delta": observed,
            "low": float(np.percentile(d, 2.5)),
            "high": float(np.percentile(d, 97.5)),
            "p_value": p,
            "resamples": used,
        }
    return result
