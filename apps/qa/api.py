"""Extractive question answering: ``QuestionAnswerer(model).answer(question, context)``.

Span models (``*ForQuestionAnswering``) read the context in overlapping windows (``doc_stride``
tokens shared between neighbours, so an answer cut by one window boundary is whole in the
next) and the best span across all windows wins; offsets always index the original context
(``context[answer.start:answer.end] == answer.text``). The same windowing and span search
as fine-tuning (:mod:`core.training.features`), so what is validated is what runs.

An instruct model (the offline fallback when no span model is present) answers by generation;
its answer is then grounded: found verbatim in the context (case-insensitive, then
whitespace/punctuation-insensitive) or reported as not found, never invented.

Example::

    >>> qa = QuestionAnswerer("minilm-l6-squad")                         # doctest: +SKIP
    >>> qa.answer("Who won?", "The Denver Broncos won Super Bowl 50.")[0].text
    'The Denver Broncos'
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.config import ModelSpec
from core.defaults import default_model
from core.errors import ConfigError, QuintetError
from core.examples import QAExample
from core.models import Loaded, load
from core.training import features as feats

GENERATIVE_MAX_NEW_TOKENS = 32


class QAError(QuintetError):
    """A question cannot be answered as asked."""


@dataclass(frozen=True)
class Answer:
    """An answer span: ``context[start:end] == text``. ``text == ""`` means no answer."""

    text: str
    start: int
    end: int
    score: float
    probability: float
    grounded: bool = True  # generative mode: whether the text was found in the context

    @property
    def is_no_answer(self) -> bool:
        return not self.text


NO_ANSWER = Answer("", 0, 0, 0.0, 1.0)


class QuestionAnswerer:
    """Answer questions from a context.

    Args:
        model: a span model or an instruct model (name, hub id or directory); None: the
            task default (:func:`core.defaults.default_model`).
        max_length: tokens per window (span models); longer contexts are windowed.
        doc_stride: tokens shared by neighbouring windows.
    """

    def __init__(
        self,
        model: str | Loaded | None = None,
        *,
        device: str = "auto",
        max_length: int = 384,
        doc_stride: int = 128,
        batch_size: int = 16,
    ) -> None:
        if model is None:
            model = default_model("qa").name
        self.loaded = model if isinstance(model, Loaded) else load(ModelSpec(model, device=device))
        if self.loaded.kind not in ("span", "causal"):
            raise QAError(
                f"{self.loaded.name} is a {self.loaded.kind} model: extractive QA needs a "
                "span model (*ForQuestionAnswering, e.g. distilbert-squad, minilm-l6-squad) or "
                "an instruct model"
            )
        window = self.loaded.context_window or max_length
        self.max_length = min(max_length, window)
        self.doc_stride = doc_stride
        self.batch_size = batch_size
        self.mode = "extractive" if self.loaded.kind == "span" else "generative-grounded"
        self._lock = threading.Lock()
        self._generator = None

    @property
    def model_name(self) -> str:
        return self.loaded.name

    def answer(
        self,
        question: str,
        context: str,
        top_k: int = 1,
        max_answer_len: int = 30,
        allow_no_answer: bool = False,
        no_answer_threshold: float = 0.0,
    ) -> list[Answer]:
        """Up to ``top_k`` answers, best first.

        Args:
            max_answer_len: the longest answer, in tokens.
            allow_no_answer: SQuAD v2 style: answer "no answer" (``text == ""``) when the
                no-answer score beats the best span by more than ``no_answer_threshold``.

        An empty context answers "no answer"; an empty question is an error.
        """
        return self.answer_many(
            [(question, context)], top_k, max_answer_len, allow_no_answer, no_answer_threshold
        )[0]

    def answer_many(
        self,
        pairs: Sequence[tuple[str, str]],
        top_k: int = 1,
        max_answer_len: int = 30,
        allow_no_answer: bool = False,
        no_answer_threshold: float = 0.0,
    ) -> list[list[Answer]]:
        """:meth:`answer` for many ``(question, context)`` pairs, batched."""
        if top_k < 1 or max_answer_len < 1:
            raise ConfigError("top_k and max_answer_len must be at least 1")
        for index, (question, context) in enumerate(pairs):
            if not isinstance(question, str) or not question.strip():
                raise QAError(f"question {index} is empty: ask something")
            if not isinstance(context, str):
                raise QAError(f"context {index} is not text")
        if self.mode == "generative-grounded":
            return [[self._generate(q, c)] if c.strip() else [NO_ANSWER] for q, c in pairs]
        examples = [QAExample(str(i), q, c, ()) for i, (q, c) in enumerate(pairs)]
        threshold = no_answer_threshold if allow_no_answer else None
        with self._lock, torch.inference_mode():
            spans = self._spans(examples, top_k, max_answer_len, threshold)
        return [
            [Answer(a.text, a.start, a.end, a.score, a.probability) for a in row] for row in spans
        ]

    def _spans(self, examples, top_k, max_answer_len, threshold):
        tokenizer = self.loaded.tokenizer
        stride = min(self.doc_stride, max(0, self.max_length // 2 - 8))
        features = feats.span_features(
            tokenizer, examples, max_length=self.max_length, doc_stride=stride, training=False
        )
        starts, ends = [], []
        pad = tokenizer.pad_token_id or 0
        for begin in range(0, len(features), self.batch_size):
            batch = feats.collate(features[begin : begin + self.batch_size], pad)
            batch = {k: v.to(self.loaded.device) for k, v in batch.items()}
            out = self.loaded.model(**batch)
            starts += list(out.start_logits.float().cpu())
            ends += list(out.end_logits.float().cpu())
        return feats.best_spans(
            examples,
            features,
            starts,
            ends,
            max_answer_len=max_answer_len,
            top_k=top_k,
            null_threshold=threshold,
        )

    def _generate(self, question: str, context: str) -> Answer:
        from apps.qa.grounding import ground
        from core.decoding import Generator

        with self._lock:
            if self._generator is None:
                self._generator = Generator(self.loaded)
            prompt = [
                {
                    "role": "user",
                    "content": (
                        f"Answer the question with a short phrase copied from the text.\n\n"
                        f"Text: {context.strip()}\n\nQuestion: {question.strip()}"
                    ),
                }
            ]
            result = self._generator.complete(prompt, max_new_tokens=GENERATIVE_MAX_NEW_TOKENS)
        span = ground(result.text, context, question)
        if span is None:
            return Answer("", 0, 0, 0.0, 0.0, grounded=False)
        start, end = span
        return Answer(context[start:end], start, end, 0.0, 1.0, grounded=True)
