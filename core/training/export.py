"""Write a trained model into the store, with a model card, so every app loads it by name."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from quintet.core.store import ModelStore, StoredModel
from quintet.core.training.lora import merge_lora


def model_card(name: str, meta: dict[str, Any]) -> str:
    """A README.md in the Hugging Face model-card style: what, from what, how well."""
    config = meta.get("config", {})
    validation = meta.get("validation", {})
    lines = [
        f"# {name}",
        "",
        f"Fine-tuned by Quintet for **{meta.get('task')}** ({meta.get('kind')} model).",
        "",
        f"- Base model: `{meta.get('base')}`",
        f"- Training data: `{meta.get('data')}` ({meta.get('train_examples')} examples)",
        f"- Validation: {meta.get('validation_data') or 'held-back part of the training data'}"
        f" ({meta.get('validation_examples')} examples)",
        f"- Steps: {meta.get('steps')} (best at step {meta.get('best_step')}), "
        f"{meta.get('seconds', 0) / 60:.1f} minutes",
        f"- Date: {time.strftime('%Y-%m-%d')}",
        "",
        "## Validation metrics (best checkpoint)",
        "",
        *(f"- {k}: {v:.4f}" for k, v in validation.items() if k != "primary"),
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(config, indent=2),
        "```",
    ]
    if meta.get("labels"):
        lines += ["", "## Labels", "", *(f"- {i}: {lab}" for i, lab in meta["labels"].items())]
    return "\n".join(lines) + "\n"


def export_model(
    model: torch.nn.Module,
    tokenizer: Any,
    name: str,
    store: ModelStore,
    meta: dict[str, Any],
) -> StoredModel:
    """Merge LoRA adapters, save model + tokenizer + card, and commit it to the store."""
    model = merge_lora(model)
    model.eval()
    with store.staging(name) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(model_card(name, meta))
        manifest = {
            "kind": meta.get("kind"),
            "source": {"type": "finetuned", "base": meta.get("base"), "data": meta.get("data")},
            "task": meta.get("task"),
            "validation": meta.get("validation", {}),
            "training": {k: meta.get(k) for k in ("steps", "best_step", "seconds",
                                                   "train_examples", "validation_examples")},
            "config": meta.get("config", {}),
            "tasks": [meta.get("task")],
        }  # fmt: skip
        return store.commit(staging, name, manifest)
