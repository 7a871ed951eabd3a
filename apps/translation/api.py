"""Translation: ``Translator().translate(texts, src="en", tgt="de")``.

Languages by ISO 639-1 or FLORES-200 code. Without a model the pair is routed
(:mod:`quintet.apps.translation.routing`) and each result says which model translated it and why.
Texts longer than the model's window are split into sentences (:mod:`.segment`), translated
in one batch with everything else, and put back together with their paragraph breaks:
nothing is truncated.

Example::

    >>> tr = Translator()                                                 # doctest: +SKIP
    >>> r = tr.translate("The house is small.", src="en", tgt="de")[0]
    >>> r.text, r.model, r.route
    ('Das Haus ist klein.', 'opus-mt-en-de', 'opus-mt model for en->de')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from quintet.apps.translation.files import translate_file
from quintet.apps.translation.languages import Language, LanguageError, language
from quintet.apps.translation.plan import PieceTranslation, TokenIds, TranslationPlan, plan_pieces
from quintet.apps.translation.routing import Route, choose, style_for
from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.models import load
from quintet.core.task_prompts import translate_prompt

# Token budget of one piece: opus-mt was trained on sentences; small instruct models
# translate short inputs far better than long ones.
SEQ2SEQ_PIECE_TOKENS = 256
PROMPTED_PIECE_TOKENS = 96
_PREFIXES = ("translation:", "here is the translation:", "translated text:")


class _Routed(NamedTuple):
    """A language pair's languages, route, generator and prompt style."""

    source: Language
    target: Language
    route: Route
    generator: Generator
    style: str


@dataclass(frozen=True)
class TranslationResult:
    """One translated text, the model and route that produced it, and timings."""

    text: str
    source: str
    model: str
    route: str
    style: str
    pieces: int
    seconds: float
    num_tokens: int = 0
    # True when a piece's translation stopped at max_new_tokens: raise it (nothing is cut
    # silently; the CLI and pages say so).
    truncated: bool = False
    backend: str | None = None  # the decoding engine that wrote it


