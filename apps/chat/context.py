"""Context-window management: which turns the model still sees, and what the user is told.

Before each turn the chat is rendered with the model's template and counted; with the
reply's ``max_new_tokens`` it must fit the window. When it does not, the oldest turns leave
the model's view, a user/assistant pair at a time (never the system prompt, never the new
user message), and either

- ``"drop"``: they are simply no longer sent, or
- ``"summarize"``: the same model writes a short summary of them, sent as a system-side note
  ``"Summary of earlier conversation: ..."`` (folded into the system prompt when there is one).

Either way the caller gets a one-line notice for the user. A new message that does not fit
even alone (with the system prompt) is refused with :class:`InputTooLongError`: it is never
truncated.

The session keeps the whole conversation (``messages``, what is saved); only the part the
model sees shrinks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quintet.apps.chat.settings import STRATEGIES  # noqa: F401 - re-exported
from quintet.core.decoding.prompts import InputTooLongError
from quintet.core.decoding.types import Message

SUMMARY_PREFIX = "Summary of earlier conversation: "
SUMMARY_MAX_NEW_TOKENS = 96
# The transcript a summary is written from is cut to its last characters: the summarizer's
# own prompt must fit the window too (about 4 characters a token in English).
SUMMARY_INPUT_CHARS = 4000

# count(turns, summary) -> tokens of the request rendered with the model's template.
Counter = Callable[[Sequence[Message], str], int]
# summarize(dropped_turns, previous_summary) -> the new summary text.
Summarizer = Callable[[Sequence[Message], str], str]


@dataclass(frozen=True)
class Fit:
    """What :func:`fit` decided: drop ``dropped`` turns from the front of the view, use
    ``summary`` (may be ""), and tell the user ``notice`` ("" when nothing changed)."""

    dropped: int
    summary: str
    notice: str


def with_summary(messages: list[Message], summary: str) -> list[Message]:
    """``messages`` (system first, if any) with the summary note added on the system side."""
    if not summary:
        return messages
    note = SUMMARY_PREFIX + summary
    if messages and messages[0]["role"] == "system":
        return [
            {"role": "system", "content": f"{messages[0]['content']}\n\n{note}"},
            *messages[1:],
        ]
    return [{"role": "system", "content": note}, *messages]


def _pair(turns: Sequence[Message]) -> int:
    """How many messages the oldest exchange spans (a user message and its reply, or one)."""
    if len(turns) > 2 and turns[0]["role"] == "user" and turns[1]["role"] == "assistant":
        return 2
    return 1


def fit(
    turns: Sequence[Message],
    *,
    count: Counter,
    budget: int,
    window: int,
    max_new_tokens: int,
    strategy: str,
    summary: str,
    summarize: Summarizer,
) -> Fit:
    """Decide how many of the oldest ``turns`` (the last one is the new user message) leave
    the model's view so that ``count(kept, summary) <= budget``.

    Raises:
        InputTooLongError: the new message alone (with the system prompt) is over budget,
            or ``max_new_tokens`` leaves no budget at all.
    """
    if budget < 1:  # max_new_tokens takes the whole window: no message could ever fit
        raise InputTooLongError(
            f"max_new_tokens {max_new_tokens} leaves no room for the message in the "
            f"{window}-token context window: lower max_new_tokens below {window}, or allow a "
            "larger context window"
        )
    if count(turns, summary) <= budget:
        return Fit(0, summary, "")
    alone = count(turns[-1:], "")
    if alone > budget:
        raise InputTooLongError(
            f"the message is {alone} tokens with the system prompt and template, more than the "
            f"{budget} that fit ({window}-token context window minus max_new_tokens "
            f"{max_new_tokens}): shorten it, split it over several messages, or lower "
            "max_new_tokens"
        )
    kept, dropped = list(turns), 0
    # Without the old summary first: it is rewritten below ("summarize") or is what goes
    # first ("drop": the summary of turns even older than these).
    while count(kept, summary if strategy == "drop" else "") > budget and len(kept) > 1:
        n = _pair(kept)
        kept, dropped = kept[n:], dropped + n
    if strategy == "drop":
        if count(kept, summary) > budget:
            summary = ""
        return Fit(dropped, summary, _notice(dropped, "dropped", window))
    new_summary = summarize(list(turns[:dropped]), summary) if dropped else summary
    extra = 0
    while count(kept, new_summary) > budget and len(kept) > 1:
        n = _pair(kept)  # the summary takes room: make more (these are dropped, not summarized)
        kept, extra = kept[n:], extra + n
    if count(kept, new_summary) > budget:
        return Fit(dropped + extra, "", _notice(dropped + extra, "dropped", window))
    notice = _notice(dropped, "summarized", window)
    if extra:
        notice += f"; dropped {extra} more to make room for the summary"
    return Fit(dropped + extra, new_summary, notice)


def _notice(messages: int, what: str, window: int) -> str:
    plural = "s" if messages != 1 else ""
    return (
        f"Context window full: {what} the {messages} oldest message{plural} to fit the "
        f"{window}-token window (the system prompt is kept)."
    )


def summary_prompt(dropped: Sequence[Message], previous: str) -> list[Message]:
    """The chat that asks the model to summarize ``dropped`` (and the previous summary)."""
    transcript = "\n".join(f"{m['role']}: {m['content']}" for m in dropped)
    if previous:
        transcript = f"(earlier: {previous})\n{transcript}"
    transcript = transcript[-SUMMARY_INPUT_CHARS:]
    return [
        {
            "role": "user",
            "content": "Summarize this conversation in at most two sentences, keeping names, "
            f"numbers and decisions.\n\n{transcript}",
        }
    ]
