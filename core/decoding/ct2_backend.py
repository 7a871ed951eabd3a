"""The CTranslate2 backend: the same models, converted once, decoded by a C++ engine.

``convert_to_ctranslate2`` turns a loaded Hugging Face model into a CTranslate2 model in
the store (``<base>-ct2-<quantization>``), once; ``CTranslate2Backend`` decodes with it.
Tokenizing stays with the Hugging Face tokenizer: prompts come in as the token ids the HF
model would see and are handed to CTranslate2 as the same token strings, so on float32
weights greedy decoding gives the same tokens as ``model.generate``.

Where CTranslate2 decodes differently from transformers, ``unsupported`` says so instead
of quietly returning something else; see :meth:`CTranslate2Backend.unsupported`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ctranslate2
import torch
from ctranslate2.converters import TransformersConverter
from transformers.utils import logging as hf_logging

from quintet.core.config import DecodeConfig
from quintet.core.decoding.backend import RowDone, StopCheck, TokenSink
from quintet.core.decoding.conversions import (
    base_name,
    first_line,
    get_or_build,
    open_conversion,
    source_folder,
)
from quintet.core.decoding.rows import Row, eos_ids, stop_of
from quintet.core.decoding.types import RawSequence
from quintet.core.devices import keeping_torch_threads
from quintet.core.errors import ConfigError, ModelLoadError
from quintet.core.model_cache import fingerprint
from quintet.core.models import Loaded
from quintet.core.store import ModelStore

log = logging.getLogger(__name__)

# Batches of fewer sequences than this decode on one CPU thread (see threads_for).
SMALL_WORK_ROWS = 16
QUANTIZATIONS: tuple[str, ...] = ("int8", "int8_float16", "float16", "float32")
GENERATING_KINDS: tuple[str, ...] = ("causal", "seq2seq")


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


def store_name(loaded: Loaded, quantization: str) -> str:
    """The store name of ``loaded``'s CTranslate2 conversion: ``<base>-ct2-<quantization>``."""
    return f"{base_name(loaded)}-ct2-{quantization}"


class CompatibleConverter(TransformersConverter):
    """TransformersConverter with fixes for configs that lack fields it expects."""

    def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
        model = super().load_model(model_class, model_name_or_path, **kwargs)
        config = model.config
        # The BART loader reads config.normalize_before, a legacy field that only old
        # config.json files carry. transformers' BART is always post-norm, so False is right.
        if type(config).__name__ == "BartConfig" and not hasattr(config, "normalize_before"):
            config.normalize_before = False
        # The BERT loader checks config.position_embedding_type; transformers 5 dropped the
        # field (its BERT has absolute position embeddings only).
        if type(config).__name__ == "BertConfig" and not hasattr(config, "position_embedding_type"):
            config.position_embedding_type = "absolute"
        return model


def _check_quantization(quantization: str) -> None:
    if quantization not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown CTranslate2 quantization {quantization!r}: "
            f"choose one of {', '.join(QUANTIZATIONS)}"
        )


def _check_kind(loaded: Loaded) -> None:
    if loaded.kind not in GENERATING_KINDS:
        raise ModelLoadError(
            f"{loaded.name} is a {loaded.kind} model and cannot generate text: "
            "the ctranslate2 backend needs a causal or seq2seq model"
        )


def _first_line(exc: BaseException) -> str:
    # "No conversion is registered for X (supported configurations are: <80 names>)"
    return first_line(exc).split(" (supported configurations are:")[0]


def convert_to_ctranslate2(
    loaded: Loaded,
    quantization: str = "int8",
    store: ModelStore | None = None,
    rebuild: bool = False,
) -> Path:
    """Convert ``loaded`` to CTranslate2 into the store, once, and return the folder.

    The conversion is store model ``<base>-ct2-<quantization>`` (see :func:`store_name`);
    later calls return it without converting again, unless a local base model's files
    changed since. It is written in a staging folder and committed at the end, so an
    interrupted conversion leaves nothing behind. Only the CTranslate2 files are written:
    the tokenizer stays the Hugging Face one.

    Args:
        loaded: a causal or seq2seq model from :func:`quintet.core.models.load`.
        quantization: weight type, one of ``int8``, ``int8_float16``, ``float16``, ``float32``.
        store: where to put the conversion (default: ``$QUINTET_HOME``).
        rebuild: convert again even if a stored copy looks right (it did not load).

    Raises:
        ConfigError: an unknown quantization.
        ModelLoadError: not a generating model, or CTranslate2 cannot convert it.
        StoreError: the store cannot be written.

    Example:
        >>> path = convert_to_ctranslate2(load("smollm2-135m-instruct"))  # doctest: +SKIP
        >>> path.name
        'smollm2-135m-instruct-ct2-int8'
    """
    _check_quantization(quantization)
    _check_kind(loaded)
    return get_or_build(
        loaded,
        store_name(loaded, quantization),
        "ctranslate2",
        {"quantization": quantization, "ctranslate2_version": ctranslate2.__version__},
        lambda folder: _convert_into(loaded, source_folder(loaded), quantization, folder),
        required_file="model.bin",
        store=store,
        rebuild=rebuild,
    )


