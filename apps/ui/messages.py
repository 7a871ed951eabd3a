"""Messages written for the command line, said in the pages' own terms.

The core and the harnesses word their errors for the terminal (``--limit``, ``quintet models
pull NAME``, a file's path); a page shows the same error to someone who typed no command
and uploaded a file from their own machine. :func:`for_pages` rewrites what such a reader
cannot act on: the server-side path of an uploaded file becomes the file's own name, and a
command with a control on the pages becomes that control. Commands without one stay, marked
as commands for a terminal.

Example:
    >>> for_pages("/home/u/.quintet/uploads/060bf6ecf7-broken.jsonl:2: not JSON")
    'broken.jsonl:2: not JSON'
    >>> for_pages("run `quintet models pull minilm-l6` first")
    'pull minilm-l6 on the Models page first'
"""

from __future__ import annotations

import re

# An uploaded file as quintet.apps.ui.uploads.save_upload stores it: <home>/uploads/<10 hex>-<name>
_UPLOADED = re.compile(r"(?:[^\s'\"`()]*/)?uploads/[0-9a-f]{10}-(?=[^/\s])")
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (
            r"(?:reinstall it with |run )?`?quintet models pull ([\w.-]+) --force`?",
            r"re-pull \1 on the Models page",
        ),  # fmt: skip
        (r"not pulled: quintet models pull ([\w.-]+)", r"not pulled: the Models page pulls it"),
        (r"(?:run )?`?quintet models pull ([\w.-]+)`?", r"pull \1 on the Models page"),
        (r"\(see `quintet models list`\)", "(the Models page lists them)"),
        (r"See `quintet models list`\.", "The Models page lists the models."),
        (r"`?quintet models verify`?", "Verify on the Models page"),
        (
            r"not built: quintet recipes run ([\w.-]+)",
            r"not built (in a terminal: quintet recipes "
            r"run \1)",
        ),  # fmt: skip
        (r"(?:run )?`quintet recipes run ([\w.-]+)`", r"`quintet recipes run \1` in a terminal"),
        (r" \(--limit\)", ""),  # "the same number of examples (--limit)"
        (r"--limit\b", "Examples"),
    )
)


def for_pages(text: str) -> str:
    """``text`` (an error or status line) in the pages' terms; see the module docstring."""
    text = _UPLOADED.sub("", text)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text
