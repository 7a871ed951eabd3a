"""The ONNX Runtime GenAI backend: causal LMs as int8/int4 ONNX graphs, decoded in C++.

``convert_to_onnx_genai`` runs onnxruntime-genai's model builder on the Hugging Face
folder (offline: the store's own copy or the HF cache) once, into the store as
``<base>-ortgenai-<precision>`` (int8 by default); :class:`OnnxGenAIBackend` decodes with
it. Tokenizing and
chat templates stay with the Hugging Face tokenizer: prompts arrive as token ids.

Measured on a 2-core CPU (SmolLM2-135M-Instruct, greedy, one thread): about 120 tokens/s
for one stream, against 8-12 for transformers fp32. In float32 the engine reproduces
transformers' greedy tokens exactly (tests); int8 weights keep the task quality (SAMSum
ROUGE-L within 1 point of fp32), int4 weights did not (-4.6) on this model, whose weights
are a dequantized 4-bit GGUF already; the benchmark reports agreement per precision.

Requests run on the model's :class:`~quintet.core.decoding.scheduler.Scheduler`: every
generator, chat session and server request over the same loaded model joins one
continuously batched engine, so callers do not hold the model's lock while decoding
(``concurrent = True``). Requests the scheduler cannot take (log-probabilities, or longer
than its ``max_session_tokens``, seeded sampling) run on a generator of their own, one at
a time.

That path pads a batch on the right and masks the positions that hold its pad token, so
the pad token must never occur inside a prompt: the backend pads with the vocabulary's
last id and decodes any prompt that contains that id on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime_genai as og
import torch

from quintet.core.config import DecodeConfig
from quintet.core.decoding import guidance
from quintet.core.decoding.backend import RowDone, StopCheck, TokenSink
from quintet.core.decoding.conversions import (
    base_name,
    first_line,
    get_or_build,
    open_conversion,
    source_folder,
)
from quintet.core.decoding.rows import Row, eos_ids, stop_of
from quintet.core.decoding.scheduler import JobEnd, Scheduler, SchedulerSettings, Session
from quintet.core.decoding.types import RawSequence
from quintet.core.errors import ConfigError, ModelLoadError, QuintetError
from quintet.core.model_cache import fingerprint
from quintet.core.models import Loaded
from quintet.core.store import ModelStore

log = logging.getLogger(__name__)

NAME = "onnxruntime-genai"
PRECISIONS: tuple[str, ...] = (
    "int4-mixed", "int4", "int8", "int8-block32", "fp32", "fp16", "bf16",
)  # fmt: skip
# What auto decodes with on CPU (see core/decoding/engines.py for the quality gates).
DEFAULT_PRECISION = "int8"
# What the builder is asked for each precision beyond ``-p``. int4-mixed is llama.cpp's
# "K-quant mixed" recipe: 4-bit weights found by k-quant search (not plain rounding), with the
# output projection and the most sensitive matrix products (first/last eighth of the layers,
# every third layer's v/down projections) kept at 8 bits. On SmolLM2-135M it is ~1.2x int8's
# speed and kept SAMSum ROUGE-L and MT-Bench reference chrF, but its MT-Bench answers repeat
# themselves more (repetition rate +16 points [+7, +26] against fp32), so it is opt-in
# (precision="int4-mixed"); plain int4 lost 4.6 ROUGE-L. See core/decoding/engines.py.
_BUILDER_PRECISION: dict[str, tuple[str, tuple[str, ...]]] = {
    # 8-bit weights with one scale per 128 weights (the builder's default block is 32): fewer
    # scales to read per token, ~1.3x block 32's speed on one thread. Against fp32 on the same
    # items it kept SAMSum ROUGE-L (-0.5 [-1.8, +0.8]) and MT-Bench reference chrF (+4.0
    # [+1.8, +6.2]); prompted FLORES en-de chrF moved -1.5 [-3.7, +0.4] (docs/engines.md).
    "int8": ("int8", ("block_size=128",)),
    # The default until 2026-12-06 (the builder's own block of 32), kept for comparison.
    "int8-block32": ("int8", ("block_size=32",)),
    "int4-mixed": (
        "int4",
        ("algo_config=k_quant", "matmul_mixed_precision=last_matmul:int8,mixed_layers:int8"),
    ),
}
# The builder's own messages are long; a failure is reported by its last lines that say why.
_ERROR_MARKERS = ("Error", "error", "not supported", "NotImplemented", "Exception")


def store_name(loaded: Loaded, precision: str, provider: str = "cpu") -> str:
    """The store name of the conversion: ``<base>-ortgenai-<precision>[-<provider>]``."""
    suffix = "" if provider == "cpu" else f"-{provider}"
    return f"{base_name(loaded)}-ortgenai-{precision}{suffix}"


def _check_causal(loaded: Loaded) -> None:
    if loaded.kind != "causal":
        raise ModelLoadError(
            f"{loaded.name} is a {loaded.kind} model: the {NAME} backend decodes causal "
            "(decoder-only) models; use ctranslate2 or transformers"
        )


def _builder_failure(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if any(marker in line for marker in _ERROR_MARKERS):
            return line[:300]
    return lines[-1][:300] if lines else "the model builder failed without a message"


def _build(loaded: Loaded, precision: str, provider: str, folder: Path) -> None:
    """Run onnxruntime-genai's builder into ``folder`` in a child process.

    A child process keeps the builder's peak memory (it holds the float weights while it
    quantizes) out of this one and its output out of the user's terminal.
    """
    source = source_folder(loaded)
    builder_precision, extra_options = _BUILDER_PRECISION.get(precision, (precision, ()))
    env = dict(os.environ)
    if Path(source).is_dir():
        env["HF_HUB_OFFLINE"] = "1"
    command = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i" if Path(source).is_dir() else "-m",
        source,
        "-o",
        str(folder),
        "-p",
        builder_precision,
        "-e",
        provider,
        "-c",
        str(folder / ".builder-cache"),
    ]
    if extra_options:
        command += ["--extra_options", *extra_options]
    if loaded.spec.trust_remote_code:
        raise ModelLoadError(f"the {NAME} builder is not run on models that need remote code")
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace")
    cache = folder / ".builder-cache"
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0 or not (folder / "genai_config.json").is_file():
        reason = _builder_failure(done.stdout + "\n" + done.stderr)
        raise ModelLoadError(f"{NAME} cannot convert {loaded.name}: {reason}")


def convert_to_onnx_genai(
    loaded: Loaded,
    precision: str = DEFAULT_PRECISION,
    store: ModelStore | None = None,
    provider: str = "cpu",
    rebuild: bool = False,
) -> Path:
    """Convert ``loaded`` for ONNX Runtime GenAI into the store, once, and return the folder.

    Args:
        loaded: a causal model from :func:`quintet.core.models.load` (Llama, Mistral, Qwen2, Phi,
            Gemma and the other families onnxruntime-genai's builder knows).
        precision: ``int8`` (default: 8-bit weights, a scale per 128), ``int8-block32`` (a
            scale per 32, the default until 2026-12-06), ``int4-mixed`` (4-bit k-quant
            weights, the output projection and the sensitive layers at 8 bits), ``int4``
            (4-bit weights, block 32) or ``fp32`` on CPU; ``fp16``/``bf16``/``int4`` on CUDA.
        store: where to put it (default: ``$QUINTET_HOME``).
        provider: ``cpu`` or ``cuda``.
        rebuild: convert again even if a stored copy looks right (it did not load).

    Raises:
        ModelLoadError: not a causal model, or the builder cannot convert it.
        StoreError: the store cannot be written.

    Example:
        >>> convert_to_onnx_genai(load("smollm2-135m-instruct")).name      # doctest: +SKIP
        'smollm2-135m-instruct-ortgenai-int8'
    """
    _check_causal(loaded)
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown {NAME} precision {precision!r}: choose one of {PRECISIONS}")
    return get_or_build(
        loaded,
        store_name(loaded, precision, provider),
        NAME,
        {
            "precision": precision,
            # Recorded so that a change of builder options rebuilds older conversions.
            "builder_options": list(_BUILDER_PRECISION.get(precision, (precision, ()))[1]),
            "provider": provider,
            "onnxruntime_genai_version": og.__version__,
        },
        lambda folder: _build(loaded, precision, provider, folder),
        required_file="genai_config.json",
        store=store,
        rebuild=rebuild,
    )


class OnnxGenAIBackend:
    """Decodes causal models with ONNX Runtime GenAI (int8 on CPU by default).

    Honours greedy search and sampling (temperature, top_k, top_p, seed, several samples
    per prompt), stop tokens and stop strings, streaming and cancellation. What it would do
    differently from transformers it refuses in :meth:`unsupported` (beam search, min_p,
    sampled log-probabilities), so ``backend="auto"`` can
    hand those requests to transformers instead.

    Args:
        loaded: a causal model from :func:`quintet.core.models.load`.
        precision: weight type of the conversion (``int8`` by default).
        store: where conversions live (default: ``$QUINTET_HOME``).
        threads: CPU threads (default: torch's thread count).
        max_batch_size: requests the scheduler decodes together (default from
            ``QUINTET_SCHEDULER``, else :class:`SchedulerSettings`).
        max_session_tokens: prompt plus output tokens one scheduled request may hold.
        lanes: engines the scheduler keeps over the weights (see the scheduler module).
    """

    name = NAME
    can_stream = True
    # Decodes through the model's scheduler: callers need not hold the model's lock.
    concurrent = True

    def __init__(
        self,
        loaded: Loaded,
        precision: str | None = None,
        store: ModelStore | None = None,
        threads: int | None = None,
        max_batch_size: int | None = None,
        max_session_tokens: int | None = None,
        lanes: int | None = None,
    ) -> None:
        _check_causal(loaded)
        self.loaded = loaded
        if loaded.device.type == "cpu":
            self.provider = "cpu"
        elif loaded.device.type == "cuda" and og.is_cuda_available():
            # Untested here (no GPU on the development machines): needs onnxruntime-genai-cuda.
            self.provider = "cuda"
        else:
            raise ModelLoadError(
                f"this onnxruntime-genai build cannot run on {loaded.device.type}: "
                "load the model with device='cpu' or use the transformers backend"
            )
        self.precision = precision or DEFAULT_PRECISION
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1 (got {threads})")
        self.requested_threads = threads
        self.threads = threads or torch.get_num_threads()
        self._end_ids = eos_ids(loaded, DecodeConfig())
        generation = loaded.model.generation_config
        self._suppresses = any(
            getattr(generation, name, None) for name in ("bad_words_ids", "suppress_tokens")
        )
        self.settings = scheduler_settings(
            self.threads, max_batch_size=max_batch_size, max_session_tokens=max_session_tokens,
            lanes=lanes,
        )  # fmt: skip
        # The per-request generator path (log-probabilities, long requests) runs one at a time.
        self._alone = threading.Lock()
        open_conversion(
            lambda rebuild: convert_to_onnx_genai(
                loaded, self.precision, store, self.provider, rebuild
            ),
            self._open,
            NAME,
        )

    def _open(self, folder: Path) -> None:
        """Read the conversion in ``folder`` and run one step on it (ModelLoadError when
        it cannot be loaded or run)."""
        self.model_path = folder
        # Which conversion the engines decode: a rebuilt one gets engines of its own.
        self._conversion = fingerprint(folder)
        try:
            genai = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
            self.vocab_size = int(genai["model"]["vocab_size"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"{NAME} cannot read {folder / 'genai_config.json'}: {exc}"
            ) from None
        # The vocabulary's last id pads batches (see the module docstring).
        self.pad_id = self.vocab_size - 1
        self._warm_up()

    def _warm_up(self) -> None:
        """Load the engine and run one step now: the first request should not wait, and a
        graph the runtime cannot execute (head sizes its attention kernel does not take,
        say) should fail here, where ``auto`` can still fall back, not mid-request."""
        try:
            self._decode([[0]], DecodeConfig(max_new_tokens=1), None)
        except QuintetError as exc:
            self.loaded.detach(self._scheduler_key())
            self.loaded.detach(self._engine_key(self.threads))
            raise ModelLoadError(
                f"{NAME} cannot run {self.loaded.name}: {str(exc).removeprefix(NAME + ' ')}"
            ) from None

    # Engines -----------------------------------------------------------------------------

    @property
    def scheduler(self) -> Scheduler:
        """The model's scheduler for these settings, shared by every backend over it."""
        return self.loaded.attachment(
            self._scheduler_key(), self._new_scheduler, version=self._conversion
        )

    def _new_scheduler(self) -> Scheduler:
        try:
            return Scheduler(
                str(self.model_path),
                self.settings,
                {"model": {"pad_token_id": self.pad_id, "eos_token_id": self._end_ids}},
                self._end_ids,
                self.vocab_size,
                self.provider,
                search_options=self._search_options,
            )
        except RuntimeError as exc:  # the runtime cannot read the graph or its weights
            raise ModelLoadError(
                f"{NAME} cannot load {self.model_path}: {first_line(exc)}"
            ) from None

    def _scheduler_key(self) -> tuple:
        return ("onnxruntime-genai-scheduler", str(self.model_path), self.settings)

    def new_session(self) -> Session:
        """A conversation whose turns reuse the KV cache of the turns before."""
        return Session()

    def _schedules(self, prompts: Sequence[Sequence[int]], config: DecodeConfig) -> bool:
        """Whether the scheduler can run ``prompts``: not for log-probabilities (it gives no
        logits) or a seed (this CPU engine reseeds per request only with dynamic batching),
        and only within its length bound."""
        if config.output_logprobs or (config.do_sample and config.seed is not None):
            return False
        # Lookup proposes its drafts on the single-request path only (the engine takes
        # drafts per request, from its caller); constraints travel in the turn options.
        if config.lookup:
            return False
        # Greedy rows of one call decode one at a time, for batch invariance (generate()):
        # handed to the scheduler together they would share a batch.
        if not config.do_sample and len(prompts) * config.num_return_sequences > 1:
            return False
        scheduler = self.scheduler
        return all(scheduler.fits(len(p), config.max_new_tokens) for p in prompts)

    def threads_for(self, rows: int) -> int:
        """CPU threads for ``rows`` sequences: all of them, even for one sequence.

        Unlike CTranslate2's, this engine's kernels share one sequence's step well: on a
        quiet 2-core CPU, SmolLM2 int8 decoded 121 tokens/s on two threads against 81 on
        one (benchmarks/decoding.py, 2026-11-30). Under load from other processes one
        thread can win; ``threads=1`` fixes it.
        """
        del rows
        return self.threads

    def _engine_key(self, threads: int) -> tuple:
        return (NAME, str(self.model_path), threads)

    def _engine(self, threads: int) -> Any:
        """The engine of the requests that run alone, kept on the model it was converted
        from (closed with it; a rebuilt conversion gets a new one)."""
        return self.loaded.attachment(
            self._engine_key(threads), lambda: self._new_engine(threads), version=self._conversion
        )

    def _new_engine(self, threads: int) -> Any:
        config = og.Config(str(self.model_path))
        config.clear_providers()
        if self.provider != "cpu":
            config.append_provider("cuda")
        options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        config.overlay(
            json.dumps(
                {
                    "model": {
                        "pad_token_id": self.pad_id,
                        # The engine ends a row on these, as transformers would.
                        "eos_token_id": self._end_ids,
                        "decoder": {"session_options": options},
                    }
                }
            )
        )
        try:
            return og.Model(config)
        except RuntimeError as exc:
            raise ModelLoadError(
                f"{NAME} cannot load {self.model_path}: {str(exc).splitlines()[0]}"
            ) from None

    # Options -----------------------------------------------------------------------------

    def unsupported(self, config: DecodeConfig) -> list[str]:
        """The options of ``config`` this engine would not honour as transformers does."""
        missing: list[str] = []
        if config.num_beams > 1:
            missing.append("beam search (num_beams > 1)")
        if config.do_sample and config.min_p > 0:
            missing.append("min_p (no min-p sampling in onnxruntime-genai)")
        if config.output_logprobs and config.do_sample:
            missing.append("output_logprobs with sampling (log-probabilities are greedy-only here)")
        if config.no_repeat_ngram_size:
            missing.append("no_repeat_ngram_size")
        if config.min_new_tokens and config.stop_token_ids:
            missing.append("min_new_tokens with stop_token_ids (only end tokens are held back)")
        if config.forced_bos_token_id is not None:
            missing.append("forced_bos_token_id")
        if self._suppresses:
            missing.append("the model's suppressed tokens (bad_words_ids / suppress_tokens)")
        if config.lookup and (config.do_sample or config.output_logprobs):
            # The engine verifies sampled drafts by its own rule, and a step that accepts
            # several tokens has the logits of its last one only.
            missing.append("lookup with sampling or output_logprobs (greedy only here)")
        return missing

    def check(self, config: DecodeConfig) -> None:
        """Compile ``config``'s constraint now, so that a schema or regex the engine cannot
        take fails before any output (a server answers 400, not a broken stream)."""
        constraint = guidance.guidance(config)
        if constraint is None:
            return
        params = og.GeneratorParams(self._engine(self.threads))
        params.set_search_options(batch_size=1, max_length=2)
        try:
            params.set_guidance(*constraint)
            og.Generator(self._engine(self.threads), params)
        except RuntimeError as exc:
            raise ConfigError(_constraint_error(config, exc)) from None

    def _search_options(self, config: DecodeConfig, rows: int, longest: int) -> dict[str, Any]:
        options: dict[str, Any] = {
            "batch_size": rows,
            "max_length": longest + config.max_new_tokens,
            "do_sample": config.do_sample,
        }
        if config.min_new_tokens:
            # The engine's minimum counts the prompt: exact for one row (see generate).
            options["min_length"] = longest + config.min_new_tokens
        if config.do_sample:
            options.update(
                temperature=config.temperature,
                # 0 means "no top-k" here; the engine's own default would be 50.
                top_k=config.top_k or self.vocab_size,
                top_p=config.top_p,
            )
            if config.seed is not None:
                options["random_seed"] = config.seed
        if config.repetition_penalty != 1.0:
            # As transformers': over the prompt's tokens and the output's (tested).
            options["repetition_penalty"] = config.repetition_penalty
        return options

    # Generation --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        """Generate for a batch of tokenized prompts (see ``DecodingBackend.generate``).

        ``num_return_sequences`` samples of a prompt are rows of the same batch.
        """
        if not prompts:
            return []
        if any(len(p) == 0 for p in prompts):
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        copies = config.num_return_sequences
        rows = [(index, copy) for index in range(len(prompts)) for copy in range(copies)]
        if self._schedules(prompts, config):
            sequences = self._decode_scheduled(
                [prompts[index] for index, _ in rows],
                config,
                (lambda row, ids: stop_check(rows[row][0], ids)) if stop_check else None,
                on_row_done=(lambda row: on_row_done(rows[row][0])) if on_row_done else None,
                copies=[copy for _, copy in rows],
            )
            found = dict(zip(rows, sequences, strict=True))
            return [[found[(i, c)] for c in range(copies)] for i in range(len(prompts))]
        # Greedy rows each run alone: batched, a row's tokens changed with the other rows
        # (6 of 16 SmolLM2 greedy answers differed from the same prompts alone; padding
        # every prompt to a width of its own, or batching prompts of one length only, still
        # left 14 and 7 differing), so a resumed evaluation or a server batch gave other
        # answers. Alone costs greedy batches ~2.9x their time (16 chats, 24 tokens, one
        # thread). Sampling keeps its batches: its randomness is drawn per run anyway.
        # Prompts that contain the pad id would be masked where they hold it, and a minimum
        # length counts padding too: those go alone as well. The engine speculates (lookup)
        # on batches of one sequence only, and its grammar of a row that finished first
        # fails the next step ("compute_mask() called after stop"): those go alone too.
        one_at_a_time = (
            not config.do_sample
            or bool(config.min_new_tokens or config.lookup)
            or guidance.is_constrained(config)
        )
        alone = [r for r in rows if one_at_a_time or self.pad_id in prompts[r[0]]]
        together = [r for r in rows if r not in alone]
        found: dict[tuple[int, int], RawSequence] = {}
        for group in ([together] if together else []) + [[r] for r in alone]:
            # Samples of one prompt decoded alone must not share a seed (they would be
            # the same sample): copy c draws with seed + c.
            copy = group[0][1] if len(group) == 1 else 0
            seeded = (
                config
                if config.seed is None or not copy
                else (dataclasses.replace(config, seed=config.seed + copy))
            )
            sequences = self._decode(
                [prompts[index] for index, _ in group],
                seeded,
                (lambda row, ids, g=group: stop_check(g[row][0], ids)) if stop_check else None,
                on_row_done=(lambda row, g=group: on_row_done(g[row][0])) if on_row_done else None,
            )
            found.update(zip(group, sequences, strict=True))
        return [[found[(i, c)] for c in range(copies)] for i in range(len(prompts))]

    def stream(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        on_token: TokenSink,
        stop_check: StopCheck,
        session: Session | None = None,
    ) -> RawSequence:
        """Generate one output, calling ``on_token`` with each new (non-end) token id.

        With a ``session`` (from :meth:`new_session`), ``prompt`` is the whole conversation
        and the turns it shares with the session's last one come from the KV cache.
        """
        config.check_streamable()
        if not prompt:
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        if self._schedules([prompt], config):
            return self._decode_scheduled([prompt], config, stop_check, on_token, session=session)[
                0
            ]
        return self._decode([prompt], config, stop_check, on_token)[0]

    def _decode_scheduled(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None,
        on_token: TokenSink | None = None,
        on_row_done: RowDone | None = None,
        copies: Sequence[int] | None = None,
        session: Session | None = None,
    ) -> list[RawSequence]:
        """Each prompt as its own job on the scheduler; tokens are checked in this thread."""
        ends = set(eos_ids(self.loaded, config))
        sink: queue.Queue = queue.Queue()
        scheduler = self.scheduler
        jobs = []
        try:
            with scheduler.hold():  # the rows of one call start together
                for row, prompt in enumerate(prompts):
                    copy = copies[row] if copies else 0
                    jobs.append(
                        scheduler.submit(prompt, config, sink, row=row, copy=copy, session=session)
                    )
            rows = [Row() for _ in prompts]
            active = set(range(len(prompts)))
            first_time: float | None = None
            error: BaseException | None = None

            def finish(index: int) -> None:
                active.discard(index)
                jobs[index].cancel()  # no-op once it ended; frees the slot of a stopped one
                if on_row_done is not None:
                    on_row_done(index)

            while active:
                index, kind, value = sink.get()
                if index not in active:
                    continue  # tokens that came after a stop, or its end
                row = rows[index]
                if kind == "token":
                    if first_time is None:
                        first_time = time.perf_counter()
                    # ends: a request's own stop token ids (the engine ends on the model's)
                    stop = stop_of(stop_check, index)
                    if row.take(value, ends, config.max_new_tokens, on_token=on_token, stop=stop):
                        finish(index)
                elif kind == "end":
                    end: JobEnd = value
                    row.ended = end.reason == "eos"
                    row.hit_length = end.reason == "length"
                    finish(index)
                else:
                    error = error or value
                    finish(index)
            if error is not None:
                raise error
        finally:
            for job in jobs:
                job.cancel()
        return [row.sequence(config, first_time, scored=False) for row in rows]

    def _decode(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None,
        on_token: TokenSink | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[RawSequence]:
        """Decode ``prompts``: on the scheduler, or (logits, long prompts) alone."""
        if self._schedules(prompts, config):
            return self._decode_scheduled(prompts, config, stop_check, on_token, on_row_done)
        with self._alone:
            return self._decode_alone(prompts, config, stop_check, on_token, on_row_done)

    def _decode_alone(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None,
        on_token: TokenSink | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[RawSequence]:
        """One generator over ``prompts`` (right-padded), token by token."""
        longest = max(len(p) for p in prompts)
        ends = set(eos_ids(self.loaded, config))
        with self._generator(config, prompts, longest) as generator:
            rows = [Row() for _ in prompts]
            active = set(range(len(prompts)))
            first_time: float | None = None

            def finish(index: int) -> None:
                active.discard(index)
                if on_row_done is not None:
                    on_row_done(index)

            while active and not generator.is_done():
                # The logits the next token is chosen from are ready before it is chosen.
                logits = generator.get_logits() if config.output_logprobs else None
                try:
                    generator.generate_next_token()
                except RuntimeError as exc:  # the engine lost track of the constraint
                    raise ConfigError(_constraint_error(config, exc)) from None
                if config.lookup:
                    # A speculative step may accept several tokens: read them off the
                    # sequence (one row: lookup rows are decoded alone).
                    sequence = generator.get_sequence(0)
                    step_tokens = [[int(t)] for t in sequence[longest + len(rows[0].ids) :]]
                else:
                    step_tokens = [generator.get_next_tokens()]
                if first_time is None:
                    first_time = time.perf_counter()
                logprobs = _chosen_logprobs(logits, step_tokens[0]) if logits is not None else None
                for tokens in step_tokens:
                    for index in sorted(active):
                        logprob = float(logprobs[index]) if logprobs is not None else 0.0
                        if rows[index].take(
                            int(tokens[index]),
                            ends,
                            config.max_new_tokens,
                            logprob=logprob,
                            on_token=on_token,
                            stop=stop_of(stop_check, index),
                        ):
                            finish(index)
        return [row.sequence(config, first_time, scored=config.output_logprobs) for row in rows]

    @contextlib.contextmanager
    def _generator(
        self, config: DecodeConfig, prompts: Sequence[Sequence[int]], longest: int
    ) -> Iterator[Any]:
        engine = self._engine(self.threads_for(len(prompts)))
        params = og.GeneratorParams(engine)
        try:
            params.set_search_options(**self._search_options(config, len(prompts), longest))
            constraint = guidance.guidance(config)
            if constraint is not None:
                params.set_guidance(*constraint)
            if config.lookup:
                params.set_speculative_options(**guidance.speculative_options(config))
            generator = og.Generator(engine, params)
            padded = [list(p) + [self.pad_id] * (longest - len(p)) for p in prompts]
            generator.append_tokens(np.asarray(padded, dtype=np.int32))
        except RuntimeError as exc:
            raise ConfigError(f"{NAME} rejected the request: {str(exc).splitlines()[0]}") from None
        try:
            yield generator
        finally:
            del generator


def _constraint_error(config: DecodeConfig, exc: RuntimeError) -> str:
    """One line for an engine error about a constraint (or the engine's own line)."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = guidance.constraint_name(config)
    if name is None:
        return f"{NAME} failed: {line}"
    return f"{NAME} cannot follow the {name} constraint: {line}"


# "max_batch_size=4,max_session_tokens=2048,lanes=4": the scheduler's settings here.
SCHEDULER_ENV = "QUINTET_SCHEDULER"
_SCHEDULER_KEYS = (
    "max_batch_size",
    "max_session_tokens",
    "lanes",
    "regroup_tokens",
    "prefix_pool",
    "wide_batch_size",
)


def scheduler_settings(threads: int, **explicit: int | None) -> SchedulerSettings:
    """The scheduler settings: ``explicit`` values (None: not given), else
    ``QUINTET_SCHEDULER``, else the defaults of :class:`SchedulerSettings`."""
    values: dict[str, int] = {}
    for item in filter(None, os.environ.get(SCHEDULER_ENV, "").split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in _SCHEDULER_KEYS or not value.strip().isdigit():
            raise ConfigError(
                f"{SCHEDULER_ENV} takes {'=N,'.join(_SCHEDULER_KEYS)}=N (got {item!r})"
            )
        values[key] = int(value)
    values.update({key: value for key, value in explicit.items() if value is not None})
    return SchedulerSettings(threads=threads, **values)


def _chosen_logprobs(logits: Any, tokens: Any) -> np.ndarray:
    """Each row's log-probability of its chosen token under the model's own distribution
    (the logits of the step that chose it, before any reshaping), as transformers reports."""
    logits = np.asarray(logits, dtype=np.float64)
    logits = logits.reshape(len(tokens), -1)
    top = logits.max(axis=1, keepdims=True)
    normaliser = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    chosen = logits[np.arange(len(tokens)), np.asarray(tokens, dtype=np.int64)]
    return chosen - normaliser
