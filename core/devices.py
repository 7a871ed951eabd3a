"""Device and dtype choice, kept out of task code (as transformers' pipelines do)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from quintet.core.errors import ConfigError

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def mps_available() -> bool:
    """True when Apple's Metal backend is usable (macOS with a recent torch)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def pick_device(requested: str = "auto") -> torch.device:
    """The best available device: CUDA, then MPS, then CPU, unless one is requested.

    A requested device that this machine lacks is an error, not a silent fallback: a user
    who asks for CUDA and gets the CPU would misread every timing.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available: use 'auto'")
    if requested == "mps" and not mps_available():
        raise ConfigError("device 'mps' was requested but MPS is not available: use 'auto'")
    if requested not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {requested!r}: choose auto, cpu, cuda or mps")
    return torch.device(requested)


def pick_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """bfloat16 on CUDA (float16 on GPUs without bf16), float16 on MPS, float32 on CPU.

    CPU stays float32 by default because bf16 matmuls are slow on CPUs without AMX and
    lose accuracy for no speed gain there.
    """
    if requested != "auto":
        if requested not in _DTYPES:
            raise ConfigError(f"unknown dtype {requested!r}: choose {', '.join(_DTYPES)} or auto")
        return _DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def describe_device(device: torch.device | None = None) -> str:
    """A one-line human description, e.g. ``cpu (2 threads)`` or ``cuda: NVIDIA H100``."""
    device = device or pick_device()
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "mps: Apple GPU"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


@contextlib.contextmanager
def keeping_torch_threads() -> Iterator[None]:
    """Gives torch back its CPU thread count after the block, whatever the block set.

    CTranslate2 sets the calling thread's OpenMP thread count to an engine's
    ``intra_threads`` when it loads the engine: after a QA model loaded its single-threaded
    replicas, torch ran on one thread of two for the rest of the process (every later torch
    model in a Streamlit or server process, and the reports' "cpu (1 threads)").
    """
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
