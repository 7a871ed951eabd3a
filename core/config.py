"""Frozen, validated configuration objects shared by every app.

A config is checked when it is built, so a bad value fails where the user typed it and
not deep inside torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Literal, get_args

from quintet.core.errors import ConfigError

Kind = Literal["seq2seq", "causal", "span", "sequence-classification", "encoder"]
KINDS: tuple[str, ...] = get_args(Kind)

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[str, ...] = get_args(DeviceName)

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(DtypeName)

QUANTIZATIONS: tuple[str, ...] = ("int8",)

# Decoding engines (core.decoding.engines chooses among them): here so that building the
# command line needs no torch import.
BACKENDS: tuple[str, ...] = ("auto", "transformers", "ctranslate2", "onnxruntime-genai", "vllm")
# Pins the engine of every ``backend="auto"`` choice (decoders and encoders) for a process.
ENV_BACKEND = "QUINTET_BACKEND"


def backend_from_env() -> str | None:
    """``$QUINTET_BACKEND`` when it is set, checked: an unknown name is a one-line
    ConfigError listing the valid ones, so a typo is never silently ignored."""
    value = os.environ.get(ENV_BACKEND, "").strip()
    if not value:
        return None
    if value not in BACKENDS:
        raise ConfigError(
            f"unknown backend {value!r} in ${ENV_BACKEND}: choose one of {', '.join(BACKENDS)} "
            "(or unset it)"
        )
    return value


# The largest sampling seed (see DecodeConfig.seed): a signed 32-bit integer.
MAX_SEED = 2**31 - 1


def non_finite_problems(config: object) -> Iterator[str]:
    """A problem for every ``float`` field of the dataclass ``config`` that is NaN or infinite.

    Range checks cannot catch these: every comparison with NaN is false, so ``nan <= 0``
    lets a NaN temperature through, and an infinite count of epochs never ends.
    """
    for f in fields(config):
        value = getattr(config, f.name)
        if f.type.startswith("float") and isinstance(value, float) and not math.isfinite(value):
            yield f"{f.name} must be a finite number (got {value})"


@dataclass(frozen=True)
class ModelSpec:
    """What to load and how.

    Args:
        name: a catalog name (``smollm2-135m-instruct``), a store name, a hub id
            (``Helsinki-NLP/opus-mt-en-de``) or a local directory.
        kind: force a model kind (e.g. ``"span"`` to put a QA head on an encoder for
            fine-tuning); ``None`` detects it from the model's config.
        revision: hub revision (branch, tag or commit); ``None`` uses the catalog's pin or ``main``.
        device: ``"auto"`` picks CUDA, then MPS, then CPU.
        dtype: ``"auto"`` is bfloat16 on CUDA, float16 on MPS and float32 on CPU.
        quantize: ``"int8"`` applies dynamic int8 quantization to Linear layers (CPU only).
        trust_remote_code: run code shipped with a hub model. Off unless you trust the source.
        allow_pickle_weights: accept ``pytorch_model.bin`` style pickle weights. Off by default
            because unpickling can run arbitrary code; safetensors are always preferred.

    Example:
        >>> ModelSpec("smollm2-135m-instruct", quantize="int8").device
        'auto'
    """

    name: str
    kind: Kind | None = None
    revision: str | None = None
    device: DeviceName = "auto"
    dtype: DtypeName = "auto"
    quantize: str | None = field(default=None, metadata={"choices": QUANTIZATIONS})
    trust_remote_code: bool = False
    allow_pickle_weights: bool = field(default=False, metadata={"aliases": ("--allow-pickle",)})

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("model name is empty: pass a catalog name, hub id or local directory")
        if self.kind is not None and self.kind not in KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        if self.quantize is not None and self.quantize not in QUANTIZATIONS:
            raise ConfigError(
                f"unknown quantization {self.quantize!r}: choose one of {', '.join(QUANTIZATIONS)}"
            )
        if self.quantize == "int8" and self.dtype not in ("auto", "float32"):
            raise ConfigError("int8 dynamic quantization works on float32 weights: drop dtype")


@dataclass(frozen=True)
class DecodeConfig:
    """How to generate text. One config serves every backend and every app.

    The strategy follows from the fields: ``num_beams > 1`` is beam search, ``do_sample`` is
    sampling (temperature, top_k, top_p, min_p), otherwise greedy.

    Args:
        max_new_tokens: most tokens to generate per output.
        min_new_tokens: fewest tokens before an end token may stop the output.
        do_sample: sample instead of picking the most likely token.
        temperature: sampling temperature (> 0); only with ``do_sample``.
        top_k: keep the k most likely tokens (0 = off); only with ``do_sample``.
        top_p: nucleus sampling mass in (0, 1]; only with ``do_sample``.
        min_p: drop tokens below ``min_p`` x the top token's probability (0 = off).
        num_beams: beam width (1 = no beam search).
        length_penalty: beam score is divided by length ** length_penalty.
        early_stopping: end beam search once ``num_beams`` hypotheses are finished.
        num_return_sequences: outputs per input (<= num_beams for beam search).
        repetition_penalty: > 1 discourages tokens already present (1 = off).
        no_repeat_ngram_size: forbid repeating n-grams of this size (0 = off).
        stop_strings: end an output when one of these appears; it is cut from the text.
        stop_token_ids: extra token ids that end an output, besides the model's end token.
        seed: seed for sampling, so a call can be repeated exactly; 0 to 2**31 - 1 (the
            range every engine accepts: CTranslate2 takes no negative seed, vLLM reads -1 as
            none, ONNX Runtime GenAI and torch overflow on huge ones).
        output_logprobs: return each generated token's log-probability.
        forced_bos_token_id: the first generated token of a seq2seq model, e.g. NLLB's or
            M2M100's target-language token (the translation app sets it).
        json_schema: constrain the output to JSON valid against this JSON Schema (a dict,
            or its JSON text); ``{"type": "object"}`` asks for any JSON object.
        regex: constrain the whole output to match this regular expression (``\\d`` is
            an ASCII digit).
        choices: constrain the output to exactly one of these strings.
            ``json_schema``, ``regex`` and ``choices`` exclude each other; they run on the
            onnxruntime-genai engine (transformers refuses them with a one-line error).
        lookup: prompt lookup decoding: up to this many draft tokens per step, copied from
            where the last few tokens occurred earlier in the prompt or output and checked
            by the model in one pass (0 = off, at most 16). Greedy output stays token for
            token the same on transformers and fp32 weights; on int8 weights the engine
            rounds a several-token step differently from single steps, and some outputs
            change (see :mod:`quintet.core.decoding.guidance`).

    Example:
        >>> DecodeConfig(max_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.9).strategy
        'sample'
    """

    max_new_tokens: int = 128
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    num_beams: int = field(default=1, metadata={"aliases": ("--beams",)})
    length_penalty: float = 1.0
    early_stopping: bool = False
    num_return_sequences: int = 1
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    stop_strings: tuple[str, ...] = field(default=(), metadata={"aliases": ("--stop",)})
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None
    output_logprobs: bool = False
    forced_bos_token_id: int | None = None
    # A dict does not hash: the schema is left out of the hash (equal configs still hash
    # equal) and compared as a value.
    json_schema: dict | None = field(default=None, hash=False)
    regex: str | None = None
    choices: tuple[str, ...] | None = None
    lookup: int = 0

    def __post_init__(self) -> None:
        # Lists are accepted for convenience and frozen into tuples so the config hashes.
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        if isinstance(self.choices, list | tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        schema_problem = self._read_schema()
        if schema_problem:
            raise ConfigError(f"invalid decoding settings: {schema_problem}")
        # Wrong types first: the range checks below would fail on them with a TypeError
        # (``--decode max_new_tokens=lots`` reaches here as a string).
        problems = list(self._type_problems()) or list(non_finite_problems(self))
        if not problems:
            self._whole_numbers_as_int()
            problems = list(self._problems())
        if problems:
            raise ConfigError("invalid decoding settings: " + "; ".join(problems))

    def _whole_numbers_as_int(self) -> None:
        # JSON reads ``--decode num_beams=2.0`` or ``max_new_tokens=1e3`` as floats; torch
        # wants ints for counts (repeat_interleave fails on a float beam count).
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type.removesuffix(" | None") == "int" and isinstance(value, float):
                object.__setattr__(self, f.name, int(value))

    def _type_problems(self) -> Iterator[str]:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = f.type.removesuffix(" | None")  # annotations are strings here
            if value is None and f.type.endswith("| None"):
                continue
            if expected == "bool" and not isinstance(value, bool):
                yield f"{f.name} must be true or false (got {value!r})"
            elif expected in ("int", "float") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                yield f"{f.name} must be a number (got {value!r})"
            elif expected == "int" and isinstance(value, float) and not value.is_integer():
                yield f"{f.name} must be a whole number (got {value!r})"
            elif expected == "str" and not isinstance(value, str):
                yield f"{f.name} must be a string (got {value!r})"
            elif expected == "tuple[str, ...]" and not isinstance(value, tuple):
                yield f"{f.name} must be a list of strings (got {value!r})"

    def _read_schema(self) -> str | None:
        """Take ``json_schema`` as given in JSON text (``--decode json_schema='{...}'``, a
        form field) into a dict, copied so that later edits of the caller's dict cannot
        change a frozen config; a problem as one line, or None."""
        import copy
        import json

        schema = self.json_schema
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as exc:
                return f"json_schema is not valid JSON ({exc.msg} at character {exc.pos})"
        if schema is None:
            return None
        if not isinstance(schema, dict):
            return f"json_schema must be a JSON object (a dict), got {type(schema).__name__}"
        try:
            json.dumps(schema)
        except (TypeError, ValueError) as exc:
            return f"json_schema must be plain JSON data: {exc}"
        object.__setattr__(self, "json_schema", copy.deepcopy(schema))
        return None

    def _problems(self) -> Iterator[str]:
        if self.max_new_tokens < 1:
            yield f"max_new_tokens must be at least 1 (got {self.max_new_tokens})"
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            yield (
                f"min_new_tokens must be between 0 and max_new_tokens ({self.max_new_tokens}), "
                f"got {self.min_new_tokens}"
            )
        if self.temperature <= 0:
            yield f"temperature must be > 0 (got {self.temperature}); for greedy, do_sample=False"
        if self.top_k < 0:
            yield f"top_k must be >= 0 (got {self.top_k})"
        if not 0 < self.top_p <= 1:
            yield f"top_p must be in (0, 1] (got {self.top_p})"
        if not 0 <= self.min_p < 1:
            yield f"min_p must be in [0, 1) (got {self.min_p})"
        if self.num_beams < 1:
            yield f"num_beams must be at least 1 (got {self.num_beams})"
        if self.num_return_sequences < 1:
            yield f"num_return_sequences must be at least 1 (got {self.num_return_sequences})"
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            yield (
                f"num_return_sequences ({self.num_return_sequences}) cannot exceed num_beams "
                f"({self.num_beams})"
            )
        if self.num_beams == 1 and not self.do_sample and self.num_return_sequences > 1:
            yield "greedy decoding returns one sequence: use num_beams or do_sample for more"
        if self.num_beams > 1 and self.do_sample:
            yield "beam search and sampling cannot be combined: choose num_beams or do_sample"
        if not self.do_sample and (
            self.temperature != 1.0 or self.top_k or self.top_p != 1.0 or self.min_p
        ):
            yield "temperature, top_k, top_p and min_p only apply with do_sample=True"
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            yield f"seed must be in 0..{MAX_SEED} (got {self.seed})"
        if self.repetition_penalty <= 0:
            yield f"repetition_penalty must be > 0 (got {self.repetition_penalty})"
        if self.no_repeat_ngram_size < 0:
            yield f"no_repeat_ngram_size must be >= 0 (got {self.no_repeat_ngram_size})"
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            yield "stop_strings must be non-empty strings"
        if any(not isinstance(t, int) or t < 0 for t in self.stop_token_ids):
            yield "stop_token_ids must be non-negative integers"
        yield from self._constraint_problems()
        if not 0 <= self.lookup <= 16:
            yield f"lookup must be between 0 (off) and 16 draft tokens (got {self.lookup})"
        if self.lookup and self.num_beams > 1:
            yield "lookup decoding and beam search cannot be combined: choose one"

    def _constraint_problems(self) -> Iterator[str]:
        given = [n for n in ("json_schema", "regex", "choices") if getattr(self, n) is not None]
        if len(given) > 1:
            yield f"{' and '.join(given)} exclude each other: constrain the output one way"
        if self.regex is not None:
            import re

            if not self.regex:
                yield "regex is empty"
            else:
                try:
                    re.compile(self.regex)
                except re.error as exc:
                    yield f"regex {self.regex!r} does not compile: {exc}"
        if self.choices is not None:
            if not self.choices:
                yield "choices is empty: give at least one"
            elif any(not isinstance(c, str) or not c for c in self.choices):
                yield "choices must be non-empty strings"
            elif len(set(self.choices)) != len(self.choices):
                yield "choices has duplicates"
        if given and self.num_beams > 1:
            yield f"{given[0]} cannot be combined with beam search: set num_beams=1"

    @property
    def strategy(self) -> str:
        """``"beam"``, ``"sample"`` or ``"greedy"``."""
        if self.num_beams > 1:
            return "beam"
        return "sample" if self.do_sample else "greedy"

    def check_streamable(self) -> None:
        """Streaming emits one sequence token by token; beams and several outputs cannot."""
        if self.num_beams > 1:
            raise ConfigError(
                "streaming cannot use beam search (the best beam is only known at the end): "
                "set num_beams=1 or call generate() instead"
            )
        if self.num_return_sequences > 1:
            raise ConfigError("streaming returns one sequence: set num_return_sequences=1")

    @classmethod
    def from_overrides(cls, base: DecodeConfig | None = None, **overrides) -> DecodeConfig:
        """A config from ``base`` with ``overrides``; unknown names are a clear error."""
        from dataclasses import replace

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown decoding option(s) {', '.join(unknown)}: "
                f"choose from {', '.join(sorted(known))}"
            )
        return replace(base or cls(), **overrides)


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune. Defaults suit a small model on a CPU; every field has a CLI flag
    (``quintet finetune --field-name``, generated from this class by :mod:`quintet.apps.flags`; the
    help is the entry below, ``metadata["aliases"]`` are other spellings).

    Args:
        epochs: passes over the training data (fractions allowed).
        max_steps: stop after this many optimizer steps (overrides epochs when set).
        learning_rate: peak learning rate (linear warm-up, then linear decay).
        batch_size: examples per forward pass.
        grad_accum: forward passes per optimizer step (effective batch = batch_size x this).
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the steps spent warming the learning rate up.
        max_grad_norm: gradients are clipped to this norm.
        lora: train LoRA adapters instead of every weight; merged into the model on export.
        lora_r: rank of the LoRA adapters.
        lora_alpha: LoRA scaling (the update is scaled by lora_alpha / lora_r).
        lora_dropout: dropout on the LoRA adapters' input.
        eval_every: optimizer steps between validations (0: once per epoch).
        save_every: optimizer steps between checkpoints; a killed run loses at most these.
        early_stopping_patience: stop after this many validations without improvement.
        validation_fraction: share of the data held back when no validation file is given.
        eval_max_examples: validate on at most this many examples (speed on CPU).
        max_length: longest input in tokens (None: the task's default).
        doc_stride: QA: tokens shared by neighbouring windows of a long context.
        multi_label: classification: each example may have several labels.
        seed: seed of the shuffling, the held-out split and the initial weights.

    Example:
        >>> TrainConfig(epochs=2, lora=True).learning_rate
        5e-05
    """

    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = field(default=5e-5, metadata={"aliases": ("--lr",)})
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    eval_every: int = 0
    save_every: int = 50
    early_stopping_patience: int | None = field(default=None, metadata={"aliases": ("--patience",)})
    validation_fraction: float = 0.1
    eval_max_examples: int | None = 500
    max_length: int | None = None
    doc_stride: int = 128
    multi_label: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        problems = list(non_finite_problems(self))
        if problems:  # the range checks below would be meaningless on NaN
            raise ConfigError("invalid training settings: " + "; ".join(problems))
        if self.epochs <= 0 and self.max_steps is None:
            problems.append(f"epochs must be > 0 (got {self.epochs})")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be at least 1 (got {self.max_steps})")
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        for name in ("batch_size", "grad_accum", "save_every", "lora_r"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.eval_every < 0:
            problems.append(f"eval_every must be >= 0 (got {self.eval_every})")
        if not 0 < self.validation_fraction < 1:
            problems.append(
                f"validation_fraction must be in (0, 1) (got {self.validation_fraction})"
            )
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.max_grad_norm <= 0:
            problems.append(f"max_grad_norm must be > 0 (got {self.max_grad_norm})")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            problems.append("early_stopping_patience must be at least 1")
        if problems:
            raise ConfigError("invalid training settings: " + "; ".join(problems))
