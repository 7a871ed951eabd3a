"""Resumable training state, written so that a kill at any moment loses nothing saved.

A checkpoint is a folder: the trainable weights (safetensors), the optimizer and scheduler
state, and ``state.json`` (step, epoch, position, best metric, history). It is written to
a temporary folder and renamed over the previous one, so there is always one complete
checkpoint on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from quintet.core.errors import QuintetError


@dataclass
class TrainState:
    """Where a run is: counters, the best validation so far and the log."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (0-based)
    position: int = 0  # batches of the current epoch already consumed
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights that training changes (all of them, or LoRA adapters and heads)."""
    return {
        name: param.detach().to("cpu").contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable weights back into ``model``; every name must match."""
    params = dict(model.named_parameters())
    missing = [name for name in tensors if name not in params]
    if missing:
        raise QuintetError(
            f"checkpoint does not fit this model ({len(missing)} unknown weights, e.g. "
            f"{missing[0]}): resume with the same base model and --lora setting"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainState,
    meta: dict[str, Any],
    rng_states: list[torch.Tensor] | None = None,
) -> None:
    """Write a complete checkpoint to ``folder`` atomically.

    ``rng_states`` holds every process's torch RNG state in a multi-process run (so that a
    resumed run draws the same dropout masks on every rank); by default this process's.
    """
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
         "rng": rng_states or [torch.get_rng_state()]},
        tmp / "optimizer.pt",
    )  # fmt: skip
    (tmp / "state.json").write_text(json.dumps({"state": asdict(state), "meta": meta}, indent=2))
    # Swap: the old checkpoint stays complete until the new one is in place.
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint in ``folder``, recovering from a kill during the swap."""
    if (folder / "state.json").is_file():
        return folder
    old = folder.with_name(folder.name + ".old")
    if (old / "state.json").is_file():
        return old
    return None


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    process: int = 0,
) -> tuple[TrainState, dict[str, Any]]:
    """Restore weights, optimizer, scheduler and the RNG of process ``process``; return the
    state and run metadata."""
    data = json.loads((folder / "state.json").read_text())
    load_trainable(model, load_file(str(folder / "trainable.safetensors")))
    # weights_only: the file holds tensors and plain containers written by us; nothing else
    # is allowed to unpickle.
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    # One state per process since multi-process runs; a single tensor in older checkpoints.
    rng = saved["rng"] if isinstance(saved["rng"], list) else [saved["rng"]]
    torch.set_rng_state(rng[min(process, len(rng) - 1)])
    return TrainState(**data["state"]), data["meta"]


def save_best(folder: Path, model: torch.nn.Module) -> None:
    """Keep the trainable weights of the best validation so far (atomic)."""
    tmp = folder / "best.safetensors.tmp"
    save_file(trainable_state(model), str(tmp))
    os.replace(tmp, folder / "best.safetensors")
