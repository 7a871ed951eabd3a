"""Metrics whose numbers equal the reference tools'.

- Extractive QA: the official SQuAD v1.1 ``evaluate-v1.1.py`` (exact match and token F1,
  max over the gold answers, mean over questions, x100), with SQuAD v2's rule for
  no-answer questions.
- Classification: accuracy, macro F1, per-class precision/recall/F1 (as scikit-learn with
  ``zero_division=0``) on a **0-100** scale; expected calibration error on a **0-1** scale.
- Summarization: ROUGE-1/2/L/Lsum from Google's ``rouge-score`` package (F-measure, mean
  over examples, x100, Porter stemming), as Hugging Face ``evaluate`` uses it.
- Translation: BLEU, chrF and TER from ``sacrebleu`` at the corpus level, with their
  signatures.

Every function takes plain strings and lists, so a harness can score any model's output.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from importlib.metadata import version
from typing import Any

from quintet.core.errors import QuintetError


class MetricError(QuintetError, ValueError):
    """The inputs of a metric do not fit (lengths differ, nothing to score, bad values)."""


def _same_length(what: str, a: Sequence[Any], b: Sequence[Any], b_name: str = "golds") -> None:
    if len(a) != len(b):
        raise MetricError(f"{len(a)} {what} but {len(b)} {b_name}; expected one per example")
    if not a:
        raise MetricError(f"no {what}; expected at least one example to score")


# --------------------------------------------------------------------------------- SQuAD

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, articles (a, an, the) and extra whitespace (SQuAD).

    Example::

        >>> normalize_answer("The  Denver Broncos!")
        'denver broncos'
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _f1(prediction: str, gold: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _no_answer(prediction: str) -> float:
    # SQuAD v2 (evaluate-v2.0.py): a question without answers has the gold answer "", and a
    # prediction is right when it normalizes to "" too.
    return 1.0 if not normalize_answer(prediction) else 0.0


def squad_exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals a normalized gold answer, else 0.0.

    An empty ``golds`` list is a no-answer question (SQuAD v2): 1.0 when the prediction is
    empty after normalization.

    Example::

        >>> squad_exact_match("the Broncos", ["Denver Broncos", "Broncos"])
        1.0
    """
    if isinstance(golds, str):
        raise MetricError("golds is a string; expected a list of gold answers")
    if not golds:
        return _no_answer(prediction)
    normalized = normalize_answer(prediction)
    return max(1.0 if normalized == normalize_answer(gold) else 0.0 for gold in golds)


def squad_f1(prediction: str, golds: Sequence[str]) -> float:
    """Token-level F1 (0-1) against the best gold answer, as the official SQuAD script.

    Example::

        >>> round(squad_f1("Denver", ["Denver Broncos"]), 4)
        0.6667
    """
    if isinstance(golds, str):
        raise MetricError("golds is a string; expected a list of gold answers")
    if not golds:
        return _no_answer(prediction)
    return max(_f1(prediction, gold) for gold in golds)


