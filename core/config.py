"""Frozen, validated configuration objects shared by every app.

A config is checked when it is built, so a bad value fails where the user typed it and
not deep inside torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from core.errors import ConfigError

Kind = Literal["seq2seq", "causal", "span", "sequence-classification", "encoder"]
KINDS: tuple[str, ...] = get_args(Kind)

DeviceName = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[str, ...] = get_args(DeviceName)

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(DtypeName)

QUANTIZATIONS: tuple[str, ...] = ("int8",)


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
    quantize: str | None = None
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False

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
