"""The interface every decoding backend implements (a Protocol, not a base class)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from quintet.core.config import DecodeConfig
from quintet.core.decoding.types import RawSequence

# Called after each generation step with (row index in the batch, new token ids so far);
# returns True when that row must stop (a stop string appeared, or the stream was cancelled).
StopCheck = Callable[[int, Sequence[int]], bool]
# Called with each new token id of a streamed output, in order.
TokenSink = Callable[[int], None]
# Called once per output as soon as it is finished (end token, stop, length limit), with
# its prompt's index in the batch: how the generator reports progress inside a batch. It
# may be called from an engine's own thread.
RowDone = Callable[[int], None]


class DecodingBackend(Protocol):
    """Generates token ids from token ids. Text, templates, batching policy, stop strings
    and timings are the generator's job; a backend only runs the model."""

    name: str
    # False for an engine that only returns whole outputs (vLLM's offline engine): the
    # generator never calls its ``stream`` and runs streams on transformers (auto) or
    # refuses them (a named backend), rather than replaying finished tokens as a stream.
    can_stream: bool

    def unsupported(self, config: DecodeConfig) -> list[str]:
        """The options of ``config`` this backend cannot honour (empty when all are fine)."""
        ...

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        """Generate for a batch of tokenized prompts: one list of
        ``config.num_return_sequences`` outputs per prompt, in prompt order.

        ``on_row_done(prompt_index)`` is called for each output when it finishes, where the
        engine can tell (an engine that cannot, such as beam search, calls it for none and
        the generator reports the batch when it ends)."""
        ...

    def stream(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        on_token: TokenSink,
        stop_check: StopCheck,
    ) -> RawSequence:
        """Generate one output, calling ``on_token`` for each new token as it is produced.
        ``stop_check(0, ids)`` returning True ends generation early."""
        ...
