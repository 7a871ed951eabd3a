"""Split long text into pieces a model can take, and put the pieces back together.

Paragraph breaks (the exact newline runs between paragraphs) are kept; a paragraph over the
token budget is split into sentences, and sentences are packed greedily into pieces under
the budget. A single sentence over the budget is split at word boundaries as a last resort,
so nothing is ever dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

# A sentence ends at . ! ? (or their CJK forms), up to two closing quotes or brackets, then
# space and an upper-case letter, digit or quote; abbreviations like "e.g. the" stay together
# because "the" is lower-case. The closing quotes stay with their sentence.
_CLOSE = "[\"'”’)\\]]"
_SENTENCE_END = re.compile(
    rf"(?:(?<=[.!?])|(?<=[.!?]{_CLOSE})|(?<=[.!?]{_CLOSE}{_CLOSE}))\s+"
    r"(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-Þ])|(?<=[。！？])"
)
_PARAGRAPH_BREAK = re.compile(r"(\n\s*\n|\n)")
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """Where the pieces of one text go: paragraphs (lists of piece indices) and the
    separators between them."""

    paragraphs: list[list[int]]
    separators: list[str]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (whitespace between them dropped)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s and s.strip()]


def _split_words(sentence: str, fits: Callable[[str], bool]) -> Iterator[str]:
    current = ""
    for word in sentence.split():
        candidate = f"{current} {word}".strip()
        if current and not fits(candidate):
            yield current
            current = word
        else:
            current = candidate
    if current:
        yield current


def _pack(paragraph: str, fits: Callable[[str], bool]) -> Iterator[str]:
    # Each piece is yielded as soon as it is decided, right after ``fits`` measured it (see
    # segment's ``keep``).
    if fits(paragraph):
        yield paragraph.strip()
        return
    current = ""
    for sentence in split_sentences(paragraph):
        candidate = f"{current} {sentence}".strip()
        if fits(candidate):
            current = candidate
            continue
        if current:
            yield current
        if fits(sentence):
            current = sentence
        else:
            yield from _split_words(sentence, fits)
            current = ""
    if current:
        yield current


def pack(paragraph: str, fits: Callable[[str], bool]) -> list[str]:
    """Pieces of ``paragraph``, each one for which ``fits(piece)`` holds where possible."""
    return list(_pack(paragraph, fits))


def segment(
    text: str, fits: Callable[[str], bool], keep: Callable[[str], T] = str
) -> tuple[list[T], Layout]:
    """Split ``text`` into pieces that fit, and the layout to reassemble their translations.

    ``keep(piece)`` is called on each piece as soon as it is decided, before ``fits`` is
    asked about anything else, and the pieces come back as what it returns: a caller whose
    ``fits`` remembers what it last measured (the token ids) can keep that with the piece.
    """
    parts = _PARAGRAPH_BREAK.split(text)
    paragraphs_text, separators = parts[0::2], parts[1::2]
    pieces: list[T] = []
    paragraphs: list[list[int]] = []
    for paragraph in paragraphs_text:
        if not paragraph.strip():
            paragraphs.append([])
            continue
        start = len(pieces)
        pieces += [keep(piece) for piece in _pack(paragraph, fits)]
        paragraphs.append(list(range(start, len(pieces))))
    return pieces, Layout(paragraphs, separators)


def reassemble(translations: list[str], layout: Layout) -> str:
    """The translated text: each paragraph's pieces joined by a space, original breaks."""
    out = []
    for index, paragraph in enumerate(layout.paragraphs):
        out.append(" ".join(translations[i].strip() for i in paragraph))
        if index < len(layout.separators):
            out.append(layout.separators[index])
    return "".join(out)
