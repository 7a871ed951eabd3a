"""Text classification: ``Classifier(model).classify(texts)``.

Three ways to get label probabilities, picked from the model's kind:

* a fine-tuned sequence classifier (``*ForSequenceClassification``): its own labels, softmax
  (or sigmoid for multi-label models); an NLI model (labels include ``entailment``) with
  user ``labels=`` does zero-shot classification by entailment, as bart-large-mnli;
* a sentence encoder (``minilm-l6``) with user ``labels=``: zero-shot by cosine similarity
  between the text and ``"This text is about {label}."``, softmax at temperature
  :data:`EMBEDDING_TEMPERATURE`;
* an instruct model (``smollm2-135m-instruct``) with user ``labels=``: zero-shot by label
  likelihood: the log-probability of each label as the answer to a classification prompt.

Probabilities are "calibrated" in the sense of temperature scaling: :meth:`Classifier.calibrate`
fits one temperature on labelled data (minimising negative log-likelihood) and reports the
expected calibration error before and after.

Example::

    >>> clf = Classifier("minilm-l6", labels=["sports", "business"])      # doctest: +SKIP
    >>> clf.classify("The striker scored twice in the final.")[0].label
    'sports'
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core.config import ModelSpec
from core.defaults import default_model
from core.errors import ConfigError, QuintetError
from core.models import Loaded, load

EMBEDDING_TEMPERATURE = 0.05  # cosine similarities are close together; sharpen them
NLI_TEMPLATE = "This example is {}."
EMBEDDING_TEMPLATE = "This text is about {}."
_MAX_TOKENS = 512


class ClassificationError(QuintetError):
    """A classification request cannot be served as asked."""


@dataclass(frozen=True)
class Classification:
    """One text's result: the best label, its probability, and every label's probability
    (best first); ``labels`` holds every label over the threshold for multi-label."""

    label: str
    score: float
    scores: dict[str, float]
    labels: tuple[str, ...] = ()
    mode: str = ""


@dataclass
class Calibration:
    """A fitted temperature and the expected calibration error before and after."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    n: int = 0
    extra: dict = field(default_factory=dict)


