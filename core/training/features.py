"""Typed examples -> model inputs for fine-tuning, and QA logits -> answer spans.

Every ``*_features`` function returns a list of plain dicts (``Feature``): lists of ints for the
model inputs, plus metadata under keys that start with ``"_"`` (which :func:`collate` ignores),
e.g. ``"_example_index"``: the position of the example the feature came from. Nothing is padded
here; :func:`collate` pads each batch to its own longest member.

- :func:`classification_features`: text -> input_ids, plus a class index or a multi-hot list
- :func:`span_features`: question + context -> one feature per context window
- :func:`best_spans`: the start/end logits of those windows -> answer texts and offsets
- :func:`causal_sft_features`: chat -> input_ids with labels on the assistant tokens only
- :func:`seq2seq_features`: source -> input_ids, target -> labels
- :func:`collate`: a batch of features -> padded tensors
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quintet.core.decoding.prompts import DEFAULT_CHAT_TEMPLATE
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.examples import ChatExample, ClassificationExample, PairExample, QAExample

__all__ = [
    "IGNORE_INDEX",
    "Feature",
    "FeatureError",
    "SpanAnswer",
    "best_spans",
    "causal_sft_features",
    "classification_features",
    "collate",
    "seq2seq_features",
    "span_features",
]

Feature = dict[str, Any]

# The label value PyTorch's cross-entropy (and every HF model's loss) skips.
IGNORE_INDEX = -100

# Candidate start/end indices looked at per window, as in the HF question-answering examples.
_N_BEST = 20


class FeatureError(QuintetError):
    """Examples cannot be turned into model inputs (bad labels, unusable tokenizer or template)."""


def _where(example: Any, index: int) -> str:
    """How to name an example in an error: its source ("path:line") or id, else its position."""
    source = getattr(example, "source", "") or ""
    ident = getattr(example, "id", "") or ""
    return source or (f"id {ident!r}" if ident else f"example {index}")


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def classification_features(
    tokenizer: Any,
    examples: Sequence[ClassificationExample],
    label2id: dict[str, int],
    *,
    multi_label: bool = False,
    max_length: int = 256,
) -> list[Feature]:
    """Tokenize texts for sequence classification.

    Texts longer than ``max_length`` tokens are truncated from the right: a classifier sees
    only the first ``max_length`` tokens, which is the usual trade-off for long documents.

    Args:
        tokenizer: a Hugging Face tokenizer.
        examples: the texts and their labels.
        label2id: label name -> class index.
        multi_label: give each feature a multi-hot ``list[float]`` over all classes (for a
            BCE loss) instead of one class index; single-label examples need exactly one label.
        max_length: the most tokens per text, special tokens included.

    Returns:
        One feature per example: ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when
        the tokenizer makes them), ``labels`` and ``_example_index``.

    Raises:
        FeatureError: a label not in ``label2id``, or not exactly one label in single-label mode.

    Example:
        >>> features = classification_features(
        ...     tokenizer, [ClassificationExample("great film", ("positive",))],
        ...     {"negative": 0, "positive": 1})                       # doctest: +SKIP
        >>> features[0]["labels"]
        1
    """
    if not examples:
        return []
    encoded = tokenizer(
        [example.text for example in examples], truncation=True, max_length=max_length
    )
    features: list[Feature] = []
    for index, example in enumerate(examples):
        unknown = [label for label in example.labels if label not in label2id]
        if unknown:
            raise FeatureError(
                f"{_where(example, index)}: unknown label(s) {unknown}; "
                f"known labels: {', '.join(sorted(label2id))}"
            )
        if multi_label:
            hot = [0.0] * (max(label2id.values()) + 1)
            for label in example.labels:
                hot[label2id[label]] = 1.0
            labels: int | list[float] = hot
        else:
            if len(example.labels) != 1:
                raise FeatureError(
                    f"{_where(example, index)} has {len(example.labels)} labels "
                    f"{list(example.labels)}; single-label classification needs exactly one "
                    "(use multi_label=True for multi-label data)"
                )
            labels = label2id[example.labels[0]]
        feature: Feature = {key: list(encoded[key][index]) for key in _input_keys(encoded)}
        feature["labels"] = labels
        feature["_example_index"] = index
        features.append(feature)
    return features


def _input_keys(encoded: Any) -> list[str]:
    """The model-input keys a tokenizer returned (token_type_ids only where it makes them)."""
    return [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]


# --------------------------------------------------------------------------------------------
# Extractive QA: features
# --------------------------------------------------------------------------------------------


def span_features(
    tokenizer: Any,
    examples: Sequence[QAExample],
    *,
    max_length: int = 384,
    doc_stride: int = 128,
    training: bool = True,
) -> list[Feature]:
    """Tokenize question/context pairs into overlapping context windows.

    The question comes first and the context second; a context that does not fit is split
    into windows of at most ``max_length`` tokens that overlap by ``doc_stride`` tokens, so an
    answer cut by one window boundary is whole in the next. A question longer than half of
    ``max_length`` is cut to that many tokens (its end is dropped) so that every window still
    holds a useful piece of context; the context itself is never dropped.

    Args:
        tokenizer: a *fast* Hugging Face tokenizer (offsets are needed to map tokens back to
            characters).
        examples: the QA examples.
        max_length: the most tokens per window, special tokens included.
        doc_stride: how many tokens consecutive windows share; must be less than the context
            room of a window (``max_length - max_length // 2 -`` the special tokens).
        training: add ``start_positions``/``end_positions``: the token indices of the first gold
            answer when it lies wholly inside the window, else both the CLS index (0), which is
            also the label of an example without answers (SQuAD v2 style).

    Returns:
        One feature per window: ``input_ids``, ``attention_mask`` (``token_type_ids`` when the
        tokenizer makes them), the positions when training, and for postprocessing
        ``_example_index`` (shared by the windows of one example), ``_offsets`` (a
        ``(start, end)`` character span into the context for context tokens, ``None`` for
        question and special tokens) and ``_cls_index``.

    Raises:
        FeatureError: the tokenizer is not a fast one, or a gold answer's text is not at its
            offset in the context.
        ConfigError: ``doc_stride`` leaves windows no room to move forward.

    Example:
        >>> example = QAExample("q1", "Who won?", "Denver won the game.", (Answer("Denver", 0),))
        >>> feature = span_features(tokenizer, [example])[0]               # doctest: +SKIP
        >>> tokenizer.decode(feature["input_ids"][feature["start_positions"]])
        'denver'
    """
    if not getattr(tokenizer, "is_fast", False):
        raise FeatureError(
            f"extractive QA needs a fast tokenizer (with offset mappings); "
            f"{type(tokenizer).__name__} is not one: use a model that ships a tokenizer.json"
        )
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    question_room = max_length // 2
    context_room = max_length - question_room - specials
    if not 0 <= doc_stride < context_room:
        # The Rust tokenizer panics (a BaseException, not an Exception) if the stride does not
        # fit in the context room, so refuse it here with a message that says what to change.
        raise ConfigError(
            f"doc_stride {doc_stride} must be at least 0 and less than {context_room} "
            f"(the context room of a {max_length}-token window): lower doc_stride or raise "
            "max_length"
        )
    if not examples:
        return []

    questions = [_clip_question(tokenizer, e.question, question_room) for e in examples]
    encoded = tokenizer(
        questions,
        [example.context for example in examples],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    keys = _input_keys(encoded)
    features: list[Feature] = []
    for window, example_index in enumerate(encoded["overflow_to_sample_mapping"]):
        example = examples[example_index]
        input_ids = list(encoded["input_ids"][window])
        sequence_ids = encoded.sequence_ids(window)
        offsets: list[tuple[int, int] | None] = [
            (int(span[0]), int(span[1])) if sequence_id == 1 else None
            for span, sequence_id in zip(
                encoded["offset_mapping"][window], sequence_ids, strict=True
            )
        ]
        cls_index = _cls_index(tokenizer, input_ids)
        feature: Feature = {key: list(encoded[key][window]) for key in keys}
        if training:
            start, end = _answer_tokens(example, example_index, offsets, cls_index)
            feature["start_positions"] = start
            feature["end_positions"] = end
        feature["_example_index"] = example_index
        feature["_offsets"] = offsets
        feature["_cls_index"] = cls_index
        features.append(feature)
    return features


def _clip_question(tokenizer: Any, question: str, room: int) -> str:
    """The question, without the leading blanks some SQuAD questions have, cut to ``room`` tokens.

    Cutting the text at a token's end offset (rather than cutting token ids) keeps the pair
    encoding a plain call to the tokenizer.
    """
    question = question.lstrip()
    encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(encoded["input_ids"]) <= room:
        return question
    return question[: encoded["offset_mapping"][room - 1][1]]


def _cls_index(tokenizer: Any, input_ids: list[int]) -> int:
    """Where the CLS token is (0 for BERT-style models, and the fallback)."""
    cls_id = getattr(tokenizer, "cls_token_id", None)
    if cls_id is not None and cls_id in input_ids:
        return input_ids.index(cls_id)
    return 0


def _answer_tokens(
    example: QAExample,
    example_index: int,
    offsets: Sequence[tuple[int, int] | None],
    cls_index: int,
) -> tuple[int, int]:
    """The token span of the first gold answer in this window, or (cls, cls) if it is not in it."""
    if not example.answers:
        return cls_index, cls_index
    answer = example.answers[0]
    start_char, end_char = answer.start, answer.start + len(answer.text)
    if example.context[start_char:end_char] != answer.text:
        raise FeatureError(
            f"{_where(example, example_index)}: answer {answer.text!r} is not at character "
            f"{answer.start} of the context (found {example.context[start_char:end_char]!r})"
        )
    context_tokens = [i for i, span in enumerate(offsets) if span is not None]
    if not context_tokens:
        return cls_index, cls_index
    first, last = context_tokens[0], context_tokens[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return cls_index, cls_index
    # First token ending after the answer starts; last token starting before it ends.
    start = next(i for i in context_tokens if offsets[i][1] > start_char)
    end = next(i for i in reversed(context_tokens) if offsets[i][0] < end_char)
    if end < start:  # an empty answer text: nothing to point at
        return cls_index, cls_index
    return start, end


# --------------------------------------------------------------------------------------------
# Extractive QA: postprocessing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanAnswer:
    """A predicted answer: ``context[start:end] == text``; ``""`` with start = end = 0 for none.

    ``score`` is the start logit plus the end logit; ``probability`` is the softmax of the
    score over all candidates of the example (the no-answer one included when it was
    considered).
    """

    text: str
    start: int
    end: int
    score: float
    probability: float


def best_spans(
    examples: Sequence[QAExample],
    features: Sequence[Feature],
    start_logits: Any,
    end_logits: Any,
    *,
    max_answer_len: int = 30,
    top_k: int = 1,
    null_threshold: float | None = None,
) -> list[list[SpanAnswer]]:
    """Pick the best answer spans of each example across all of its windows.

    In each window the 20 (or ``top_k``, if more) highest start and end logits are paired;
    a pair counts when both tokens are context tokens, the end is not before the start and the
    span is at most ``max_answer_len`` tokens. A span found in two overlapping windows is kept
    once, with its better score.

    Args:
        examples: the examples given to :func:`span_features`.
        features: what :func:`span_features` returned for them (their ``_offsets`` are used).
        start_logits, end_logits: numpy arrays or torch tensors, one row per feature in the
            order of ``features``; rows may be longer than their feature (right padding).
        max_answer_len: the longest answer, in tokens.
        top_k: how many answers to return per example.
        null_threshold: ``None`` never answers "no answer" (SQuAD v1). Otherwise the empty
            answer comes first when the no-answer score (CLS start + end logit, lowest over the
            windows) beats the best span's score by more than this (SQuAD v2; 0.0 is the
            usual default).

    Returns:
        For each example up to ``top_k`` answers, best first. An example whose context is
        blank gets ``[SpanAnswer("", 0, 0, 0.0, 1.0)]`` without looking at the logits.

    Example:
        >>> features = span_features(tokenizer, examples, training=False)  # doctest: +SKIP
        >>> out = model(**collate(features, tokenizer.pad_token_id))
        >>> best_spans(examples, features, out.start_logits, out.end_logits)[0][0].text
        'Denver Broncos'
    """
    starts, ends = _rows(start_logits), _rows(end_logits)
    if not (len(starts) == len(ends) == len(features)):
        raise ConfigError(
            f"got {len(starts)} start and {len(ends)} end logit rows for {len(features)} "
            "features: pass one row per feature, in the same order"
        )
    by_example: dict[int, list[int]] = {}
    for number, feature in enumerate(features):
        by_example.setdefault(int(feature["_example_index"]), []).append(number)

    n_best = max(_N_BEST, top_k)
    results: list[list[SpanAnswer]] = []
    for index, example in enumerate(examples):
        if not example.context.strip():
            results.append([SpanAnswer("", 0, 0, 0.0, 1.0)])
            continue
        candidates: dict[tuple[int, int], float] = {}
        null_score: float | None = None
        for number in by_example.get(index, []):
            feature = features[number]
            offsets = feature["_offsets"]
            length = len(offsets)
            start_row, end_row = starts[number][:length], ends[number][:length]
            cls = int(feature.get("_cls_index", 0))
            window_null = float(start_row[cls] + end_row[cls])
            # The lowest no-answer score over the windows: one window that sees the answer
            # is enough to say there is one.
            null_score = window_null if null_score is None else min(null_score, window_null)
            for span, score in _window_spans(start_row, end_row, offsets, n_best, max_answer_len):
                if score > candidates.get(span, -np.inf):
                    candidates[span] = score
        results.append(_rank(example.context, candidates, null_score, top_k, null_threshold))
    return results


def _rows(logits: Any) -> list[np.ndarray]:
    """Logit rows as float64 numpy vectors, from a tensor, an array or a list of rows."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().to(torch.float64).cpu().numpy()
    return [
        np.asarray(
            row.detach().to(torch.float64).cpu() if isinstance(row, torch.Tensor) else row,
            np.float64,
        )
        for row in logits
    ]


