"""What one translation call decides before it generates, decided once.

:class:`TranslationPlan` holds a call's route, decoding settings (:class:`DecodeConfig`), its
pieces with their token ids and their own length caps, and where each text's pieces go back.
:meth:`quintet.apps.translation.Translator.translate` builds it once, generates each piece once
and reads the typed :class:`PieceTranslation` rows back into one result per text.

A piece is tokenized once for the plan: segmenting measures it against the budget, and the
same ids give its cap (the generator still encodes the prompt it builds around the piece).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from quintet.apps.translation import segment as seg
from quintet.apps.translation.languages import Language
from quintet.apps.translation.routing import Route
from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator


@dataclass(frozen=True)
class Piece:
    """One piece of a text to translate: its text and token ids (no special tokens, what the
    budget counts), and its own ``max_new_tokens`` (None when the caller set one for all)."""

    text: str
    token_ids: tuple[int, ...]
    cap: int | None


@dataclass(frozen=True)
class PlannedText:
    """One input text: its pieces are ``plan.pieces[offset:offset + count]``, and ``layout``
    (piece indices counted from ``offset``) puts their translations back together."""

    source: str
    offset: int
    layout: seg.Layout

    @property
    def count(self) -> int:
        """How many pieces the text has (0 for an empty text)."""
        return sum(len(p) for p in self.layout.paragraphs)

    def indices(self) -> list[int]:
        """Its pieces' indices in the plan."""
        return [self.offset + i for p in self.layout.paragraphs for i in p]

    def reassemble(self, translations: list[str]) -> str:
        """The text's translation from every piece's translation (the whole plan's)."""
        if not self.count:
            return ""
        shifted = seg.Layout(
            [[self.offset + i for i in p] for p in self.layout.paragraphs], self.layout.separators
        )
        return seg.reassemble(translations, shifted)


class PieceTranslation(NamedTuple):
    """What generation gave for one piece."""

    text: str
    num_tokens: int
    truncated: bool  # stopped at its max_new_tokens


@dataclass(frozen=True)
class TranslationPlan:
    """Everything a ``src -> tgt`` call decides before it generates."""

    source: Language
    target: Language
    route: Route
    style: str  # seq2seq, multilingual, marian ..., or prompted (an instruct model)
    budget: int  # the most tokens a piece may have
    config: DecodeConfig
    pieces: tuple[Piece, ...]
    texts: tuple[PlannedText, ...]
    generator: Generator = field(repr=False, compare=False)

    @property
    def caps(self) -> list[int] | None:
        """Each piece's own max_new_tokens, or None when the caller set max_new_tokens."""
        caps = [p.cap for p in self.pieces if p.cap is not None]
        return caps if len(caps) == len(self.pieces) else None


class TokenIds:
    """Token ids of texts (no special tokens), remembering the last few it was asked about.

    Segmenting asks whether a piece fits just before it decides to keep it, so the ids of a
    kept piece are still here when :func:`plan_pieces` keeps them: each piece is tokenized once.
    """

    def __init__(self, tokenizer: Any, remember: int = 8) -> None:
        self.tokenizer = tokenizer
        self.remember = remember
        self.recent: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self.calls = 0  # tokenizer calls made (what remembering saves is measurable)

    def __call__(self, text: str) -> tuple[int, ...]:
        ids = self.recent.get(text)
        if ids is None:
            self.calls += 1
            encoded = self.tokenizer(text, add_special_tokens=False, verbose=False)
            ids = tuple(int(i) for i in encoded["input_ids"])
            self.recent[text] = ids
            if len(self.recent) > self.remember:
                self.recent.popitem(last=False)
        return ids


def plan_pieces(
    texts: list[str], token_ids: TokenIds, budget: int, capped: bool
) -> tuple[tuple[Piece, ...], tuple[PlannedText, ...]]:
    """Segment every text into pieces of at most ``budget`` tokens (:func:`seg.segment`).

    With ``capped`` each piece gets its own cap (:func:`cap`), from its ids.

    Raises:
        TypeError: a text is not a string.
    """

    def fits(piece: str) -> bool:
        return len(token_ids(piece)) <= budget

    def keep(piece: str) -> Piece:
        ids = token_ids(piece)
        return Piece(piece, ids, cap(len(ids)) if capped else None)

    pieces: list[Piece] = []
    planned: list[PlannedText] = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}")
        parts, layout = seg.segment(text, fits, keep) if text.strip() else ([], seg.Layout([], []))
        planned.append(PlannedText(text, len(pieces), layout))
        pieces += parts
    return tuple(pieces), tuple(planned)


def cap(tokens: int) -> int:
    """A piece's max_new_tokens, from its own length in tokens: room for a translation
    somewhat longer than its source (German runs ~1.3x, other scripts take more tokens),
    2.5x + 16. A tight cap matters: a small model stuck in a repetition loop runs to it.

    Each piece's own cap makes its translation the same whatever else is in its call, chunk
    or batch, so a file translation resumed after a cut is byte-identical to an
    uninterrupted one."""
    return int(tokens * 2.5) + 16
