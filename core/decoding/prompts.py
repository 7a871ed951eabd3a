"""Turn prompts (text or chat messages) into the token ids a model sees."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quintet.core.decoding.types import Prompt
from quintet.core.errors import ConfigError, QuintetError
from quintet.core.models import Loaded

ROLES = ("system", "user", "assistant")

# For instruct models whose tokenizer has no chat template: ChatML, the format SmolLM2 and
# Qwen2.5 use, so a model that was trained on it gets what it expects.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class InputTooLongError(QuintetError):
    """A prompt does not fit in the model's context window."""


def is_chat(prompt: Any) -> bool:
    """True for a list of message dicts, False for plain text."""
    return isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt)


def validate_messages(messages: Sequence[dict]) -> None:
    """Check a chat: roles known, contents are strings, at least one non-empty message."""
    if not messages:
        raise ConfigError("a chat prompt needs at least one message")
    for number, message in enumerate(messages, 1):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConfigError(f"message {number} has role {role!r}: use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ConfigError(
                f"message {number} content must be text, got {type(content).__name__}"
            )


def validate_prompt(prompt: object) -> None:
    """A prompt is text or a list of message dicts; anything else is a clear error."""
    if isinstance(prompt, str):
        return
    if is_chat(prompt):
        validate_messages(prompt)
        return
    raise ConfigError(
        "a prompt must be text or a list of {'role', 'content'} messages, "
        f"got {type(prompt).__name__}"
    )


def is_empty(prompt: Prompt) -> bool:
    """A prompt with no text at all: generation is skipped and an empty result returned."""
    if isinstance(prompt, str):
        return not prompt.strip()
    return all(not str(m.get("content", "")).strip() for m in prompt)


def encode(loaded: Loaded, prompt: Prompt) -> list[int]:
    """Token ids for ``prompt``, with the special tokens and chat template the model expects."""
    tokenizer = loaded.tokenizer
    if is_chat(prompt):
        if loaded.kind != "causal":
            raise ConfigError(
                f"{loaded.name} is a {loaded.kind} model: chat messages need a decoder-only "
                "(causal) model; pass plain text instead"
            )
        validate_messages(prompt)
        template = getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
        encoded = tokenizer.apply_chat_template(
            prompt, chat_template=template, add_generation_prompt=True, tokenize=True
        )
        # transformers 5 may return a BatchEncoding where 4.x returned a list.
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return [int(i) for i in ids]
    validate_prompt(prompt)
    return [int(i) for i in tokenizer(prompt, add_special_tokens=True)["input_ids"]]


def check_fits(loaded: Loaded, index: int, prompt_ids: Sequence[int], max_new_tokens: int) -> None:
    """Refuse a prompt that would overflow the context window instead of truncating it."""
    window = loaded.context_window
    if window is None:
        return
    needed = len(prompt_ids) + (max_new_tokens if loaded.kind == "causal" else 0)
    if needed > window:
        extra = f" + max_new_tokens {max_new_tokens}" if loaded.kind == "causal" else ""
        raise InputTooLongError(
            f"input {index} is {len(prompt_ids)} tokens{extra}, more than {loaded.name}'s "
            f"context window of {window} tokens: shorten or split it (the apps split long "
            "documents for you)"
        )


def check_output_length(loaded: Loaded, max_new_tokens: int) -> None:
    """Refuse ``max_new_tokens`` beyond what a seq2seq model's decoder can write.

    Decoders with a fixed table of positions (Marian, BART, M2M100/NLLB, Pegasus: the
    ``max_position_embeddings`` of their config) fail with an index error deep in torch once
    an output outgrows the table; relative-position decoders (T5) state no such limit.
    """
    if loaded.kind != "seq2seq":
        return
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0 and max_new_tokens > limit:
        raise ConfigError(
            f"max_new_tokens {int(max_new_tokens)} is more than {loaded.name} can write: its "
            f"decoder holds at most {limit} tokens; set max_new_tokens to {limit} or less"
        )
