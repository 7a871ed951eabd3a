"""Summarization harness: ROUGE-1/2/L/Lsum F-measure x100 (rouge-score, Porter stemming).

Data: JSONL / CSV with text and summary fields (defaults read SAMSum ``dialogue``/``summary``,
XSum ``document``/``summary``, CNN/DM ``article``/``highlights``). Several references per
item: ``--target-field highlights,additional_references`` (ROUGE takes the best).

Options (``--option key=value``): ``detokenize=ptb`` undoes Penn Treebank tokenization
(``-lrb-``, `` `` ``, `` n't``) in texts and references, as CNN/DM's SummEval subset needs;
it is switched on by itself when the file name mentions cnn. ``split=heldout`` keeps only
the SAMSum dialogues the ``smollm2-135m-samsum`` recipe held back from training. ``style=...``,
``min_length=...``, ``max_length=...`` go to :meth:`Summarizer.summarize`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quintet.apps.summarization.api import Summarizer
from quintet.apps.summarization.spec import SAMSUM
from quintet.core import metrics
from quintet.core.data import read_pairs, split_for_task
from quintet.core.progress import ProgressCallback
from quintet.evaluation.protocol import (
    DataOptions,
    EvalItem,
    EvalSet,
    Prediction,
    Scores,
    split_option,
)

HELDOUT_RECIPE = SAMSUM.name  # split=heldout scores what this recipe held back
_PTB = [
    (re.compile(r"-lrb-", re.I), "("),
    (re.compile(r"-rrb-", re.I), ")"),
    (re.compile(r"-lsb-", re.I), "["),
    (re.compile(r"-rsb-", re.I), "]"),
    (re.compile(r"``\s*|\s*''"), '"'),
    (re.compile(r"\s+(n't|'s|'re|'ve|'m|'ll|'d)\b"), r"\1"),
    (re.compile(r"([(\[])\s+"), r"\1"),
    (re.compile(r"\s+([)\]])"), r"\1"),
    (re.compile(r"\s+([.,;:!?%])"), r"\1"),
    (re.compile(r"\$\s+"), "$"),
]


def detokenize_ptb(text: str) -> str:
    """Undo Penn Treebank tokenization (CNN/DM as distributed by SummEval)."""
    for pattern, replacement in _PTB:
        text = pattern.sub(replacement, text)
    return re.sub(r"[ \t]+", " ", text).strip()


class _Predictor:
    def __init__(
        self,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        backend: str = "auto",
    ) -> None:
        self.summarizer = Summarizer(model, backend=backend)
        extra = options.extra
        self.kwargs = {
            "style": extra.get("style", "default"),
            "min_length": extra.get("min_length"),
            "max_length": extra.get("max_length"),
            **decode,
        }
        self.model_name = self.summarizer.model_name
        self.settings = {
            "mode": self.summarizer.mode,
            "chunk_tokens": self.summarizer.chunk_tokens,
            "device": str(self.summarizer.loaded.device),
            "backend": self.summarizer.generator.backend_choice.describe(),
            **{k: v for k, v in self.kwargs.items() if v is not None},
        }

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        def chunks_done(stage: str, done: int, total: int) -> None:
            # The map stage is one output per chunk: the bulk of the work for every text.
            if progress is not None and stage == "chunks":
                progress(done, total)

        texts = [i.inputs["text"] for i in items]
        results = self.summarizer.summarize(texts, progress=chunks_done, **self.kwargs)
        return [
            Prediction(item.id, r.text, {"num_tokens": r.num_tokens, "chunks": r.chunks.count})
            for item, r in zip(items, results, strict=True)
        ]


@functools.lru_cache(maxsize=65536)
def _item_rouge(prediction: str, references: tuple[str, ...]) -> dict[str, float]:
    return metrics.rouge_scores([prediction], [list(references)])


class SummarizationHarness:
    """Evaluates :class:`quintet.apps.summarization.Summarizer` with ROUGE."""

    task = "summarization"
    primary_metric = "rougeL"
    higher_is_better = dict.fromkeys(metrics.ROUGE_TYPES, True)

    def read(self, data: str, options: DataOptions) -> EvalSet:
        target: Any = options.target_field
        if isinstance(target, str) and "," in target:
            target = [t.strip() for t in target.split(",")]
        examples = read_pairs(data, options.text_field, target)
        if split_option(data, options) == "heldout":
            # What the smollm2-135m-samsum recipe held back from training (15%, seed 0).
            config = SAMSUM.config
            _, examples = split_for_task(
                "summarization", examples, config.validation_fraction, config.seed
            )
        ptb = options.extra.get("detokenize") == "ptb" or (
            "detokenize" not in options.extra and "cnn" in Path(data).name.lower()
        )
        fix = detokenize_ptb if ptb else (lambda text: text)
        items = [
            EvalItem(
                ex.id, {"text": fix(ex.source_text)}, [fix(t) for t in ex.targets], "", ex.source
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
        return _Predictor(model, decode, options, backend)

    def score(
        self, run: EvalSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]
    ) -> Scores:
        per_item = [
            _item_rouge(str(p.prediction), tuple(item.references))
            for item, p in zip(items, predictions, strict=True)
        ]
        # rouge-score's corpus figure is the mean over examples: the same as averaging the
        # per-item scores, which are cached so bootstrap resamples cost no re-scoring.
        corpus = {m: sum(row[m] for row in per_item) / len(per_item) for m in metrics.ROUGE_TYPES}
        return Scores(corpus, per_item, {"rouge": metrics.rouge_signature()})


HARNESS = SummarizationHarness()
