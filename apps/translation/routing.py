"""Which model translates a language pair, and how it is asked.

Order, when the user names no model: the opus-mt model of the pair (one Marian model per
pair) if the hub can serve it, else NLLB-200 (any pair of its 200 languages, the target
language forced as the first token), else the offline default: an instruct model asked by
prompt, the last resort and low quality. A model the user names is used as it is, with the
style that fits its kind, and checked against the pair where its name says one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from quintet.apps.translation.languages import Language, LanguageError
from quintet.core import catalog, hub
from quintet.core.defaults import default_model
from quintet.core.models import Loaded

Style = Literal["marian", "multilingual", "prompted", "seq2seq"]
_OPUS_NAME = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$")


@dataclass(frozen=True)
class Route:
    """The model for a pair, how it is driven, and why it was chosen."""

    model: str
    style: Style
    reason: str


def _hub_serves(hub_id: str) -> bool:
    return hub.is_cached(hub_id) or hub.hub_reachable()


def choose(src: Language, tgt: Language, model: str | None = None) -> Route:
    """The route for ``src -> tgt`` (before loading anything)."""
    if src == tgt:
        raise LanguageError(f"source and target are both {src.name}: nothing to translate")
    if model is not None:
        return Route(model, "seq2seq", "the model you chose")
    opus = catalog.translation_model_for(src.iso, tgt.iso)
    if opus is not None and _hub_serves(opus.location):
        return Route(opus.name, "marian", f"opus-mt model for {src.iso}->{tgt.iso}")
    nllb = catalog.get("nllb-200-distilled-600m")
    if nllb is not None and _hub_serves(nllb.location):
        why = "no opus-mt model for this pair" if opus is None else "opus-mt unavailable"
        return Route(nllb.name, "multilingual", f"NLLB-200 ({why})")
    fallback = default_model("translation")
    return Route(
        fallback.name,
        "prompted",
        f"{fallback.reason}: prompted translation, the last resort (low quality)",
    )


def style_for(loaded: Loaded, route: Route, src: Language, tgt: Language) -> Style:
    """How to drive a loaded model: from its kind and tokenizer; checks a Marian pair."""
    if loaded.kind == "causal":
        return "prompted"
    if loaded.kind != "seq2seq":
        raise LanguageError(
            f"{loaded.name} is a {loaded.kind} model: translation needs a seq2seq model "
            "(opus-mt, NLLB, M2M100, T5) or an instruct model"
        )
    tokenizer_name = type(loaded.tokenizer).__name__
    if "Nllb" in tokenizer_name or "M2M100" in tokenizer_name:
        return "multilingual"
    match = _OPUS_NAME.search(str(loaded.resolved.location).rstrip("/"))
    if match and (match.group(1), match.group(2)) != (src.iso, tgt.iso):
        raise LanguageError(
            f"{loaded.name} translates {match.group(1)}->{match.group(2)}, not "
            f"{src.iso}->{tgt.iso}: pick the opus-mt model of your pair or leave --model out"
        )
    return "marian" if route.style == "marian" else "seq2seq"
