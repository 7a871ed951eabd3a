"""Lone surrogates: text that JSON can spell (``"\\ud800"``) but that is not Unicode.

``json.loads`` accepts an unpaired ``\\ud800`` escape and returns a ``str`` holding it; such a
string cannot be encoded as UTF-8, so it fails much later inside a tokenizer (a traceback, a
pybind11 cast error, a 500). Every reader of JSON from users (the server's request bodies,
the data files of the CLI) checks what it parsed with :func:`find_lone_surrogate` once, at
the boundary, and answers with one line.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def find_lone_surrogate(value: Any, where: str = "") -> str | None:
    """Where the first lone surrogate in ``value`` is, or None when there is none.

    ``value`` is what ``json.loads`` returns (strings, lists, dicts, numbers); the answer
    names the field (``messages[0].content``, ``texts[2]``) and the character, e.g.
    ``texts[2]: character 5 is a lone surrogate (\\ud800)``. Dict keys are checked too.
    """
    if isinstance(value, str):
        match = _SURROGATE.search(value)
        if match is None:
            return None
        prefix = f"{where}: " if where else ""
        return (
            f"{prefix}character {match.start() + 1} is a lone surrogate "
            f"(\\u{ord(match.group()):04x}), not Unicode text"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            field = f"{where}.{key}" if where else str(key)
            found = find_lone_surrogate(key, f"{where or 'object'} key") or find_lone_surrogate(
                item, field
            )
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_lone_surrogate(item, f"{where}[{index}]")
            if found:
                return found
    return None
