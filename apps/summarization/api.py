"""Summarization: ``Summarizer(model).summarize(texts)``.

Seq2seq summarizers (BART, PEGASUS, T5 with its ``summarize: `` prefix) read the text
directly; instruct models are asked with :func:`quintet.core.task_prompts.summarize_prompt` (the
prompt the ``smollm2-135m-samsum`` recipe was trained on). Dialogue (SAMSum-style speaker
lines) is detected and asked about as a dialogue.

Long documents are summarized map-reduce: split into chunks that fit the model's window
(with overlap, never cutting a speaker turn of a dialogue), each chunk summarized, then the
joined chunk summaries summarized again (repeatedly, if still too long). The result says how
it was chunked.

Example::

    >>> s = Summarizer("smollm2-135m-samsum")                             # doctest: +SKIP
    >>> s.summarize("Anna: are you coming tonight?\\nTom: yes, at 8")[0].text
    'Tom is coming tonight at 8.'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from quintet.apps.summarization.chunking import chunk_text
from quintet.core.config import DecodeConfig
from quintet.core.decoding import Generator
from quintet.core.defaults import default_model
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.models import Loaded, load
from quintet.core.task_prompts import looks_like_dialogue, summarize_prompt

STYLES = ("default", "one_sentence", "bullets", "detailed")
_STYLE_PROMPTS = {
    "one_sentence": "Summarize this {what} in one sentence.",
    "bullets": "Summarize this {what} as 3 to 5 short bullet points.",
    "detailed": "Write a detailed summary of this {what} in one paragraph.",
}
MAX_REDUCE_ROUNDS = 4

# progress(stage, done, total): chunks summarized so far in a stage ("chunks", then
# "reduce round 1", ...); called at the start of a stage and after each batch.
ChunkProgress = Callable[[str, int, int], None]


class SummarizationError(QuintetError):
    """A summary cannot be made as asked."""


@dataclass(frozen=True)
class ChunkInfo:
    """How a long input was split: character spans of the chunks and the reduce rounds."""

    count: int
    spans: tuple[tuple[int, int], ...] = ()
    rounds: int = 0


@dataclass(frozen=True)
class SummaryResult:
    """One summary, the model and mode that wrote it, chunking and timings."""

    text: str
    model: str
    mode: str  # "seq2seq" or "prompted"
    dialogue: bool
    chunks: ChunkInfo
    seconds: float
    num_tokens: int = 0
    extra: dict = field(default_factory=dict)
    backend: str | None = None  # the decoding engine that wrote it
    truncated: bool = False  # the summary stopped at max_length (its last pass did)


class Summarizer:
    """Summarize texts with a seq2seq summarizer or an instruct model.

    Args:
        model: name, hub id or directory; None: the task default.
        backend: decoding engine, ``auto`` (default: the fastest installed one, see
            :mod:`quintet.core.decoding.engines`) or a name from ``quintet.core.config.BACKENDS``.
        chunk_tokens: tokens per chunk for long inputs (default: what the window allows).
        overlap_tokens: tokens shared by neighbouring chunks.
    """

    def __init__(
        self,
        model: str | Loaded | None = None,
        *,
        device: str = "auto",
        backend: str = "auto",
        batch_size: int = 8,
        chunk_tokens: int | None = None,
        overlap_tokens: int = 64,
    ) -> None:
        if model is None:
            model = default_model("summarization").name
        self.loaded = model if isinstance(model, Loaded) else load(model, device=device)
        if self.loaded.kind not in ("seq2seq", "causal"):
            raise SummarizationError(
                f"{self.loaded.name} is a {self.loaded.kind} model: summarization needs a "
                "seq2seq summarizer (BART, PEGASUS, T5) or an instruct model"
            )
        self.generator = Generator(self.loaded, backend, batch_size=batch_size)
        self.mode = "seq2seq" if self.loaded.kind == "seq2seq" else "prompted"
        window = self.loaded.context_window or 1024
        self.chunk_tokens = chunk_tokens or max(64, min(window - 320, 1536))
        self.overlap_tokens = min(overlap_tokens, self.chunk_tokens // 4)
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.loaded.name

    def summarize(
        self,
        texts: str | Sequence[str],
        min_length: int | None = None,
        max_length: int | None = None,
        style: str = "default",
        progress: ChunkProgress | None = None,
        on_text: Callable[[str], None] | None = None,
        **decode,
    ) -> list[SummaryResult]:
        """Summarize each text; one result per text, in order.

        Args:
            min_length, max_length: bounds of the summary in tokens (``min_new_tokens`` /
                ``max_new_tokens``; default 0 and 96).
            style: ``default`` (one or two sentences), ``one_sentence``, ``bullets``,
                ``detailed`` (instruct models; seq2seq models summarize in their one style).
            progress: ``progress(stage, done, total)`` for long inputs: the chunks of the
                map step (stage ``"chunks"``), then of each reduce round; not called for
                a single one-chunk text.
            on_text: for a single one-chunk text, called with the summary so far while
                it is generated (a page shows it growing); not called otherwise, nor for
                beam search (seq2seq models' default), which only knows its best output
                at the end.
            decode: other :class:`quintet.core.config.DecodeConfig` fields.

        An empty text gives an empty summary.
        """
        if style not in STYLES:
            raise ConfigError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
        texts = [texts] if isinstance(texts, str) else list(texts)
        options = {"max_new_tokens": max_length or 96, "min_new_tokens": min_length or 0}
        if self.mode == "seq2seq":
            options.setdefault("num_beams", 4)
            options["no_repeat_ngram_size"] = 3
        config = DecodeConfig.from_overrides(None, **{**options, **decode})
        started = time.perf_counter()
        results: list[SummaryResult | None] = [None] * len(texts)
        with self._lock:
            # Map: every chunk of every text in one batched call.
            chunked = [self._chunks(t) for t in texts]
            flat = [(i, c) for i, chunks in enumerate(chunked) for c, _ in chunks]
            dialogue = [looks_like_dialogue(t) for t in texts]
            if len(flat) <= 1:
                progress = None  # one short text: nothing long to report on
            prompts = [self._prompt(c, dialogue[i], style) for i, c in flat]
            outputs = self._generate(
                prompts, config, progress, "chunks", on_text if len(flat) == 1 else None
            )
            partial: dict[int, list[tuple[str, int, bool]]] = {}
            for (i, _), out in zip(flat, outputs, strict=True):
                partial.setdefault(i, []).append(out)
            for i, text in enumerate(texts):
                if not text.strip():
                    results[i] = SummaryResult(
                        "", self.model_name, self.mode, False, ChunkInfo(0), 0.0
                    )
                    continue
                pieces = partial[i]
                # Tokens generated in all: the map outputs plus the reduce rounds' outputs.
                summary, tokens, cut = (
                    (pieces[0][0], 0, pieces[0][2])
                    if len(pieces) == 1
                    else self._reduce(pieces, style, config, progress)
                )
                rounds = 0 if len(pieces) == 1 else self._rounds
                info = ChunkInfo(len(pieces), tuple(span for _, span in chunked[i]), rounds)
                results[i] = SummaryResult(
                    summary,
                    self.model_name,
                    self.mode,
                    dialogue[i],
                    info,
                    time.perf_counter() - started,
                    tokens + sum(t for _, t, _ in pieces),
                    backend=self.generator.engine_for(config),
                    truncated=cut,
                )
        return [r for r in results if r is not None]

    # Internals ----------------------------------------------------------------------------

    def _count(self, text: str) -> int:
        return len(
            self.loaded.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        )

    def _chunks(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        if not text.strip():
            return []
        return chunk_text(
            text,
            self._count,
            self.chunk_tokens,
            self.overlap_tokens,
            dialogue=looks_like_dialogue(text),
        )

    def _prompt(self, text: str, dialogue: bool, style: str):
        if self.mode == "seq2seq":
            prefix = _t5_prefix(self.loaded)
            return prefix + text
        if style == "default":
            return [{"role": "user", "content": summarize_prompt(text)}]
        what = "dialogue" if dialogue else "text"
        return [
            {
                "role": "user",
                "content": f"{_STYLE_PROMPTS[style].format(what=what)}\n\n{text.strip()}",
            }
        ]

    def _generate(
        self,
        prompts,
        config: DecodeConfig,
        progress: ChunkProgress | None = None,
        stage: str = "",
        on_text: Callable[[str], None] | None = None,
    ) -> list[tuple[str, int, bool]]:
        """(text, tokens, cut at max_new_tokens) per prompt."""
        if not prompts:
            return []
        if progress is None:
            results = self.generator.generate(prompts, config, progress=False, on_text=on_text)
        else:
            progress(stage, 0, len(prompts))

            def update(done: int, total: int) -> None:
                progress(stage, done, total)

            results = self.generator.generate(prompts, config, progress=update)
        return [(r.text.strip(), r.num_tokens, r.finish_reason == "length") for r in results]

    def _reduce(self, pieces, style: str, config: DecodeConfig, progress: ChunkProgress | None):
        """Summarize the joined chunk summaries until one summary is left."""
        self._rounds = 0
        summaries = [text for text, _, _ in pieces]
        tokens = 0
        cut = False
        while len(summaries) > 1 and self._rounds < MAX_REDUCE_ROUNDS:
            self._rounds += 1
            joined = "\n".join(summaries)
            # The chunk summaries are prose now, whatever the input was.
            chunks = [c for c, _ in chunk_text(joined, self._count, self.chunk_tokens, 0)]
            prompts = [self._prompt(c, False, style) for c in chunks]
            outputs = self._generate(prompts, config, progress, f"reduce round {self._rounds}")
            summaries = [text for text, _, _ in outputs]
            tokens += sum(t for _, t, _ in outputs)
            cut = any(c for _, _, c in outputs)
        return " ".join(summaries), tokens, cut


def _t5_prefix(loaded: Loaded) -> str:
    params = getattr(loaded.config, "task_specific_params", None) or {}
    prefix = (params.get("summarization") or {}).get("prefix")
    if prefix:
        return prefix
    return "summarize: " if getattr(loaded.config, "model_type", "") == "t5" else ""
