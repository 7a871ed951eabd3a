"""Ground a generated answer to a span of the context, or say it is not there.

An instruct model may paraphrase or wrap its answer ("The answer is Paris."). The answer
counts only if it is found in the context: first verbatim, then ignoring case, then ignoring
case, punctuation and spacing (mapped back to the original characters). Failing that, a
sentence-style answer ("Paris is the capital of France.") is grounded to its longest run of
words that the context contains, with words the question already says (and stop words)
trimmed from both ends ("Paris"). An answer with no such run is reported as not found,
never invented.
"""

from __future__ import annotations

import re


def answer_prompt(question: str, context: str) -> list[dict[str, str]]:
    """The chat that asks an instruct model for a short answer copied from the context."""
    return [
        {
            "role": "user",
            "content": (
                "Answer the question with a short phrase copied from the text.\n\n"
                f"Text: {context.strip()}\n\nQuestion: {question.strip()}"
            ),
        }
    ]


_WRAPPERS = re.compile(
    r"^(?:the\s+)?(?:answer|short answer)\s*(?:is|:)\s*|^according to the text,?\s*", re.I
)


def _normalized(text: str) -> tuple[str, list[int]]:
    """Lower-cased alphanumerics with single spaces, and each kept character's index.

    Apostrophes vanish without a space, so "Levis" matches "Levi's" and "dont" "don't".
    """
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch in "'\u2019":
            continue
        if ch.isalnum():
            chars.append(ch.lower())
            index.append(i)
        elif chars and chars[-1] != " ":
            chars.append(" ")
            index.append(i)
    while chars and chars[-1] == " ":
        chars.pop()
        index.pop()
    return "".join(chars), index


_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "and",
        "or",
        "as",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "why",
        "how",
        "from",
        "into",
        "than",
        "then",
        "there",
    ]
)
_WORD = re.compile(r"\w+(?:[-'.]\w+)*")


def _longest_common_run(answer: str, context: str, question: str) -> tuple[int, int] | None:
    """The context span of the longest word run shared with ``answer`` once question words
    and stop words are trimmed from both ends of each run.

    Trimming comes first: in "The team at Super Bowl 50 was the Denver Broncos." the run
    "at Super Bowl 50" is longer but is all question words; "Denver Broncos" is the answer.
    """
    a_words = [w.lower() for w in _WORD.findall(answer)]
    c_matches = list(_WORD.finditer(context))
    c_words = [m.group().lower() for m in c_matches]
    q_words = {w.lower() for w in _WORD.findall(question)}

    def dull(word: str) -> bool:
        return word in _STOP or word in q_words

    best: tuple[int, int] = (0, 0)  # context word range [i, j), after trimming
    for i in range(len(c_words)):
        for k in range(len(a_words)):
            n = 0
            while (
                i + n < len(c_words) and k + n < len(a_words) and c_words[i + n] == a_words[k + n]
            ):
                n += 1
            lo, hi = i, i + n
            while lo < hi and dull(c_words[lo]):
                lo += 1
            while hi > lo and dull(c_words[hi - 1]):
                hi -= 1
            if hi - lo > best[1] - best[0]:
                best = (lo, hi)
    i, j = best
    if i >= j:
        return None
    return c_matches[i].start(), c_matches[j - 1].end()


def ground(answer: str, context: str, question: str = "") -> tuple[int, int] | None:
    """``(start, end)`` of ``answer`` in ``context`` (so ``context[start:end]`` is the span),
    or None when the context does not contain it."""
    candidates = [answer.strip()]
    peeled = _WRAPPERS.sub("", answer.strip()).strip()
    if peeled != candidates[0]:
        candidates.append(peeled)
    candidates += [c.rstrip(".!?,;:").strip() for c in list(candidates)]
    for candidate in dict.fromkeys(c for c in candidates if c):
        # Whole words only ("art" must not ground inside "party"); regex, not str.lower(),
        # so that offsets stay offsets into the original text.
        pattern = (
            (r"(?<!\w)" if candidate[0].isalnum() else "")
            + re.escape(candidate)
            + (r"(?!\w)" if candidate[-1].isalnum() else "")
        )
        for flags in (0, re.IGNORECASE):
            match = re.search(pattern, context, flags)
            if match:
                return match.start(), match.end()
    norm_context, index = _normalized(context)
    for candidate in dict.fromkeys(c for c in candidates if c):
        norm_answer, _ = _normalized(candidate)
        if not norm_answer:
            continue
        # Whole words only: "art" must not ground inside "party".
        match = re.search(rf"(?<![a-z0-9]){re.escape(norm_answer)}(?![a-z0-9])", norm_context)
        if match:
            return index[match.start()], index[match.end() - 1] + 1
    return _longest_common_run(peeled or answer, context, question)
