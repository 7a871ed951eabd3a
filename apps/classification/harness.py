"""Classification harness: accuracy, macro-F1 (0-100), ECE (0-1), per-class P/R/F1, confusion.

Data (read by :func:`quintet.core.data.read_classification`): CSV / TSV / JSONL with text and label
fields (SST-2's ``sentence``/``label``; AG News as shipped, ``label`` + ``title`` +
``description``; the original header-less AG News CSV, whose class ids 1-4 become World,
Sports, Business, Sci/Tech as its classes.txt says), and TREC ``.label`` files.

Options (``--option key=value``):

- ``granularity=coarse|fine``: TREC labels (default coarse: ABBR, DESC, ENTY, HUM, LOC, NUM);
- ``labels=a,b,c``: zero-shot label names (default: the labels found in the data, renamed by
  ``label_map``);
- ``label_map=0=negative,1=positive``: the data's label ids -> the names the model uses (its
  zero-shot labels or its own ``id2label``); gold labels are renamed before scoring. A
  classifier's own readable names (minilm-l6-sst2's 0/1 -> negative/positive) and, for
  zero-shot on TREC coarse, descriptive names (DESC -> description ...) apply by default;
- ``multi_label=true`` for multi-label data (``a|b`` labels): exact-set accuracy.

Category (the per-category breakdown) is the gold label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from quintet.apps.classification.api import Classifier
from quintet.core import metrics
from quintet.core.data import is_headerless_ag_news, read_classification
from quintet.core.defaults import default_model
from quintet.core.encoders import encoder_backend
from quintet.core.models import load
from quintet.core.progress import ProgressCallback
from quintet.evaluation.protocol import DataOptions, EvalItem, EvalSet, Prediction, Scores

# Words a zero-shot model can match TREC's coarse codes with (Li & Roth 2002's class names).
TREC_COARSE_NAMES = {
    "ABBR": "abbreviation",
    "DESC": "description",
    "ENTY": "entity",
    "HUM": "person",
    "LOC": "location",
    "NUM": "number",
}
AG_NEWS_IDS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


def parse_label_map(raw: Any) -> dict[str, str]:
    """``"a=x,b=y"`` or a dict -> ``{"a": "x", "b": "y"}``."""
    if not raw:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    pairs = [part.split("=", 1) for part in str(raw).split(",") if "=" in part]
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass
class ClassificationSet(EvalSet):
    """The items and how their gold labels are named for scoring.

    ``gold_map``: data label -> the name the model uses (``label_map``, AG News ids); the
    opened model adds its own names, which come back through :meth:`restore`.
    """

    data_labels: list[str] = field(default_factory=list)
    trec: bool = False
    gold_map: dict[str, str] = field(default_factory=dict)


class _Predictor:
    def __init__(self, classifier, multi: bool) -> None:
        self.classifier = classifier
        self.multi = multi
        self.model_name = classifier.model_name
        self.settings = {
            "mode": classifier.mode,
            "labels": classifier.label_set(),
            "temperature": classifier.temperature,
            "multi_label": classifier.multi_label,
            "device": str(classifier.loaded.device),
            "backend": classifier.backend_choice.describe(),
        }

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        del progress  # one encoder pass per batch: the batch is the unit of progress
        results = self.classifier.classify([item.inputs["text"] for item in items])
        return [
            Prediction(
                item.id,
                "|".join(r.labels) if self.multi else r.label,
                {"confidence": r.score, "scores": r.scores},
            )
            for item, r in zip(items, results, strict=True)
        ]


class ClassificationHarness:
    """Evaluates :class:`quintet.apps.classification.Classifier` on labelled texts."""

    task = "classification"
    primary_metric = "accuracy"
    higher_is_better = {"accuracy": True, "macro_f1": True, "ece": False}

    def read(self, data: str, options: DataOptions) -> ClassificationSet:
        extra = options.extra
        multi = bool(extra.get("multi_label", False))
        label_field = options.label_field
        trec = Path(data).suffix.lower() == ".label"
        if trec:
            label_field = str(extra.get("granularity") or label_field or "coarse")
        examples = read_classification(data, options.text_field, label_field, multi_label=multi)
        data_labels = sorted({x for ex in examples for x in ex.labels})
        gold_map = parse_label_map(extra.get("label_map"))
        original_ag_news = Path(data).suffix.lower() == ".csv" and is_headerless_ag_news(data)
        if not gold_map and set(data_labels) <= set(AG_NEWS_IDS) and original_ag_news:
            gold_map = dict(AG_NEWS_IDS)  # the original CSV: ids per classes.txt
        items = [
            EvalItem(
                ex.id or str(i + 1),
                {"text": ex.text},
                list(ex.labels),
                "|".join(ex.labels),
                ex.source,
            )
            for i, ex in enumerate(examples)
        ]
        return ClassificationSet(items, self.primary_metric, data_labels, trec, gold_map)

    def open(
        self,
        run: ClassificationSet,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        backend: str = "auto",
    ) -> _Predictor:
        extra = options.extra
        multi = bool(extra.get("multi_label", False))
        name = model or default_model("classification").name
        loaded = load(name)
        has_own_labels = loaded.kind == "sequence-classification" and not any(
            str(v).lower() == "entailment" for v in (loaded.config.id2label or {}).values()
        )
        labels = None
        gold_map = dict(run.gold_map)  # a copy: the run itself is never changed here
        if not has_own_labels:
            labels = extra.get("labels")
            if not labels:
                if run.trec and not gold_map and set(run.data_labels) <= set(TREC_COARSE_NAMES):
                    gold_map = dict(TREC_COARSE_NAMES)
                labels = [gold_map.get(x, x) for x in run.data_labels]
        classifier = Classifier(
            loaded,
            labels=labels,
            multi_label=multi or None,
            backend=encoder_backend(backend, loaded),
        )
        if has_own_labels:
            for raw, shown in classifier.label_names.items():
                gold_map.setdefault(raw, shown)
        predictor = _Predictor(classifier, multi)
        # How gold labels are named for this model: restore() puts it into the run.
        predictor.settings["label_map"] = gold_map
        return predictor

    def restore(self, run: ClassificationSet, settings: dict[str, Any]) -> ClassificationSet:
        """``run`` with the label names the opened model used (its settings' ``label_map``)."""
        if "label_map" not in settings:
            return run
        return replace(run, gold_map=parse_label_map(settings["label_map"]))

    def score(
        self,
        run: ClassificationSet,
        items: Sequence[EvalItem],
        predictions: Sequence[Prediction],
    ) -> Scores:
        gold_map = run.gold_map
        golds = ["|".join(gold_map.get(x, x) for x in item.references) for item in items]
        preds = [str(p.prediction) for p in predictions]
        labels = sorted(set(golds) | set(preds))
        confidences = [float(p.extra.get("confidence", 1.0)) for p in predictions]
        correct = [p == g for p, g in zip(preds, golds, strict=True)]
        result = {
            "accuracy": metrics.accuracy(preds, golds),
            # Macro over the gold labels: a label only ever predicted (never gold) would
            # otherwise add a zero and punish a model for one stray guess.
            "macro_f1": metrics.macro_f1(preds, golds, sorted(set(golds))),
            "ece": metrics.expected_calibration_error(confidences, correct),
        }
        per = metrics.per_class(preds, golds, labels)
        columns = ("precision", "recall", "f1", "support")
        rows = [[label, *(round(per[label][c], 2) for c in columns)] for label in labels]
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for p, g in zip(preds, golds, strict=True):
            matrix[index[g]][index[p]] += 1
        sections = {
            "per_class": {
                "kind": "table",
                "title": "Per class (precision, recall, F1 x100; support = gold count)",
                "columns": ["label", *columns],
                "rows": rows,
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
        signatures = {
            "accuracy": "exact label match, x100",
            "macro_f1": "unweighted mean of per-gold-label F1 (sklearn average='macro'), x100",
            "ece": "expected calibration error of the top label, 10 equal-width bins, 0-1",
        }
        return Scores(result, per_item, signatures, sections)


HARNESS = ClassificationHarness()
