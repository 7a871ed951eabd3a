"""Which rows go into which optimizer step, on one process or several.

A step's *global batch* is ``batch_size x processes`` rows. On one process it is the batch;
under ``torchrun``/``accelerate launch`` each process takes one contiguous part of it, so a
2-process run with ``--batch-size 4`` sees exactly the batches a 1-process run with
``--batch-size 8`` sees, and (with :func:`loss_weight`) computes the same gradients.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, pool: int = 50
) -> list[list[int]]:
    """Shuffled batches of similar-length rows, the same for the same seed.

    Rows are shuffled, cut into pools of ``pool`` batches, sorted by length inside each
    pool, batched, and the batches shuffled again: batches stay random but carry little
    padding, which on a CPU is most of the cost for short texts.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * pool
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def global_batches(
    lengths: Sequence[int], batch_size: int, processes: int, *, seed: int
) -> list[list[int]]:
    """One epoch's global batches (``batch_size x processes`` rows each, the last one shorter).

    A global batch with fewer rows than processes is dropped: every process must take part in
    every step (DDP waits for all of them), and an empty part cannot. Only the tail of an epoch
    can be that short, and only when ``processes > 1``.
    """
    batches = length_bucketed_batches(lengths, batch_size * processes, seed=seed)
    return [batch for batch in batches if len(batch) >= processes]


def process_part(batch: Sequence[int], process: int, processes: int) -> list[int]:
    """This process's contiguous share of a global batch (sizes differ by at most one)."""
    size = len(batch)
    return list(batch[process * size // processes : (process + 1) * size // processes])


def loss_units(kind: str, rows: Sequence[dict[str, Any]]) -> int:
    """What the model's loss is a mean over, for rows of this model ``kind``.

    Classification and span heads average over examples; language-model heads over the
    label tokens that count (``-100`` is ignored; a causal LM predicts every label but the
    first, since labels are shifted by one inside the model).
    """
    if kind == "causal":
        return sum(sum(1 for t in row["labels"][1:] if t != -100) for row in rows)
    if kind == "seq2seq":
        return sum(sum(1 for t in row["labels"] if t != -100) for row in rows)
    return len(rows)


def loss_weight(kind: str, part: Sequence[dict[str, Any]], whole: Sequence[dict[str, Any]],
                processes: int) -> float:  # fmt: skip
    """The factor that turns this process's mean loss into its share of the global mean.

    DDP averages gradients over processes: ``mean_p(w_p * grad(mean over part p))`` equals the
    gradient of the mean over the whole global batch when ``w_p = processes * units_p / units``.
    Without it, parts of unequal size (the last batch of an epoch, or different numbers of
    label tokens) would be weighted equally and the run would not match a 1-process run.
    """
    if processes == 1:
        return 1.0
    total = loss_units(kind, whole)
    return processes * loss_units(kind, part) / total if total else 0.0