def _convert_into(loaded: Loaded, source: str, quantization: str, folder: Path) -> None:
    converter = CompatibleConverter(
        source,
        revision=None if loaded.resolved.is_local else loaded.resolved.revision,
        trust_remote_code=loaded.spec.trust_remote_code,
    )
    # convert() insists on creating its output folder: give it one inside the staging
    # folder, then move the files up so the store model is flat.
    out = folder / "ctranslate2"
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    # The converter calls gc.collect() after each layer; in a process full of objects
    # (transformers, a loaded model) that is most of the conversion time. Freezing what
    # exists now keeps those collections to the converter's own objects: 7x faster.
    gc.freeze()
    try:
        converter.convert(str(out), quantization=quantization, force=True)
    except (ValueError, KeyError, AttributeError, TypeError, NotImplementedError) as exc:
        # Failures of the converter itself (an unsupported architecture, a config field it
        # expects and transformers 5 no longer has): one line, not a traceback.
        raise ModelLoadError(
            f"CTranslate2 cannot convert this model ({loaded.name}): {_first_line(exc)}"
        ) from None
    finally:
        gc.unfreeze()
        if bars_were_enabled:
            hf_logging.enable_progress_bar()
    for item in out.iterdir():
        shutil.move(str(item), str(folder / item.name))
    out.rmdir()


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

# ctranslate2.set_random_seed only seeds threads that have not drawn yet: each engine draws
# in its own worker thread, so a seeded call needs a fresh engine, and the global seed (one
# per process, hence one lock per process) must not change under it while it runs.
_seed_lock = threading.Lock()


