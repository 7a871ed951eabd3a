"""LoRA adapters (PEFT): wrap a model for training, merge them back for export."""

from __future__ import annotations

import torch

from quintet.core.errors import ConfigError

# Attention projections per architecture: the usual LoRA targets, which keep the number
# of trained weights small while reaching every layer.
_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "bert": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "t5": ["q", "k", "v", "o"],
    "marian": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj"],
}
_TASK_TYPES = {
    "causal": "CAUSAL_LM",
    "seq2seq": "SEQ_2_SEQ_LM",
    "span": "QUESTION_ANS",
    "sequence-classification": "SEQ_CLS",
}


def apply_lora(
    model: torch.nn.Module, kind: str, r: int, alpha: int, dropout: float
) -> torch.nn.Module:
    """Freeze ``model`` and add trainable LoRA adapters (plus the task head, if new)."""
    from peft import LoraConfig, get_peft_model

    model_type = getattr(model.config, "model_type", "")
    targets = _TARGETS.get(model_type)
    if targets is None:
        raise ConfigError(
            f"no LoRA target modules known for model type {model_type!r}: "
            f"train without --lora, or use one of {', '.join(sorted(_TARGETS))}"
        )
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        task_type=_TASK_TYPES[kind],
    )
    return get_peft_model(model, config)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model with the adapters folded into its weights (no PEFT needed to load)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
