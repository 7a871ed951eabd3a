"""Command-line flags generated from the config dataclasses: one place, no drift.

Every field of a config dataclass (:class:`quintet.core.config.TrainConfig`,
:class:`quintet.core.config.DecodeConfig` ...) becomes ``--field-name`` with the field's type; its
help is the field's ``metadata["help"]`` or else its entry in the class docstring's
``Args:`` section (read by docstring-parser), so the docstring that documents the API
documents the flag too. Field metadata may also give ``choices``, ``aliases`` (other
spellings, shown: ``--lr``) and ``deprecated`` (old spellings that still work, hidden, with a
note on stderr).

A flag not given is absent from the parsed namespace, so :func:`config_overrides` returns
only what the user typed (``none`` included, for ``X | None`` fields) and the dataclass
keeps its own defaults: the defaults live in one place too.

:func:`add_decode_options` is the one decoding-flag helper of every generating command
(translate, summarize, chat, eval): ``--decode KEY=VALUE ...`` for any
:class:`~quintet.core.config.DecodeConfig` field, plus the common ones as flags.

Why argparse and not a dataclass-CLI library: jsonargparse (litgpt's) names flags
``--max_steps`` and cannot be an argparse sub-parser (its ``parse_known_args`` raises), and
tyro parses the whole command line itself, wants ``None`` spelled so and reports a bad value
in a multi-line box; the commands keep their flag names, ``none``, ``--stop`` repeated and
the one-line ``error:``. The help text comes from docstring-parser, the docstring reader
both of them use.

This module imports no torch: ``quintet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import docstring_parser

from quintet.core.config import DecodeConfig
from quintet.core.errors import ConfigError


def flag_name(field_name: str) -> str:
    """``learning_rate`` -> ``--learning-rate``."""
    return "--" + field_name.replace("_", "-")


@functools.cache  # every generating command reads DecodeConfig's: parse it once
def docstring_args(cls: type) -> dict[str, str]:
    """The ``Args:`` entries of a class docstring, one line each, read by docstring-parser
    (the parser jsonargparse and tyro use), e.g.
    ``{"epochs": "passes over the training data (fractions allowed)."}``."""
    parsed = docstring_parser.parse(cls.__doc__ or "", style=docstring_parser.DocstringStyle.GOOGLE)
    return {param.arg_name: " ".join((param.description or "").split()) for param in parsed.params}


class _DeprecatedAlias(argparse.Action):
    """An old spelling: stores like the new flag and says on stderr to use the new one."""

    def __init__(self, option_strings, dest, *, use: str, store_const=None, **kwargs) -> None:
        self.use = use
        self.store_const = store_const
        if store_const is not None:
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"note: {option_string} is deprecated: use {self.use}", file=sys.stderr)
        setattr(namespace, self.dest, self.store_const if self.store_const is not None else values)


def add_deprecated_alias(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    old: str,
    *,
    dest: str,
    use: str,
    type: Any = None,  # noqa: A002 - argparse's name
    store_const: Any = None,
) -> None:
    """Keep ``old`` working for ``dest`` (hidden from --help, a note when used)."""
    parser.add_argument(
        old,
        dest=dest,
        action=_DeprecatedAlias,
        use=use,
        type=type,
        store_const=store_const,
        help=argparse.SUPPRESS,
        default=argparse.SUPPRESS,
    )


def _optional_value(kind: type):
    """A converter for ``X | None`` fields: ``none`` gives None."""

    def convert(text: str):
        if text.strip().lower() == "none":
            return None
        return kind(text)

    convert.__name__ = kind.__name__  # argparse names the type in its error messages
    return convert


def _field_kind(hint: Any) -> tuple[Any, bool, tuple | None]:
    """(base type, optional, Literal choices) of a resolved annotation."""
    optional = False
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional = len(args) < len(get_args(hint))
        hint = args[0] if len(args) == 1 else str
    if get_origin(hint) is Literal:
        return str, optional, tuple(get_args(hint))
    return hint, optional, None


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Add a flag for each field of dataclass ``cls`` (``only`` those, minus ``exclude``).

    ``defaults`` are a command's own defaults (shown in the help, and returned by
    :func:`config_overrides` when the flag is not given). Returns the field names added.
    Booleans get ``--flag/--no-flag``; ``X | None`` fields accept ``none``; ``Literal``
    fields get their choices; tuples are repeatable flags.
    """
    hints = typing.get_type_hints(cls)
    helps = docstring_args(cls)
    wanted = None if only is None else list(only)
    skipped = set(exclude)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    names = wanted if wanted is not None else list(by_name)
    added = []
    for name in names:
        if name in skipped:
            continue
        spec = by_name[name]
        meta = spec.metadata
        base, optional, choices = _field_kind(hints[name])
        options = [meta.get("flag", flag_name(name)), *meta.get("aliases", ())]
        own = (defaults or {}).get(name)
        # Not given: absent from the namespace (so ``none`` can still be typed for None).
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS if own is None else own,
        }
        default = own if own is not None else spec.default
        default = None if default is dataclasses.MISSING else default
        help_text = (meta.get("help") or helps.get(name, "")).replace("``", "").rstrip(".")
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif get_origin(base) is tuple:
            kwargs.update(action="append", type=get_args(base)[0], metavar="TEXT")
            help_text += " (repeatable)"
        else:
            kwargs["type"] = _optional_value(base) if optional else base
            kwargs["metavar"] = name.split("_")[-1].upper() if not choices else None
            if default is not None:
                help_text += f" (default {default})"
            elif optional:
                help_text += " (default none)"
        if meta.get("choices") or choices:
            kwargs["choices"] = tuple(meta.get("choices") or choices)
            kwargs.pop("metavar", None)
        parser.add_argument(*options, help=help_text.strip() or None, **kwargs)
        for old in meta.get("deprecated", ()):
            add_deprecated_alias(parser, old, dest=name, use=options[0], type=kwargs.get("type"))
        added.append(name)
    return added


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (flags left out are not here; a
    command's own defaults are)."""
    given = {}
    for spec in dataclasses.fields(cls):
        if hasattr(args, spec.name):
            value = getattr(args, spec.name)
            given[spec.name] = tuple(value) if isinstance(value, list) else value
    return given


# Decoding ---------------------------------------------------------------------------------

# The decoding settings every generating command shows as flags (the rest via --decode).
DECODE_FLAGS: tuple[str, ...] = (
    "max_new_tokens",
    "num_beams",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "repetition_penalty",
    "stop_strings",
)
_SAMPLING = ("temperature", "top_p", "top_k", "seed")


def parse_pairs(pairs: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values parsed as JSON where they are JSON (numbers, lists)."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected key=value, e.g. {flag} num_beams=4")
        try:
            result[key] = json.loads(value)
        except json.JSONDecodeError:
            result[key] = value
    return result


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def add_decode_options(
    parser: argparse.ArgumentParser,
    *,
    max_new_tokens: int | None = None,
    exclude: Iterable[str] = (),
) -> None:
    """The decoding flags of a generating command.

    ``--decode KEY=VALUE ...`` sets any :class:`DecodeConfig` field; the common fields
    are flags of their own (``--max-new-tokens``, ``--num-beams`` alias ``--beams``,
    ``--temperature``, ``--top-p``, ``--top-k``, ``--seed``, ``--repetition-penalty``,
    ``--stop``). A sampling flag turns sampling on; ``--temperature 0`` means greedy.
    ``max_new_tokens`` is the command's own default, when it has one.
    """
    group = parser.add_argument_group(
        "decoding", "any DecodeConfig field with --decode KEY=VALUE; the flags win over it"
    )
    group.add_argument(
        "--decode",
        nargs="*",
        action="extend",
        metavar="KEY=VALUE",
        help="decoding settings, e.g. --decode no_repeat_ngram_size=3 do_sample=true; "
        "constrained output: json_schema=@schema.json (or its JSON), regex=PATTERN, "
        'choices=\'["yes", "no"]\'; lookup=4 for prompt lookup decoding',
    )
    own = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    add_config_flags(group, DecodeConfig, only=DECODE_FLAGS, exclude=exclude, defaults=own)


def decode_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The DecodeConfig overrides of :func:`add_decode_options`'s flags (checked names)."""
    decode = parse_pairs(getattr(args, "decode", None), "--decode")
    schema = decode.get("json_schema")
    if isinstance(schema, str) and schema.startswith("@"):  # json_schema=@schema.json
        decode["json_schema"] = _read_text(schema[1:], "--decode json_schema=@FILE")
    flags = {k: v for k, v in config_overrides(args, DecodeConfig).items() if k in DECODE_FLAGS}
    sampling = {k: flags.pop(k) for k in _SAMPLING if k in flags}
    if sampling and sampling.get("temperature") != 0:  # --temperature 0: greedy
        decode.update(do_sample=True, **sampling)
    decode.update(flags)
    known = {f.name for f in dataclasses.fields(DecodeConfig)}
    unknown = sorted(set(decode) - known)
    if unknown:  # before any model loads (the values are checked where the config is built)
        raise ConfigError(
            f"unknown decoding option(s) {', '.join(unknown)}: "
            f"choose from {', '.join(sorted(known))}"
        )
    return decode
