"""One fine-tuning loop for every model kind.

``finetune(task, base, data, output)`` reads and validates the data (bad data fails before
any model work), loads a private copy of the base model with the head the task needs,
optionally wraps it in LoRA adapters, trains with AdamW and a linear schedule, validates
with the task's metric, keeps the best weights, checkpoints every ``save_every`` steps
(``resume=True`` continues a killed run), and finally writes the model into the store
with a model card, so every app can load it by name.

The loop runs through ``accelerate``: on one CPU or GPU it is a plain loop; under
``accelerate launch`` or ``torchrun`` it trains data-parallel on several GPUs, bf16 on GPUs
that support it, with no change to the code or the command's arguments.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from core import metrics
from core.config import ModelSpec, TrainConfig
from core.data import DataError, split_for_task
from core.errors import ConfigError, QuintetError, StoreError
from core.models import Loaded, load_fresh, read_config
from core.store import ModelStore, StoredModel, describe_os_error, validate_name
from core.training import checkpoint as ckpt
from core.training import features as feats
from core.training.tasks import (
    DEFAULT_MAX_LENGTH,
    FieldNames,
    as_chats,
    model_kind,
    read_task_data,
)

log = logging.getLogger(__name__)
LogCallback = Callable[[dict[str, Any]], None]
# One JSON record per line in the run folder (loss, validation, checkpoint, start, done), so
# a UI in another process can follow a run live; see _Run.start_log.
LOG_FILE = "log.jsonl"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    model: StoredModel
    steps: int
    seconds: float
    best_metric: float | None
    validation: dict[str, float]
    history: list[dict[str, Any]]


class _Run:
    """State and helpers of one run; ``finetune`` is the public entry point."""

    def __init__(
        self,
        task: str,
        base: str,
        output: str,
        config: TrainConfig,
        store: ModelStore,
        on_log: LogCallback | None,
    ) -> None:
        self.task, self.base, self.output, self.config = task, base, output, config
        self.store = store
        self.on_log = on_log
        self.run_dir = store.home / "runs" / output
        self.checkpoint_dir = self.run_dir / "checkpoint"
        # Set once the data and the base model are known.
        self.kind = ""
        self.label2id: dict[str, int] = {}
        self.id2label: dict[int, str] = {}
        self.pad_id = 0
        self.device = torch.device("cpu")
        self.is_main = True  # only the main process writes the log file

    # Data --------------------------------------------------------------------------------

    def split(self, train: list, validation: list | None) -> tuple[list, list]:
        if validation is not None:
            return train, validation
        return split_for_task(self.task, train, self.config.validation_fraction, self.config.seed)

    def featurize(self, loaded: Loaded, examples: list, training: bool) -> list[dict]:
        tokenizer, kind = loaded.tokenizer, self.kind
        max_length = self.config.max_length or DEFAULT_MAX_LENGTH[kind]
        if kind == "sequence-classification":
            return feats.classification_features(
                tokenizer, examples, self.label2id,
                multi_label=self.config.multi_label, max_length=max_length,
            )  # fmt: skip
        if kind == "span":
            return feats.span_features(
                tokenizer, examples, max_length=max_length,
                doc_stride=self.config.doc_stride, training=training,
            )  # fmt: skip
        if kind == "causal":
            rows, skipped = feats.causal_sft_features(
                tokenizer, as_chats(self.task, examples), max_length=max_length
            )
            if skipped:
                log.warning("%d examples longer than %d tokens were skipped", skipped, max_length)
            return rows
        # T5 was pre-trained with task prefixes; only summarization's is language-free.
        is_t5 = getattr(loaded.config, "model_type", "") == "t5"
        prefix = "summarize: " if is_t5 and self.task == "summarization" else ""
        return feats.seq2seq_features(
            tokenizer, examples, max_source_length=max_length, prefix=prefix
        )

    # Evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loaded: Loaded, examples: list, rows: list) -> dict:
        """The task's validation metrics; ``primary`` is higher-is-better."""
        model.eval()
        outputs: list[Any] = []
        total_loss, total_tokens = 0.0, 0
        for start in range(0, len(rows), self.config.batch_size):
            batch_rows = rows[start : start + self.config.batch_size]
            batch = self.to_device(feats.collate(batch_rows, self.pad_id))
            if self.kind in ("causal", "seq2seq"):
                loss = model(**batch).loss
                tokens = int((batch["labels"] != -100).sum())
                total_loss += float(loss) * tokens
                total_tokens += tokens
                continue
            batch.pop("labels", None)
            batch.pop("start_positions", None)
            batch.pop("end_positions", None)
            out = model(**batch)
            if self.kind == "span":
                outputs.append((out.start_logits.float().cpu(), out.end_logits.float().cpu()))
            else:
                outputs.append(out.logits.float().cpu())
        model.train()
        if self.kind in ("causal", "seq2seq"):
            loss = total_loss / max(1, total_tokens)
            return {"val_loss": loss, "perplexity": math.exp(min(loss, 50)), "primary": -loss}
        if self.kind == "span":
            # Batches are padded to their own longest row: pad the logits to a common width
            # with a score no span can win with.
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
        logits = torch.cat(outputs)
        labels = [self.id2label[i] for i in range(len(self.id2label))]
        if self.config.multi_label:
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

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}

    def start_log(self, record: dict[str, Any], step: int) -> None:
        """Begin ``log.jsonl``: empty for a fresh run; a resumed run keeps the records up to
        its checkpoint's ``step`` (later ones were lost with the killed process)."""
        path = self.run_dir / LOG_FILE
        if self.is_main:
            kept = []
            if step and path.is_file():
                for line in path.read_text().splitlines():
                    try:
                        if json.loads(line).get("step", 0) <= step:
                            kept.append(line + "\n")
                    except json.JSONDecodeError:
                        continue  # a line cut short by the kill
            path.write_text("".join(kept))
        self.log(record)

    def log(self, record: dict[str, Any]) -> None:
        if self.is_main:
            line = json.dumps({**record, "time": round(time.time(), 3)}, default=str)
            with open(self.run_dir / LOG_FILE, "a") as handle:
                handle.write(line + "\n")
        if self.on_log is not None:
            self.on_log(record)


