"""Split a long text into overlapping chunks that fit a token budget.

Units are speaker turns (lines) for a dialogue, sentences otherwise, so a chunk never starts
or ends in the middle of one (a single unit over the budget is cut at word boundaries, the
last resort). Consecutive chunks share up to ``overlap`` tokens of whole units, so what is
said across a chunk boundary is seen whole by at least one chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from quintet.apps.translation.segment import split_sentences


def _units(text: str, dialogue: bool) -> list[tuple[int, int]]:
    """Character spans of the units of ``text``."""
    spans = []
    if dialogue:
        for match in re.finditer(r"[^\r\n]+", text):
            if match.group().strip():
                spans.append((match.start(), match.end()))
        return spans
    position = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, position)
        if start < 0:  # whitespace normalised away: fall back to a running position
            start = position
        end = start + len(sentence)
        spans.append((start, end))
        position = end
    return spans


def _split_long(text: str, span: tuple[int, int], count, budget: int) -> list[tuple[int, int]]:
    pieces, start = [], span[0]
    words = list(re.finditer(r"\S+", text[span[0] : span[1]]))
    current_start = None
    last_end = span[0]
    for word in words:
        w_start, w_end = span[0] + word.start(), span[0] + word.end()
        if current_start is None:
            current_start = w_start
        elif count(text[current_start:w_end]) > budget:
            pieces.append((current_start, last_end))
            current_start = w_start
        last_end = w_end
    if current_start is not None:
        pieces.append((current_start, last_end))
    return pieces or [(start, span[1])]


def chunk_text(
    text: str,
    count: Callable[[str], int],
    max_tokens: int,
    overlap: int = 0,
    *,
    dialogue: bool = False,
) -> list[tuple[str, tuple[int, int]]]:
    """Chunks of ``text`` as ``(chunk text, (start, end))``; one chunk if it all fits."""
    if count(text) <= max_tokens:
        return [(text.strip(), (0, len(text)))]
    units: list[tuple[int, int]] = []
    for span in _units(text, dialogue):
        if count(text[span[0] : span[1]]) > max_tokens:
            units += _split_long(text, span, count, max_tokens)
        else:
            units.append(span)
    chunks: list[tuple[int, int]] = []  # unit index ranges [first, last]
    first = 0
    while first < len(units):
        last = first
        while (
            last + 1 < len(units)
            and count(text[units[first][0] : units[last + 1][1]]) <= max_tokens
        ):
            last += 1
        chunks.append((first, last))
        if last + 1 >= len(units):
            break
        # Step back over whole units worth at most `overlap` tokens, but always move on.
        nxt = last + 1
        while nxt - 1 > first and count(text[units[nxt - 1][0] : units[last][1]]) <= overlap:
            nxt -= 1
        first = nxt
    return [(text[units[a][0] : units[b][1]], (units[a][0], units[b][1])) for a, b in chunks]