def _window_spans(
    start_row: np.ndarray,
    end_row: np.ndarray,
    offsets: Sequence[tuple[int, int] | None],
    n_best: int,
    max_answer_len: int,
) -> list[tuple[tuple[int, int], float]]:
    """The valid (char start, char end) spans among one window's top start/end pairs."""
    in_context = np.array([span is not None for span in offsets], dtype=bool)
    top_starts = np.argsort(start_row)[::-1][:n_best]
    top_ends = np.argsort(end_row)[::-1][:n_best]
    top_starts = top_starts[in_context[top_starts]]
    top_ends = top_ends[in_context[top_ends]]
    lengths = top_ends[None, :] - top_starts[:, None] + 1
    valid = (lengths >= 1) & (lengths <= max_answer_len)
    scores = start_row[top_starts][:, None] + end_row[top_ends][None, :]
    spans = []
    for i, j in zip(*np.nonzero(valid), strict=True):
        start, end = int(top_starts[i]), int(top_ends[j])
        spans.append(((offsets[start][0], offsets[end][1]), float(scores[i, j])))
    return spans


def _rank(
    context: str,
    candidates: dict[tuple[int, int], float],
    null_score: float | None,
    top_k: int,
    null_threshold: float | None,
) -> list[SpanAnswer]:
    """Order one example's candidates, add the no-answer when it wins, attach probabilities."""
    ranked = sorted(candidates.items(), key=lambda item: item[1], reverse=True)
    consider_null = null_threshold is not None and null_score is not None
    scores = [score for _, score in ranked] + ([null_score] if consider_null else [])
    if not scores:
        # No window had a valid span (e.g. every window's context is too short to score).
        return [SpanAnswer("", 0, 0, float(null_score or 0.0), 1.0)]
    exp = np.exp(np.array(scores) - max(scores))
    probabilities = exp / exp.sum()
    answers = [
        SpanAnswer(context[start:end], start, end, score, float(probability))
        for ((start, end), score), probability in zip(ranked, probabilities, strict=False)
    ]
    if consider_null and (not ranked or null_score - ranked[0][1] > null_threshold):
        answers.insert(0, SpanAnswer("", 0, 0, float(null_score), float(probabilities[-1])))
    return answers[:top_k]


