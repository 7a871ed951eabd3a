"""Fine-tuning: one loop for every model kind, LoRA, checkpoints, export to the store.

>>> from core.training import finetune                                # doctest: +SKIP
"""

from quintet.core.training.trainer import FieldNames, TrainResult, finetune

__all__ = ["FieldNames", "TrainResult", "finetune"]