class Classifier:
    """Classify texts with a fine-tuned classifier or zero-shot with your own labels.

    Args:
        model: a name, hub id or directory; None: the task default
            (:func:`core.defaults.default_model`).
        labels: label names for zero-shot classification (required for encoders and
            instruct models; with an NLI model it switches to entailment).
        multi_label: independent probabilities per label (sigmoid) instead of a softmax.
        label_names: display names for the model's labels, e.g. ``{"0": "negative"}``.
    """

    def __init__(
        self,
        model: str | Loaded | None = None,
        labels: Sequence[str] | None = None,
        *,
        multi_label: bool | None = None,
        label_names: dict[str, str] | None = None,
        device: str = "auto",
        batch_size: int = 32,
        temperature: float = 1.0,
    ) -> None:
        if model is None:
            model = default_model("classification").name
        self.loaded = model if isinstance(model, Loaded) else load(ModelSpec(model, device=device))
        self.labels = _clean_labels(labels) if labels is not None else None
        self.batch_size = batch_size
        self.temperature = temperature
        self.label_names = dict(label_names or {})
        self.mode = self._pick_mode()
        config = self.loaded.config
        self.multi_label = (
            multi_label
            if multi_label is not None
            else getattr(config, "problem_type", None) == "multi_label_classification"
        )
        self._lock = threading.Lock()  # one forward pass at a time per classifier
        self._label_embeddings: torch.Tensor | None = None

    @property
    def model_name(self) -> str:
        return self.loaded.name

    def _pick_mode(self) -> str:
        kind = self.loaded.kind
        if kind == "sequence-classification":
            if self.labels is None:
                return "classifier"
            if self._entailment_id() is not None:
                return "zero-shot-nli"
            raise ClassificationError(
                f"{self.loaded.name} has its own labels "
                f"({', '.join(self.model_labels())}); drop labels= or use an NLI model "
                "(bart-large-mnli) or an encoder (minilm-l6) for your own labels"
            )
        if kind in ("encoder", "causal"):
            if not self.labels:
                raise ClassificationError(
                    f"{self.loaded.name} is a {kind} model without a classification head: "
                    "pass labels=[...] for zero-shot classification, or fine-tune it "
                    "(`quintet finetune classification`)"
                )
            return "zero-shot-embedding" if kind == "encoder" else "zero-shot-likelihood"
        raise ClassificationError(
            f"{self.loaded.name} is a {kind} model: classification needs a sequence "
            "classifier, an NLI model, a sentence encoder or an instruct model"
        )

    def model_labels(self) -> list[str]:
        """The labels the model itself was trained with (fine-tuned classifiers)."""
        id2label = self.loaded.config.id2label or {}
        return [str(id2label[i]) for i in sorted(id2label)]

    def label_set(self) -> list[str]:
        """The labels this classifier chooses between, as shown to users."""
        raw = self.labels if self.mode != "classifier" else self.model_labels()
        return [self.label_names.get(label, label) for label in raw]

    def _entailment_id(self) -> int | None:
        label2id = {str(k).lower(): v for k, v in (self.loaded.config.label2id or {}).items()}
        return label2id.get("entailment")

    # Public API ------------------------------------------------------------------------

    def classify(
        self,
        texts: str | Sequence[str],
        top_k: int | None = None,
        multi_label: bool | None = None,
        threshold: float = 0.5,
    ) -> list[Classification]:
        """Classify each text; one :class:`Classification` per text, in order.

        Args:
            texts: one text or a list.
            top_k: keep only the ``top_k`` most probable labels in ``scores``.
            multi_label: override the classifier's multi-label setting.
            threshold: multi-label: labels at or over it go into ``labels``.

        An empty text cannot be classified: it raises :class:`ClassificationError` naming
        its position.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ClassificationError(f"text {index} is empty: nothing to classify")
        multi = self.multi_label if multi_label is None else multi_label
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k})")
        logits = self.logits(texts)
        probabilities = _probabilities(logits / self.temperature, multi)
        names = self.label_set()
        results = []
        for row in probabilities:
            order = np.argsort(-row)
            kept = order[:top_k] if top_k else order
            scores = {names[i]: float(row[i]) for i in kept}
            best = names[order[0]]
            chosen = tuple(names[i] for i in order if row[i] >= threshold) if multi else (best,)
            results.append(Classification(best, float(row[order[0]]), scores, chosen, self.mode))
        return results

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw scores, one row per text, one column per label (before temperature)."""
        with self._lock, torch.inference_mode():
            if self.mode == "classifier":
                return self._classifier_logits(texts)
            if self.mode == "zero-shot-nli":
                return self._nli_logits(texts)
            if self.mode == "zero-shot-embedding":
                return self._embedding_logits(texts)
            return self._likelihood_logits(texts)

    def calibrate(self, texts: Sequence[str], gold: Sequence[str]) -> Calibration:
        """Fit the temperature on labelled texts (single-label) and keep it.

        Minimises the negative log-likelihood over a log-spaced grid of temperatures
        (0.05-20), a one-parameter fit that cannot change which label wins, only how sure
        the classifier says it is.
        """
        from evaluation.metrics import expected_calibration_error

        names = self.label_set()
        unknown = sorted({g for g in gold if g not in names})
        if unknown:
            raise ClassificationError(
                f"gold labels {unknown} are not among the classifier's labels {names}"
            )
        logits = self.logits(texts)
        target = np.array([names.index(g) for g in gold])

        def nll(t: float) -> float:
            p = _probabilities(logits / t, False)
            return float(-np.mean(np.log(np.clip(p[np.arange(len(target)), target], 1e-12, 1))))

        def ece(t: float) -> float:
            p = _probabilities(logits / t, False)
            confidence = p.max(axis=1)
            correct = p.argmax(axis=1) == target
            return expected_calibration_error(confidence.tolist(), correct.tolist())

        grid = np.exp(np.linspace(math.log(0.05), math.log(20), 200))
        best = float(min(grid, key=nll))
        result = Calibration(best, ece(1.0), ece(best), nll(1.0), nll(best), len(target))
        self.temperature = best
        return result

    # Modes ------------------------------------------------------------------------------

    def _batches(self, items: Sequence):
        for start in range(0, len(items), self.batch_size):
            yield items[start : start + self.batch_size]

    def _encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None):
        tokenizer = self.loaded.tokenizer
        limit = min(self.loaded.context_window or _MAX_TOKENS, _MAX_TOKENS)
        encoded = tokenizer(
            list(texts),
            list(pairs) if pairs else None,
            padding=True,
            truncation=True,
            max_length=limit,
            return_tensors="pt",
        )
        return {k: v.to(self.loaded.device) for k, v in encoded.items()}

    def _classifier_logits(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for batch in self._batches(texts):
            rows.append(self.loaded.model(**self._encode(batch)).logits.float().cpu().numpy())
        return np.concatenate(rows)

    def _nli_logits(self, texts: Sequence[str]) -> np.ndarray:
        entail = self._entailment_id()
        label2id = {str(k).lower(): v for k, v in (self.loaded.config.label2id or {}).items()}
        contra = label2id.get("contradiction")
        hypotheses = [NLI_TEMPLATE.format(label) for label in self.labels]
        rows = []
        for text in texts:
            logits = self.loaded.model(**self._encode([text] * len(hypotheses), hypotheses)).logits
            logits = logits.float().cpu().numpy()
            # Entailment vs contradiction per label (as the zero-shot pipeline does), then
            # the entailment scores compete across labels.
            pick = [entail] if contra is None else [contra, entail]
            rows.append(logits[:, entail] if contra is None else logits[:, pick][:, 1])
        return np.stack(rows)

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        chunks = []
        for batch in self._batches(texts):
            encoded = self._encode(batch)
            hidden = self.loaded.model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1))
        return torch.cat(chunks)

    def _embedding_logits(self, texts: Sequence[str]) -> np.ndarray:
        if self._label_embeddings is None:
            prompts = [EMBEDDING_TEMPLATE.format(label) for label in self.labels]
            self._label_embeddings = self._embed(prompts)
        similarity = self._embed(texts) @ self._label_embeddings.T
        return (similarity / EMBEDDING_TEMPERATURE).cpu().numpy()

    def _likelihood_logits(self, texts: Sequence[str]) -> np.ndarray:
        from core.decoding.prompts import encode

        tokenizer = self.loaded.tokenizer
        options = ", ".join(self.labels)
        label_ids = [tokenizer.encode(label, add_special_tokens=False) for label in self.labels]
        rows = []
        for text in texts:
            chat = [
                {
                    "role": "user",
                    "content": (
                        f"Classify the text into exactly one of these labels: {options}.\n\n"
                        f"Text: {text.strip()}\n\nAnswer with the label only."
                    ),
                }
            ]
            prompt = encode(self.loaded, chat)
            sequences = [prompt + ids for ids in label_ids]
            width = max(len(s) for s in sequences)
            pad = tokenizer.pad_token_id or 0
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
            logits = self.loaded.model(
                input_ids=ids.to(self.loaded.device), attention_mask=mask.to(self.loaded.device)
            ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            scores = []
            for row, label in enumerate(label_ids):
                positions = range(len(prompt) - 1, len(prompt) - 1 + len(label))
                # Mean, not sum: a label of many tokens is not less likely for being long.
                total = sum(
                    logprobs[row, p, t].item() for p, t in zip(positions, label, strict=True)
                )
                scores.append(total / len(label))
            rows.append(scores)
        return np.asarray(rows)


def _probabilities(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        return 1 / (1 + np.exp(-logits))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _clean_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        labels = [part for part in labels.split(",")]
    cleaned = [label.strip() for label in labels if label and label.strip()]
    if len(cleaned) < 2:
        raise ClassificationError(
            f"zero-shot classification needs at least two labels (got {list(labels)})"
        )
    if len(set(cleaned)) != len(cleaned):
        raise ClassificationError(f"labels repeat: {cleaned}")
    return cleaned
