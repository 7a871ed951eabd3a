"""Text classification: ``Classifier(model, labels=None).classify(texts)``.

How label probabilities are made depends on the model (:mod:`quintet.apps.classification.zero_shot`
has the details):

* a fine-tuned sequence classifier (``*ForSequenceClassification``): its own labels (the
  config's ``id2label``, shown with readable names where known, e.g. minilm-l6-sst2's
  ``0``/``1`` as ``negative``/``positive``), softmax, or a sigmoid per label when the config
  says ``problem_type="multi_label_classification"`` or you ask for ``multi_label``;
* an NLI model (labels include ``entailment``, e.g. bart-large-mnli) with your ``labels=``:
  zero-shot by entailment;
* a sentence encoder (``minilm-l6``) with ``labels=``: zero-shot by embedding similarity;
* an instruct model (``smollm2-135m-instruct``) with ``labels=``: zero-shot by label
  likelihood.

Probabilities are calibrated by temperature scaling
(:mod:`quintet.apps.classification.calibration`):
:meth:`Classifier.calibrate` fits it on labelled texts, reports ECE before and after, and
stores it so the next classifier on the same model and labels uses it.

Inputs: an empty list gives an empty list; an empty or blank text is a
:class:`ClassificationError` naming its position. Texts longer than the model's window are
read in overlapping chunks whose scores are averaged (classifier and encoder modes).

Example::

    >>> clf = Classifier("minilm-l6", labels=["sports", "business"])      # doctest: +SKIP
    >>> clf.classify("The striker scored twice in the final.")[0].label
    'sports'
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from quintet.apps.classification import calibration, zero_shot
from quintet.apps.classification.batch import classify_file
from quintet.core.config import ModelSpec
from quintet.core.decoding.engines import BackendChoice
from quintet.core.defaults import default_model
from quintet.core.encoders import follow, with_engine
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.models import Loaded, load

# Readable names for models whose config keeps the dataset's label ids. The minilm-l6-sst2
# recipe trains on GLUE SST-2, whose labels are 0 = negative, 1 = positive
# (data/classification/sst2/SOURCE.md); the fine-tuning engine stores them as written.
KNOWN_LABEL_NAMES: dict[str, dict[str, str]] = {
    "minilm-l6-sst2": {"0": "negative", "1": "positive"},
}

Mode = str  # "classifier" | "zero-shot-nli" | "zero-shot-embedding" | "zero-shot-likelihood"


class ClassificationError(QuintetError):
    """A classification request cannot be served as asked."""


class LabelsNeededError(ClassificationError):
    """The model has no classification head and no labels were given (zero-shot needs them)."""


class OwnLabelsError(ClassificationError):
    """Labels were given to a classifier with labels of its own (and no NLI head)."""

    def __init__(self, message: str, own_labels: list[str]) -> None:
        super().__init__(message)
        self.own_labels = own_labels


@dataclass(frozen=True)
class Classification:
    """One text's result.

    ``label``/``score``: the most probable label and its probability. ``scores``: every label
    (or the ``top_k`` best) with its probability, best first. ``labels``: the labels chosen:
    the best one, or for multi-label every label at or over the threshold (maybe none).
    """

    label: str
    score: float
    scores: dict[str, float]
    labels: tuple[str, ...] = ()
    mode: str = ""


class Classifier:
    """Classify texts with a fine-tuned classifier, or zero-shot with your own labels.

    Args:
        model: a name, hub id, directory or ``Loaded``; None: the task default
            (:func:`quintet.core.defaults.default_model`: distilbert-sst2 online, else
            minilm-l6-sst2,
            else minilm-l6, which then needs ``labels``).
        labels: label names for zero-shot classification (needed for encoders and instruct
            models; with an NLI model they switch it to zero-shot).
        multi_label: independent probabilities per label (sigmoid) instead of a softmax;
            None: what the model config says (``problem_type``).
        label_names: display names for a classifier's own labels, e.g. ``{"0": "negative"}``.
        temperature: divide scores by this before the softmax; None: the temperature stored
            by :meth:`calibrate` for this model and labels, else 1.0.
        device, batch_size: where to run and how many texts per forward pass.
        backend: ``auto`` (default: int8 ONNX Runtime on CPU for encoder models, see
            :mod:`quintet.core.encoders`), ``transformers`` or ``onnxruntime``;
            ``backend_choice`` says which runs and why.
    """

    def __init__(
        self,
        model: str | Loaded | None = None,
        labels: Sequence[str] | str | None = None,
        *,
        multi_label: bool | None = None,
        label_names: dict[str, str] | None = None,
        device: str = "auto",
        batch_size: int = 32,
        temperature: float | None = None,
        backend: str = "auto",
    ) -> None:
        if model is None:
            model = default_model("classification").name
        self.loaded = model if isinstance(model, Loaded) else load(ModelSpec(model, device=device))
        self.labels = clean_labels(labels) if labels is not None else None
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1 (got {batch_size})")
        self.batch_size = batch_size
        self.backend = backend  # as asked ("auto" ...): a Ray worker rebuilds it so
        # Display names first: an error about the model's own labels names them as results do.
        self.label_names = {**KNOWN_LABEL_NAMES.get(self.loaded.name, {}), **(label_names or {})}
        self.mode: Mode = self._pick_mode()
        if self.mode == "zero-shot-likelihood":
            self.backend_choice = BackendChoice("transformers", "label likelihood runs on torch")
        else:
            # The engine lives on the cached model (closed with it); this copy runs on it.
            self.loaded, self.backend_choice = with_engine(self.loaded, backend)
        if self.mode != "classifier":  # zero-shot labels are the user's own, shown as typed
            self.label_names = dict(label_names or {})
        config_multi = getattr(self.loaded.config, "problem_type", None) == (
            "multi_label_classification"
        )
        self.multi_label = config_multi if multi_label is None else bool(multi_label)
        self._check_multi_label(self.multi_label)
        self.calibration: calibration.Calibration | None = None
        if temperature is None:
            self.calibration = calibration.load(self.model_name, self.mode, self.label_set())
            temperature = self.calibration.temperature if self.calibration else 1.0
        if not 0 < temperature < math.inf:  # also NaN, which fails every comparison
            raise ConfigError(f"temperature must be a finite positive number (got {temperature})")
        self.temperature = float(temperature)
        self._label_embeddings: torch.Tensor | None = None
        self._refresh_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.loaded.name

    def _pick_mode(self) -> Mode:
        kind = self.loaded.kind
        if kind == "sequence-classification":
            if self.labels is None:
                return "classifier"
            if self._label_id("entailment") is not None:
                return "zero-shot-nli"
            own = [self.label_names.get(label, label) for label in self.model_labels()]
            raise OwnLabelsError(
                f"{self.loaded.name} has its own labels ({', '.join(own)}); "
                "drop labels=, or use an NLI model (bart-large-mnli) or an encoder "
                "(minilm-l6) for labels of your own",
                own,
            )
        if kind in ("encoder", "causal"):
            if not self.labels:
                raise LabelsNeededError(
                    f"{self.loaded.name} ({kind} model) has no classification head: "
                    "give labels (labels=[...], --labels a,b,c) for zero-shot classification, "
                    "or fine-tune it (`quintet finetune classification`)"
                )
            return "zero-shot-embedding" if kind == "encoder" else "zero-shot-likelihood"
        raise ClassificationError(
            f"{self.loaded.name} is a {kind} model: classification needs a sequence "
            "classifier, an NLI model, a sentence encoder or an instruct model"
        )

    def _check_multi_label(self, multi: bool) -> None:
        if multi and self.mode == "zero-shot-likelihood":
            raise ClassificationError(
                "label likelihood picks one label: for multi-label zero-shot use an encoder "
                "(minilm-l6) or an NLI model"
            )

    def _label_id(self, name: str) -> int | None:
        label2id = {str(k).lower(): v for k, v in (self.loaded.config.label2id or {}).items()}
        return label2id.get(name)

    def model_labels(self) -> list[str]:
        """The labels a fine-tuned classifier was trained with, in class-index order."""
        id2label = self.loaded.config.id2label or {}
        return [str(id2label[i]) for i in sorted(id2label)]

    def label_set(self) -> list[str]:
        """The labels this classifier chooses between, as shown to users (column order)."""
        if self.mode != "classifier":
            return list(self.labels or [])
        return [self.label_names.get(label, label) for label in self.model_labels()]

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
            texts: one text or a list (an empty list gives ``[]``).
            top_k: keep only the ``top_k`` most probable labels in ``scores``.
            multi_label: override the classifier's multi-label setting for this call.
            threshold: multi-label: the labels at or over it go into ``labels``.

        Example::

            >>> Classifier("minilm-l6-sst2").classify(["a joy to watch"])[0].label  # doctest: +SKIP
            'positive'
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        multi = self.multi_label if multi_label is None else bool(multi_label)
        self._check_multi_label(multi)
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k})")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be a probability in [0, 1] (got {threshold})")
        if not texts:
            return []
        probabilities = self.probabilities(texts, multi)
        names = self.label_set()
        results = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")
            kept = order[:top_k] if top_k else order
            scores = {names[i]: float(row[i]) for i in kept}
            best = names[order[0]]
            chosen = tuple(names[i] for i in order if row[i] >= threshold) if multi else (best,)
            results.append(Classification(best, float(row[order[0]]), scores, chosen, self.mode))
        return results

    def probabilities(self, texts: Sequence[str], multi_label: bool | None = None) -> np.ndarray:
        """Label probabilities (text x :meth:`label_set`), after the temperature."""
        multi = self.multi_label if multi_label is None else multi_label
        logits = self.logits(texts, multi)
        scaled = logits / self.temperature
        return calibration.sigmoid(scaled) if multi else calibration.softmax(scaled)

    def logits(self, texts: Sequence[str], multi_label: bool = False) -> np.ndarray:
        """Raw scores (before the temperature), one row per text, one column per label."""
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ClassificationError(f"text {index} is empty: nothing to classify")
        # Similar lengths share a batch: less padding, the same scores (results are put
        # back in input order).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        self._refresh()
        rows = []
        with self.loaded.lock, torch.inference_mode():
            for begin in range(0, len(texts), self.batch_size):
                part = [texts[i] for i in order[begin : begin + self.batch_size]]
                rows.append(self._logits(part, multi_label))
        logits = np.concatenate(rows)
        restored = np.empty_like(logits)
        restored[order] = logits
        return restored

    def _refresh(self) -> None:
        """Follow a model rebuilt on disk: its new weights, on an engine converted from them
        (:func:`quintet.core.encoders.follow`); label embeddings are computed again."""
        with self._refresh_lock:  # concurrent calls switch once
            found = follow(self.loaded, self.backend)
            if found is not None:
                self.loaded, choice = found
                self.backend_choice = choice or self.backend_choice
                self._label_embeddings = None

    def _logits(self, texts: Sequence[str], multi: bool) -> np.ndarray:
        if self.mode == "classifier":
            return zero_shot.classifier_logits(self.loaded, texts)
        if self.mode == "zero-shot-nli":
            entail = self._label_id("entailment")
            single, pairwise = zero_shot.nli_logits(
                self.loaded, texts, self.labels, entail, self._label_id("contradiction")
            )
            return pairwise if multi else single
        if self.mode == "zero-shot-embedding":
            if self._label_embeddings is None:
                self._label_embeddings = zero_shot.label_embeddings(self.loaded, self.labels)
            cosine = zero_shot.embedding_similarity(self.loaded, texts, self._label_embeddings)
            if multi:
                cosine = cosine - zero_shot.EMBEDDING_MULTI_LABEL_CENTER
            return cosine / zero_shot.EMBEDDING_TEMPERATURE
        return zero_shot.likelihood_logits(self.loaded, texts, self.labels)

    def calibrate(
        self, texts: Sequence[str], gold: Sequence[str], *, save: bool = True
    ) -> calibration.Calibration:
        """Fit the temperature on labelled texts (single-label), use it, and (``save``)
        store it for this model and label set. Returns the fit with ECE/NLL before and after.

        ``gold`` holds label names as :meth:`label_set` shows them (or the model's raw
        labels, e.g. SST-2's ``"1"``, which are mapped through ``label_names``).

        Example::

            >>> clf.calibrate(dev_texts, dev_labels).summary()                  # doctest: +SKIP
            'temperature 1.412 fitted on 872 texts: ECE 0.0473 -> 0.0121, NLL ...'
        """
        if self.multi_label:
            raise ClassificationError("calibration fits single-label classifiers only")
        if len(texts) != len(gold):
            raise ClassificationError(f"{len(texts)} texts but {len(gold)} gold labels")
        targets = self.targets(gold)
        fit = calibration.fit_temperature(self.logits(texts), targets)
        self.temperature, self.calibration = fit.temperature, fit
        if save:
            calibration.save(self.model_name, self.mode, self.label_set(), fit)
        return fit

    def classify_csv(self, input_path, output_path, text_column: str | None = None, **options):
        """Classify a CSV/TSV/JSONL column into an output file, with progress, resumably
        (:func:`quintet.apps.classification.batch.classify_file` has the options).

        Example::

            >>> clf.classify_csv("reviews.csv", "labelled.csv", "review")     # doctest: +SKIP
        """
        return classify_file(self, input_path, output_path, text_column, **options)

    def batch_worker(self, top_k: int | None, threshold: float) -> ClassifyOnActor:
        """What a Ray actor builds once to classify batches of a file as this classifier
        does (same model, labels, names, temperature and engine): picklable."""
        return ClassifyOnActor(
            self.loaded.spec, self.labels, self.multi_label, dict(self.label_names),
            self.temperature, self.batch_size, self.backend, top_k, threshold,
        )  # fmt: skip

    def targets(self, gold: Sequence[str]) -> list[int]:
        """Gold label names -> column indices of :meth:`label_set` (raw names accepted)."""
        names = self.label_set()
        index = {name: i for i, name in enumerate(names)}
        for raw, shown in self.label_names.items():
            if shown in index:
                index.setdefault(raw, index[shown])
        unknown = sorted({str(g) for g in gold if str(g) not in index})
        if unknown:
            raise ClassificationError(
                f"gold labels {unknown[:5]} are not among the classifier's labels {names}"
            )
        return [index[str(g)] for g in gold]


@dataclass(frozen=True)
class ClassifyOnActor:
    """A batch-function factory for :func:`quintet.core.cluster.run_batches`: a classifier
    made as the caller's was (same model, labels, names and temperature, so the same
    probabilities), classifying each batch of texts."""

    spec: ModelSpec
    labels: Sequence[str] | None
    multi_label: bool
    label_names: dict[str, str]
    temperature: float
    batch_size: int
    backend: str
    top_k: int | None
    threshold: float

    def __call__(self) -> Callable[[list[str]], list[Classification]]:
        classifier = Classifier(
            load(self.spec), self.labels, multi_label=self.multi_label,
            label_names=self.label_names, batch_size=self.batch_size,
            temperature=self.temperature, backend=self.backend,
        )  # fmt: skip
        return lambda texts: classifier.classify(texts, self.top_k, None, self.threshold)


def clean_labels(labels: Sequence[str] | str) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``; at least two distinct labels."""
    if isinstance(labels, str):
        labels = labels.split(",")
    cleaned = [str(label).strip() for label in labels if label and str(label).strip()]
    if len(cleaned) < 2:
        raise ClassificationError(
            f"zero-shot classification needs at least two labels (got {list(labels)})"
        )
    if len(set(cleaned)) != len(cleaned):
        raise ClassificationError(f"labels repeat: {cleaned}; give each label once")
    return cleaned
