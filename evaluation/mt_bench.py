"""MT-Bench pieces: reference answers, the single-answer judge prompts, rating parsing,
and the response statistics the chat report shows.

The judge prompts are FastChat's own (``data/chat/mt_bench/judge_prompts.jsonl``):
``single-v1`` for turn 1 and ``single-v1-multi-turn`` for turn 2; math, reasoning and coding
questions use the ``single-math-v1`` variants with the GPT-4 reference answer, as FastChat does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from quintet.core.data import DataError
from quintet.core.paths import data_path

NEED_REFERENCE = ("math", "reasoning", "coding")
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
# Phrases that open a refusal; matched case-insensitively at the start of a response or of
# its first sentence. Deliberately narrow: a refusal rate should not count hedged answers.
REFUSAL_PHRASES = (
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "i cannot",
    "i can't",
    "i can not",
    "as an ai",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "sorry, but",
    "i won't",
    "i will not",
)
REPETITION_MIN_WORDS = 20
REPETITION_DISTINCT_4GRAMS = 0.5


def load_references(question_file: str) -> dict[str, list[str]]:
    """GPT-4 reference answers (by question id) from ``reference_answer/gpt-4.jsonl`` next to
    the question file; empty if there is none."""
    path = Path(question_file).parent / "reference_answer" / "gpt-4.jsonl"
    if not path.is_file():
        return {}
    references = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            references[str(record["question_id"])] = list(record["choices"][0]["turns"])
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise DataError(str(path), number, "expected a FastChat reference answer") from None
    return references


def load_judge_prompts(question_file: str | None = None) -> dict[str, dict]:
    """FastChat's judge prompts by name (next to the questions, else the shipped copy)."""
    candidates = [Path(question_file).parent / "judge_prompts.jsonl"] if question_file else []
    candidates.append(data_path("chat/mt_bench/judge_prompts.jsonl", must_exist=False))
    for path in candidates:
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            return {p["name"]: p for p in (json.loads(line) for line in lines if line.strip())}
    raise DataError(str(candidates[-1]), 0, "MT-Bench judge prompts not found")


def judge_messages(
    prompts: dict[str, dict],
    category: str,
    questions: list[str],
    answers: list[str],
    references: list[str] | None,
    turn: int,
) -> list[dict[str, str]]:
    """The judge's chat for one answer (``turn`` 1 or 2), as FastChat builds it."""
    with_ref = category in NEED_REFERENCE and references
    name = ("single-math-v1" if with_ref else "single-v1") + ("-multi-turn" if turn == 2 else "")
    prompt = prompts[name]
    fields = {
        "question": questions[0],
        "answer": answers[0],
        "question_1": questions[0],
        "answer_1": answers[0],
    }
    if len(questions) > 1:
        fields.update(question_2=questions[1], answer_2=answers[1] if len(answers) > 1 else "")
    if with_ref:
        fields.update(
            ref_answer_1=references[0], ref_answer_2=references[1] if len(references) > 1 else ""
        )
    return [
        {"role": "system", "content": prompt["system_prompt"]},
        {"role": "user", "content": prompt["prompt_template"].format(**fields)},
    ]


def parse_rating(judgment: str) -> float | None:
    """The ``[[rating]]`` in a judgment (1-10), or None when there is none."""
    match = _RATING.search(judgment) or _RATING_FALLBACK.search(judgment)
    if not match:
        return None
    value = float(match.group(1))
    return value if 1 <= value <= 10 else None


def is_refusal(text: str) -> bool:
    """Whether a response opens with a refusal phrase (:data:`REFUSAL_PHRASES`)."""
    head = text.strip().lower()[:80]
    return any(head.startswith(p) for p in REFUSAL_PHRASES)


def is_repetitive(text: str) -> bool:
    """A response of at least 20 words whose distinct word 4-grams are under half its
    4-grams: the model is looping."""
    words = text.split()
    if len(words) < REPETITION_MIN_WORDS:
        return False
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) / len(grams) < REPETITION_DISTINCT_4GRAMS


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (thousands commas allowed), or None."""
    for raw in reversed(_NUMBER.findall(text)):
        try:
            return float(raw.replace(",", ""))
        except ValueError:
            continue
    return None


def same_final_number(answer: str, reference: str) -> bool | None:
    """Whether the answer's last number equals the reference answer's last number (within
    1e-6 relative): a rough, automatic stand-in for "the final answer is right" on math
    questions, whose GPT-4 references end with their result. None when the reference has no
    number (nothing to compare)."""
    expected = last_number(reference)
    if expected is None:
        return None
    got = last_number(answer)
    return got is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))
