"""Extractive QA harness: SQuAD exact match and F1 (official v1.1 normalisation, 0-100).

Data: the official SQuAD JSON format, or JSONL with ``context`` / ``question`` / ``answers``
(``answers``: SQuAD's ``{"text": [...], "answer_start": [...]}`` or a list of texts).

Options (``--option key=value``):

- ``split=heldout``: only the articles the ``minilm-l6-squad`` recipe held back from training
  (split by article title with the recipe's validation fraction and seed: the same call as
  the fine-tuning engine), so that recipe model is scored on questions it never saw;
- ``allow_no_answer=true`` and ``threshold=0.0``: SQuAD v2 style no-answer decisions;
- ``max_length=384``, ``doc_stride=128``: the window and overlap, in tokens (span models).

Category (the per-category breakdown) is the article title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.apps.qa.api import QuestionAnswerer
from quintet.apps.qa.spec import SQUAD
from quintet.core import metrics
from quintet.core.data import read_qa, split_for_task
from quintet.core.defaults import default_model
from quintet.core.encoders import encoder_backend
from quintet.core.models import load
from quintet.core.progress import ProgressCallback
from quintet.evaluation.protocol import (
    DataOptions,
    EvalItem,
    EvalSet,
    Prediction,
    Scores,
    split_option,
)

HELDOUT_RECIPE = SQUAD.name  # split=heldout scores what this recipe held back


class _Predictor:
    def __init__(self, model: str | None, options: DataOptions, backend: str = "auto") -> None:
        sizes = {
            k: int(options.extra[k]) for k in ("max_length", "doc_stride") if k in options.extra
        }
        loaded = load(model or default_model("qa").name)
        if loaded.kind == "span":  # an encoder: the run's engine choice as encoders read it
            backend = encoder_backend(backend, loaded)
        self.qa = QuestionAnswerer(loaded, backend=backend, **sizes)
        self.allow_no_answer = bool(options.extra.get("allow_no_answer", False))
        self.threshold = float(options.extra.get("threshold", 0.0))
        self.model_name = self.qa.model_name
        self.settings = {
            "mode": self.qa.mode,
            "max_length": self.qa.max_length,
            "doc_stride": self.qa.doc_stride,
            "device": str(self.qa.loaded.device),
            "allow_no_answer": self.allow_no_answer,
            "backend": self.qa.backend_choice.describe() if self.qa.backend_choice else None,
        }

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        del progress  # one encoder pass per batch: the batch is the unit of progress
        pairs = [(item.inputs["question"], item.inputs["context"]) for item in items]
        answers = self.qa.answer_many(
            pairs, allow_no_answer=self.allow_no_answer, no_answer_threshold=self.threshold
        )
        return [
            Prediction(
                item.id,
                best[0].text,
                {
                    "start": best[0].start,
                    "end": best[0].end,
                    "probability": best[0].probability,
                    "window": best[0].window,
                    **({"generated": best[0].generated} if best[0].generated else {}),
                },
            )
            for item, best in zip(items, answers, strict=True)
        ]


class QAHarness:
    """Evaluates :class:`quintet.apps.qa.QuestionAnswerer` on SQuAD-style data."""

    task = "qa"
    primary_metric = "f1"
    higher_is_better = {"exact_match": True, "f1": True}

    def read(self, data: str, options: DataOptions) -> EvalSet:
        examples = read_qa(data)
        if split_option(data, options) == "heldout":
            config = SQUAD.config
            _, examples = split_for_task("qa", examples, config.validation_fraction, config.seed)
        items = [
            EvalItem(
                ex.id,
                {"question": ex.question, "context": ex.context},
                [a.text for a in ex.answers],
                ex.title,
                ex.source,
            )
            for ex in examples
        ]
        return EvalSet(items, self.primary_metric)

    def open(
        self,
        run: EvalSet,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        backend: str = "auto",
    ) -> _Predictor:
        return _Predictor(model, options, backend)

    def score(
        self, run: EvalSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]
    ) -> Scores:
        # Per question, then the mean: exactly the official script's average (it scores each
        # question and divides by the count). Lists, not dicts keyed by id, so a bootstrap
        # resample that draws a question twice counts it twice.
        per_item = [
            {
                "exact_match": 100.0 * metrics.squad_exact_match(p.prediction, list(i.references)),
                "f1": 100.0 * metrics.squad_f1(p.prediction, list(i.references)),
            }
            for i, p in zip(items, predictions, strict=True)
        ]
        n = len(per_item)
        result = {m: sum(row[m] for row in per_item) / n for m in ("exact_match", "f1")}
        signature = "SQuAD v1.1 evaluate-v1.1.py normalisation; max over gold answers; x100"
        return Scores(result, per_item, {"exact_match": signature, "f1": signature})


HARNESS = QAHarness()
