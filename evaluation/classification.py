"""Classification harness: accuracy, macro-F1, per-class P/R/F1, ECE, confusion matrix.

Data: CSV / TSV / JSONL with text and label fields (SST-2, AG News as shipped) and TREC
``.label`` files (coarse labels by default, ``--label-field fine`` for fine ones).

Options (``--option key=value``):

- ``labels=a,b,c``: zero-shot label names (default: the labels found in the data);
- ``label_map=DESC=description,HUM=person``: rename data labels before scoring and
  zero-shot prompting (the names a zero-shot model sees should be words);
- ``multi_label=true`` for multi-label data (``a|b`` labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.data import read_classification
from evaluation import metrics
from evaluation.protocol import DataOptions, EvalItem, Prediction, Scores


def _label_map(options: DataOptions) -> dict[str, str]:
    raw = options.extra.get("label_map") or {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    pairs = [part.split("=", 1) for part in str(raw).split(",") if "=" in part]
    return {k.strip(): v.strip() for k, v in pairs}


class _Predictor:
    def __init__(self, model: str | None, labels: list[str] | None, multi: bool) -> None:
        from apps.classification import Classifier
        from core.models import load

        name = model
        if name is None:
            from core.defaults import default_model

            name = default_model("classification").name
        kind = load(name).kind
        zero_shot = labels if kind != "sequence-classification" else None
        self.classifier = Classifier(name, labels=zero_shot, multi_label=multi or None)
        self.model_name = self.classifier.model_name
        self.settings = {
            "mode": self.classifier.mode,
            "labels": self.classifier.label_set(),
            "device": str(self.classifier.loaded.device),
        }

    def predict(self, items: Sequence[EvalItem]) -> list[Prediction]:
        results = self.classifier.classify([item.inputs["text"] for item in items])
        return [
            Prediction(
                item.id,
                list(r.labels) if self.classifier.multi_label else r.label,
                {"confidence": r.score, "scores": r.scores},
            )
            for item, r in zip(items, results, strict=True)
        ]


class ClassificationHarness:
    """Evaluates :class:`apps.classification.Classifier` on labelled texts."""

    task = "classification"
    primary_metric = "accuracy"
    higher_is_better = {"accuracy": True, "macro_f1": True, "ece": False}

    def __init__(self) -> None:
        self._data_labels: list[str] = []

    def read(self, data: str, options: DataOptions) -> list[EvalItem]:
        multi = bool(options.extra.get("multi_label", False))
        examples = read_classification(
            data, options.text_field, options.label_field, multi_label=multi
        )
        mapping = _label_map(options)
        self._data_labels = sorted({mapping.get(x, x) for ex in examples for x in ex.labels})
        return [
            EvalItem(
                ex.id or str(i + 1),
                {"text": ex.text},
                [mapping.get(label, label) for label in ex.labels],
                mapping.get(ex.labels[0], ex.labels[0]) if not multi else "",
                ex.source,
            )
            for i, ex in enumerate(examples)
        ]

    def open(self, model: str | None, decode: dict[str, Any], options: DataOptions) -> _Predictor:
        labels = options.extra.get("labels")
        if isinstance(labels, str):
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        # Zero-shot without labels=: the labels of the data last read (the runner always
        # reads before it opens).
        labels = labels or self._data_labels
        return _Predictor(model, labels, bool(options.extra.get("multi_label", False)))

    def score(self, items: Sequence[EvalItem], predictions: Sequence[Prediction]) -> Scores:
        golds = [item.references[0] for item in items]
        preds = [
            p.prediction if isinstance(p.prediction, str) else "|".join(p.prediction)
            for p in predictions
        ]
        labels = sorted(set(golds) | set(preds))
        confidences = [float(p.extra.get("confidence", 1.0)) for p in predictions]
        correct = [p == g for p, g in zip(preds, golds, strict=True)]
        result = {
            "accuracy": metrics.accuracy(preds, golds),
            "macro_f1": metrics.macro_f1(preds, golds, sorted(set(golds))),
            "ece": metrics.expected_calibration_error(confidences, correct),
        }
        per = metrics.per_class(preds, golds, labels)
        columns = ("precision", "recall", "f1", "support")
        table_rows = [[label, *(per[label][c] for c in columns)] for label in labels]
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for p, g in zip(preds, golds, strict=True):
            matrix[index[g]][index[p]] += 1
        sections = {
            "per_class": {
                "kind": "table",
                "title": "Per class",
                "columns": ["label", "precision", "recall", "f1", "support"],
                "rows": table_rows,
            },
            "confusion_matrix": {
                "kind": "confusion_matrix",
                "title": "Confusion matrix",
                "labels": labels,
                "matrix": matrix,
            },
        }
        per_item = [
            {"accuracy": 100.0 * c, "confidence": conf}
            for c, conf in zip(correct, confidences, strict=True)
        ]
        return Scores(result, per_item, {"ece": "10 equal-width bins, 0-1 scale"}, sections)


HARNESS = ClassificationHarness()