def squad_scores(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Corpus exact match and F1 (x100) over the questions in ``golds``.

    Exactly what the official ``evaluate-v1.1.py`` reports for the same questions in the same
    order: a question without a prediction scores 0; predictions for ids not in ``golds``
    are ignored. Questions with an empty gold list are scored as SQuAD v2 no-answers.

    Example::

        >>> squad_scores({"q1": "Denver Broncos", "q2": "1990"}, {"q1": ["Denver Broncos"],
        ...               "q2": ["2016"]})
        {'exact_match': 50.0, 'f1': 50.0}
    """
    if not golds:
        raise MetricError("no gold questions; expected at least one question to score")
    exact_match = f1 = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        exact_match += squad_exact_match(prediction, answers)
        f1 += squad_f1(prediction, answers)
    total = len(golds)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# ------------------------------------------------------------------------ classification


def accuracy(preds: Sequence[Hashable], golds: Sequence[Hashable]) -> float:
    """Percentage (0-100) of predictions equal to the gold label.

    Example::

        >>> accuracy(["a", "b", "b"], ["a", "b", "a"])
        66.66666666666667
    """
    _same_length("predictions", preds, golds)
    return 100.0 * sum(p == g for p, g in zip(preds, golds, strict=True)) / len(golds)


def _labels(
    preds: Sequence[Hashable], golds: Sequence[Hashable], labels: Sequence[Hashable] | None
) -> list[Hashable]:
    if labels is not None:
        if not labels:
            raise MetricError("labels is empty; expected the labels to score")
        return list(labels)
    try:
        return sorted(set(golds) | set(preds))  # as sklearn: the sorted union
    except TypeError:
        return list(dict.fromkeys([*golds, *preds]))


def per_class(
    preds: Sequence[Hashable],
    golds: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> dict[Hashable, dict[str, float]]:
    """Precision, recall and F1 (0-100) and support (gold count) for each label.

    ``labels`` defaults to the sorted union of gold and predicted labels. An undefined
    value (no predictions or no gold examples of a label) is 0, as scikit-learn's
    ``precision_recall_fscore_support(..., zero_division=0)``.

    Example::

        >>> per_class(["a", "a", "b"], ["a", "b", "b"])["b"]
        {"precision": 100.0, "recall": 50.0, "f1": 66.66666666666666, "support": 2}
    """
    _same_length("predictions", preds, golds)
    result: dict[Hashable, dict[str, float]] = {}
    for label in _labels(preds, golds, labels):
        tp = sum(1 for p, g in zip(preds, golds, strict=True) if p == label and g == label)
        predicted = sum(1 for p in preds if p == label)
        support = sum(1 for g in golds if g == label)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * tp / (predicted + support) if tp else 0.0
        result[label] = {
            "precision": 100.0 * precision,
            "recall": 100.0 * recall,
            "f1": 100.0 * f1,
            "support": support,
        }
    return result


def macro_f1(
    preds: Sequence[Hashable],
    golds: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted mean of the per-label F1 (0-100), as sklearn ``f1_score(average="macro")``.

    Example::

        >>> macro_f1(["a", "a", "b"], ["a", "b", "b"])
        66.66666666666667
    """
    scores = per_class(preds, golds, labels)
    return sum(s["f1"] for s in scores.values()) / len(scores)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """Expected calibration error on a 0-1 scale (Guo et al. 2017).

    Confidences fall into ``bins`` equal-width bins over [0, 1] (bin ``i`` holds
    ``(i/bins, (i+1)/bins]``; a confidence of exactly 0 goes to the first bin); ECE is the
    sum over bins of ``|accuracy - mean confidence|`` weighted by the bin's share of the
    examples.

    Example::

        >>> expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True])
        0.4
    """
    _same_length("confidences", confidences, correct, "correctness values")
    if bins < 1:
        raise MetricError(f"bins={bins}; expected at least 1")
    counts = [0] * bins
    conf_sums = [0.0] * bins
    right = [0] * bins
    for confidence, ok in zip(confidences, correct, strict=True):
        c = float(confidence)
        if not 0.0 <= c <= 1.0 or math.isnan(c):
            raise MetricError(f"confidence {confidence}; expected a probability in [0, 1]")
        index = min(max(math.ceil(c * bins) - 1, 0), bins - 1)
        # c * bins rounds: settle on the bin whose edges (i / bins) really hold c
        while index > 0 and c <= index / bins:
            index -= 1
        while index < bins - 1 and c > (index + 1) / bins:
            index += 1
        counts[index] += 1
        conf_sums[index] += c
        right[index] += bool(ok)
    n = len(confidences)
    return sum(
        abs(right[i] / counts[i] - conf_sums[i] / counts[i]) * counts[i] / n
        for i in range(bins)
        if counts[i]
    )


# --------------------------------------------------------------------------------- ROUGE

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# A simple sentence splitter for rougeLsum, used when a text has no newlines (Hugging Face
# uses nltk.sent_tokenize for the same purpose): a break after . ! or ? (and any closing
# quote or bracket) followed by whitespace and an upper-case letter, digit or opening quote.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9])")

_scorer = None


def split_sentences(text: str) -> str:
    """``text`` with one sentence per line (for rougeLsum), unless it has newlines already.

    Example::

        >>> split_sentences("He left. She stayed! Why?")
        'He left.\\nShe stayed!\\nWhy?'
    """
    if "\n" in text:
        return text
    return _SENTENCE_BREAK.sub(lambda m: m.group(1) + "\n", text.strip())


def _rouge_scorer():
    global _scorer
    if _scorer is None:
        from rouge_score import rouge_scorer

        _scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return _scorer


def rouge_scores(
    predictions: Sequence[str], references: Sequence[str | Sequence[str]]
) -> dict[str, float]:
    """ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures (x100), mean over examples.

    Uses ``rouge_score.rouge_scorer.RougeScorer(..., use_stemmer=True)`` with its default
    tokenizer (lower-case, ASCII letters and digits only: texts in other scripts score 0).
    rougeLsum treats each line as a sentence; a text without newlines is first split into
    sentences with :func:`split_sentences` (a regex; Hugging Face uses nltk for this). Each
    reference entry is one string or a list of strings: with several references, each
    metric takes the best F-measure (as ``RougeScorer.score_multi``).

    Example::

        >>> rouge_scores(["the cat sat"], ["the cat sat down"])["rouge1"]
        85.71428571428571
    """
    _same_length("predictions", predictions, references, "references")
    scorer = _rouge_scorer()
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, references, strict=True):
        ref_list = [refs] if isinstance(refs, str) else list(refs)
        if not ref_list:
            raise MetricError("an example has no references; expected at least one")
        pred = split_sentences(prediction)
        best = dict.fromkeys(ROUGE_TYPES, 0.0)
        for ref in ref_list:
            scores = scorer.score(split_sentences(ref), pred)
            for name in ROUGE_TYPES:
                best[name] = max(best[name], scores[name].fmeasure)
        for name in ROUGE_TYPES:
            totals[name] += best[name]
    n = len(predictions)
    return {name: 100.0 * totals[name] / n for name in ROUGE_TYPES}


