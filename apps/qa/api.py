"""Extractive question answering: ``QuestionAnswerer(model).answer(question, context)``.

Span models (``*ForQuestionAnswering``) read the context in overlapping windows (``doc_stride``
tokens shared between neighbours, so an answer cut by one window boundary is whole in the
next) and the best span across all windows wins; offsets always index the original context
(``context[answer.start:answer.end] == answer.text``). The windowing and span search are the
fine-tuning engine's (:mod:`quintet.apps.qa.spans` on :mod:`quintet.core.training.features`), so
what is
validated is what runs.

An instruct model (the offline fallback when no span model is present) answers by generation;
its answer is then grounded (:mod:`quintet.apps.qa.grounding`): found in the context verbatim, then
ignoring case, then ignoring punctuation and spacing, then as the longest run of context words
it contains, or else reported as not found (``grounded=False``, empty text), never invented.

Inputs: an empty question is a :class:`QAError`; an empty (or blank) context answers "no
answer" (``text == ""``) without running the model. A context of any length is read in
windows (span models); a generative model refuses a context longer than its window with
:class:`quintet.core.decoding.prompts.InputTooLongError`.

Example::

    >>> qa = QuestionAnswerer("minilm-l6-squad")                         # doctest: +SKIP
    >>> best = qa.answer("Who won?", "The Denver Broncos won Super Bowl 50.")[0]
    >>> best.text, best.start, best.end
    ('Denver Broncos', 4, 18)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from quintet.apps.qa import spans
from quintet.apps.qa.grounding import answer_prompt, ground
from quintet.core.config import ModelSpec
from quintet.core.decoding import Generator
from quintet.core.decoding.engines import BackendChoice
from quintet.core.defaults import default_model
from quintet.core.encoders import follow, with_engine
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.examples import QAExample
from quintet.core.models import Loaded, load

GENERATIVE_MAX_NEW_TOKENS = 32


class QAError(QuintetError):
    """A question cannot be answered as asked."""


@dataclass(frozen=True)
class Answer:
    """An answer span: ``context[start:end] == text``. ``text == ""`` means no answer.

    ``score``: span models, start + end logit (no answer: the CLS score); generative mode,
    the mean log-probability of the generated tokens. ``probability``: softmax of the score
    over the candidate spans (span models); generative mode, exp(score), the geometric mean
    of the generated tokens' probabilities (how sure the model was of what it said, not
    whether the grounded span is right).
    ``window``: which context window (0-based) the span came from, -1 for no answer.
    """

    text: str
    start: int
    end: int
    score: float
    probability: float
    window: int = 0
    windows: int = 1
    grounded: bool = True  # generative mode: whether the text was found in the context
    generated: str = ""  # generative mode: what the model actually said

    @property
    def is_no_answer(self) -> bool:
        return not self.text


NO_ANSWER = Answer("", 0, 0, 0.0, 1.0, window=-1, windows=0)


class QuestionAnswerer:
    """Answer questions from a context.

    Args:
        model: a span model or an instruct model (name, hub id, directory or a ``Loaded``);
            None: the task default (:func:`quintet.core.defaults.default_model`: distilbert-squad
            online, else minilm-l6-squad, else smollm2-135m-instruct in grounded mode).
        device: "auto", "cpu", "cuda", "mps".
        max_length: tokens per window (span models); longer contexts are windowed.
        doc_stride: default tokens shared by neighbouring windows (:meth:`answer` can override).
        batch_size: windows per forward pass.
        backend: ``auto`` (default: the fastest installed engine: int8 ONNX Runtime for a
            span model on CPU, see :mod:`quintet.core.encoders`; the decoding default for an
            instruct model) or a named engine; ``backend_choice`` says which and why.
    """

    def __init__(
        self,
        model: str | Loaded | None = None,
        *,
        device: str = "auto",
        max_length: int = spans.DEFAULT_MAX_LENGTH,
        doc_stride: int = spans.DEFAULT_DOC_STRIDE,
        batch_size: int = 16,
        backend: str = "auto",
    ) -> None:
        if model is None:
            model = default_model("qa").name
        self.loaded = model if isinstance(model, Loaded) else load(ModelSpec(model, device=device))
        if self.loaded.kind not in ("span", "causal"):
            raise QAError(
                f"{self.loaded.name} is a {self.loaded.kind} model: extractive QA needs a "
                "span model (*ForQuestionAnswering, e.g. distilbert-squad, minilm-l6-squad) or "
                "an instruct model (smollm2-135m-instruct)"
            )
        if max_length < 16 or batch_size < 1:
            raise ConfigError(
                f"max_length must be at least 16 and batch_size at least 1 (got {max_length}, "
                f"{batch_size})"
            )
        window = self.loaded.context_window or max_length
        self.max_length = min(max_length, window)
        self.mode = "extractive" if self.loaded.kind == "span" else "generative-grounded"
        if self.mode == "extractive":
            # A stride too big for a small model's window is shrunk only when it is the default.
            room = spans.context_room(self.loaded.tokenizer, self.max_length)
            if doc_stride == spans.DEFAULT_DOC_STRIDE and doc_stride >= room:
                doc_stride = room // 2
            spans.check_stride(self.loaded.tokenizer, self.max_length, doc_stride)
        self.doc_stride = doc_stride
        self.batch_size = batch_size
        self.backend = backend
        self.backend_choice: BackendChoice | None = None  # the generator's, once built
        if self.mode == "extractive":
            # The engine lives on the cached model (closed with it); this copy runs on it.
            self.loaded, self.backend_choice = with_engine(self.loaded, backend)
        self._generator = None
        self._refresh_lock = threading.Lock()

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
        doc_stride: int | None = None,
    ) -> list[Answer]:
        """Up to ``top_k`` answers, best first.

        Args:
            top_k: how many answers (span models; generative mode gives one).
            max_answer_len: the longest answer, in tokens.
            allow_no_answer: SQuAD v2 style: answer "no answer" (``text == ""``) first when
                the no-answer score beats the best span's score by more than
                ``no_answer_threshold`` (raise it to answer less often "no answer").
            doc_stride: tokens shared by neighbouring windows (default: the answerer's).

        An empty context answers "no answer"; an empty question is a :class:`QAError`.

        Example::

            >>> qa.answer("Where?", "It was held in Santa Clara.")[0].text   # doctest: +SKIP
            'Santa Clara'
        """
        return self.answer_many(
            [(question, context)],
            top_k,
            max_answer_len,
            allow_no_answer,
            no_answer_threshold,
            doc_stride,
        )[0]

    def answer_many(
        self,
        pairs: Sequence[tuple[str, str]],
        top_k: int = 1,
        max_answer_len: int = 30,
        allow_no_answer: bool = False,
        no_answer_threshold: float = 0.0,
        doc_stride: int | None = None,
    ) -> list[list[Answer]]:
        """:meth:`answer` for many ``(question, context)`` pairs, batched; one list each."""
        if top_k < 1 or max_answer_len < 1:
            raise ConfigError(
                f"top_k and max_answer_len must be at least 1 (got {top_k}, {max_answer_len})"
            )
        pairs = list(pairs)
        for index, pair in enumerate(pairs):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise QAError(f"pair {index} is not a (question, context) pair")
            question, context = pair
            if not isinstance(question, str) or not question.strip():
                raise QAError(f"question {index} is empty: ask something")
            if not isinstance(context, str):
                raise QAError(f"context {index} is {type(context).__name__}, not text")
        if not math.isfinite(no_answer_threshold):  # a NaN margin compares false everywhere
            raise QAError(
                "the no-answer threshold (--threshold) must be a finite number "
                f"(got {no_answer_threshold})"
            )
        if not pairs:
            return []
        if self.mode == "generative-grounded":
            return self._generate_many(pairs)
        stride = self.doc_stride if doc_stride is None else doc_stride
        examples = [QAExample(str(i), q, c, ()) for i, (q, c) in enumerate(pairs)]
        threshold = no_answer_threshold if allow_no_answer else None
        self._refresh()
        with self.loaded.lock, torch.inference_mode():
            found = spans.extract_spans(
                self.loaded,
                examples,
                max_length=self.max_length,
                doc_stride=stride,
                top_k=top_k,
                max_answer_len=max_answer_len,
                null_threshold=threshold,
                batch_size=self.batch_size,
            )
        return [
            [
                Answer(a.text, a.start, a.end, a.score, a.probability, a.window, a.windows)
                if a.text
                else Answer("", 0, 0, a.score, a.probability, -1, a.windows)
                for a in row
            ]
            for row in found
        ]

    def _refresh(self) -> None:
        """Follow a span model rebuilt on disk: its new weights, on an engine converted from
        them (:func:`quintet.core.encoders.follow`). A generator follows on its own."""
        with self._refresh_lock:  # concurrent calls switch once
            found = follow(self.loaded, self.backend)
            if found is not None:
                self.loaded, choice = found
                self.backend_choice = choice or self.backend_choice

    def _generate_many(self, pairs: list[tuple[str, str]]) -> list[list[Answer]]:
        todo = [i for i, (_, c) in enumerate(pairs) if c.strip()]
        results: list[list[Answer]] = [[NO_ANSWER] for _ in pairs]
        if not todo:
            return results
        prompts = [answer_prompt(pairs[i][0], pairs[i][1]) for i in todo]
        with self.loaded.lock:
            if self._generator is None:
                self._generator = Generator(self.loaded, self.backend, batch_size=self.batch_size)
                self.backend_choice = self._generator.backend_choice
            outputs = self._generator.generate(
                prompts, max_new_tokens=GENERATIVE_MAX_NEW_TOKENS, output_logprobs=True
            )
        for i, output in zip(todo, outputs, strict=True):
            question, context = pairs[i]
            logprobs = output.token_logprobs or []
            score = sum(logprobs) / len(logprobs) if logprobs else 0.0
            span = ground(output.text, context, question)
            if span is None:
                results[i] = [Answer("", 0, 0, score, 0.0, -1, 0, False, output.text)]
            else:
                start, end = span
                answer = Answer(
                    context[start:end], start, end, score, math.exp(score), 0, 1, True, output.text
                )
                results[i] = [answer]
        return results
