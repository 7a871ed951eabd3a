"""Text classification app: fine-tuned classifiers, zero-shot labels, calibration.

The names below load on first use (PEP 562), so that importing a sub-module such as
``apps.classification.cli`` (for ``quintet --help``) does not import the app, and torch, with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes

if TYPE_CHECKING:
    from apps.classification.api import Classification, ClassificationError, Classifier
    from apps.classification.calibration import Calibration

_HOMES = {
    "Calibration": "apps.classification.calibration",
    "Classification": "apps.classification.api",
    "ClassificationError": "apps.classification.api",
    "Classifier": "apps.classification.api",
}

__all__ = ["Calibration", "Classification", "ClassificationError", "Classifier"]


__getattr__ = lazy_attributes(__name__, _HOMES)
