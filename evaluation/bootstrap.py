"""Bootstrap confidence intervals and paired significance, by resampling items.

Each resample draws ``n`` item indices with replacement and rescores them with the task's
own corpus metric (so BLEU stays corpus BLEU). Resampling stops early at a time cap, and
the report says how many resamples were used.

Rescoring a resample with :meth:`TaskHarness.score` is exact but can be slow (sacreBLEU
re-tokenizes every segment). A harness may therefore offer ``resampler(run, items,
predictions)`` returning a :data:`Scorer` that gives the same corpus metrics from statistics
computed once:
:func:`sacrebleu_resampler` does this for BLEU/chrF/TER (sums of per-segment sufficient
statistics, exactly what ``corpus_score`` sums), :func:`mean_resampler` for metrics that are
means of per-item values (SQuAD EM/F1, ROUGE). :func:`make_scorer` picks the fast path when
the harness has one; without one it finds these two cases itself (per-item means; sacreBLEU
metrics rebuilt from their signatures) and uses them only after checking that they give
exactly what rescoring gives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Scorer = Callable[[Sequence[int]], dict[str, float]]
"""Corpus metrics of the items at the given indices (indices may repeat)."""

# Below this many resamples an interval is too rough to report, whatever the time cap.
MIN_RESAMPLES = 20


def make_scorer(
    harness: Any,
    run: Any,
    items: Sequence[Any],
    predictions: Sequence[Any],
    scores: Any = None,
) -> Scorer:
    """The fastest exact :data:`Scorer` the harness offers for these items.

    ``run`` is the :class:`quintet.evaluation.protocol.EvalSet` the items come from. In order:
    ``harness.resampler(run, items, predictions)`` when the harness defines it (and it
    does not return None); else, when every metric is the mean of the per-item value of the
    same name (SQuAD EM/F1, ROUGE), averaging those, after checking on two resamples that
    this gives what rescoring gives; else rescoring the resampled items with
    ``harness.score``. ``scores`` is the harness's score of all items, if already computed.
    """
    fast = getattr(harness, "resampler", None)
    scorer = fast(run, items, predictions) if callable(fast) else None
    if scorer is not None:
        return scorer

    def rescore(idx: Sequence[int]) -> dict[str, float]:
        picked = [items[i] for i in idx], [predictions[i] for i in idx]
        return harness.score(run, *picked).metrics

    scores = scores or harness.score(run, items, predictions)
    fast = _means_if_exact(rescore, scores, len(items)) or _sacrebleu_if_exact(
        items, predictions, scores
    )
    return fast or rescore


def _means_if_exact(rescore: Scorer, scores: Any, n: int) -> Scorer | None:
    """A :func:`mean_resampler` if every metric provably behaves as a per-item mean."""
    per_item, metrics = scores.per_item, scores.metrics
    names = [m for m in metrics if _finite(metrics[m])]
    if n < 2 or len(per_item) != n or not names:
        return None
    if not all(all(_finite(row.get(m)) for row in per_item) for m in names):
        return None
    means = mean_resampler(per_item, names)
    checks = [list(range(n)), *_resamples(n, 2, seed=12345).tolist()]
    for idx in checks:
        exact, quick = rescore(idx), means(idx)
        if any(not _close(exact.get(m), quick[m]) for m in names):
            return None
    return means


def _sacrebleu_if_exact(
    items: Sequence[Any], predictions: Sequence[Any], scores: Any
) -> Scorer | None:
    """A :func:`sacrebleu_resampler` when every metric is a sacreBLEU metric.

    The metric objects are rebuilt from the signatures the harness reported; they are used
    only if they print the same signatures and give the same corpus scores on all items, so
    a harness that prepared its inputs differently simply gets rescoring.
    """
    named = {}
    for name, value in scores.metrics.items():
        metric = _sacrebleu_metric(scores.signatures.get(name, ""))
        if metric is None or not _finite(value):
            return None
        named[name] = metric
    if len(items) < 2 or not named:
        return None
    refs = [[r] if isinstance(r, str) else list(r or []) for r in (i.references for i in items)]
    if not all(refs) or not all(isinstance(r, str) for row in refs for r in row):
        return None
    width = max(len(row) for row in refs)
    # Fewer references on a line: its first one repeated (as the translation harness does).
    streams = [[row[min(k, len(row) - 1)] for row in refs] for k in range(width)]
    hyps = [str(p.prediction) for p in predictions]
    try:
        scorer = sacrebleu_resampler(named, hyps, streams)
        again = scorer(list(range(len(items))))
        # The statistics set nrefs, so the signatures are complete now.
        same = all(
            metric.get_signature().format() == scores.signatures[name]
            and _close(again[name], scores.metrics[name])
            for name, metric in named.items()
        )
    except Exception:  # noqa: BLE001 - any trouble: rescoring is always exact
        return None
    return scorer if same else None


def _sacrebleu_metric(signature: str) -> Any:
    """A sacreBLEU BLEU / CHRF / TER object that prints ``signature``, or None."""
    fields = dict(part.split(":", 1) for part in signature.split("|") if ":" in part)
    if "version" not in fields or "nrefs" not in fields:
        return None
    try:
        from sacrebleu.metrics import BLEU, CHRF, TER

        if "smooth" in fields:
            method, _, value = fields["smooth"].partition("[")
            metric = BLEU(
                lowercase=fields.get("case") == "lc",
                effective_order=fields.get("eff") == "yes",
                tokenize=fields.get("tok"),
                smooth_method=method,
                smooth_value=float(value.rstrip("]")) if value else None,
            )
        elif "nc" in fields:
            metric = CHRF(
                char_order=int(fields["nc"]),
                word_order=int(fields["nw"]),
                whitespace=fields.get("space") == "yes",
                lowercase=fields.get("case") == "lc",
                eps_smoothing=fields.get("eff") == "no",
            )
        elif "asian" in fields:
            metric = TER(
                case_sensitive=fields.get("case") == "mixed",
                normalized=fields.get("norm") == "yes",
                no_punct=fields.get("punct") == "no",
                asian_support=fields.get("asian") == "yes",
            )
        else:
            return None
    except Exception:  # noqa: BLE001 - an unknown tokenizer etc.: not rebuildable
        return None
    return metric


def _close(a: Any, b: float) -> bool:
    return _finite(a) and abs(a - b) <= 1e-9 * max(1.0, abs(a))


def sacrebleu_resampler(
    named: dict[str, Any], hyps: Sequence[str], ref_streams: Sequence[Sequence[str]]
) -> Scorer:
    """A scorer for sacreBLEU metrics from per-segment sufficient statistics.

    ``named`` maps a metric name to a configured sacreBLEU metric object (``BLEU()``,
    ``CHRF()``, ``TER()``). The statistics of every segment are extracted once; a resample's
    score is the metric computed from the summed statistics of its segments, which is how
    ``corpus_score`` itself works, so the numbers are identical to rescoring.

    Example::

        >>> from sacrebleu.metrics import BLEU
        >>> score = sacrebleu_resampler({"bleu": BLEU()}, ["a b c d"], [["a b c d"]])
        >>> round(score([0, 0])["bleu"], 1)
        100.0
    """
    stats = {
        name: (metric, np.asarray(metric._extract_corpus_statistics(list(hyps), ref_streams)))
        for name, metric in named.items()
    }

    def score(idx: Sequence[int]) -> dict[str, float]:
        rows = np.asarray(idx, dtype=np.int64)
        return {
            name: float(metric._compute_score_from_stats(list(table[rows].sum(axis=0))).score)
            for name, (metric, table) in stats.items()
        }

    return score


def mean_resampler(per_item: Sequence[dict[str, float]], names: Sequence[str]) -> Scorer:
    """A scorer for metrics that are the mean of a per-item value (times nothing: pass the
    per-item values on the metric's own scale, e.g. EM as 0 or 100)."""
    table = np.asarray([[float(row[name]) for name in names] for row in per_item])

    def score(idx: Sequence[int]) -> dict[str, float]:
        means = table[np.asarray(idx, dtype=np.int64)].mean(axis=0)
        return {name: float(value) for name, value in zip(names, means, strict=True)}

    return score


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
        if time.perf_counter() > deadline and used >= MIN_RESAMPLES:
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
            # A metric a resample cannot compute (NaN, missing) does not count for or against.
            if _finite(a.get(m)) and _finite(b.get(m)):
                deltas[m].append(b[m] - a[m])
        used += 1
        if time.perf_counter() > deadline and used >= MIN_RESAMPLES:
            break
    result = {}
    for m in metrics:
        d = np.asarray(deltas[m])
        if not (len(d) and _finite(observed_a.get(m)) and _finite(observed_b.get(m))):
            continue
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


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