class Translator:
    """Translate texts between languages.

    Args:
        model: a model name, hub id or directory; None: route each pair (opus-mt, NLLB,
            then the offline prompted model).
        backend: ``auto`` (the fastest installed engine for each routed model, see
            :mod:`quintet.core.decoding.engines`), ``transformers``, ``ctranslate2`` or
            ``onnxruntime-genai``.
        batch_size: pieces per generation batch.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        backend: str = "auto",
        batch_size: int = 16,
    ) -> None:
        self.model = model
        self.device = device
        self.backend = backend
        self.batch_size = batch_size
        self._generators: dict[str, Generator] = {}
        self._lock = threading.Lock()  # guards self._generators (building one loads a model)

    def route(self, src: str, tgt: str) -> Route:
        """The model that would translate ``src -> tgt``, and why (loads nothing)."""
        return choose(language(src), language(tgt), self.model)

    def _generator(self, name: str) -> Generator:
        with self._lock:
            if name not in self._generators:
                loaded = load(name, device=self.device)
                if loaded.kind not in ("seq2seq", "causal"):
                    raise LanguageError(
                        f"{loaded.name} is a {loaded.kind} model: translation needs a seq2seq "
                        "model (opus-mt, NLLB, M2M100, T5) or an instruct model"
                    )
                self._generators[name] = Generator(loaded, self.backend, batch_size=self.batch_size)
            return self._generators[name]

    def translate(
        self,
        texts: str | Iterable[str],
        src: str,
        tgt: str,
        *,
        progress: bool | Callable[[int, int], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        **decode,
    ) -> list[TranslationResult]:
        """Translate each text from ``src`` to ``tgt``; one result per text, in order.

        ``decode`` takes :class:`quintet.core.config.DecodeConfig` fields (``num_beams=4``,
        ``do_sample=True`` ...). An empty text gives an empty result. ``progress(done,
        total)`` counts the pieces (sentences, or parts of long ones) translated.
        ``on_text`` is called with the translation so far while a single one-piece text
        is generated (not for several pieces, nor for beam search, whose best output is
        only known at the end); the result's text can still differ from its last call,
        cleaned of an instruct model's framing.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        routed = self._routed(src, tgt)  # loads the model, which the timings leave out
        started = time.perf_counter()
        plan = self._plan(texts, routed, decode)
        engine = plan.generator.engine_for(plan.config)
        rows = self._run(plan, progress, on_text if len(plan.pieces) == 1 else None)
        seconds = time.perf_counter() - started
        translations = [row.text for row in rows]
        results = []
        for text in plan.texts:
            indices = text.indices()
            results.append(
                TranslationResult(
                    text.reassemble(translations),
                    text.source,
                    plan.generator.loaded.name,
                    plan.route.reason,
                    plan.style,
                    text.count,
                    seconds,
                    sum(rows[i].num_tokens for i in indices),
                    any(rows[i].truncated for i in indices),
                    backend=engine,
                )
            )
        return results

    def plan(self, texts: str | Iterable[str], src: str, tgt: str, **decode) -> TranslationPlan:
        """What :meth:`translate` does with these arguments before it generates: the route,
        the decoding settings and each text's pieces with their token ids and caps (loads
        the routed model, generates nothing).

        Raises:
            LanguageError: an unknown language, or one the model lacks.
            ConfigError: bad decoding options.
            TypeError: a text is not a string.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self._plan(texts, self._routed(src, tgt), decode)

    def _plan(self, texts: list[str], routed: _Routed, decode: dict) -> TranslationPlan:
        source, target, route, generator, style = routed
        budget = self._budget(generator, style)
        # Fail on bad decoding options or a language the model lacks before any work.
        config = self._config(generator, style, source, target, budget, decode)
        # Each piece's own cap unless the caller set max_new_tokens (see plan.cap).
        tokens = TokenIds(generator.loaded.tokenizer)
        pieces, planned = plan_pieces(texts, tokens, budget, "max_new_tokens" not in decode)
        return TranslationPlan(
            source, target, route, style, budget, config, pieces, planned, generator
        )

    def _routed(self, src: str, tgt: str) -> _Routed:
        """The languages, route, generator and prompt style of ``src -> tgt``."""
        source, target = language(src), language(tgt)
        route = choose(source, target, self.model)
        generator = self._generator(route.model)
        style = style_for(generator.loaded, route, source, target)
        return _Routed(source, target, route, generator, style)

    def describe(self, src: str, tgt: str) -> dict:
        """Model, route reason, style and piece budget for ``src -> tgt`` (loads the model).

        Example::

            >>> Translator().describe("en", "de")["style"]                    # doctest: +SKIP
            'marian'
        """
        routed = self._routed(src, tgt)
        generator = routed.generator
        return {
            "model": generator.loaded.name,
            "route": routed.route.reason,
            "style": routed.style,
            "piece_tokens": self._budget(generator, routed.style),
            "backend": generator.backend_choice.describe(),
        }

    def decode_config(self, src: str, tgt: str, **decode) -> DecodeConfig:
        """The decoding settings a ``src -> tgt`` call uses (loads the routed model).

        For NLLB/M2M100 this includes ``forced_bos_token_id``, the target language token.

        Example::

            >>> Translator("nllb-200-distilled-600m").decode_config("en", "de")  # doctest: +SKIP
            DecodeConfig(..., forced_bos_token_id=256042)
        """
        return self.plan([], src, tgt, **decode).config

    @staticmethod
    def _budget(generator: Generator, style: str) -> int:
        budget = PROMPTED_PIECE_TOKENS if style == "prompted" else SEQ2SEQ_PIECE_TOKENS
        window = generator.loaded.context_window or 512
        return min(budget, window // 3)

    @staticmethod
    def _config(generator, style, source: Language, target: Language, budget, decode):
        # The most any piece may take: 2x the budget + 16; each piece gets less (plan.cap).
        defaults: dict = {"max_new_tokens": int(budget * 2 + 16)}
        if style == "prompted":
            # Pieces hold no line breaks, so a blank line ends the translation (what follows
            # is a note, which _clean would drop anyway).
            defaults["stop_strings"] = ("\n\n",)
        config = DecodeConfig.from_overrides(None, **{**defaults, **decode})
        if style == "multilingual":
            language_token(generator.loaded.tokenizer, source, generator.loaded.name)  # known?
            token = language_token(generator.loaded.tokenizer, target, generator.loaded.name)
            config = replace(config, forced_bos_token_id=token)
        return config

    @staticmethod
    def _run(
        plan: TranslationPlan, progress, on_text: Callable[[str], None] | None = None
    ) -> list[PieceTranslation]:
        """Generate every piece of ``plan`` once, each with its own cap."""
        if not plan.pieces:
            return []
        generator, source, target = plan.generator, plan.source, plan.target
        if plan.style == "prompted":
            prompts: list = [
                [{"role": "user", "content": translate_prompt(p.text, source.name, target.name)}]
                for p in plan.pieces
            ]
        else:
            prefix = _t5_prefix(generator.loaded, source, target)
            prompts = [prefix + p.text for p in plan.pieces]
        # NLLB/M2M100 tokenizers carry the source language as state, and the tokenizer is
        # shared by every user of the model: set it under the model's own lock.
        state = {}
        if plan.style == "multilingual":
            state["src_lang"] = _model_code(generator.loaded.tokenizer, source)
        with generator.loaded.using(**state):
            results = generator.generate(
                prompts, plan.config, progress=progress, on_text=on_text, row_limits=plan.caps
            )
        return [
            PieceTranslation(
                _clean(r.text) if plan.style == "prompted" else r.text.strip(),
                r.num_tokens,
                r.finish_reason == "length",
            )
            for r in results
        ]

    def translate_file(
        self, input_path: str, output_path: str, src: str, tgt: str, **options
    ) -> dict:
        """Translate a text file line by line into ``output_path``; see
        :func:`quintet.apps.translation.files.translate_file`."""
        return translate_file(self, input_path, output_path, src, tgt, **options)

    def batch_worker(self, src: str, tgt: str, decode: dict[str, Any]) -> TranslateOnActor:
        """What a Ray actor builds once to translate batches of a file as this translator
        does (same model, device, engine and batch size): picklable."""
        return TranslateOnActor(
            self.model, self.device, self.backend, self.batch_size, src, tgt, dict(decode)
        )


@dataclass(frozen=True)
class TranslateOnActor:
    """A batch-function factory for :func:`quintet.core.cluster.run_batches`: builds a
    :class:`Translator` once and translates each batch of lines from ``src`` to ``tgt``."""

    model: str | None
    device: str
    backend: str
    batch_size: int
    src: str
    tgt: str
    decode: dict[str, Any]

    def __call__(self) -> Callable[[list[str]], list[TranslationResult]]:
        translator = Translator(
            self.model, device=self.device, backend=self.backend, batch_size=self.batch_size
        )
        return lambda texts: translator.translate(
            texts, self.src, self.tgt, progress=False, **self.decode
        )


def _is_nllb(tokenizer) -> bool:
    return "Nllb" in type(tokenizer).__name__


def _model_code(tokenizer, lang: Language) -> str:
    """How the model spells a language: NLLB ``deu_Latn``, M2M100 ``de``."""
    return lang.flores if _is_nllb(tokenizer) else lang.iso


def language_token(tokenizer, lang: Language, model_name: str = "the model") -> int:
    """The id of an NLLB/M2M100 language token (``deu_Latn`` / ``__de__``).

    Raises:
        LanguageError: the model has no token for the language.
    """
    code = _model_code(tokenizer, lang)
    token = code if _is_nllb(tokenizer) else f"__{code}__"
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise LanguageError(
            f"{model_name} does not know {lang.name} (no {token} token): "
            "pick another language or another model"
        )
    return int(token_id)


def _t5_prefix(loaded, source: Language, target: Language) -> str:
    """T5 checkpoints want ``translate English to German: ``; others want nothing."""
    if getattr(loaded.config, "model_type", "") == "t5":
        return f"translate {source.name} to {target.name}: "
    return ""


def _clean(text: str) -> str:
    """Strip what instruct models wrap a translation in (a label, quotes, a trailing note)."""
    text = text.strip()
    lowered = text.lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    # A note after the translation ("\n\nNote: ...") is not part of it.
    text = text.split("\n\n")[0].strip()
    # Quotes around the whole reply (not '"ja" und "nein"', where they are the text's own).
    closing = {"“": "”", "„": "“"}
    if len(text) > 1 and text[0] in "\"'“„" and text[-1] == closing.get(text[0], text[0]):
        inner = text[1:-1]
        if text[0] not in inner and text[-1] not in inner:
            text = inner.strip()
    return text
