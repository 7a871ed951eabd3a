"""Fine-tuning: one loop for every model kind, LoRA, checkpoints, export to the store.

>>> from quintet.core.training import finetune                     # doctest: +SKIP
"""

from quintet.core.training.trainer import FieldNames, TrainResult, finetune

__all__ = ["FieldNames", "TrainResult", "finetune"]