def rouge_signature() -> str:
    """A one-line description of the ROUGE settings, to print next to the scores."""
    return (
        f"rouge-score {version('rouge-score')}|types:{','.join(ROUGE_TYPES)}|stemmer:porter"
        "|tok:default-lowercase-alnum|lsum-split:newline,else-regex|stat:fmeasure"
        "|agg:mean-x100|multi-ref:max"
    )


# ------------------------------------------------------------------------------ sacreBLEU


def _check_streams(hyps: Sequence[str], refs_list: Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(hyps, str):
        raise MetricError("hyps is a string; expected a list of hypotheses")
    if not hyps:
        raise MetricError("no hypotheses; expected at least one to score")
    if isinstance(refs_list, str) or not refs_list:
        raise MetricError("refs_list is empty; expected a list of reference streams")
    if all(isinstance(ref, str) for ref in refs_list):
        raise MetricError(
            "refs_list is a list of strings; expected a list of reference streams "
            "(for one reference per segment: [references])"
        )
    streams = []
    for i, stream in enumerate(refs_list):
        if isinstance(stream, str) or len(stream) != len(hyps):
            n = "a string" if isinstance(stream, str) else f"{len(stream)} references"
            raise MetricError(
                f"reference stream {i + 1} has {n} for {len(hyps)} hypotheses; expected one "
                "reference per hypothesis in every stream"
            )
        streams.append(list(stream))
    return streams


def _corpus(metric: Any, hyps: Sequence[str], refs_list: Sequence[Sequence[str]]):
    streams = _check_streams(hyps, refs_list)
    result = metric.corpus_score(list(hyps), streams)
    return result.score, str(metric.get_signature())


def bleu(
    hyps: Sequence[str], refs_list: Sequence[Sequence[str]], **options: Any
) -> tuple[float, str]:
    """Corpus BLEU (0-100) and its signature, from ``sacrebleu.metrics.BLEU(**options)``.

    ``refs_list`` is a list of reference streams, each aligned with ``hyps``. Defaults are
    sacreBLEU's (13a tokenizer, or the one ``trg_lang=`` selects, e.g. ``zh``, ``ja``).

    Example::

        >>> bleu(["the cat sat on the mat"], [["the cat sat on the mat"]])[0]
        100.00000000000004
    """
    from sacrebleu.metrics import BLEU

    return _corpus(BLEU(**options), hyps, refs_list)


def chrf(
    hyps: Sequence[str], refs_list: Sequence[Sequence[str]], **options: Any
) -> tuple[float, str]:
    """Corpus chrF (0-100; chrF++ with ``word_order=2``) and its signature (sacreBLEU).

    Example::

        >>> chrf(["the cat sat"], [["the cat sat"]])[0]
        100.0
    """
    from sacrebleu.metrics import CHRF

    return _corpus(CHRF(**options), hyps, refs_list)


def ter(
    hyps: Sequence[str], refs_list: Sequence[Sequence[str]], **options: Any
) -> tuple[float, str]:
    """Corpus TER (edits per reference word x100; lower is better) and its signature.

    Example::

        >>> ter(["the cat sat"], [["the cat sat down"]])[0]
        25.0
    """
    from sacrebleu.metrics import TER

    return _corpus(TER(**options), hyps, refs_list)
