"""Chat harness: MT-Bench answers, or perplexity of held-out assistant turns.

The data decides the mode:

- **MT-Bench** ``question.jsonl`` (``turns``): each question gets two answers, the second
  written after the model's own first answer (FastChat's protocol). The runner's batches are
  decoded together: turn 1 of every question in the batch, then turn 2 of every one, greedy,
  ``max_new_tokens`` 256 unless ``--decode max_new_tokens=N``. Metrics (rates in %):

  - ``ref_chrf``: corpus chrF (sacreBLEU, 0-100) of both answers against the GPT-4 reference
    answers, on the 30 math, reasoning and coding questions that have them (60 answers;
    ``reference_answer/gpt-4.jsonl`` next to the questions). ``ref_rougeL``: mean ROUGE-L F
    (x100, stemmed) on the same pairs. Surface overlap with one good answer: a rough signal,
    not correctness.
  - ``math_answer_match``: % of math answers whose last number equals the reference answer's
    last number (:func:`quintet.evaluation.mt_bench.same_final_number`).
  - ``mean_response_words`` / ``mean_response_tokens``; ``empty_rate``; ``refusal_rate``
    (response opens with one of :data:`quintet.evaluation.mt_bench.REFUSAL_PHRASES`);
    ``repetition_rate`` (20+ words and fewer than half of its word 4-grams distinct: looping);
    ``length_cut_rate`` (ended by ``max_new_tokens``); all over every answer.
  - ``first_token_s``: mean time to the first token (of the answer's batch: the prompt pass
    of the batch); ``seconds_per_response``: predicting time / answers (batched throughput).
    Tokens/s is the runner's ``timing.tokens_per_s``.
  - with ``--option judge=MODEL`` (a name, hub id or path): ``judge_score``, the mean 1-10
    ``[[rating]]`` of FastChat's single-answer judge prompts (``single-v1`` for turn 1,
    ``single-v1-multi-turn`` for turn 2; ``single-math-v1`` variants with the reference answer
    for math, reasoning and coding), per category in the report, and ``judge_parse_failures``
    (% of judgments without a parsable rating, left out of the mean). The judge is named in
    the report settings and in the metric signature. ``judge_max_new_tokens=N`` (default 512).

- **Conversations** (``{"messages": [...]}`` JSONL, Alpaca JSON): ``perplexity`` of the
  assistant turns given the conversation before them, corpus-level: exp(total NLL / total
  assistant tokens), the assistant tokens chosen by the fine-tuning engine's own masking
  (content + end-of-turn token); ``nll_per_token`` (natural log). ``--option split=heldout``
  scores the last 10% of the file (Alpaca demo: 100 conversations the chat recipe does not
  train on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from sacrebleu.metrics import CHRF

from quintet.apps.chat.api import ChatSession
from quintet.core import metrics
from quintet.core.config import DecodeConfig
from quintet.core.data import read_chats
from quintet.core.decoding import Generator
from quintet.core.errors import ConfigError
from quintet.core.examples import ChatExample
from quintet.core.progress import ProgressCallback
from quintet.core.training.features import IGNORE_INDEX, causal_sft_features
from quintet.evaluation import mt_bench
from quintet.evaluation.protocol import (
    DataOptions,
    EvalItem,
    EvalSet,
    Prediction,
    Scores,
    split_option,
)

MT_BENCH_MAX_NEW_TOKENS = 256
BATCH_SIZE = 16  # conversations decoded together (the runner's default batch)
JUDGE_MAX_NEW_TOKENS = 512  # FastChat allows 2048; a rating comes at the end of the judgment
HELDOUT_FRACTION = 0.1


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ConfigError(f"--option {name}={value!r}: expected a positive whole number")
    return number


@dataclass
class ChatSet(EvalSet):
    """The items and the mode the data chose: ``"mt-bench"`` (``question_file`` is where the
    judge prompts and reference answers sit) or ``"perplexity"``."""

    mode: str = "mt-bench"
    question_file: str = ""


class _MTBenchPredictor:
    def __init__(
        self,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        question_file: str,
        backend: str = "auto",
    ) -> None:
        self.session = ChatSession(model, backend=backend)
        # The session decodes one conversation at a time; the runner's batches are decoded
        # together (turn 1 of every item, then turn 2), left-padded, by a batched generator.
        self.generator = Generator(self.session.loaded, backend, batch_size=BATCH_SIZE)
        # Unknown or invalid --decode options are one-line ConfigErrors, before any decoding.
        self.config = DecodeConfig.from_overrides(
            None, **{"max_new_tokens": MT_BENCH_MAX_NEW_TOKENS, **decode}
        )
        self.model_name = self.session.model_name
        judge = options.extra.get("judge")
        self.judge_name = None
        self.judge = None
        if judge:
            judge_session = (
                ChatSession(str(judge), backend=backend) if str(judge) != model else self.session
            )
            # The judge decodes on the run's engine too.
            self.judge = Generator(judge_session.loaded, backend, batch_size=BATCH_SIZE)
            self.judge_name = judge_session.model_name
        judge_tokens = _positive_int(
            options.extra.get("judge_max_new_tokens", JUDGE_MAX_NEW_TOKENS), "judge_max_new_tokens"
        )
        self.judge_config = DecodeConfig(max_new_tokens=judge_tokens)
        self.prompts = mt_bench.load_judge_prompts(question_file) if judge else {}
        self.settings = {
            "mode": "mt-bench",
            "max_new_tokens": self.config.max_new_tokens,
            "batch_size": BATCH_SIZE,
            "judge": self.judge_name,
            "judge_max_new_tokens": judge_tokens if judge else None,
            "judge_prompts": "FastChat single-v1 / single-math-v1 (+ -multi-turn)"
            if judge
            else None,
            "device": str(self.session.loaded.device),
            "backend": self.generator.backend_choice.describe(),
        }

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        turns = [item.inputs["turns"] for item in items]
        first_chats = [[{"role": "user", "content": t[0]}] for t in turns]
        started = time.perf_counter()
        # Progress counts answers: turn 1 of every item, then turn 2 (2 per item).
        answers = 2 * len(items)

        def turns_done(offset: int):
            return (lambda done, _total: progress(offset + done, answers)) if progress else False

        first = self.generator.generate(first_chats, self.config, progress=turns_done(0))
        second_chats = [
            chat + [{"role": "assistant", "content": r.text}, {"role": "user", "content": t[1]}]
            for chat, r, t in zip(first_chats, first, turns, strict=True)
        ]
        second = self.generator.generate(second_chats, self.config, progress=turns_done(len(items)))
        seconds = (time.perf_counter() - started) / max(1, 2 * len(items))
        predictions = []
        self._answers = [[a.text, b.text] for a, b in zip(first, second, strict=True)]
        for item, a, b, answers in zip(items, first, second, self._answers, strict=True):
            extra: dict[str, Any] = {
                "num_tokens": a.num_tokens + b.num_tokens,
                "response_tokens": [a.num_tokens, b.num_tokens],
                "seconds_per_response": seconds,
                "time_to_first_token_s": [
                    a.timings.time_to_first_token_s,
                    b.timings.time_to_first_token_s,
                ],
                "finish_reasons": [a.finish_reason, b.finish_reason],
            }
            predictions.append(Prediction(item.id, answers, extra))
        if self.judge is not None:
            for prediction, judged in zip(predictions, self._judge(items, turns), strict=True):
                prediction.extra["judge"] = judged
        return predictions

    def _judge(self, items: Sequence[EvalItem], questions: list[list[str]]) -> list[dict]:
        """Both answers of every item rated by the judge, FastChat's single-answer way."""
        predictions_answers = self._answers
        chats = [
            mt_bench.judge_messages(
                self.prompts, item.category, q, answers, item.references or None, turn
            )
            for item, q, answers in zip(items, questions, predictions_answers, strict=True)
            for turn in (1, 2)
        ]
        outputs = self.judge.generate(chats, self.judge_config, progress=False)
        return [
            {
                "model": self.judge_name,
                "ratings": [mt_bench.parse_rating(o.text) for o in outputs[2 * i : 2 * i + 2]],
                "judgments": [o.text for o in outputs[2 * i : 2 * i + 2]],
            }
            for i in range(len(items))
        ]


