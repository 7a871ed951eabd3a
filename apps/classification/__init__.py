"""Text classification app: fine-tuned classifiers, zero-shot labels, calibration.

The names below load on first use (PEP 562), so that importing a sub-module such as
``quintet.apps.classification.cli`` (for ``quintet --help``) does not import the app, and torch,
with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quintet.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from quintet.apps.classification.api import Classification, ClassificationError, Classifier
    from quintet.apps.classification.calibration import Calibration

_HOMES = {
    "Calibration": "quintet.apps.classification.calibration",
    "Classification": "quintet.apps.classification.api",
    "ClassificationError": "quintet.apps.classification.api",
    "Classifier": "quintet.apps.classification.api",
}

__all__ = ["Calibration", "Classification", "ClassificationError", "Classifier"]


__getattr__ = lazy_attributes(__name__, _HOMES)
