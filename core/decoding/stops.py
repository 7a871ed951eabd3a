"""Stop strings, for whole outputs and for streams.

A stream cannot emit text that might turn out to be the start of a stop string: it holds
back the longest tail of the text that is a prefix of some stop string, and emits it only
once the next tokens rule the stop string out.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopStrings:
    """Finds stop strings in generated text.

    Example:
        >>> stops = StopStrings(["\\nUser:"])
        >>> stops.find("Hi there\\nUser: next")
        (8, '\\nUser:')
        >>> stops.safe_length("Hi there\\nUs")   # '\\nUs' might become '\\nUser:'
        8
    """

    def __init__(self, stop_strings: Sequence[str]) -> None:
        self.stop_strings = tuple(s for s in stop_strings if s)

    def __bool__(self) -> bool:
        return bool(self.stop_strings)

    def find(self, text: str) -> tuple[int, str] | None:
        """Index and value of the earliest stop string in ``text``, or None."""
        best: tuple[int, str] | None = None
        for stop in self.stop_strings:
            index = text.find(stop)
            if index >= 0 and (best is None or index < best[0]):
                best = (index, stop)
        return best

    def safe_length(self, text: str) -> int:
        """How much of ``text`` can be emitted now without risking part of a stop string."""
        held = 0
        for stop in self.stop_strings:
            for size in range(min(len(stop) - 1, len(text)), held, -1):
                if text.endswith(stop[:size]):
                    held = size
                    break
        return len(text) - held

    @property
    def longest(self) -> int:
        return max((len(s) for s in self.stop_strings), default=0)
