"""Validation of a model being fine-tuned, with the task's own metric."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from quintet.core import metrics
from quintet.core.training import features as feats


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    kind: str,
    examples: Sequence[Any],
    rows: Sequence[dict[str, Any]],
    *,
    batch_size: int,
    pad_id: int,
    id2label: dict[int, str],
    multi_label: bool,
    to_device: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
) -> dict[str, float]:
    """The task's validation metrics of ``model``; ``primary`` is the higher-is-better one.

    Language models report loss and perplexity (``primary`` = -loss), span models SQuAD
    exact match and F1, classifiers accuracy and macro F1. The model is left in training mode.
    """
    model.eval()
    outputs: list[Any] = []
    total_loss, total_tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = to_device(feats.collate(rows[start : start + batch_size], pad_id))
        if kind in ("causal", "seq2seq"):
            loss = model(**batch).loss
            tokens = int((batch["labels"] != -100).sum())
            total_loss += float(loss) * tokens
            total_tokens += tokens
            continue
        for key in ("labels", "start_positions", "end_positions"):
            batch.pop(key, None)
        out = model(**batch)
        if kind == "span":
            outputs.append((out.start_logits.float().cpu(), out.end_logits.float().cpu()))
        else:
            outputs.append(out.logits.float().cpu())
    model.train()
    if kind in ("causal", "seq2seq"):
        loss = total_loss / max(1, total_tokens)
        return {"val_loss": loss, "perplexity": math.exp(min(loss, 50)), "primary": -loss}
    if kind == "span":
        return _span_scores(examples, rows, outputs)
    return _classification_scores(examples, torch.cat(outputs), id2label, multi_label)


def _span_scores(examples: Sequence[Any], rows: Sequence[dict[str, Any]],
                 outputs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:  # fmt: skip
    # Batches are padded to their own longest row: pad the logits to a common width with a
    # score no span can win with.
    width = max(s.shape[1] for s, _ in outputs)

    def stack(parts: list[torch.Tensor]) -> Any:
        padded = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=-1e9)
                  for p in parts]  # fmt: skip
        return torch.cat(padded).numpy()

    start = stack([s for s, _ in outputs])
    end = stack([e for _, e in outputs])
    answers = feats.best_spans(examples, rows, start, end)
    predictions = {e.id: a[0].text for e, a in zip(examples, answers, strict=True)}
    golds = {e.id: [x.text for x in e.answers] for e in examples}
    scores = metrics.squad_scores(predictions, golds)
    return {**scores, "primary": scores["f1"]}


def _classification_scores(
    examples: Sequence[Any], logits: torch.Tensor, id2label: dict[int, str], multi_label: bool
) -> dict[str, float]:
    labels = [id2label[i] for i in range(len(id2label))]
    if multi_label:
        chosen = (logits.sigmoid() > 0.5).tolist()
        predicted = ["|".join(lab for lab, on in zip(labels, row, strict=True) if on)
                     for row in chosen]  # fmt: skip
        gold = ["|".join(sorted(e.labels)) for e in examples]
    else:
        predicted = [labels[i] for i in logits.argmax(-1).tolist()]
        gold = [e.labels[0] for e in examples]
    accuracy = metrics.accuracy(predicted, gold)
    return {
        "accuracy": accuracy,
        "macro_f1": metrics.macro_f1(predicted, gold, labels=None),
        "primary": accuracy,
    }