class CTranslate2Backend:
    """Decodes with CTranslate2: ``Generator`` for causal models, ``Translator`` for seq2seq.

    The model is converted on first use (see :func:`convert_to_ctranslate2`) and loaded on
    ``loaded.device`` (CPU or CUDA), with ``torch.get_num_threads()`` threads on the CPU.

    Args:
        loaded: a causal or seq2seq model from :func:`quintet.core.models.load`.
        quantization: ``int8`` (default on CPU), ``float16`` (default on CUDA),
            ``int8_float16`` or ``float32`` (the one that reproduces transformers exactly).
        store: where conversions live (default: ``$QUINTET_HOME``).
        threads: CPU threads for one batch (default: torch's thread count).

    Example:
        >>> backend = CTranslate2Backend(load("smollm2-135m-instruct"))  # doctest: +SKIP
        >>> backend.generate([ids], DecodeConfig(max_new_tokens=32))[0][0].token_ids
    """

    name = "ctranslate2"
    can_stream = True

    def __init__(
        self,
        loaded: Loaded,
        quantization: str | None = None,
        store: ModelStore | None = None,
        threads: int | None = None,
    ) -> None:
        _check_kind(loaded)
        self.loaded = loaded
        self.is_causal = loaded.kind == "causal"
        self.device, self.device_index = _ct2_device(loaded.device)
        quantization = quantization or ("int8" if self.device == "cpu" else "float16")
        _check_quantization(quantization)
        supported = ctranslate2.get_supported_compute_types(self.device, self.device_index)
        if quantization not in supported:
            raise ModelLoadError(
                f"CTranslate2 cannot compute in {quantization} on {self.device}: "
                f"choose one of {', '.join(sorted(set(supported) & set(QUANTIZATIONS)))}"
            )
        self.quantization = quantization
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1 (got {threads})")
        self.requested_threads = threads
        self.threads = (threads or torch.get_num_threads()) if self.device == "cpu" else 1
        open_conversion(
            lambda rebuild: convert_to_ctranslate2(loaded, quantization, store, rebuild),
            self._open,
            self.name,
        )
        generation = loaded.model.generation_config
        self._forced_bos: int | None = getattr(generation, "forced_bos_token_id", None)
        self._forced_eos = getattr(generation, "forced_eos_token_id", None) is not None
        self._decoder_start: int | None = getattr(generation, "decoder_start_token_id", None)
        if self._decoder_start is None:
            self._decoder_start = getattr(loaded.model.config, "decoder_start_token_id", None)
        self._suppressed = _suppressed_ids(generation)

    def _open(self, folder: Path) -> None:
        """Load the conversion in ``folder`` (ModelLoadError when it cannot be loaded)."""
        self.model_path = folder
        # Which conversion the engines decode: a rebuilt one gets engines of its own.
        self._conversion = fingerprint(folder)
        self._cached_engine(self.threads)  # load now: a model it cannot run fails here
        # CTranslate2's vocabulary is the HF one in id order (Marian's trailing <pad> aside),
        # so a token's index there is its HF id.
        self._vocab = _load_vocabulary(folder)

    # Engines -----------------------------------------------------------------------------

    def threads_for(self, rows: int) -> int:
        """CPU threads for a batch of ``rows`` sequences (prompts x beams or samples).

        Measured on a 2-core CPU: one sequence at a time (chat, streaming) decodes about
        1.5x faster on one thread than on two, because each step's matrix-vector products
        are too small to share and the threads spend the step synchronising; a batch of 32
        beam-4 translations is 1.3x faster on two. So unless the user fixed the count, small
        work runs on one thread and large work on all of them.
        """
        if self.requested_threads is not None or self.device != "cpu":
            return self.threads
        return 1 if rows < SMALL_WORK_ROWS else self.threads

    def replicas_for(self, config: DecodeConfig, prompts: int) -> int:
        """Single-threaded engine replicas for a batch, 1 for one engine on threads_for's count.

        Measured on a 2-core CPU (opus-mt-shaped Marian, beam 4, batches of 16 and 32): two
        one-thread replicas, each given half of the batch's sentences, ran 1.25-1.4x one
        engine on two threads. Only for beam search, whose results come back whole: the
        step callback of greedy rows indexes the batch as one engine sees it.
        """
        rows = prompts * max(config.num_beams, config.num_return_sequences)
        if (
            config.num_beams == 1
            or prompts < 2
            or self.threads_for(rows) == 1
            or self.requested_threads is not None
            or self.device != "cpu"
        ):
            return 1
        return self.threads

    def _new_engine(self, threads: int, replicas: int = 1) -> Any:
        cls = ctranslate2.Generator if self.is_causal else ctranslate2.Translator
        try:
            with keeping_torch_threads():
                return cls(
                    str(self.model_path),
                    device=self.device,
                    device_index=self.device_index,
                    compute_type=self.quantization,
                    inter_threads=replicas,
                    intra_threads=threads,
                )
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                f"CTranslate2 cannot load {self.model_path}: {_first_line(exc)}"
            ) from None

    def _cached_engine(self, threads: int, replicas: int = 1) -> Any:
        """The engine for this sizing, kept on the model it was converted from."""
        key = (
            "ctranslate2", str(self.model_path), self.device, self.device_index,
            self.quantization, threads, replicas,
        )  # fmt: skip
        return self.loaded.attachment(
            key, lambda: self._new_engine(threads, replicas), version=self._conversion
        )

    @contextlib.contextmanager
    def _engine_for(self, config: DecodeConfig, prompts: int) -> Iterator[Any]:
        """The shared engine sized for the work, or for seeded sampling a fresh one whose
        thread gets the seed."""
        rows = prompts * max(config.num_beams, config.num_return_sequences)
        replicas = self.replicas_for(config, prompts)
        threads = 1 if replicas > 1 else self.threads_for(rows)
        if not (config.do_sample and config.seed is not None):
            yield self._cached_engine(threads, replicas)
            return
        with _seed_lock:
            ctranslate2.set_random_seed(config.seed)
            engine = self._new_engine(threads, replicas)
            try:
                yield engine
            finally:
                del engine

    # Options -----------------------------------------------------------------------------

    def unsupported(self, config: DecodeConfig) -> list[str]:
        """The options of ``config`` CTranslate2 would not honour as transformers does.

        - ``min_p``: CTranslate2 has no min-p sampling.
        - ``output_logprobs`` with beam search: CTranslate2 gives beams a sequence score
          only, no per-token log-probabilities.
        - ``early_stopping=False`` with beam search: CTranslate2's beam search always stops
          once ``num_beams`` hypotheses are finished, which is transformers'
          ``early_stopping=True``; the default heuristic (search on while a running beam
          could still win) does not exist there.
        - ``repetition_penalty`` / ``no_repeat_ngram_size`` on causal models: CTranslate2
          looks only at generated tokens, transformers at the prompt too. (On seq2seq models
          both see the decoder's tokens; transformers also penalizes the decoder start
          token, which matters where that is the end token, as in BART.)
        """
        missing: list[str] = []
        if config.forced_bos_token_id is not None:
            missing.append("forced_bos_token_id (use the transformers backend for NLLB/M2M100)")
        if config.do_sample and config.min_p > 0:
            missing.append("min_p (CTranslate2 has no min-p sampling)")
        if config.num_beams > 1 and config.output_logprobs:
            missing.append(
                "output_logprobs with beam search (CTranslate2 scores beams only as a whole)"
            )
        if config.num_beams > 1 and not config.early_stopping:
            missing.append(
                "early_stopping=False (CTranslate2 beam search always stops once num_beams "
                "hypotheses are finished: set early_stopping=True)"
            )
        if config.repetition_penalty != 1.0:
            if self.is_causal:
                missing.append(
                    "repetition_penalty (CTranslate2 penalizes generated tokens only, "
                    "not the prompt)"
                )
            elif self._decoder_start is not None and self._decoder_start in self._end_ids(config):
                missing.append(
                    "repetition_penalty (transformers also penalizes the decoder start "
                    "token, this model's end token; CTranslate2 does not)"
                )
        if config.no_repeat_ngram_size and self.is_causal:
            missing.append(
                "no_repeat_ngram_size (CTranslate2 checks generated tokens only, not the prompt)"
            )
        return missing

    def _end_ids(self, config: DecodeConfig) -> list[int]:
        return eos_ids(self.loaded, config)

    def _limits(self, config: DecodeConfig) -> tuple[int, int]:
        """(max, min) new tokens to ask CTranslate2 for.

        A model with ``forced_eos_token_id`` (Marian, BART) has transformers force the end
        token as the last of ``max_new_tokens``: CTranslate2 decodes one token fewer, which
        gives the same tokens, and a row that runs out of room is cut by length either way.
        """
        most = config.max_new_tokens - (1 if self._forced_eos else 0)
        return most, min(config.min_new_tokens, most)

    def _options(self, config: DecodeConfig) -> dict[str, Any]:
        """CTranslate2 keyword arguments common to Generator and Translator calls."""
        beams = config.num_beams > 1
        options: dict[str, Any] = {
            "beam_size": config.num_beams,
            "num_hypotheses": config.num_return_sequences,
            # Outside beam search the length penalty only divides the score: 0 keeps the
            # score the plain sum of log-probabilities, as transformers reports it.
            "length_penalty": config.length_penalty if beams else 0.0,
            "repetition_penalty": config.repetition_penalty,
            "no_repeat_ngram_size": config.no_repeat_ngram_size,
            "end_token": self._end_ids(config),
            "return_scores": True,
            # CTranslate2: top-k 1 is greedy, 0 samples from the whole vocabulary; a k above
            # the vocabulary size is an error there and the whole vocabulary in transformers.
            "sampling_topk": min(config.top_k, len(self._vocab)) if config.do_sample else 1,
            "sampling_topp": config.top_p if config.do_sample else 1.0,
            "sampling_temperature": config.temperature if config.do_sample else 1.0,
        }
        if self._suppressed:
            options["suppress_sequences"] = [
                self.loaded.tokenizer.convert_ids_to_tokens(ids) for ids in self._suppressed
            ]
        return options

    def _tokens(self, ids: Sequence[int]) -> list[str]:
        return self.loaded.tokenizer.convert_ids_to_tokens(list(ids))

    def _target_prefix(self) -> list[str] | None:
        if self.is_causal or self._forced_bos is None:
            return None
        return self._tokens([self._forced_bos])

    def _call(
        self,
        engine: Any,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        callback: Callable | None,
    ) -> list[Any]:
        most, least = self._limits(config)
        options = self._options(config)
        tokens = [self._tokens(prompt) for prompt in prompts]
        if callback is not None:
            options["callback"] = callback
        replicas = engine.num_generators if self.is_causal else engine.num_translators
        if replicas > 1:
            # Cut into one part per replica; the parts decode at the same time.
            options["max_batch_size"] = -(-len(prompts) // replicas)
        if config.num_beams > 1:
            # Keep the end token in beam hypotheses: it tells a finished hypothesis from
            # one cut at max length, and it counts in the length normalization as in HF.
            options["return_end_token"] = True
        try:
            if self.is_causal:
                return engine.generate_batch(
                    tokens,
                    max_length=most,
                    min_length=least,
                    include_prompt_in_result=False,
                    **options,
                )
            prefix = self._target_prefix()
            return engine.translate_batch(
                tokens,
                [prefix] * len(tokens) if prefix else None,
                max_decoding_length=most,
                min_decoding_length=least,
                # The generator checks input lengths against the context window; never
                # truncate silently here.
                max_input_length=0,
                **options,
            )
        except ValueError as exc:
            raise ConfigError(f"CTranslate2 rejected the decoding settings: {exc}") from None

    # Generation --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        """Generate for a batch of tokenized prompts (see ``DecodingBackend.generate``).

        Without beams each row stops on its own when ``stop_check(prompt_index, ids)`` is
        True, and ``on_row_done`` hears of each finished row (from CTranslate2's thread);
        beam search ignores both (the generator cuts stop strings after).
        ``token_logprobs`` are log-probabilities after repetition penalty, n-gram and
        min-length masking, before temperature and top-k/top-p.
        """
        if not prompts:
            return []
        if self.is_causal and any(len(p) == 0 for p in prompts):
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        if config.max_new_tokens == 1 and self._forced_eos:
            # transformers would force the end token as the only token.
            return [
                [_forced_empty(config) for _ in range(config.num_return_sequences)] for _ in prompts
            ]
        with self._engine_for(config, len(prompts)) as engine:
            if config.num_beams > 1:
                return self._generate_beams(engine, prompts, config)
            return self._generate_rows(engine, prompts, config, stop_check, on_row_done)

    def _generate_rows(
        self,
        engine: Any,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        """Greedy search and sampling: every token comes through the step callback."""
        ends = set(self._end_ids(config))
        rows: dict[tuple[int, int], Row] = {}
        first: list[float] = []
        errors: list[BaseException] = []

        def on_step(step: Any) -> bool:
            # Runs in CTranslate2's worker thread: an exception must not escape into C++.
            try:
                if not first:
                    first.append(time.perf_counter())
                row = rows.setdefault((step.batch_id, step.hypothesis_id), Row())
                stop = stop_of(stop_check, step.batch_id)
                # The engine says which step is its last: that is the length limit here.
                limit = len(row.ids) + 1 if step.is_last else None
                logprob = step.log_prob or 0.0
                done = row.take(step.token_id, ends, limit, logprob=logprob, stop=stop)
                if done and on_row_done is not None:
                    on_row_done(step.batch_id)
                return row.stopped  # True stops this row in the engine
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
                return True

        self._call(engine, prompts, config, on_step)
        if errors:
            raise errors[0]
        first_time = first[0] if first else None
        results: list[list[RawSequence]] = []
        for b in range(len(prompts)):
            outputs = []
            for h in range(config.num_return_sequences):
                outputs.append(rows.get((b, h), Row()).sequence(config, first_time))
            results.append(outputs)
        return results

    def _generate_beams(
        self, engine: Any, prompts: Sequence[Sequence[int]], config: DecodeConfig
    ) -> list[list[RawSequence]]:
        """Beam search: no step callback exists, so ids come from the final hypotheses."""
        ends = set(self._end_ids(config))
        most, _ = self._limits(config)
        results = self._call(engine, prompts, config, None)
        outputs: list[list[RawSequence]] = []
        for result in results:
            hypotheses = (
                result.sequences_ids
                if self.is_causal
                else [self._ids(tokens) for tokens in result.hypotheses]
            )
            row = []
            for ids, score in zip(hypotheses, result.scores, strict=True):
                ids = list(ids)
                ended = bool(ids) and ids[-1] in ends
                if ended:
                    ids.pop()
                elif self._forced_eos and len(ids) >= most and config.length_penalty:
                    # transformers appends the forced end token (log-probability 0 once
                    # forced) and normalizes by the longer length: score as it would.
                    score *= (len(ids) / (len(ids) + 1)) ** config.length_penalty
                row.append(
                    RawSequence(
                        token_ids=ids,
                        ended_by_eos=ended,
                        score=float(score),
                        # Beam search has no per-step hook to time the first token by.
                        first_token_time=None,
                        hit_length=not ended and len(ids) >= most,
                    )
                )
            outputs.append(row)
        return outputs

    def _ids(self, tokens: Sequence[str]) -> list[int]:
        """Token strings from a Translator back to ids, through the converted vocabulary."""
        return [self._vocab[token] for token in tokens]

    # Streaming ---------------------------------------------------------------------------

    def stream(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        on_token: TokenSink,
        stop_check: StopCheck,
    ) -> RawSequence:
        """Generate one output, calling ``on_token`` with each new (non-end) token id.

        Stops when ``stop_check(0, ids)`` is True; the result then has
        ``extra["stopped_by_check"]``. Whether that was a cancellation is the caller's call.
        """
        config.check_streamable()
        if self.is_causal and not prompt:
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        if config.max_new_tokens == 1 and self._forced_eos:
            return _forced_empty(config)
        ends = set(self._end_ids(config))
        most, least = self._limits(config)
        options = self._options(config)
        for name in ("beam_size", "num_hypotheses", "length_penalty", "return_scores"):
            options.pop(name)
        options["return_log_prob"] = True
        row = Row()
        first_time: float | None = None
        with self._engine_for(config, 1) as engine:
            if self.is_causal:
                steps = engine.generate_tokens(
                    self._tokens(prompt), max_length=most, min_length=least, **options
                )
            else:
                steps = engine.generate_tokens(
                    self._tokens(prompt),
                    self._target_prefix(),
                    max_decoding_length=most,
                    min_decoding_length=least,
                    max_input_length=0,
                    **options,
                )
            # closing() ends the CTranslate2 job (and joins its thread) when we stop early.
            with contextlib.closing(steps):
                for step in steps:
                    if first_time is None:
                        first_time = time.perf_counter()
                    limit = len(row.ids) + 1 if step.is_last else None
                    if row.take(
                        step.token_id,
                        ends,
                        limit,
                        logprob=step.log_prob or 0.0,
                        on_token=on_token,
                        stop=stop_of(stop_check, 0),
                    ):
                        break
        return row.sequence(config, first_time)


def _forced_empty(config: DecodeConfig) -> RawSequence:
    """max_new_tokens=1 on a forced-end model: transformers emits only the forced end."""
    return RawSequence(
        token_ids=[],
        ended_by_eos=False,
        token_logprobs=[] if config.output_logprobs else None,
        score=0.0,
        hit_length=True,
    )


def _ct2_device(device: torch.device) -> tuple[str, int]:
    if device.type == "cpu":
        return "cpu", 0
    if device.type == "cuda":
        if ctranslate2.get_cuda_device_count() == 0:
            raise ModelLoadError(
                "this CTranslate2 build has no CUDA support: load the model with device='cpu' "
                "or install a CUDA build of ctranslate2"
            )
        return "cuda", device.index or 0
    raise ModelLoadError(
        f"CTranslate2 runs on CPU or CUDA, not {device.type}: load the model with device='cpu'"
    )


def _suppressed_ids(generation: Any) -> list[list[int]]:
    """Sequences the model's generation config forbids (bad_words_ids, suppress_tokens)."""
    found: list[list[int]] = [list(ids) for ids in getattr(generation, "bad_words_ids", None) or []]
    found += [[int(i)] for i in getattr(generation, "suppress_tokens", None) or []]
    return found


def _load_vocabulary(folder: Path) -> dict[str, int]:
    for name in ("target_vocabulary", "shared_vocabulary", "vocabulary"):
        path = folder / f"{name}.json"
        if path.is_file():
            try:
                tokens = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ModelLoadError(f"CTranslate2 cannot read {path}: {exc}") from None
            break
        path = folder / f"{name}.txt"
        if path.is_file():
            tokens = path.read_text(encoding="utf-8").split("\n")
            break
    else:
        raise ModelLoadError(f"no vocabulary file in the CTranslate2 model at {folder}")
    return {token: i for i, token in enumerate(tokens)}
