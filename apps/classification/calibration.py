"""Temperature scaling: make a classifier's probabilities mean what they say.

What "calibrated" means here: among the texts a classifier labels with confidence about
0.8, about 80% should be right. Raw scores rarely behave so (fine-tuned networks are
over-confident; zero-shot cosine scores have an arbitrary scale). Temperature scaling (Guo et
al., 2017) divides every logit by one number ``T`` fitted on labelled data by minimising the
negative log-likelihood (NLL) of the gold labels. One parameter: it never changes which label
wins (so accuracy is untouched), only how sure the classifier says it is.

How well it worked is reported as the expected calibration error (ECE, 10 equal-width bins,
0-1 scale, :func:`quintet.core.metrics.expected_calibration_error`) and the NLL, before and
after; measure them on data the temperature was not fitted on to trust them.

A fitted temperature is stored in ``$QUINTET_HOME/calibration/<model>.json``, keyed by model,
mode and label set (a zero-shot temperature depends on the labels), and loaded by the next
:class:`~quintet.apps.classification.Classifier` on the same model and labels; or pass
``temperature=`` yourself.

Example::

    >>> fit = fit_temperature(logits, targets)                              # doctest: +SKIP
    >>> fit.temperature, fit.ece_before, fit.ece_after
    (1.8, 0.071, 0.018)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from quintet.core.errors import ConfigError
from quintet.core.metrics import expected_calibration_error


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and how calibrated the probabilities were before and after."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    n: int

    def summary(self) -> str:
        return (
            f"temperature {self.temperature:.3f} fitted on {self.n} texts: "
            f"ECE {self.ece_before:.4f} -> {self.ece_after:.4f}, "
            f"NLL {self.nll_before:.4f} -> {self.nll_after:.4f}"
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def nll(logits: np.ndarray, targets: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under softmax(logits / T)."""
    p = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    chosen = p[np.arange(len(targets)), np.asarray(targets)]
    return float(-np.mean(np.log(np.clip(chosen, 1e-12, 1.0))))


def ece(logits: np.ndarray, targets: Sequence[int], temperature: float = 1.0) -> float:
    """Expected calibration error (0-1) of softmax(logits / T) against the gold labels."""
    p = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    correct = p.argmax(axis=1) == np.asarray(targets)
    return expected_calibration_error(p.max(axis=1).tolist(), correct.tolist())


def fit_temperature(logits: np.ndarray, targets: Sequence[int]) -> Calibration:
    """The temperature minimising NLL: a log-spaced grid over 0.01-100, then golden-section
    refinement around the best grid point (NLL is smooth and unimodal in log T)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or len(logits) != len(targets) or len(targets) < 2:
        raise ConfigError("calibration needs at least two labelled texts, one logit row each")
    grid = np.linspace(math.log(0.01), math.log(100.0), 121)
    losses = [nll(logits, targets, math.exp(g)) for g in grid]
    best = int(np.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if nll(logits, targets, math.exp(a)) < nll(logits, targets, math.exp(b)):
            hi = b
        else:
            lo = a
    t = math.exp((lo + hi) / 2)
    return Calibration(
        temperature=t,
        ece_before=ece(logits, targets),
        ece_after=ece(logits, targets, t),
        nll_before=nll(logits, targets),
        nll_after=nll(logits, targets, t),
        n=len(targets),
    )


# Storage ---------------------------------------------------------------------------------


def _key(model: str, mode: str, labels: Sequence[str]) -> str:
    return f"{mode}|{'|'.join(labels)}"


def calibration_path(model: str) -> Path:
    from quintet.core.store import default_home

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return default_home() / "calibration" / f"{slug}.json"


def save(model: str, mode: str, labels: Sequence[str], fit: Calibration) -> Path:
    """Keep ``fit`` for this model, mode and label set (atomic write)."""
    path = calibration_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored[_key(model, mode, labels)] = {"model": model, "mode": mode, "labels": list(labels),
                                         **asdict(fit)}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stored, indent=2))
    os.replace(tmp, path)
    return path


def load(model: str, mode: str, labels: Sequence[str]) -> Calibration | None:
    """The stored fit for this model, mode and label set, if any."""
    path = calibration_path(model)
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text()).get(_key(model, mode, labels))
    except (json.JSONDecodeError, OSError):
        return None  # a damaged file is as good as none: the classifier runs uncalibrated
    if not entry:
        return None
    fields = {k: entry[k] for k in Calibration.__dataclass_fields__ if k in entry}
    return Calibration(**fields) if len(fields) == len(Calibration.__dataclass_fields__) else None
