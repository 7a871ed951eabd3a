"""Text classification app: fine-tuned classifiers, zero-shot labels, calibration."""

from apps.classification.api import Classification, ClassificationError, Classifier
from apps.classification.calibration import Calibration

__all__ = ["Calibration", "Classification", "ClassificationError", "Classifier"]