# --------------------------------------------------------------------------------------------
# Causal supervised fine-tuning on chats
# --------------------------------------------------------------------------------------------


def causal_sft_features(
    tokenizer: Any,
    chats: Sequence[ChatExample],
    *,
    max_length: int = 1024,
    chat_template: str | None = None,
) -> tuple[list[Feature], int]:
    """Tokenize chats for supervised fine-tuning of a decoder-only model.

    Each chat is rendered with ``chat_template``, else the tokenizer's own template, else
    :data:`~quintet.core.decoding.prompts.DEFAULT_CHAT_TEMPLATE` (ChatML). The loss is taken on
    every
    assistant turn only: its content and its end-of-turn token (e.g. ``<|im_end|>``) keep their
    ids as labels; system and user turns, role headers and the blank that follows an
    end-of-turn token are ``-100``. The assistant spans are found by rendering prefixes of the
    chat: the tokens of ``messages[:i]`` with the generation prompt end where assistant turn
    ``i`` starts, and those of ``messages[:i + 1]`` end where it ends. That needs each
    rendering's tokens to be a prefix of the full chat's, which holds for ChatML, Llama and most
    templates; one that rewrites earlier turns is refused.

    Args:
        tokenizer: the model's tokenizer.
        chats: the conversations; every one needs at least one assistant turn after some other
            message.
        max_length: the most tokens per chat. A longer chat is cut from the right if at least
            one assistant token survives the cut, and skipped otherwise.
        chat_template: a Jinja chat template to use instead of the tokenizer's.

    Returns:
        ``(features, skipped)``: one feature per kept chat (``input_ids``, ``attention_mask``,
        ``labels``, ``_example_index``) and how many chats were too long to keep.

    Raises:
        FeatureError: a chat without an assistant turn, one that starts with one, or a template
            whose prefix renderings are not prefixes of the full rendering.

    Example:
        >>> chat = ChatExample(({"role": "user", "content": "Hi"},
        ...                     {"role": "assistant", "content": "Hello!"}))
        >>> features, skipped = causal_sft_features(tokenizer, [chat])     # doctest: +SKIP
        >>> ids = [t for t, l in zip(features[0]["input_ids"], features[0]["labels"]) if l != -100]
        >>> tokenizer.decode(ids)
        'Hello!<|im_end|>'
    """
    template = chat_template or getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE

    def tokens(messages: Sequence[dict], generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(
            [dict(message) for message in messages],
            chat_template=template,
            add_generation_prompt=generation_prompt,
            tokenize=False,
        )
        # The template writes every special token itself (BOS included), so add none here.
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    features: list[Feature] = []
    skipped = 0
    for index, chat in enumerate(chats):
        messages = list(chat.messages)
        turns = [i for i, message in enumerate(messages) if message.get("role") == "assistant"]
        if not turns:
            raise FeatureError(
                f"{_where(chat, index)}: the chat has no assistant message to learn from"
            )
        if turns[0] == 0:
            raise FeatureError(
                f"{_where(chat, index)}: the chat starts with an assistant message; it needs a "
                "system or user message before it"
            )
        input_ids = tokens(messages, generation_prompt=False)
        labels = [IGNORE_INDEX] * len(input_ids)
        for turn in turns:
            before = tokens(messages[:turn], generation_prompt=True)
            through = tokens(messages[: turn + 1], generation_prompt=False)
            for part, what in ((before, "the generation prompt"), (through, "the turn")):
                if input_ids[: len(part)] != part:
                    raise FeatureError(
                        f"{_where(chat, index)}: the chat template renders the chat up to {what} "
                        f"of message {turn + 1} differently from the whole chat, so the "
                        "assistant tokens cannot be found; pass chat_template= with a template "
                        "that only appends (e.g. core.decoding.prompts.DEFAULT_CHAT_TEMPLATE)"
                    )
            start, end = len(before), len(through)
            # Whatever the template adds after the end-of-turn token (ChatML's "\n") is never
            # generated -- decoding stops at that token -- so it is not learnt either.
            while end > start and not tokenizer.decode([input_ids[end - 1]]).strip():
                end -= 1
            labels[start:end] = input_ids[start:end]
        if len(input_ids) > max_length:
            input_ids, labels = input_ids[:max_length], labels[:max_length]
            if all(label == IGNORE_INDEX for label in labels):
                skipped += 1
                continue
        features.append(
            {
                "input_ids": input_ids,
                "attention_mask": [1] * len(input_ids),
                "labels": labels,
                "_example_index": index,
            }
        )
    return features, skipped


# --------------------------------------------------------------------------------------------
# Sequence to sequence
# --------------------------------------------------------------------------------------------


def seq2seq_features(
    tokenizer: Any,
    pairs: Sequence[PairExample],
    *,
    max_source_length: int = 512,
    max_target_length: int = 128,
    prefix: str = "",
) -> list[Feature]:
    """Tokenize source/target pairs for an encoder-decoder model (summarization, translation).

    Sources and targets are truncated from the right to their maximum lengths; only the first
    target of a pair (``pair.target``) is learnt.

    Args:
        tokenizer: the model's tokenizer (Marian's switches to its target vocabulary for
            ``text_target``).
        pairs: the examples.
        max_source_length, max_target_length: the most tokens per source / target.
        prefix: put before every source; T5 wants its task prefix, e.g. ``"summarize: "``.

    Returns:
        One feature per pair: ``input_ids``, ``attention_mask``, ``labels`` (the target's ids,
        end token included) and ``_example_index``.

    Example:
        >>> features = seq2seq_features(tokenizer, [PairExample("A long text.", ("Short.",))],
        ...                              prefix="summarize: ")             # doctest: +SKIP
        >>> tokenizer.decode(features[0]["labels"], skip_special_tokens=True)
        'Short.'
    """
    if not pairs:
        return []
    sources = tokenizer(
        [prefix + pair.source_text for pair in pairs],
        truncation=True,
        max_length=max_source_length,
    )
    targets = tokenizer(
        text_target=[pair.target for pair in pairs],
        truncation=True,
        max_length=max_target_length,
    )
    return [
        {
            "input_ids": list(sources["input_ids"][index]),
            "attention_mask": list(sources["attention_mask"][index]),
            "labels": list(targets["input_ids"][index]),
            "_example_index": index,
        }
        for index in range(len(pairs))
    ]


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------

# What each token-aligned key is padded with; any other list-of-ints key is padded with 0.
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "labels": IGNORE_INDEX}


