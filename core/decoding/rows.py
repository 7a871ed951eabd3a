"""What the step-by-step engines (CTranslate2, ONNX Runtime GenAI) share: the end tokens to
stop on, taking each chosen token into its output (end, stop check, length), and turning
the tokens gathered for one output into a :class:`RawSequence`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from quintet.core.config import DecodeConfig
from quintet.core.decoding.types import RawSequence
from quintet.core.models import Loaded


def eos_ids(loaded: Loaded, config: DecodeConfig) -> list[int]:
    """The model's end token(s) plus the config's stop token ids."""
    found = loaded.model.generation_config.eos_token_id
    if found is None:
        found = loaded.tokenizer.eos_token_id
    ids = [found] if isinstance(found, int) else list(found or [])
    return list(dict.fromkeys([*ids, *config.stop_token_ids]))


def stop_of(
    stop_check: Callable[[int, list[int]], bool] | None, index: int
) -> Callable[[list[int]], bool] | None:
    """A backend's ``stop_check`` for output ``index`` alone, as :meth:`Row.take` calls it."""
    return None if stop_check is None else (lambda ids: stop_check(index, ids))


@dataclass
class Row:
    """What one output gathered while decoding, token by token."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    end_logprob: float = 0.0
    ended: bool = False
    stopped: bool = False
    hit_length: bool = False

    def take(
        self,
        token: int,
        ends: Collection[int],
        limit: int | None,
        *,
        logprob: float = 0.0,
        on_token: Callable[[int], object] | None = None,
        stop: Callable[[list[int]], bool] | None = None,
    ) -> bool:
        """Add the token the engine chose; whether the output is done: an end token (not
        kept), a stop the caller's ``stop`` check found, or ``limit`` tokens reached."""
        if token in ends:
            self.ended = True
            self.end_logprob = logprob
            return True
        self.ids.append(token)
        self.logprobs.append(logprob)
        if on_token is not None:
            on_token(token)
        if stop is not None and stop(self.ids):
            self.stopped = True
            return True
        if limit is not None and len(self.ids) >= limit:
            self.hit_length = True
            return True
        return False

    def sequence(
        self, config: DecodeConfig, first_time: float | None, *, scored: bool = True
    ) -> RawSequence:
        """The RawSequence for this output. ``scored=False``: the engine gave no
        log-probabilities, so there is no score either."""
        return RawSequence(
            token_ids=self.ids,
            ended_by_eos=self.ended,
            token_logprobs=self.logprobs if config.output_logprobs else None,
            # The sum of the log-probabilities, end token included, as transformers reports.
            score=sum(self.logprobs) + self.end_logprob if scored else None,
            first_token_time=first_time,
            hit_length=self.hit_length and not self.stopped,
            extra={"stopped_by_check": True} if self.stopped else {},
        )