class _PerplexityPredictor:
    """Negative log-likelihood of every assistant turn given the conversation before it."""

    def __init__(self, model: str | None, backend: str = "auto") -> None:
        self.session = ChatSession(model, backend=backend)
        self.loaded = self.session.loaded
        self.model_name = self.session.model_name
        self.settings = {
            "mode": "perplexity",
            "device": str(self.loaded.device),
            "tokens": "assistant turns and their end-of-turn token, under the chat template",
        }

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        window = self.loaded.context_window or 2048
        results = []
        for item in items:
            # The fine-tuning engine's own masking: labels on assistant tokens only, so the
            # perplexity is of exactly what supervised fine-tuning would learn.
            chat = ChatExample(tuple(item.inputs["messages"]), item.source, item.id)
            features, skipped = causal_sft_features(
                self.loaded.tokenizer, [chat], max_length=window
            )
            if skipped or not features:
                results.append(Prediction(item.id, {"nll": 0.0, "tokens": 0}, {"skipped": True}))
                continue
            ids = torch.tensor([features[0]["input_ids"]], device=self.loaded.device)
            labels = torch.tensor(features[0]["labels"], device=self.loaded.device)
            with self.loaded.lock, torch.inference_mode():  # shared with every other user
                logits = self.loaded.model(input_ids=ids).logits[0, :-1].float()
            target = labels[1:]
            mask = target != IGNORE_INDEX
            logprobs = torch.log_softmax(logits[mask], dim=-1)
            picked = logprobs.gather(1, target[mask].unsqueeze(1)).squeeze(1)
            results.append(
                Prediction(
                    item.id,
                    {"nll": float(-picked.sum()), "tokens": int(mask.sum())},
                    {"prompt_tokens": int(ids.shape[1])},
                )
            )
        return results