def collate(
    features: Sequence[Feature], pad_id: int, *, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pad a batch of features into tensors.

    ``input_ids`` are padded with ``pad_id``, ``attention_mask`` and ``token_type_ids`` with 0
    and token labels with -100. Per-example values stay one per row: an int label or
    ``start_positions`` becomes a long tensor, a multi-hot label list a float tensor. Keys that
    start with ``"_"`` are metadata and left out.

    Args:
        features: from one of the ``*_features`` functions.
        pad_id: the tokenizer's pad token id (decoder-only models without one: the EOS id).
        padding_side: ``"right"`` for training; ``"left"`` for decoder-only generation, so that
            every prompt ends at the last column.

    Example:
        >>> batch = collate([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1]},
        ...                  {"input_ids": [5], "attention_mask": [1]}], pad_id=0)
        >>> batch["input_ids"].tolist()
        [[5, 6, 7], [5, 0, 0]]
    """
    if not features:
        raise ConfigError("cannot collate an empty batch")
    if padding_side not in ("left", "right"):
        raise ConfigError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    if pad_id is None:
        raise ConfigError(
            "pad_id is None: the tokenizer has no pad token; pass its eos_token_id instead"
        )
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        if key.startswith("_"):
            continue
        try:
            values = [feature[key] for feature in features]
        except KeyError:
            raise ConfigError(f"some features in the batch have no {key!r}") from None
        first = values[0]
        if not isinstance(first, list | tuple):
            batch[key] = torch.tensor(values, dtype=_dtype_of(values))
        elif first and isinstance(first[0], float):
            # Multi-hot labels: one float per class, the same length in every row.
            batch[key] = torch.tensor(values, dtype=torch.float32)
        else:
            pad = pad_id if key == "input_ids" else _PAD_VALUES.get(key, 0)
            batch[key] = _pad(values, pad, padding_side)
    return batch


def _dtype_of(values: Sequence[Any]) -> torch.dtype:
    return torch.float32 if any(isinstance(value, float) for value in values) else torch.long


def _pad(rows: Sequence[Sequence[int]], value: int, side: str) -> torch.Tensor:
    width = max(len(row) for row in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        if not row:
            continue
        if side == "right":
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        else:
            out[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
    return out