def check_writable(store: ModelStore) -> None:
    """Fail with one line unless a run can write its checkpoints and result into ``store``.

    Raises:
        StoreError: the store (or its ``runs`` folder) is read-only, not permitted or full.
    """
    store.ensure_writable()  # the models folder, where the result goes
    try:
        (store.home / "runs").mkdir(exist_ok=True)  # where checkpoints and logs go
    except OSError as exc:
        raise StoreError(describe_os_error(exc, store.home)) from None


def label_names(
    data: str | Path,
    train_examples: Sequence[Any],
    val_examples: Sequence[Any],
    labels: Sequence[str] | None = None,
) -> list[str]:
    """The classes of a classifier: ``labels`` when given, else those of the training data.

    Raises:
        DataError: a validation (or, with ``labels``, training) example has a label outside
            the set.
        QuintetError: fewer than two classes. With one, transformers builds a regression
            head that scores every text 100% and labels everything with that one class.
    """
    found = sorted({label for e in train_examples for label in e.labels})
    names = list(labels) if labels is not None else found
    if labels is not None and (len(set(names)) != len(names) or not all(names)):
        raise ConfigError(f"--labels {','.join(names)}: give distinct, non-empty label names")
    if labels is not None and len(names) < 2:
        raise ConfigError(f"--labels {','.join(names)}: a classifier needs at least two labels")
    if len(names) < 2:
        only = names[0] if names else "none"
        raise QuintetError(
            f"{data}: every training example has the label {only!r}; a classifier needs at "
            "least two classes: add examples of the other labels, or name the full label set "
            f"with --labels (e.g. --labels {only},other)"
        )
    # With --labels the training data is checked too: it no longer defines the set.
    checked = (*val_examples, *(train_examples if labels is not None else ()))
    unknown = [e for e in checked if not set(e.labels) <= set(names)]
    if unknown:
        against = "the --labels given" if labels is not None else "the training data"
        raise DataError.at(
            unknown[0].source,
            f"label {', '.join(unknown[0].labels)!r} does not occur in {against} "
            f"(labels: {', '.join(names)})",
        )
    return names