class ChatHarness:
    """Evaluates the chat app on MT-Bench or by perplexity of assistant turns."""

    task = "chat"
    primary_metric = "ref_chrf"  # MT-Bench; conversations: "perplexity" (ChatSet)
    higher_is_better = {
        "ref_chrf": True,
        "ref_rougeL": True,
        "math_answer_match": True,
        "judge_score": True,
        "judge_parse_failures": False,
        "mean_response_words": True,
        "mean_response_tokens": True,
        "empty_rate": False,
        "refusal_rate": False,
        "repetition_rate": False,
        "length_cut_rate": False,
        "first_token_s": False,
        "seconds_per_response": False,
        "perplexity": False,
        "nll_per_token": False,
    }

    def read(self, data: str, options: DataOptions) -> ChatSet:
        examples = read_chats(data)
        if examples and examples[0].extra.get("turns"):
            references = mt_bench.load_references(data)
            items = [
                EvalItem(
                    ex.id,
                    {"turns": list(ex.extra["turns"])},
                    references.get(ex.id, []) if ex.category in mt_bench.NEED_REFERENCE else [],
                    ex.category,
                    ex.source,
                )
                for ex in examples
            ]
            return ChatSet(items, "ref_chrf", "mt-bench", data)
        if split_option(data, options) == "heldout":
            examples = examples[int(len(examples) * (1 - HELDOUT_FRACTION)) :]
        items = []
        for ex in examples:
            messages = [dict(m) for m in ex.messages]
            if not any(m["role"] == "assistant" for m in messages[1:]):
                continue  # no assistant turn after a prompt: nothing to score
            last = next(m["content"] for m in reversed(messages) if m["role"] == "assistant")
            items.append(EvalItem(ex.id, {"messages": messages}, last, ex.category, ex.source))
        return ChatSet(items, "perplexity", "perplexity")

    def open(
        self,
        run: ChatSet,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        backend: str = "auto",
    ):
        if run.mode == "mt-bench":
            return _MTBenchPredictor(model, decode, options, run.question_file, backend)
        return _PerplexityPredictor(model, backend)

    def resampler(self, run: ChatSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]):
        """Fast exact bootstrap scorer (see :mod:`quintet.evaluation.bootstrap`)."""
        if run.mode == "perplexity":
            return None  # two sums: rescoring is already fast
        return _mt_bench_resampler(items, predictions)

    def score(
        self, run: ChatSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]
    ) -> Scores:
        if run.mode == "perplexity":
            return _score_perplexity(predictions)
        return _score_mt_bench(items, predictions)


