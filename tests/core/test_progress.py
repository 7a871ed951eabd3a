"""One progress helper for every batch loop: a callback, nothing, or a bar that closes."""

from __future__ import annotations

import io

from quintet.core.progress import progress_callback


def test_a_callback_is_used_as_it_is_and_false_draws_nothing() -> None:
    seen: list[tuple[int, int]] = []
    report = progress_callback(lambda done, total: seen.append((done, total)), 3)
    report(1, 3)
    assert seen == [(1, 3)]
    progress_callback(False, 3)(1, 3)  # no bar, no error
    progress_callback(None, 3)(3, 3)


def test_the_bar_closes_itself_when_the_job_is_done() -> None:
    out = io.StringIO()
    report = progress_callback(True, 4, desc="translating", unit="line", file=out)
    report(0, 4)
    report(2, 4)
    assert not out.getvalue().endswith("\n")  # still open: redrawn in place
    report(4, 4)
    drawn = out.getvalue()
    assert drawn.endswith("\n") and "translating" in drawn and "4/4" in drawn  # closed
