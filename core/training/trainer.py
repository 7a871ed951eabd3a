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

import contextlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from quintet.core.config import ModelSpec, TrainConfig
from quintet.core.data import DataError, split_for_task
from quintet.core.errors import ConfigError, QuintetError, StoreError
from quintet.core.models import Loaded, load_fresh, read_config
from quintet.core.store import ModelStore, StoredModel, describe_os_error, validate_name
from quintet.core.tasks import TaskSpec, get_task
from quintet.core.training import checkpoint as ckpt
from quintet.core.training import features as feats
from quintet.core.training.batching import (
    global_batches,
    length_bucketed_batches,
    loss_weight,
    process_part,
)
from quintet.core.training.tasks import (
    DEFAULT_MAX_LENGTH,
    FieldNames,
    as_chats,
    model_kind,
    read_task_data,
)
from quintet.core.training.validation import validate

log = logging.getLogger(__name__)
LogCallback = Callable[[dict[str, Any]], None]
# One JSON record per line in the run folder (loss, validation, checkpoint, start, done), so
# a UI in another process can follow a run live; see FinetuneRecipe.start_log.
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
    process: int = 0  # this process's rank in a multi-process run
    processes: int = 1


@dataclass
class _Window:
    """Loss and examples since the last optimizer step (what a log record averages)."""

    loss: float = 0.0
    examples: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, examples: int) -> None:
        self.loss += loss
        self.examples += examples


