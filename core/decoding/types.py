"""What goes into and comes out of the decoding engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled", "empty"]

# A prompt is plain text, or a chat as OpenAI-style messages ({"role", "content"} dicts),
# which the generator renders with the model's chat template.
Message = dict[str, str]
Prompt = str | list[Message]


@dataclass(frozen=True)
class Timings:
    """Wall-clock timings of one output.

    For batched generation the batch's times are shared by its outputs: time to first
    token is when the batch produced its first token, ``total_s`` the batch's duration.
    """

    time_to_first_token_s: float | None
    total_s: float
    num_tokens: int

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second for this output (0 when nothing was generated)."""
        return self.num_tokens / self.total_s if self.total_s > 0 and self.num_tokens else 0.0


@dataclass(frozen=True)
class GenerationResult:
    """One generated output.

    Attributes:
        text: the generated text, with stop strings and special tokens removed.
        token_ids: the generated token ids (without the prompt).
        finish_reason: ``stop`` (end token or stop string), ``length`` (max_new_tokens),
            ``cancelled`` (stream cancelled) or ``empty`` (empty input: nothing generated).
        token_logprobs: each generated token's log-probability, if asked for.
        score: the sequence score (beam score for beam search, else the sum of the token
            log-probabilities), when the backend provides it.
        timings: time to first token, total time, tokens per second.
        prompt_tokens: length of the tokenized prompt.
        stop_string: the stop string that ended the output, if any.
        alternatives: the other outputs for the same prompt (``num_return_sequences > 1``).
        backend: the engine that produced it (``transformers``, ``onnxruntime-genai``, ...).
    """

    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    timings: Timings
    prompt_tokens: int = 0
    token_logprobs: list[float] | None = None
    score: float | None = None
    stop_string: str | None = None
    alternatives: tuple[GenerationResult, ...] = ()
    backend: str | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class RawSequence:
    """What a backend returns for one output, before the generator post-processes it.

    ``token_ids`` are the new tokens only; an end token, if produced, is left out and
    ``ended_by_eos`` is set instead.
    """

    token_ids: list[int]
    ended_by_eos: bool
    token_logprobs: list[float] | None = None
    score: float | None = None
    first_token_time: float | None = None  # time.perf_counter() when its first token came
    cancelled: bool = False
    # True when max_new_tokens ended the output (set by backends that know; the generator
    # also infers it from the token count).
    hit_length: bool = False
    extra: dict = field(default_factory=dict)
