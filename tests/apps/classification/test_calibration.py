"""Temperature scaling: fitted on labelled data, it lowers NLL and ECE on held-out data."""

from __future__ import annotations

import numpy as np
import pytest

from quintet.apps.classification import Classifier, calibration
from quintet.core.data import read_classification
from quintet.core.models import load

AG_NEWS = "data/classification/ag_news/test_1000.csv"


def test_fit_temperature_fixes_over_confidence() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    targets = rng.integers(0, k, n)
    # Logits of a 70%-accurate classifier, scaled up 5x: far too sure of itself.
    logits = rng.normal(0, 1, (n, k))
    right = rng.random(n) < 0.7
    logits[np.arange(n), np.where(right, targets, (targets + 1) % k)] += 2.0
    fit = calibration.fit_temperature(logits * 5, targets)
    assert 3 < fit.temperature < 8
    assert fit.nll_after < fit.nll_before and fit.ece_after < fit.ece_before / 3
    # The fit is the NLL minimum: nudging T either way does not help.
    for t in (fit.temperature * 0.9, fit.temperature * 1.1):
        assert calibration.nll(logits * 5, targets, t) >= fit.nll_after


def test_calibration_helps_held_out_real_zero_shot(real_store) -> None:
    examples = read_classification(AG_NEWS)[:240]
    texts, gold = [e.text for e in examples], [e.labels[0] for e in examples]
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    # The default cosine scale (0.05) is already close to calibrated on AG News (the fit
    # lands near T = 1); start from an over-confident scale, as a user's guess might be.
    clf = Classifier("minilm-l6", labels=labels, device="cpu", temperature=0.25)
    held_logits = clf.logits(texts[120:])
    held_targets = clf.targets(gold[120:])
    before_nll = calibration.nll(held_logits, held_targets, clf.temperature)
    before_ece = calibration.ece(held_logits, held_targets, clf.temperature)
    fit = clf.calibrate(texts[:120], gold[:120], save=False)
    assert fit.nll_after < fit.nll_before
    assert clf.temperature == fit.temperature and 0.5 < fit.temperature < 2.5
    assert calibration.nll(held_logits, held_targets, clf.temperature) < before_nll
    assert calibration.ece(held_logits, held_targets, clf.temperature) < before_ece
    # Accuracy is untouched: the temperature never changes the winning label.
    assert (held_logits / fit.temperature).argmax(1).tolist() == held_logits.argmax(1).tolist()


def test_a_stored_fit_is_used_by_the_next_classifier(real_store, tmp_home) -> None:
    loaded = load("minilm-l6", device="cpu", store=real_store)
    clf = Classifier(loaded, labels=["sports", "business"])
    assert clf.temperature == 1.0 and clf.calibration is None
    fit = clf.calibrate(["The striker scored", "Shares fell", "A late goal won it",
                         "Profits rose"], ["sports", "business", "sports", "business"])  # fmt: skip
    again = Classifier(loaded, labels=["sports", "business"])
    assert again.temperature == pytest.approx(fit.temperature)
    other_labels = Classifier(loaded, labels=["sports", "politics"])
    assert other_labels.temperature == 1.0  # a fit belongs to its label set
    assert Classifier(loaded, labels=["sports", "business"], temperature=2.0).temperature == 2.0
