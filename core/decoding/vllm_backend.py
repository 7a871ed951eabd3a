"""The vLLM backend: batch decoding of causal LMs on CUDA with vLLM's offline engine.

UNTESTED HERE: the development machines and CI have no GPU, and vLLM does not install next to
the CPU build of torch, so this engine has never run in this project's tests. What is tested
is what runs without it: when ``auto`` picks it, the one-line refusals, and the mapping of a
:class:`~quintet.core.config.DecodeConfig` to vLLM's ``SamplingParams`` (:func:`sampling_kwargs`,
:func:`request_differences`, :func:`model_differences` are pure functions for that reason).
Written against the vLLM 0.33 API (``LLM``, ``SamplingParams``, ``TokensPrompt``,
``RequestOutput.outputs[i]`` with ``token_ids``, ``finish_reason``, ``logprobs``).

The engine reads the model from its Hugging Face folder (the store's copy, or its snapshot in
the HF cache) in bfloat16 where the GPU has it (the loaded model's dtype), and takes the
prompts as token ids: tokenizing and chat templates stay with Quintet. It keeps its own
copy of the weights and reserves most of the GPU memory that is free when it starts for its
KV cache, next to the transformers copy the generator keeps for fallbacks.

What vLLM would decode differently from transformers is refused by
:meth:`VllmBackend.unsupported`, so ``backend="auto"`` runs those requests on transformers
and a named ``vllm`` backend refuses them; nothing silently changes the decoding:

- beam search: vLLM moved it out of ``SamplingParams`` into ``LLM.beam_search``, which scores
  and stops beams its own way;
- ``no_repeat_ngram_size`` and ``forced_bos_token_id``: vLLM has neither;
- ``min_p`` together with ``top_p < 1``: vLLM filters by min-p before top-p, transformers
  after, which keeps different tokens (min-p with top-k alone commutes and is honoured);
- a sampling temperature outside [0.01, 2]: vLLM raises below 0.01 and refuses above 2;
- ``min_new_tokens`` with stop strings: vLLM looks for stop strings only after the
  minimum, transformers from the first token;
- decoding settings in the model's own generation config that transformers applies and vLLM
  ignores (suppressed tokens, bad words, a minimum length, a forced end token, ...): such a
  model is refused when the backend is built, so ``auto`` keeps it on transformers.

Honoured as transformers does: greedy search and sampling (temperature, top_k, top_p,
min_p), several samples per prompt (``n``), ``seed`` (repeatable, though vLLM's random
stream is not torch's, so a seeded sample differs from transformers' one), end and stop
tokens, ``min_new_tokens`` (end tokens held back), ``repetition_penalty`` (the same
divide-positive, multiply-negative rule over prompt and output tokens; unlike batched
transformers it never penalises padding, as vLLM does not pad), stop strings, and each
token's log-probability under the model's own distribution (vLLM's ``raw_logprobs``).

Streaming is not offered: the offline ``LLM`` returns whole outputs, and replaying them token
by token after the fact would fake the time to first token and could not be cancelled.
``can_stream`` is False, so the generator runs streams on transformers instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import torch

from quintet.core.config import DecodeConfig
from quintet.core.decoding import engines
from quintet.core.decoding.backend import RowDone, StopCheck, TokenSink
from quintet.core.decoding.conversions import first_line, source_folder
from quintet.core.decoding.rows import eos_ids
from quintet.core.decoding.types import RawSequence
from quintet.core.errors import ConfigError, ModelLoadError, QuintetError
from quintet.core.models import Loaded

log = logging.getLogger(__name__)

NAME = "vllm"
# vLLM raises temperatures below this to it (with a warning) and refuses those above the max.
MIN_TEMPERATURE = 0.01
MAX_TEMPERATURE = 2.0
# Share of the GPU memory free at start-up that the engine may reserve by default; the rest
# is for the transformers copy's fallbacks and streams, and the CUDA context.
DEFAULT_FREE_MEMORY_SHARE = 0.85
_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}
# Generation-config fields transformers applies from the model (TransformersBackend starts
# from the model's own config) that vLLM ignores, with the value that means "off".
_MODEL_SETTINGS: dict[str, Any] = {
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "min_length": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "exponential_decay_length_penalty": None,
    "guidance_scale": None,
    "max_time": None,
    "watermarking_config": None,
}


def sampling_kwargs(
    config: DecodeConfig, end_ids: Sequence[int], tokenizer_eos: int | None
) -> dict[str, Any]:
    """The ``vllm.SamplingParams`` keyword arguments that decode ``config`` as transformers does.

    Args:
        config: the request (check :func:`request_differences` first: this maps every field
            vLLM can honour and ignores the others).
        end_ids: the token ids that end an output: the model's end tokens and the config's
            stop tokens (``quintet.core.decoding.rows.eos_ids``).
        tokenizer_eos: the tokenizer's end token, which vLLM always stops on unless told to
            ignore it; it is ignored when transformers would not stop on it.
    """
    sampling = config.do_sample
    kwargs: dict[str, Any] = {
        "n": config.num_return_sequences,
        "max_tokens": config.max_new_tokens,
        "min_tokens": config.min_new_tokens,
        # Every end token as a stop token: vLLM then stops on exactly these, keeps the end
        # token in the output ids, and holds all of them back for min_tokens.
        "stop_token_ids": list(end_ids),
        "ignore_eos": tokenizer_eos is not None and tokenizer_eos not in end_ids,
        "repetition_penalty": config.repetition_penalty,
        # vLLM's greedy search is temperature 0; top_k 0 and min_p 0 are "off" as in Quintet.
        "temperature": config.temperature if sampling else 0.0,
        "top_p": config.top_p if sampling else 1.0,
        "top_k": config.top_k if sampling else 0,
        "min_p": config.min_p if sampling else 0.0,
        "seed": config.seed,
        # 0 extra alternatives: vLLM still returns the chosen token's log-probability.
        "logprobs": 0 if config.output_logprobs else None,
        "stop": list(config.stop_strings),
        # Stop strings are matched in text decoded as Quintet decodes it.
        "skip_special_tokens": True,
    }
    return kwargs


def request_differences(
    config: DecodeConfig, end_ids: Sequence[int], tokenizer_eos: int | None
) -> list[str]:
    """What vLLM would do differently from transformers for ``config`` (empty when nothing).

    Arguments as for :func:`sampling_kwargs`.
    """
    missing: list[str] = []
    if config.num_beams > 1:
        missing.append("beam search (num_beams > 1: vLLM keeps it out of SamplingParams)")
    if config.no_repeat_ngram_size:
        missing.append("no_repeat_ngram_size (vLLM has no n-gram blocking)")
    if config.forced_bos_token_id is not None:
        missing.append("forced_bos_token_id")
    if config.do_sample and config.min_p and config.top_p < 1.0:
        missing.append("min_p with top_p (vLLM filters by min-p before top-p, transformers after)")
    if config.do_sample and not MIN_TEMPERATURE <= config.temperature <= MAX_TEMPERATURE:
        missing.append(
            f"temperature {config.temperature} (vLLM samples only in "
            f"[{MIN_TEMPERATURE}, {MAX_TEMPERATURE}])"
        )
    if config.min_new_tokens and config.stop_strings:
        missing.append(
            "min_new_tokens with stop_strings (vLLM looks for stop strings only after the minimum)"
        )
    if config.min_new_tokens and tokenizer_eos is not None and tokenizer_eos not in end_ids:
        missing.append(
            "min_new_tokens on a model whose tokenizer end token is not one of its end tokens "
            "(vLLM would hold it back too)"
        )
    return missing


def model_differences(generation_config: Any) -> list[str]:
    """The settings of a model's generation config that transformers applies and vLLM would
    not (``generation_config`` is a ``transformers.GenerationConfig``)."""
    found = []
    for name, off in _MODEL_SETTINGS.items():
        value = getattr(generation_config, name, off)
        if value is not None and value != off and value != []:
            found.append(f"the model's {name} setting")
    return found


def memory_share(
    free_bytes: int, total_bytes: int, share: float = DEFAULT_FREE_MEMORY_SHARE
) -> float:
    """vLLM's ``gpu_memory_utilization`` (a share of the whole GPU) for ``share`` of the memory
    that is free now: vLLM refuses to start when its share exceeds the free memory, which the
    transformers copy of the model already reduces."""
    if total_bytes <= 0 or free_bytes <= 0:
        raise ModelLoadError("no free GPU memory for vllm: free some, or use backend auto")
    return round(share * free_bytes / total_bytes, 3)


class VllmBackend:
    """Decodes causal models with vLLM's offline engine on CUDA (untested here: no GPU).

    Args:
        loaded: a causal model from :func:`quintet.core.models.load`, on CUDA.
        gpu_memory_utilization: the share of the whole GPU's memory vLLM may take (weights,
            activations, KV cache); default: 85% of the memory free when it starts.
        enforce_eager: skip CUDA-graph capture (starts faster, decodes slower).
        max_model_len: longest prompt plus output in tokens (default: the model's window;
            lower it when the KV cache for the full window does not fit).
    """

    name = NAME
    can_stream = False

    def __init__(
        self,
        loaded: Loaded,
        gpu_memory_utilization: float | None = None,
        enforce_eager: bool = False,
        max_model_len: int | None = None,
    ) -> None:
        if loaded.kind != "causal":
            raise ModelLoadError(
                f"{loaded.name} is a {loaded.kind} model: the {NAME} backend decodes causal "
                "(decoder-only) models here; use ctranslate2 or transformers"
            )
        problem = engines.unavailable(NAME, loaded)  # no GPU, or no vllm package
        if problem:
            raise ConfigError(problem)
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1] (got {gpu_memory_utilization})"
            )
        if max_model_len is not None and max_model_len < 1:
            raise ConfigError(f"max_model_len must be at least 1 (got {max_model_len})")
        differences = model_differences(loaded.model.generation_config)
        if differences:
            # Refused at load time, where auto can still fall back, not on every request.
            raise ModelLoadError(
                f"{NAME} would ignore {', '.join(differences)} of {loaded.name}, "
                "which transformers applies"
            )
        self.loaded = loaded
        self.tokenizer_eos = loaded.tokenizer.eos_token_id
        self.dtype = _DTYPES.get(loaded.dtype, "auto")
        self._folder = source_folder(loaded)
        self._settings = (gpu_memory_utilization, enforce_eager, max_model_len)
        self._engine()  # build now: a model vLLM cannot run fails here, where auto falls back

    def _engine(self) -> tuple[Any, threading.Lock]:
        """The engine for these settings with the lock that keeps its calls one at a time
        (``LLM.generate`` is not thread-safe). One per model and settings, kept on the
        model (a second one would reserve the GPU memory again) and dropped with it."""
        # Keyed by the setting as asked: the default share depends on the free memory,
        # which the first engine itself reduces.
        key = (NAME, self._folder, self.dtype, *self._settings)
        return self.loaded.attachment(key, lambda: self._build(self._folder, *self._settings))

    def _build(
        self,
        folder: str,
        utilization: float | None,
        enforce_eager: bool,
        max_model_len: int | None,
    ) -> tuple[Any, threading.Lock]:
        import vllm

        if utilization is None:
            free, total = torch.cuda.mem_get_info(self.loaded.device)
            utilization = memory_share(free, total)
        options: dict[str, Any] = {"max_model_len": max_model_len} if max_model_len else {}
        try:
            engine = vllm.LLM(
                folder,
                tokenizer=folder,
                dtype=self.dtype,
                trust_remote_code=self.loaded.spec.trust_remote_code,
                gpu_memory_utilization=utilization,
                enforce_eager=enforce_eager,
                # Log-probabilities of the model's own distribution, as transformers reports.
                logprobs_mode="raw_logprobs",
                # Every request carries all its settings (sampling_kwargs): the model's
                # sampling defaults, used only for requests without any, stay out. Its end
                # tokens are still read from generation_config.json.
                generation_config="vllm",
                **options,
            )
        # vLLM fails in many ways (unknown architecture, memory, CUDA); all end here
        # as one line, so that auto can fall back to transformers.
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"{NAME} cannot run {self.loaded.name}: {first_line(exc)}"
            ) from None
        return engine, threading.Lock()

    # Options -----------------------------------------------------------------------------

    def unsupported(self, config: DecodeConfig) -> list[str]:
        """The options of ``config`` that vLLM would not honour as transformers does; see
        the module docstring."""
        return request_differences(config, eos_ids(self.loaded, config), self.tokenizer_eos)

    # Generation --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        """Generate for a batch of tokenized prompts (see ``DecodingBackend.generate``).

        vLLM has no per-step hook, so neither ``stop_check`` nor ``on_row_done`` is called:
        the generator builds the check from ``config.stop_strings`` only, and those go to
        vLLM as ``stop``, which ends an output at the token that completes one, as the
        check would; progress moves when the whole batch returns.
        """
        del stop_check, on_row_done
        if not prompts:
            return []
        if any(len(p) == 0 for p in prompts):
            raise ConfigError("cannot generate from an empty prompt: it needs at least one token")
        from vllm import SamplingParams, TokensPrompt
        from vllm import exceptions as vllm_errors

        # vLLM reports a request it refuses as a VLLMClientError (ValueError in older ones).
        refused = (ValueError, getattr(vllm_errors, "VLLMClientError", ValueError))
        ends = eos_ids(self.loaded, config)
        try:
            params = SamplingParams(**sampling_kwargs(config, ends, self.tokenizer_eos))
            requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
            engine, engine_lock = self._engine()
            with engine_lock:
                outputs = engine.generate(requests, params, use_tqdm=False)
        except refused as exc:
            raise ConfigError(f"{NAME} rejected the request: {first_line(exc)}") from None
        return [
            [to_raw(c, set(ends), config) for c in sorted(out.outputs, key=lambda c: c.index)]
            for out in outputs
        ]

    def stream(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        on_token: TokenSink,
        stop_check: StopCheck,
    ) -> RawSequence:
        """Not offered (``can_stream`` is False): the offline engine returns whole outputs."""
        raise ConfigError(
            "the vllm backend cannot stream: use backend='transformers' (or auto) to stream"
        )


def to_raw(completion: Any, ends: set[int], config: DecodeConfig) -> RawSequence:
    """A :class:`RawSequence` from a vLLM ``CompletionOutput``.

    vLLM keeps the end token that finished an output in ``token_ids``; Quintet leaves it out
    and sets ``ended_by_eos``, with its log-probability counted in the score only.
    """
    reason = completion.finish_reason
    if reason not in ("stop", "length"):
        raise QuintetError(f"{NAME} did not finish an output (finish reason {reason!r})")
    ids = list(completion.token_ids)
    logprobs = None
    if config.output_logprobs:
        positions = completion.logprobs or []
        logprobs = [
            float(position[token].logprob) for position, token in zip(positions, ids, strict=False)
        ]
    ended = reason == "stop" and bool(ids) and ids[-1] in ends
    kept = ids[:-1] if ended else ids
    by_string = reason == "stop" and isinstance(completion.stop_reason, str)
    return RawSequence(
        token_ids=kept,
        ended_by_eos=ended,
        token_logprobs=logprobs[: len(kept)] if logprobs is not None else None,
        # The sum of the log-probabilities, end token included, as transformers reports.
        score=sum(logprobs) if logprobs is not None else None,
        first_token_time=None,  # the offline engine does not say when its first token came
        hit_length=reason == "length",
        extra={"stopped_by_check": True} if by_string else {},
    )
