"""Text classification app: fine-tuned classifiers and zero-shot labels."""

from apps.classification.api import Classification, ClassificationError, Classifier

__all__ = ["Classification", "ClassificationError", "Classifier"]
