"""The transformers backend: ``model.generate`` with Quintet's options, the reference."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from quintet.core.config import DecodeConfig
from quintet.core.decoding.backend import RowDone, StopCheck, TokenSink
from quintet.core.decoding.rows import eos_ids
from quintet.core.decoding.types import RawSequence
from quintet.core.errors import ModelLoadError
from quintet.core.models import Loaded


class _FirstStepClock(LogitsProcessor):
    """Records when the first next-token distribution is ready: the time to first token.

    A logits processor runs at every step of every strategy (beam search included, where
    streamers are not allowed), so it is the one hook that times them all.
    """

    def __init__(self) -> None:
        self.first: float | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.first is None:
            self.first = time.perf_counter()
        return scores


class _RowStop(StoppingCriteria):
    """Stops each row on its own when ``stop_check`` says so (stop strings, cancellation),
    and tells ``on_row_done`` of each row as it finishes (end token, stop, length)."""

    def __init__(
        self,
        stop_check: StopCheck | None,
        prompt_length: int,
        rows_per_prompt: int,
        *,
        ends: set[int] | None = None,
        max_new_tokens: int = 0,
        on_row_done: RowDone | None = None,
    ) -> None:
        self.stop_check = stop_check
        self.prompt_length = prompt_length
        self.rows_per_prompt = rows_per_prompt
        self.ends = ends or set()
        self.max_new_tokens = max_new_tokens
        self.on_row_done = on_row_done
        self.finished: set[int] = set()

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_length :].tolist()
        done = []
        for row, ids in enumerate(new):
            stop = self.stop_check is not None and self.stop_check(row // self.rows_per_prompt, ids)
            done.append(stop)
            if self.on_row_done is None or row in self.finished:
                continue
            # transformers' own criteria end a row on its end token or the length limit.
            if stop or (ids and ids[-1] in self.ends) or len(ids) >= self.max_new_tokens:
                self.finished.add(row)
                self.on_row_done(row // self.rows_per_prompt)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class _TokenStreamer(BaseStreamer):
    """Hands each new token id to a sink; the first ``put`` is the prompt and is skipped."""

    def __init__(self, sink: TokenSink) -> None:
        self.sink = sink
        self.seen_prompt = False
        self.first_token_time: float | None = None

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        for token in value.reshape(-1).tolist():
            if self.first_token_time is None:
                self.first_token_time = time.perf_counter()
            self.sink(int(token))

    def end(self) -> None:
        pass


class TransformersBackend:
    """Runs ``model.generate``; supports every DecodeConfig option."""

    name = "transformers"
    can_stream = True

    def __init__(self, loaded: Loaded) -> None:
        if loaded.kind not in ("causal", "seq2seq"):
            raise ModelLoadError(
                f"{loaded.name} is a {loaded.kind} model and cannot generate text: "
                "use a causal or seq2seq model"
            )
        self.loaded = loaded
        self.is_causal = loaded.kind == "causal"

    def unsupported(self, config: DecodeConfig) -> list[str]:
        return []

    # Inputs ------------------------------------------------------------------------------

    def _pad_id(self) -> int:
        tokenizer = self.loaded.tokenizer
        if tokenizer.pad_token_id is not None:
            return tokenizer.pad_token_id
        eos = eos_ids(self.loaded, DecodeConfig())
        return eos[0] if eos else 0

    def _batch(self, prompts: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Pad a batch: left for decoder-only models (new tokens must follow the prompt
        directly), right for encoder inputs."""
        width = max(len(p) for p in prompts)
        pad = self._pad_id()
        ids, mask = [], []
        for prompt in prompts:
            fill = width - len(prompt)
            if self.is_causal:
                ids.append([pad] * fill + list(prompt))
                mask.append([0] * fill + [1] * len(prompt))
            else:
                ids.append(list(prompt) + [pad] * fill)
                mask.append([1] * len(prompt) + [0] * fill)
        device = self.loaded.device
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long, device=device),
            "attention_mask": torch.tensor(mask, dtype=torch.long, device=device),
        }

    def _generation_config(self, config: DecodeConfig):
        # Start from the model's own config (it knows decoder_start_token_id, forced BOS,
        # forbidden pad tokens) and let every Quintet option override its defaults.
        generation = copy.deepcopy(self.loaded.model.generation_config)
        sampling = config.do_sample
        generation.update(
            max_length=None,
            max_new_tokens=config.max_new_tokens,
            min_new_tokens=config.min_new_tokens or None,
            do_sample=sampling,
            temperature=config.temperature if sampling else None,
            top_k=config.top_k if sampling else None,
            top_p=config.top_p if sampling else None,
            min_p=(config.min_p or None) if sampling else None,
            num_beams=config.num_beams,
            length_penalty=config.length_penalty,
            early_stopping=config.early_stopping,
            num_return_sequences=config.num_return_sequences,
            repetition_penalty=config.repetition_penalty,
            no_repeat_ngram_size=config.no_repeat_ngram_size or None,
            eos_token_id=eos_ids(self.loaded, config),
            pad_token_id=self._pad_id(),
            return_dict_in_generate=True,
            # Beam search returns its sequence scores only when asked for scores.
            output_scores=config.num_beams > 1,
            output_logits=config.output_logprobs and config.num_beams == 1,
        )
        if config.forced_bos_token_id is not None:
            generation.forced_bos_token_id = config.forced_bos_token_id
        if config.lookup:
            # transformers' own prompt lookup (assisted generation without a draft model).
            generation.prompt_lookup_num_tokens = config.lookup
        return generation

    # Generation --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        config: DecodeConfig,
        stop_check: StopCheck | None = None,
        on_row_done: RowDone | None = None,
    ) -> list[list[RawSequence]]:
        if config.lookup and len(prompts) > 1:
            # Assisted generation (prompt lookup) takes one sequence at a time.
            return [
                self.generate(
                    [prompt],
                    config,
                    (lambda _, ids, i=index: stop_check(i, ids)) if stop_check else None,
                    (lambda _, i=index: on_row_done(i)) if on_row_done else None,
                )[0]
                for index, prompt in enumerate(prompts)
            ]
        inputs = self._batch(prompts)
        clock = _FirstStepClock()
        kwargs: dict = {"logits_processor": LogitsProcessorList([clock])}
        prompt_length = inputs["input_ids"].shape[1] if self.is_causal else 1
        if (stop_check is not None or on_row_done is not None) and config.num_beams == 1:
            criteria = _RowStop(
                stop_check, prompt_length, config.num_return_sequences,
                ends=set(eos_ids(self.loaded, config)), max_new_tokens=config.max_new_tokens,
                on_row_done=on_row_done,
            )  # fmt: skip
            kwargs["stopping_criteria"] = [criteria]
        if config.stop_strings and (stop_check is None or config.num_beams > 1):
            # Beam rows are reshuffled every step, so per-row checks do not apply; the
            # library's own stop-string criterion knows how to follow beams.
            kwargs["stop_strings"] = list(config.stop_strings)
            kwargs["tokenizer"] = self.loaded.tokenizer
        if config.seed is not None:
            torch.manual_seed(config.seed)
        with torch.inference_mode():
            out = self.loaded.model.generate(
                **inputs, generation_config=self._generation_config(config), **kwargs
            )
        return self._unpack(out, prompt_length, len(prompts), config, clock.first)

    def _unpack(
        self,
        out,
        prompt_length: int,
        n_prompts: int,
        config: DecodeConfig,
        first_token_time: float | None,
    ) -> list[list[RawSequence]]:
        sequences = out.sequences[:, prompt_length:]
        ends = set(eos_ids(self.loaded, config))
        logprobs = self._token_logprobs(out, sequences, config)
        scores = getattr(out, "sequences_scores", None)
        per_prompt = config.num_return_sequences
        results: list[list[RawSequence]] = [[] for _ in range(n_prompts)]
        # Models such as Marian force an end token at the last allowed step: that output
        # was cut by the length limit, not finished by the model.
        forced_eos = getattr(self.loaded.model.generation_config, "forced_eos_token_id", None)
        for row, ids in enumerate(sequences.tolist()):
            # Everything after the first end token is padding.
            cut = next((i for i, token in enumerate(ids) if token in ends), None)
            kept = ids if cut is None else ids[:cut]
            forced = forced_eos is not None and cut == config.max_new_tokens - 1
            row_logprobs = logprobs[row][: len(kept)] if logprobs is not None else None
            if scores is not None:
                score = float(scores[row])
            elif row_logprobs is not None:
                score = float(sum(logprobs[row][: len(kept) + (cut is not None)]))
            else:
                score = None
            results[row // per_prompt].append(
                RawSequence(
                    token_ids=kept,
                    ended_by_eos=cut is not None and not forced,
                    token_logprobs=row_logprobs,
                    score=score,
                    first_token_time=first_token_time,
                    hit_length=cut is None or forced,
                )
            )
        return results

    def _token_logprobs(self, out, sequences: torch.Tensor, config: DecodeConfig):
        if not config.output_logprobs:
            return None
        if config.num_beams > 1:
            transition = self.loaded.model.compute_transition_scores(
                out.sequences, out.scores, out.beam_indices, normalize_logits=False
            )
            return transition.tolist()
        # The model's own distribution (before temperature or top-k reshaping).
        steps = torch.stack(out.logits, dim=1).float().log_softmax(-1)
        chosen = sequences[:, : steps.shape[1]].unsqueeze(-1)
        return steps.gather(-1, chosen).squeeze(-1).tolist()

    # Streaming ---------------------------------------------------------------------------

    def stream(
        self,
        prompt: Sequence[int],
        config: DecodeConfig,
        on_token: TokenSink,
        stop_check: StopCheck,
    ) -> RawSequence:
        ends = set(eos_ids(self.loaded, config))
        received: list[int] = []
        finished = False

        def sink(token: int) -> None:
            nonlocal finished
            # After the end token, generate() may still hand over padding: drop it.
            if finished or token in ends:
                finished = True
                return
            received.append(token)
            on_token(token)

        streamer = _TokenStreamer(sink)
        inputs = self._batch([prompt])
        prompt_length = inputs["input_ids"].shape[1] if self.is_causal else 1
        criteria = _RowStop(stop_check, prompt_length, 1)
        if config.seed is not None:
            torch.manual_seed(config.seed)
        generation = self._generation_config(config)
        generation.output_logits = False
        with torch.inference_mode():
            self.loaded.model.generate(
                **inputs, generation_config=generation, streamer=streamer,
                stopping_criteria=[criteria],
            )  # fmt: skip
        return RawSequence(
            token_ids=received,
            ended_by_eos=finished,
            first_token_time=streamer.first_token_time,
        )