def finetune(
    task: str,
    base: str,
    data: str | Path,
    output: str,
    config: TrainConfig | None = None,
    *,
    validation_data: str | Path | None = None,
    fields: FieldNames | None = None,
    resume: bool = False,
    store: ModelStore | None = None,
    progress: bool = True,
    on_log: LogCallback | None = None,
    labels: Sequence[str] | None = None,
) -> TrainResult:
    """Fine-tune ``base`` for ``task`` on ``data`` and store the result as ``output``.

    Args:
        task: classification, qa, summarization, translation or chat.
        base: any name :func:`core.models.load` accepts.
        data: training file (CSV / TSV / JSONL / JSON / SQuAD JSON / TREC, per task).
        output: the store name of the result.
        config: hyperparameters (:class:`core.config.TrainConfig`).
        validation_data: a validation file; otherwise ``config.validation_fraction`` of
            ``data`` is held back (whole articles for QA).
        fields: column names in the data, when not the defaults.
        resume: continue the run of the same ``output`` from its last checkpoint.
        on_log: called with each log record (loss, validation, checkpoint) for UIs.
        labels: classification: the full label set, in the order of the model's classes
            (default: the labels found in the training data, sorted). Needed when the data
            holds fewer than two labels: one class would make a regression head.

    Example:
        >>> finetune("classification", "minilm-l6", "data/sst2/train.tsv",  # doctest: +SKIP
        ...          "my-sentiment", TrainConfig(epochs=1))
    """
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    config = config or TrainConfig()
    store = store or ModelStore()
    validate_name(output)
    run = _Run(task, base, output, config, store, on_log)
    started = time.perf_counter()

    # 1. Data first: a bad file fails in seconds, not after the model has loaded.
    fields = fields or FieldNames()
    train_examples = read_task_data(task, str(data), fields, config.multi_label)
    val_examples = (
        read_task_data(task, str(validation_data), fields, config.multi_label)
        if validation_data
        else None
    )
    train_examples, val_examples = run.split(train_examples, val_examples)
    if not train_examples or not val_examples:
        raise QuintetError(f"{data}: need training and validation examples, found too few")
    if task == "classification":
        names = label_names(data, train_examples, val_examples, labels)
        run.label2id = {name: i for i, name in enumerate(names)}
        run.id2label = dict(enumerate(names))
    if config.eval_max_examples and len(val_examples) > config.eval_max_examples:
        val_examples = random.Random(config.seed).sample(val_examples, config.eval_max_examples)
    check_writable(store)  # before minutes of loading and training, not at the first save

    # 2. A private copy of the base model with the task's head.
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    # Seed before loading: a new task head is initialised while the model loads.
    torch.manual_seed(config.seed)
    # The config alone decides the kind, so the weights are loaded once, with their head.
    base_config = read_config(base, store)
    run.kind = model_kind(task, bool(getattr(base_config, "is_encoder_decoder", False)))
    extra: dict[str, Any] = {}
    if run.kind == "sequence-classification":
        extra = {"num_labels": len(run.label2id), "id2label": run.id2label,
                 "label2id": run.label2id}  # fmt: skip
        if config.multi_label:
            extra["problem_type"] = "multi_label_classification"
    loaded = load_fresh(ModelSpec(base, kind=run.kind, device="cpu"), store, **extra)
    tokenizer = loaded.tokenizer
    run.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model = loaded.model
    if config.lora:
        from core.training.lora import apply_lora

        model = apply_lora(model, run.kind, config.lora_r, config.lora_alpha, config.lora_dropout)
    model.train()

    # 3. Features, then the schedule they imply.
    train_rows = run.featurize(loaded, train_examples, training=True)
    val_rows = run.featurize(loaded, val_examples, training=False)
    if not train_rows:
        raise QuintetError("no training example fits the model: raise --max-length")
    batches_per_epoch = math.ceil(len(train_rows) / config.batch_size)
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accum)
    total_steps = config.max_steps or max(1, int(steps_per_epoch * config.epochs))
    eval_every = config.eval_every or steps_per_epoch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    run.device = accelerator.device
    run.is_main = accelerator.is_main_process

    meta = {
        "task": task, "base": base, "data": str(data), "kind": run.kind,
        "validation_data": str(validation_data) if validation_data else None,
        "config": asdict(config), "train_examples": len(train_examples),
        "validation_examples": len(val_examples),
        "labels": run.id2label or None,
    }  # fmt: skip
    state = ckpt.TrainState()
    run.run_dir.mkdir(parents=True, exist_ok=True)
    found = ckpt.find_checkpoint(run.checkpoint_dir)
    if resume:
        if found is None:
            raise QuintetError(f"nothing to resume: no checkpoint for {output!r} in {run.run_dir}")
        state, saved_meta = ckpt.load_checkpoint(found, accelerator.unwrap_model(model),
                                                 optimizer, scheduler)  # fmt: skip
        if saved_meta.get("base") != base or saved_meta.get("task") != task:
            raise QuintetError(
                f"the checkpoint of {output!r} was trained from {saved_meta.get('base')} for "
                f"{saved_meta.get('task')}: resume with the same task and --model"
            )
        log.info("resuming %s at step %d", output, state.step)
    elif found is not None:
        raise QuintetError(
            f"a run named {output!r} already has a checkpoint in {run.run_dir}: pass --resume to "
            "continue it, or choose another --output name"
        )

    run.start_log({"event": "start", "step": state.step, "total_steps": total_steps,
                   "task": task, "base": base, "resumed": resume}, state.step)  # fmt: skip

    # 4. The loop.
    bar = tqdm(total=total_steps, initial=state.step, desc=f"fine-tuning {output}",
               disable=not progress or not accelerator.is_main_process)  # fmt: skip
    done = state.step >= total_steps
    window_loss, window_examples, window_started = 0.0, 0, time.perf_counter()
    while not done:
        batches = length_bucketed_batches(
            [len(row["input_ids"]) for row in train_rows], config.batch_size,
            seed=config.seed + state.epoch,
        )  # fmt: skip
        # Each process takes its share of the batches (data parallel under accelerate).
        batches = batches[accelerator.process_index :: accelerator.num_processes]
        while state.position < len(batches):
            rows = [train_rows[i] for i in batches[state.position]]
            batch = run.to_device(feats.collate(rows, run.pad_id))
            with accelerator.autocast():
                loss = model(**batch).loss / config.grad_accum
            accelerator.backward(loss)
            window_loss += float(loss.detach()) * config.grad_accum
            window_examples += len(rows)
            state.position += 1
            if state.position % config.grad_accum and state.position < len(batches):
                continue
            accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            bar.update(1)
            elapsed = time.perf_counter() - window_started
            record = {"step": state.step, "epoch": state.epoch,
                      "loss": window_loss / max(1, math.ceil(window_examples / config.batch_size)),
                      "examples_per_s": window_examples / max(elapsed, 1e-9),
                      "lr": scheduler.get_last_lr()[0]}  # fmt: skip
            bar.set_postfix(loss=f"{record['loss']:.4f}", ex_s=f"{record['examples_per_s']:.1f}")
            window_loss, window_examples, window_started = 0.0, 0, time.perf_counter()
            state.history.append(record)
            run.log(record)

            last = state.step >= total_steps
            if state.step % eval_every == 0 or last:
                scores = run.evaluate(model, loaded, val_examples, val_rows)
                improved = state.best_metric is None or scores["primary"] > state.best_metric
                if improved:
                    state.best_metric, state.best_step = scores["primary"], state.step
                    state.evals_without_improvement = 0
                    if accelerator.is_main_process:
                        ckpt.save_best(run.run_dir, accelerator.unwrap_model(model))
                else:
                    state.evals_without_improvement += 1
                evaluation = {"step": state.step, "validation": scores, "best": improved}
                state.history.append(evaluation)
                run.log(evaluation)
                bar.write(f"step {state.step}: " + ", ".join(
                    f"{k} {v:.4f}" for k, v in scores.items() if k != "primary"))  # fmt: skip
                patience = config.early_stopping_patience
                if patience and state.evals_without_improvement >= patience:
                    bar.write(f"early stopping: no improvement in {patience} validations")
                    last = True
            if (state.step % config.save_every == 0 or last) and accelerator.is_main_process:
                ckpt.save_checkpoint(run.checkpoint_dir, accelerator.unwrap_model(model),
                                     optimizer, scheduler, state, meta)  # fmt: skip
                run.log({"step": state.step, "checkpoint": str(run.checkpoint_dir)})
            if last:
                done = True
                break
        else:
            state.epoch += 1
            state.position = 0
    bar.close()
    accelerator.wait_for_everyone()

    # 5. Export the best weights, merged, into the store.
    final = accelerator.unwrap_model(model)
    if (run.run_dir / "best.safetensors").is_file():
        from safetensors.torch import load_file

        ckpt.load_trainable(final, load_file(str(run.run_dir / "best.safetensors")))
    best_scores = next(
        (h["validation"] for h in reversed(state.history)
         if "validation" in h and h["step"] == state.best_step),
        {},
    )  # fmt: skip
    from core.training.export import export_model

    stored = export_model(
        final, tokenizer, output, store,
        meta={**meta, "steps": state.step, "best_step": state.best_step,
              "validation": best_scores,
              "seconds": time.perf_counter() - started},
    )  # fmt: skip
    run.log({"event": "done", "step": state.step, "model": stored.name,
             "best_step": state.best_step, "validation": best_scores})  # fmt: skip
    return TrainResult(
        model=stored,
        steps=state.step,
        seconds=time.perf_counter() - started,
        best_metric=state.best_metric,
        validation=best_scores,
        history=state.history,
    )


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


__all__: Sequence[str] = ("FieldNames", "TrainResult", "finetune")
