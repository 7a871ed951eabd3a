"""Stop-string search and the hold-back rule for streams."""

from __future__ import annotations

from quintet.core.decoding.stops import StopStrings


def test_find_earliest() -> None:
    stops = StopStrings(["END", "\n\n"])
    assert stops.find("abc\n\nxyz END") == (3, "\n\n")
    assert stops.find("no stop here") is None


def test_safe_length_holds_back_possible_prefixes() -> None:
    stops = StopStrings(["</answer>"])
    assert stops.safe_length("the answer is 4 </ans") == len("the answer is 4 ")
    assert stops.safe_length("a < b") == len("a < b")
    assert stops.safe_length("tag <") == len("tag ")
    assert StopStrings([]).safe_length("anything") == len("anything")