def _score_perplexity(predictions: Sequence[Prediction]) -> Scores:
    nll = sum(p.prediction["nll"] for p in predictions)
    tokens = sum(p.prediction["tokens"] for p in predictions)
    per_item = [
        {"nll_per_token": p.prediction["nll"] / p.prediction["tokens"]}
        if p.prediction["tokens"]
        else {}
        for p in predictions
    ]
    per_token = nll / max(1, tokens)
    result = {"perplexity": math.exp(min(per_token, 50)), "nll_per_token": per_token}
    # Conversations longer than the context window cannot be scored; say how many, so a
    # perplexity over fewer conversations than asked is never mistaken for the full set.
    skipped = sum(bool(p.extra.get("skipped")) for p in predictions)
    if skipped:
        result["skipped_too_long"] = float(skipped)
    return Scores(
        result,
        per_item,
        {
            "perplexity": "exp(total NLL / total assistant tokens); assistant tokens = each "
            "assistant turn's content and end-of-turn token under the model's chat template "
            "(core.training.features.causal_sft_features), natural log"
        },
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# MT-Bench metrics are ratios of per-item sums (rates over answers, means over answers or
# pairs, corpus chrF from summed sacreBLEU statistics). Scoring and the bootstrap resampler
# both sum the same per-item statistics, so resampled scores are exactly what rescoring gives.
RATIOS = (
    "mean_response_words",
    "mean_response_tokens",
    "empty_rate",
    "refusal_rate",
    "repetition_rate",
    "length_cut_rate",
    "first_token_s",
    "seconds_per_response",
    "ref_rougeL",
    "math_answer_match",
    "judge_score",
    "judge_parse_failures",
)


def _chrf_metric():
    return CHRF()  # the settings of core.metrics.chrf


def _item_stats(item: EvalItem, p: Prediction, chrf_metric) -> tuple[dict, Any, dict]:
    """(ratio sums {metric: (numerator, denominator)}, summed chrF statistics or None,
    the per-item row for the report)."""
    answers = list(p.prediction)
    n = len(answers)
    sums: dict[str, tuple[float, float]] = {
        "mean_response_words": (sum(len(a.split()) for a in answers), n),
        "empty_rate": (100.0 * sum(not a.strip() for a in answers), n),
        "refusal_rate": (100.0 * sum(mt_bench.is_refusal(a) for a in answers), n),
        "repetition_rate": (100.0 * sum(mt_bench.is_repetitive(a) for a in answers), n),
    }
    tokens = p.extra.get("response_tokens") or []
    sums["mean_response_tokens"] = (sum(tokens), len(tokens))
    reasons = p.extra.get("finish_reasons") or []
    sums["length_cut_rate"] = (100.0 * reasons.count("length"), len(reasons))
    first = [t for t in p.extra.get("time_to_first_token_s") or [] if t is not None]
    sums["first_token_s"] = (sum(first), len(first))
    if "seconds_per_response" in p.extra:
        sums["seconds_per_response"] = (float(p.extra["seconds_per_response"]), 1)
    row: dict[str, float] = {"response_words": sum(len(a.split()) for a in answers)}
    chrf_stats = None
    if item.references:
        pairs = list(zip(answers, item.references, strict=False))
        rouge = [metrics.rouge_scores([h], [r])["rougeL"] for h, r in pairs]
        sums["ref_rougeL"] = (sum(rouge), len(rouge))
        table = chrf_metric._extract_corpus_statistics([h for h, _ in pairs],
                                                       [[r for _, r in pairs]])  # fmt: skip
        chrf_stats = [sum(column) for column in zip(*table, strict=True)]
        row["ref_chrf"] = _mean([metrics.chrf([h], [[r]])[0] for h, r in pairs])
        if item.category == "math":
            hits = [mt_bench.same_final_number(h, r) for h, r in pairs]
            hits = [h for h in hits if h is not None]
            sums["math_answer_match"] = (100.0 * sum(hits), len(hits))
            if hits:
                row["math_answer_match"] = 100.0 * sum(hits) / len(hits)
    judged = (p.extra.get("judge") or {}).get("ratings")
    if judged:
        valid = [r for r in judged if r is not None]
        sums["judge_score"] = (sum(valid), len(valid))
        sums["judge_parse_failures"] = (100.0 * (len(judged) - len(valid)), len(judged))
        if valid:
            row["judge_score"] = _mean(valid)
    return sums, chrf_stats, row


def _combine(stats: Sequence[tuple[dict, Any, dict]], chrf_metric) -> dict[str, float]:
    """The metrics of a set of items (repeats allowed) from their statistics."""
    result: dict[str, float] = {}
    for name in RATIOS:
        num = sum(s[0][name][0] for s in stats if name in s[0])
        den = sum(s[0][name][1] for s in stats if name in s[0])
        if den:  # no denominator: the metric does not apply (no references, no judge)
            result[name] = num / den
    tables = [s[1] for s in stats if s[1] is not None]
    if tables:
        total = [sum(column) for column in zip(*tables, strict=True)]
        result["ref_chrf"] = float(chrf_metric._compute_score_from_stats(total).score)
    return result


def _score_mt_bench(items: Sequence[EvalItem], predictions: Sequence[Prediction]) -> Scores:
    chrf_metric = _chrf_metric()
    stats = [_item_stats(i, p, chrf_metric) for i, p in zip(items, predictions, strict=True)]
    result = _combine(stats, chrf_metric)
    signatures = {
        "refusal_rate": "% of responses opening with a phrase of evaluation.mt_bench."
        "REFUSAL_PHRASES",
        "repetition_rate": f"% of responses of {mt_bench.REPETITION_MIN_WORDS}+ words whose "
        f"distinct word 4-grams are < {mt_bench.REPETITION_DISTINCT_4GRAMS:.0%} of their 4-grams",
    }
    pairs = [
        (h, r)
        for item, p in zip(items, predictions, strict=True)
        if item.references
        for h, r in zip(p.prediction, item.references, strict=False)
    ]
    if pairs:
        chrf, signatures["ref_chrf"] = metrics.chrf([h for h, _ in pairs], [[r for _, r in pairs]])
        result["ref_chrf"] = chrf  # the reference implementation's number (equal to the sums')
        signatures["ref_chrf"] += " (corpus chrF of both turns vs the GPT-4 reference answers)"
        signatures["ref_rougeL"] = metrics.rouge_signature()
    if "math_answer_match" in result:
        signatures["math_answer_match"] = (
            "% of math answers whose last number equals the reference answer's last number"
        )
    if "judge_parse_failures" in result:
        judges = {(p.extra.get("judge") or {}).get("model") for p in predictions} - {None}
        signatures["judge_score"] = (
            f"judge: {', '.join(sorted(judges)) or 'unknown'}; FastChat single-answer prompts, "
            "mean [[rating]] (1-10) over the answers whose rating parsed"
        )
    # Headline first: the reference scores and the judge, then the rates, then speed.
    first = ("ref_chrf", "ref_rougeL", "math_answer_match", "judge_score", "judge_parse_failures")
    ordered = {name: result[name] for name in first if name in result}
    ordered.update({name: value for name, value in result.items() if name not in ordered})
    return Scores(ordered, [s[2] for s in stats], signatures)


def _mt_bench_resampler(items: Sequence[EvalItem], predictions: Sequence[Prediction]):
    chrf_metric = _chrf_metric()
    stats = [_item_stats(i, p, chrf_metric) for i, p in zip(items, predictions, strict=True)]
    return lambda indices: _combine([stats[i] for i in indices], chrf_metric)


HARNESS = ChatHarness()
