"""Which decoding engine runs a model: the named one, or the fastest that keeps its answers.

``backend="auto"`` (the default everywhere) picks per model kind and device:

===========  ========================================  =========================================
kind         CPU                                       CUDA
===========  ========================================  =========================================
causal       onnxruntime-genai int8                    vLLM bf16 for batch work when installed,
                                                       else transformers bf16 (SDPA)
seq2seq      ctranslate2 int8                          ctranslate2 float16
===========  ========================================  =========================================

Batch work is a generator built with ``batch_size > 1`` (the MT-Bench harness, the apps'
batched paths, the server); an interactive chat (``ChatSession``: ``batch_size=1``) stays on
transformers, which streams token by token and starts in seconds, where vLLM reserves most of
the GPU's free memory and captures CUDA graphs first. vLLM is never picked on a CPU, and is
untested here: the development machines have no GPU.

falling back to transformers when the engine is not installed or cannot convert the model,
and, request by request, when the engine cannot honour the decoding settings (beam search
on onnxruntime-genai, NLLB's forced language token on ctranslate2, ...). Each fallback is
logged in one line; nothing silently changes the decoding. ``QUINTET_BACKEND`` names the
engine that ``auto`` resolves to, for a whole process (``transformers`` pins the reference).

Measured on a 2-core CPU (benchmarks/decoding.py): SmolLM2-135M chat at ~120 tokens/s on
onnxruntime-genai int8 vs 8-12 on transformers fp32 (int4 is as fast but loses quality on this
already 4-bit-derived model); Marian beam-4 batch translation 23x one-at-a-time on
ctranslate2 int8.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quintet.core.config import BACKENDS, ENV_BACKEND, backend_from_env
from quintet.core.errors import ConfigError

if TYPE_CHECKING:
    from quintet.core.models import Loaded

log = logging.getLogger(__name__)

AUTO = "auto"
TRANSFORMERS = "transformers"
CTRANSLATE2 = "ctranslate2"
ONNX_GENAI = "onnxruntime-genai"
VLLM = "vllm"
assert BACKENDS == (AUTO, TRANSFORMERS, CTRANSLATE2, ONNX_GENAI, VLLM)

_PACKAGES = {CTRANSLATE2: "ctranslate2", ONNX_GENAI: "onnxruntime_genai", VLLM: "vllm"}
_EXTRA_HINT = "pip install 'quintet[fast]'"
_VLLM_HINT = "install vllm on a CUDA machine (pip install vllm)"


@dataclass(frozen=True)
class BackendChoice:
    """The engine a generator runs on and why (shown by the CLI, pages and reports)."""

    name: str
    reason: str

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def check_backend_name(name: str) -> str:
    """``name`` if it is a known backend, else a one-line ConfigError."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    return name


def is_installed(backend: str) -> bool:
    """True when the engine's Python package can be imported (transformers always)."""
    package = _PACKAGES.get(backend)
    return package is None or importlib.util.find_spec(package) is not None


def install_hint(backend: str) -> str:
    if backend == VLLM:
        return f"the vllm backend needs the vllm package: {_VLLM_HINT}"
    return f"the {backend} backend needs the {_PACKAGES[backend]} package: {_EXTRA_HINT}"


def unavailable(backend: str, loaded: Loaded) -> str | None:
    """Why the named engine cannot run ``loaded`` on this machine (one line), or None.

    Only the package and the device are checked here; an engine that cannot convert or
    load a model says so when it is built.
    """
    if backend == VLLM and loaded.device.type != "cuda":
        return (
            f"the vllm backend runs on CUDA GPUs only and {loaded.name} is on "
            f"{loaded.device.type}: {_VLLM_HINT}, or use the auto backend"
        )
    if not is_installed(backend):
        return install_hint(backend)
    return None


def preferred(loaded: Loaded, batch_size: int = 1) -> BackendChoice:
    """The engine ``auto`` would like for ``loaded``, before checking it is installed.

    ``batch_size`` is the generator's: above 1 it is batch work, which vLLM (an optional
    engine, so checked for here) takes on CUDA.
    """
    device, kind = loaded.device.type, loaded.kind
    if loaded.spec.quantize is not None:
        # The caller asked for this torch quantization (load(..., quantize="int8")): run it.
        return BackendChoice(TRANSFORMERS, f"the model was loaded {loaded.spec.quantize}")
    if kind == "causal":
        if device == "cpu":
            # int8, not int4: on SmolLM2-135M int4 lost 4.6 ROUGE-L on SAMSum against fp32;
            # int4-mixed (k-quant, sensitive layers at 8 bits) kept the task metrics at ~1.2x
            # int8's speed but made MT-Bench answers repeat themselves more (+16 points of
            # repetition rate); int8 (blocks of 128 weights per scale) kept SAMSum ROUGE-L and
            # MT-Bench reference chrF within 1 point of fp32 (benchmarks/results, docs/engines.md).
            return BackendChoice(ONNX_GENAI, "int8, the fastest causal engine on CPU that "
                                 "keeps fp32 quality")  # fmt: skip
        if device == "cuda" and batch_size > 1 and is_installed(VLLM):
            # Untested here (no GPU on the development machines).
            return BackendChoice(VLLM, "batch work on CUDA, bf16 with paged attention")
        if device == "cuda":
            return BackendChoice(TRANSFORMERS, "bf16 with SDPA on CUDA")
    if kind == "seq2seq" and device in ("cpu", "cuda"):
        quant = "int8" if device == "cpu" else "float16"
        return BackendChoice(CTRANSLATE2, f"{quant}, the fastest measured seq2seq engine")
    return BackendChoice(TRANSFORMERS, f"the reference engine for {kind} models on {device}")


def choose(loaded: Loaded, requested: str = AUTO, batch_size: int = 1) -> BackendChoice:
    """The engine to run ``loaded`` on for ``requested`` (a name, or ``auto``).

    A named engine is taken as asked (its absence is the caller's error, see
    :func:`unavailable`); ``auto`` honours ``$QUINTET_BACKEND``, then :func:`preferred` (for
    a generator of ``batch_size``), then transformers if that engine is not installed.
    """
    check_backend_name(requested)
    if requested != AUTO:
        return BackendChoice(requested, "chosen by the caller")
    pinned = backend_from_env()
    if pinned and pinned != AUTO:
        return BackendChoice(pinned, f"set by {ENV_BACKEND}")
    choice = preferred(loaded, batch_size)
    if not is_installed(choice.name):
        log.warning("%s: decoding with transformers", install_hint(choice.name))
        return BackendChoice(TRANSFORMERS, f"{choice.name} is not installed")
    return choice
