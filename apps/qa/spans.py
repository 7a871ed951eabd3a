"""Span extraction over long contexts: windows in, best spans out.

The windowing (question + overlapping context windows) and the span search (best start/end
pair across all windows, optional no-answer) are the fine-tuning engine's own
(:func:`quintet.core.training.features.span_features` and
:func:`~quintet.core.training.features.best_spans`),
so inference reads a context exactly as validation did. This module adds what inference
needs on top: batching the windows through the model, and which window each answer came from.

Example::

    >>> from core.models import load
    >>> from core.examples import QAExample
    >>> loaded = load("minilm-l6-squad")                                    # doctest: +SKIP
    >>> ex = QAExample("1", "Who won?", "The Denver Broncos won Super Bowl 50.", ())
    >>> extract_spans(loaded, [ex])[0][0].text                              # doctest: +SKIP
    'Denver Broncos'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from quintet.core.errors import ConfigError
from quintet.core.examples import QAExample
from quintet.core.models import Loaded
from quintet.core.training import features as feats

DEFAULT_MAX_LENGTH = 384  # tokens per window, as the SQuAD fine-tuning examples use
DEFAULT_DOC_STRIDE = 128  # tokens shared by neighbouring windows


@dataclass(frozen=True)
class WindowedSpan:
    """A span answer and the window (0-based, per example) whose logits gave its score;
    ``window`` is -1 for "no answer"."""

    text: str
    start: int
    end: int
    score: float
    probability: float
    window: int
    windows: int  # how many windows the example's context was read in


def context_room(tokenizer, max_length: int) -> int:
    """Context tokens per window: what the question (at most half) and specials leave."""
    return max_length - max_length // 2 - tokenizer.num_special_tokens_to_add(pair=True)


def check_stride(tokenizer, max_length: int, doc_stride: int) -> None:
    """Refuse a stride that leaves windows no room to move forward (one line, what to do)."""
    room = context_room(tokenizer, max_length)
    if not 0 <= doc_stride < room:
        raise ConfigError(
            f"doc_stride {doc_stride} must be at least 0 and less than {room} (the context room "
            f"of a {max_length}-token window): lower doc_stride or raise max_length"
        )


def extract_spans(
    loaded: Loaded,
    examples: Sequence[QAExample],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    doc_stride: int = DEFAULT_DOC_STRIDE,
    top_k: int = 1,
    max_answer_len: int = 30,
    null_threshold: float | None = None,
    batch_size: int = 16,
) -> list[list[WindowedSpan]]:
    """The ``top_k`` best spans of each example, read in windows; call under inference mode.

    Args:
        loaded: a span model (``*ForQuestionAnswering``) with a fast tokenizer.
        examples: question/context pairs (answers are ignored).
        max_length, doc_stride: window size and overlap, in tokens.
        null_threshold: None never answers "no answer"; else SQuAD v2 style (see
            :func:`quintet.core.training.features.best_spans`).

    Returns:
        For each example up to ``top_k`` spans, best first, with
        ``context[start:end] == text``; a blank context gives one "no answer".
    """
    check_stride(loaded.tokenizer, max_length, doc_stride)
    features = feats.span_features(
        loaded.tokenizer, examples, max_length=max_length, doc_stride=doc_stride, training=False
    )
    pad = loaded.tokenizer.pad_token_id
    pad = 0 if pad is None else pad
    # Windows of similar length share a batch (less padding); logits go back in order.
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    starts: list[np.ndarray] = [np.empty(0)] * len(features)
    ends: list[np.ndarray] = [np.empty(0)] * len(features)
    for begin in range(0, len(features), batch_size):
        chosen = order[begin : begin + batch_size]
        batch = feats.collate([features[i] for i in chosen], pad)
        batch = {k: v.to(loaded.device) for k, v in batch.items()}
        out = loaded.forward(**batch)
        for row, (start, end) in enumerate(
            zip(
                out.start_logits.to(torch.float64).cpu().numpy(),
                out.end_logits.to(torch.float64).cpu().numpy(),
                strict=True,
            )
        ):
            width = len(features[chosen[row]]["input_ids"])
            # Padding was to this batch's longest window: keep each window's own length
            # (the span search reads positions of its own window only).
            starts[chosen[row]], ends[chosen[row]] = start[:width], end[:width]
    ranked = feats.best_spans(
        examples,
        features,
        starts,
        ends,
        max_answer_len=max_answer_len,
        top_k=top_k,
        null_threshold=null_threshold,
    )
    windows: dict[int, list[int]] = {}
    for number, feature in enumerate(features):
        windows.setdefault(int(feature["_example_index"]), []).append(number)
    results = []
    for index, answers in enumerate(ranked):
        mine = windows.get(index, [])
        results.append(
            [
                WindowedSpan(
                    a.text,
                    a.start,
                    a.end,
                    a.score,
                    a.probability,
                    _source_window(a.start, a.end, mine, features, starts, ends) if a.text else -1,
                    len(mine),
                )
                for a in answers
            ]
        )
    return results


def _source_window(
    start: int,
    end: int,
    numbers: Sequence[int],
    features: Sequence[feats.Feature],
    starts: Sequence[np.ndarray],
    ends: Sequence[np.ndarray],
) -> int:
    """The window (index among the example's windows) where the span scores best.

    A span may lie in two overlapping windows; best_spans keeps its better score, so the
    window is the one whose start-token + end-token logits are highest for it.
    """
    best, best_score = -1, -np.inf
    for position, number in enumerate(numbers):
        offsets = features[number]["_offsets"]
        first = [i for i, o in enumerate(offsets) if o is not None and o[0] == start]
        last = [j for j, o in enumerate(offsets) if o is not None and o[1] == end]
        for i in first:
            for j in last:
                if j >= i and starts[number][i] + ends[number][j] > best_score:
                    best, best_score = position, starts[number][i] + ends[number][j]
    return best
