"""Progress reporting for long jobs: one ``(done, total)`` callback, whoever runs the job.

Every batch loop (decoding, evaluation, file translation, file classification, the CLI's
batch commands) takes ``progress``: True for a bar on the terminal, False or None for
nothing, or a callback of its own (a Streamlit progress bar, a test). :func:`progress_callback`
turns any of these into a callback to call after each batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

ProgressCallback = Callable[[int, int], None]
"""Called with the number of items done so far and the total."""


def _silent(done: int, total: int) -> None:
    return None


def progress_callback(
    progress: bool | ProgressCallback | None,
    total: int,
    *,
    desc: str | None = None,
    unit: str = "it",
    file: IO[str] | None = None,
) -> ProgressCallback:
    """``progress`` itself when it is a callback; nothing when it is False or None; else a
    tqdm bar of ``total`` items that closes itself once ``done`` reaches the total.

    Example::

        >>> report = progress_callback(True, 100, desc="translating", unit="line")
        >>> report(64, 100)  # after each batch; the bar closes at 100
    """
    if callable(progress):
        return progress
    if not progress:
        return _silent
    # Imported here, not at the top: the CLI imports this module on paths that never draw.
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=file)

    def update(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
