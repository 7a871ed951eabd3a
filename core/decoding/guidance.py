"""Constrained output and n-gram lookup, as the onnxruntime-genai engine takes them.

One place turns :class:`quintet.core.config.DecodeConfig` into the engine's settings, so the
single-request path (``og.GeneratorParams``) and a scheduler on ``og.Engine`` (whose
``TurnOptions.set_guidance`` takes the same pair) constrain and speculate alike:

- :func:`guidance` gives ``(type, data)`` for ``set_guidance``: ``json_schema`` (the schema
  as JSON text), ``regex`` (the whole output matches it) or ``lark_grammar`` (a choice list
  becomes ``start: "a" | "b"``). The engine compiles them with llguidance, which masks the
  tokens that would break the constraint at every step.
- :func:`speculative_options` gives the keyword arguments of
  ``GeneratorParams.set_speculative_options`` for prompt lookup decoding: draft tokens are
  copied from the earlier text (prompt and output) after the last ``ngram_size`` tokens
  recur there, and checked by the model in one pass.

Measured (benchmarks/structured.py, 2026-12-07, SmolLM2-135M, one request at a time, on a
shared 2-core CPU): lookup=4 on the fp32 conversion gave 1.28x tokens/s on held-out SAMSum
summaries and 1.47x on grounded QA with every output token-identical to plain greedy
decoding; on int8 1.81x and 1.29x, but only 4 of 8 summaries and 7 of 8 answers identical
(the int8 matrix products of a several-token verification step round differently from
one-token steps, and near-ties flip). So lookup is off by default. JSON-schema output ran
at 0.86x unconstrained tokens/s, valid 8 of 8.

No import of the engine here: the mapping is plain data, testable without it.
"""

from __future__ import annotations

import json
from typing import Any

from quintet.core.config import DecodeConfig

# n-gram length whose recurrence proposes a draft: 3 tokens matched SAMSum summaries' reuse
# of names and phrases better than 2 (fewer wrong drafts) in a trial on 6 dialogues.
LOOKUP_NGRAM_SIZE = 3
# The engine's bound on draft tokens per step (set_speculative_options rejects more).
MAX_LOOKUP_TOKENS = 16

# How the engine lays JSON out (llguidance's "x-guidance" options; a schema's own win):
# compact, one line, ", " and ": " between items. With free whitespace SmolLM2 filled the
# gaps with newlines and indents ('"city"\n    : "Paris"\n\n,\n'): 68 tokens for a
# record that takes 39 this way.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

# Regex classes the engine reads as Unicode (llguidance follows Rust's regex crate): ``\d``
# would admit digits of other scripts, whose multi-byte tokens the engine cannot always
# follow through (it stops with "token doesn't satisfy the grammar"). ASCII, as users mean.
_ASCII_CLASSES = {"d": ("[0-9]", "0-9"), "D": ("[^0-9]", None)}


def is_constrained(config: DecodeConfig) -> bool:
    """Whether ``config`` constrains the output (a JSON schema, a regex or choices)."""
    return config.json_schema is not None or config.regex is not None or config.choices is not None


def constraint_name(config: DecodeConfig) -> str | None:
    """The DecodeConfig field that constrains the output (for messages), or None."""
    for name in ("json_schema", "regex", "choices"):
        if getattr(config, name) is not None:
            return name
    return None


def guidance(config: DecodeConfig) -> tuple[str, str] | None:
    """``(type, data)`` for the engine's ``set_guidance``, or None when unconstrained.

    Example:
        >>> guidance(DecodeConfig(choices=("yes", "no")))
        ('lark_grammar', 'start: "yes" | "no"')
    """
    if config.json_schema is not None:
        layout = {**JSON_LAYOUT, **config.json_schema.get("x-guidance", {})}
        return "json_schema", json.dumps({**config.json_schema, "x-guidance": layout})
    if config.regex is not None:
        return "regex", ascii_digits(config.regex)
    if config.choices is not None:
        return "lark_grammar", choices_grammar(config.choices)
    return None


def choices_grammar(choices: tuple[str, ...]) -> str:
    """A Lark grammar whose only sentences are ``choices`` (JSON string literals are also
    Lark's: quotes and backslashes escaped, other characters as they are)."""
    return "start: " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)


def ascii_digits(pattern: str) -> str:
    r"""``pattern`` with ``\d`` and ``\D`` spelled as ASCII classes (see _ASCII_CLASSES).

    Example:
        >>> ascii_digits(r"\d{3}-[\d_]+")
        '[0-9]{3}-[0-9_]+'
    """
    out: list[str] = []
    in_class = False
    class_start = 0  # where the current class's members begin in ``out``
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            spelled = _ASCII_CLASSES.get(escaped)
            inside = spelled[1] if spelled else None
            if spelled and not in_class:
                out.append(spelled[0])
            elif spelled and in_class and inside is not None:
                out.append(inside)
            else:  # any other escape (and \D inside a class, which has no short spelling)
                out.append(char + escaped)
            index += 2
            continue
        out.append(char)
        index += 1
        if char == "[" and not in_class:
            in_class, class_start = True, len(out)
        elif char == "]" and in_class and "".join(out[class_start:-1]) not in ("", "^"):
            in_class = False  # a "]" first in a class ("[]a]", "[^]a]") is a member
    return "".join(out)


def speculative_options(config: DecodeConfig) -> dict[str, Any]:
    """Keyword arguments of ``set_speculative_options`` for ``config`` (empty: no lookup)."""
    if not config.lookup:
        return {}
    return {"max_draft_tokens": config.lookup, "ngram_size": LOOKUP_NGRAM_SIZE}
