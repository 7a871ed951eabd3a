"""The decoding engine: one :class:`Generator` for every generative app.

>>> from core.decoding import Generator, DecodeConfig               # doctest: +SKIP
>>> Generator("smollm2-135m-instruct").complete("Hello", max_new_tokens=8).text
"""

from quintet.core.config import DecodeConfig
from quintet.core.decoding.generator import Generator, OutOfMemoryError, TextStream
from quintet.core.decoding.prompts import DEFAULT_CHAT_TEMPLATE, InputTooLongError
from quintet.core.decoding.types import GenerationResult, Prompt, Timings

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "DecodeConfig",
    "GenerationResult",
    "Generator",
    "InputTooLongError",
    "OutOfMemoryError",
    "Prompt",
    "TextStream",
    "Timings",
]