class FinetuneRecipe:
    """One fine-tuning run, in the order it happens (torchtune's recipe shape).

    ``run()`` calls, top to bottom: :meth:`setup_data` (read and split the data, decide the
    labels: bad data fails before any model work), :meth:`setup_model` (a private copy of the
    base with the task's head, LoRA, features), :meth:`setup_optimizer` (AdamW, the linear
    schedule, ``accelerate`` wrapping), :meth:`restore` (resume a checkpoint or refuse to
    overwrite one), :meth:`train` (the loop, calling :meth:`validate` and :meth:`checkpoint`)
    and :meth:`save` (the best weights into the store).

    Several processes (``torchrun``/``accelerate launch``): each takes its part of every global
    batch, gradients are averaged by DDP, only the main process validates, writes the log,
    checkpoints and the store entry; the others wait for it at a barrier.
    """

    def __init__(
        self,
        task: str | TaskSpec,
        base: str,
        data: str | Path,
        output: str,
        config: TrainConfig,
        *,
        validation_data: str | Path | None = None,
        fields: FieldNames | None = None,
        resume: bool = False,
        store: ModelStore | None = None,
        progress: bool = True,
        on_log: LogCallback | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        validate_name(output)
        self.spec = get_task(task)  # the task's name or alias, or its spec
        self.task, self.base, self.data, self.output = self.spec.name, base, str(data), output
        self.config = config
        self.validation_data = str(validation_data) if validation_data else None
        self.fields = fields or FieldNames()
        self.resume = resume
        self.store = store or ModelStore()
        self.progress = progress
        self.on_log = on_log
        self.labels = labels
        self.run_dir = self.store.home / "runs" / output
        self.checkpoint_dir = self.run_dir / "checkpoint"
        self.started = time.perf_counter()
        # Filled by the setup steps, in order.
        self.train_examples: list = []
        self.val_examples: list = []
        self.label2id: dict[str, int] = {}
        self.id2label: dict[int, str] = {}
        self.accelerator: Any = None
        self.kind = ""
        self.loaded: Loaded | None = None
        self.model: torch.nn.Module | None = None
        self.pad_id = 0
        self.train_rows: list[dict] = []
        self.val_rows: list[dict] = []
        self.total_steps = 0
        self.eval_every = 0
        self.trainable: list[torch.nn.Parameter] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.state = ckpt.TrainState()
        self.meta: dict[str, Any] = {}

    def run(self) -> TrainResult:
        """Every step of the run; returns what it stored (on every process)."""
        self.setup_data()
        self.setup_model()
        self.setup_optimizer()
        self.restore()
        self.train()
        return self.save()

    # Processes ---------------------------------------------------------------------------

    @property
    def process(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    @property
    def is_main(self) -> bool:
        return self.process == 0

    def say(self, message: str) -> None:
        """A line on stderr; prefixed with ``rank r/N`` when several processes train."""
        if self.processes > 1:
            print(f"rank {self.process}/{self.processes}: {message}", file=sys.stderr, flush=True)
        elif self.progress:
            tqdm.write(message, file=sys.stderr)

    # 1. Data -----------------------------------------------------------------------------

    def setup_data(self) -> None:
        """Read, validate and split the data; decide a classifier's labels."""
        config = self.config
        self.train_examples = read_task_data(self.spec, self.data, self.fields, config.multi_label)
        validation = (
            read_task_data(self.spec, self.validation_data, self.fields, config.multi_label)
            if self.validation_data
            else None
        )
        if validation is not None:
            self.val_examples = validation
        else:  # QA by article (questions on one paragraph share answers), the rest at random
            self.train_examples, self.val_examples = split_for_task(
                self.spec, self.train_examples, config.validation_fraction, config.seed
            )
        if not self.train_examples or not self.val_examples:
            raise QuintetError(f"{self.data}: need training and validation examples, found too few")
        if self.spec.training is not None and self.spec.training.labelled:
            names = label_names(self.data, self.train_examples, self.val_examples, self.labels)
            self.label2id = {name: i for i, name in enumerate(names)}
            self.id2label = dict(enumerate(names))
        limit = config.eval_max_examples
        if limit and len(self.val_examples) > limit:
            self.val_examples = random.Random(config.seed).sample(self.val_examples, limit)
        check_writable(self.store)  # before minutes of loading and training, not at the first save

    # 2. Model ----------------------------------------------------------------------------

    def setup_model(self) -> None:
        """Start the processes' group, load the base with the task's head, featurize."""
        from accelerate import Accelerator

        # accelerate only forms a CPU process group when told the run is on CPU; without
        # cpu=True every process of `torchrun` on a CPU machine trained alone (and they all
        # wrote the same checkpoint).
        self.accelerator = Accelerator(
            mixed_precision="bf16" if torch.cuda.is_available() else "no",
            cpu=not torch.cuda.is_available(),
        )
        # Seed before loading: a new task head is initialised while the model loads, and
        # every process must start from the same weights.
        torch.manual_seed(self.config.seed)
        # The config alone decides the kind, so the weights are loaded once, with their head.
        base_config = read_config(self.base, self.store)
        self.kind = model_kind(self.spec, bool(getattr(base_config, "is_encoder_decoder", False)))
        extra: dict[str, Any] = {}
        if self.kind == "sequence-classification":
            extra = {"num_labels": len(self.label2id), "id2label": self.id2label,
                     "label2id": self.label2id}  # fmt: skip
            if self.config.multi_label:
                extra["problem_type"] = "multi_label_classification"
        self.loaded = load_fresh(ModelSpec(self.base, kind=self.kind, device="cpu"),
                                 self.store, **extra)  # fmt: skip
        tokenizer = self.loaded.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        model = self.loaded.model
        if self.config.lora:
            from quintet.core.training.lora import apply_lora

            config = self.config
            model = apply_lora(model, self.kind, config.lora_r, config.lora_alpha,
                               config.lora_dropout)  # fmt: skip
        model.train()
        self.model = model
        self.train_rows = self.featurize(self.train_examples, training=True)
        self.val_rows = self.featurize(self.val_examples, training=False)
        if not self.train_rows:
            raise QuintetError("no training example fits the model: raise --max-length")

    def featurize(self, examples: list, training: bool) -> list[dict]:
        """Token features of ``examples`` for this model kind."""
        assert self.loaded is not None
        tokenizer, kind = self.loaded.tokenizer, self.kind
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
                tokenizer, as_chats(self.spec, examples), max_length=max_length
            )
            if skipped:
                log.warning("%d examples longer than %d tokens were skipped", skipped, max_length)
            return rows
        # T5 was pre-trained with task prefixes (the task's spec names its own, if any).
        is_t5 = getattr(self.loaded.config, "model_type", "") == "t5"
        assert self.spec.training is not None  # read_task_data refused a task without one
        prefix = self.spec.training.t5_prefix if is_t5 else ""
        return feats.seq2seq_features(
            tokenizer, examples, max_source_length=max_length, prefix=prefix
        )

    # 3. Optimizer ------------------------------------------------------------------------

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (row indices), the same on every process."""
        lengths = [len(row["input_ids"]) for row in self.train_rows]
        return global_batches(lengths, self.config.batch_size, self.processes,
                              seed=self.config.seed + epoch)  # fmt: skip

    def setup_optimizer(self) -> None:
        """AdamW over the trainable weights and a linear warm-up/decay schedule."""
        from transformers import get_linear_schedule_with_warmup

        config, model = self.config, self.model
        assert model is not None
        steps_per_epoch = max(1, len(self.epoch_batches(0)) // config.grad_accum)
        self.total_steps = config.max_steps or max(1, int(steps_per_epoch * config.epochs))
        self.eval_every = config.eval_every or steps_per_epoch
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            self.trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.meta = {
            "task": self.task, "base": self.base, "data": self.data, "kind": self.kind,
            "validation_data": self.validation_data, "config": asdict(config),
            "train_examples": len(self.train_examples),
            "validation_examples": len(self.val_examples),
            "labels": self.id2label or None, "processes": self.processes,
        }  # fmt: skip

    # 4. Resume ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from the run's checkpoint (``resume``), or refuse to overwrite one."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        found = ckpt.find_checkpoint(self.checkpoint_dir)
        if self.resume:
            if found is None:
                raise QuintetError(
                    f"nothing to resume: no checkpoint for {self.output!r} in {self.run_dir}"
                )
            self.state, saved = ckpt.load_checkpoint(
                found, self.unwrapped(), self.optimizer, self.scheduler, self.process
            )
            if saved.get("base") != self.base or saved.get("task") != self.task:
                raise QuintetError(
                    f"the checkpoint of {self.output!r} was trained from {saved.get('base')} "
                    f"for {saved.get('task')}: resume with the same task and --model"
                )
            if saved.get("processes", 1) != self.processes:
                # Global batches are batch_size x processes rows: another count would change
                # the effective batch size and the order of the data mid-run.
                raise QuintetError(
                    f"the checkpoint of {self.output!r} was written by a "
                    f"{saved.get('processes', 1)}-process run; resume it with the same number "
                    f"of processes (this run has {self.processes})"
                )
            self.say(f"resuming {self.output} at step {self.state.step}")
        elif found is not None:
            raise QuintetError(
                f"a run named {self.output!r} already has a checkpoint in {self.run_dir}: pass "
                "--resume to continue it, or choose another --output name"
            )
        # Every process has checked before the main one may write a first checkpoint.
        self.accelerator.wait_for_everyone()
        self.start_log({"event": "start", "step": self.state.step, "total_steps": self.total_steps,
                        "task": self.task, "base": self.base, "resumed": self.resume,
                        "processes": self.processes})  # fmt: skip

    # 5. Train ----------------------------------------------------------------------------

    def train(self) -> None:
        """The loop: global batches, optimizer steps, validation and checkpoints."""
        config, state = self.config, self.state
        if self.processes > 1:
            self.say(
                f"training with {self.processes} processes, {config.batch_size} examples each "
                f"per batch ({config.batch_size * self.processes} per global batch)"
            )
        bar = tqdm(total=self.total_steps, initial=state.step, desc=f"fine-tuning {self.output}",
                   disable=not self.progress or not self.is_main)  # fmt: skip
        done = state.step >= self.total_steps
        window = _Window()
        while not done:
            batches = self.epoch_batches(state.epoch)
            while state.position < len(batches):
                indices = batches[state.position]
                state.position += 1
                ends_step = state.position % config.grad_accum == 0 or state.position == len(
                    batches
                )
                window.add(*self.forward_backward(indices, sync=ends_step))
                if not ends_step:
                    continue
                self.optimizer_step()
                bar.update(1)
                record = self.step_record(window)
                bar.set_postfix(loss=f"{record['loss']:.4f}",
                                ex_s=f"{record['examples_per_s']:.1f}")  # fmt: skip
                window = _Window()
                state.history.append(record)
                self.log(record)
                last = state.step >= self.total_steps
                if state.step % self.eval_every == 0 or last:
                    last = self.validate(bar) or last
                if state.step % config.save_every == 0 or last:
                    self.checkpoint()
                if last:
                    done = True
                    break
            else:
                state.epoch += 1
                state.position = 0
        bar.close()
        self.accelerator.wait_for_everyone()

    def forward_backward(self, indices: list[int], *, sync: bool) -> tuple[float, int]:
        """Forward and backward on this process's part of one global batch; returns its
        loss contribution and example count."""
        accelerator, model = self.accelerator, self.model
        whole = [self.train_rows[i] for i in indices]
        part = [self.train_rows[i] for i in process_part(indices, self.process, self.processes)]
        batch = self.to_device(feats.collate(part, self.pad_id))
        # Gradients are averaged across processes only on the micro-batch that ends a step.
        syncing = contextlib.nullcontext() if sync else accelerator.no_sync(model)
        with syncing, accelerator.autocast():
            loss = model(**batch).loss / self.config.grad_accum
            if self.processes > 1:
                loss = loss * loss_weight(self.kind, part, whole, self.processes)
            accelerator.backward(loss)
        return float(loss.detach()) * self.config.grad_accum, len(part)

    def optimizer_step(self) -> None:
        """Clip, step the optimizer and the schedule, count the step."""
        assert self.optimizer is not None
        self.accelerator.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1

    def step_record(self, window: _Window) -> dict[str, Any]:
        """The log record of the step just taken (loss and speed over every process)."""
        batches = max(1, math.ceil(window.examples / self.config.batch_size))
        loss, examples = self.across_processes(window.loss, window.examples)
        return {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "loss": loss / batches,
            "examples_per_s": examples / max(time.perf_counter() - window.started, 1e-9),
            "lr": self.scheduler.get_last_lr()[0],
        }

    def across_processes(self, loss: float, examples: int) -> tuple[float, int]:
        """The step's loss as a mean over every process's part, and their examples in all."""
        if self.processes == 1:
            return loss, examples
        totals = self.accelerator.reduce(
            torch.tensor([loss, float(examples)], device=self.accelerator.device), "sum"
        )
        return float(totals[0]) / self.processes, int(totals[1])

    def validate(self, bar: Any) -> bool:
        """Validate on the main process, share the scores, keep the best weights; returns
        whether early stopping ends the run."""
        state = self.state
        scores: dict[str, float] = {}
        if self.is_main:
            # The plain module, not the DDP wrapper: its forward would wait for the others.
            scores = validate(
                self.unwrapped(), self.kind, self.val_examples, self.val_rows,
                batch_size=self.config.batch_size, pad_id=self.pad_id, id2label=self.id2label,
                multi_label=self.config.multi_label, to_device=self.to_device,
            )  # fmt: skip
        if self.processes > 1:
            # Every process must take the same early-stopping decision.
            shared = [scores]
            torch.distributed.broadcast_object_list(shared, src=0)
            scores = shared[0]
        improved = state.best_metric is None or scores["primary"] > state.best_metric
        if improved:
            state.best_metric, state.best_step = scores["primary"], state.step
            state.evals_without_improvement = 0
            if self.is_main:
                ckpt.save_best(self.run_dir, self.unwrapped())
        else:
            state.evals_without_improvement += 1
        evaluation = {"step": state.step, "validation": scores, "best": improved}
        state.history.append(evaluation)
        self.log(evaluation)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != "primary")
        if self.is_main:
            bar.write(f"step {state.step}: {shown}")
        patience = self.config.early_stopping_patience
        if patience and state.evals_without_improvement >= patience:
            if self.is_main:
                bar.write(f"early stopping: no improvement in {patience} validations")
            return True
        return False

    def checkpoint(self) -> None:
        """Save a resumable checkpoint (main process), with every process's RNG state."""
        rng = [torch.get_rng_state()]
        if self.processes > 1:
            from accelerate.utils import gather_object

            rng = gather_object(rng)
        if self.is_main:
            ckpt.save_checkpoint(self.checkpoint_dir, self.unwrapped(), self.optimizer,
                                 self.scheduler, self.state, self.meta, rng)  # fmt: skip
            self.log({"step": self.state.step, "checkpoint": str(self.checkpoint_dir)})

    # 6. Save -----------------------------------------------------------------------------

    def save(self) -> TrainResult:
        """Export the best weights, merged, into the store (main process; the others wait)."""
        from quintet.core.training.export import export_model

        state = self.state
        best_scores = next(
            (h["validation"] for h in reversed(state.history)
             if "validation" in h and h["step"] == state.best_step),
            {},
        )  # fmt: skip
        if self.is_main:
            final = self.unwrapped()
            if (self.run_dir / "best.safetensors").is_file():
                from safetensors.torch import load_file

                ckpt.load_trainable(final, load_file(str(self.run_dir / "best.safetensors")))
            assert self.loaded is not None
            export_model(
                final, self.loaded.tokenizer, self.output, self.store,
                meta={**self.meta, "steps": state.step, "best_step": state.best_step,
                      "validation": best_scores,
                      "seconds": time.perf_counter() - self.started},
            )  # fmt: skip
            self.log({"event": "done", "step": state.step, "model": self.output,
                      "best_step": state.best_step, "validation": best_scores})  # fmt: skip
        else:
            self.say(f"waiting for rank 0 to store {self.output}")
        self.accelerator.wait_for_everyone()
        stored = self.store.get(self.output)
        if stored is None:  # the main process failed to export; it has said why
            raise QuintetError(f"{self.output} was not stored by the main process")
        return TrainResult(
            model=stored,
            steps=state.step,
            seconds=time.perf_counter() - self.started,
            best_metric=state.best_metric,
            validation=best_scores,
            history=state.history,
            process=self.process,
            processes=self.processes,
        )

    # Helpers -----------------------------------------------------------------------------

    def unwrapped(self) -> torch.nn.Module:
        """The model without the DDP wrapper."""
        return self.accelerator.unwrap_model(self.model)

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        return {k: v.to(device) for k, v in batch.items()}

    def start_log(self, record: dict[str, Any]) -> None:
        """Begin ``log.jsonl``: empty for a fresh run; a resumed run keeps the records up to
        its checkpoint's step (later ones were lost with the killed process)."""
        path = self.run_dir / LOG_FILE
        step = self.state.step
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
        """Append a record to ``log.jsonl`` (main process) and pass it to ``on_log``."""
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
    task: str | TaskSpec,
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
        task: the task's name or alias (classification, qa, summarization, translation,
            chat: :func:`quintet.core.tasks.task_names`), or its spec.
        base: any name :func:`quintet.core.models.load` accepts.
        data: training file (CSV / TSV / JSONL / JSON / SQuAD JSON / TREC, per task).
        output: the store name of the result.
        config: hyperparameters (:class:`quintet.core.config.TrainConfig`).
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
    recipe = FinetuneRecipe(
        task, base, data, output, config or TrainConfig(),
        validation_data=validation_data, fields=fields, resume=resume, store=store,
        progress=progress, on_log=on_log, labels=labels,
    )  # fmt: skip
    return recipe.run()


__all__: Sequence[str] = (
    "FieldNames",
    "FinetuneRecipe",
    "TrainResult",
    "finetune",
    "length_bucketed_batches",
)
