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
from typing import Any, NamedTuple

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


class RunData(NamedTuple):
    """What :meth:`FinetuneRecipe.setup_data` reads: the examples and a classifier's labels."""

    train: list
    validation: list
    labels: list[str]  # a classifier's classes, in the order of its outputs; else empty


class RunModel(NamedTuple):
    """What :meth:`FinetuneRecipe.setup_model` builds."""

    kind: str  # the model kind the task trains (sequence-classification, span, ...)
    loaded: Loaded  # the private copy of the base, with the task's head and its tokenizer
    model: torch.nn.Module  # loaded.model, in LoRA adapters when asked; in training mode
    # (the loop trains Optimization.model: this module as ``accelerate`` prepared it)


class RunFeatures(NamedTuple):
    """What :meth:`FinetuneRecipe.setup_features` builds: token features, one dict a row."""

    train: list[dict]
    validation: list[dict]


class Optimization(NamedTuple):
    """What :meth:`FinetuneRecipe.setup_optimizer` builds: the model and optimizer as
    ``accelerate`` prepared them, the schedule, and the step counts it was made for."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    trainable: list[torch.nn.Parameter]
    total_steps: int
    eval_every: int


class FinetuneRecipe:
    """One fine-tuning run, in the order it happens (torchtune's recipe shape).

    ``run()`` calls :meth:`setup`, :meth:`train` (the loop, calling :meth:`validate` and
    :meth:`checkpoint`) and :meth:`save` (the best weights into the store). :meth:`setup`
    calls each setup step in order and is the one place that keeps what they return, whole:
    :meth:`setup_data` (``run_data``: read and split the data, decide the labels: bad data
    fails before any model work), :meth:`setup_accelerator` (``accelerator``: the processes'
    group), :meth:`setup_model` (``run_model``: a private copy of the base with the task's
    head, LoRA), :meth:`setup_features` (``features``: token features),
    :meth:`setup_optimizer` (``optimization``: AdamW, the linear schedule, ``accelerate``
    wrapping), :meth:`run_meta` (``meta``) and :meth:`restore` (``state``: resume a
    checkpoint or refuse to overwrite one). A step reads what earlier steps built through
    those products (``self.optimization.scheduler``), so each field is declared once, in its
    product's type, and a step assigns nothing itself.

    Several processes (``torchrun``/``accelerate launch``): each takes its part of every global
    batch, gradients are averaged by DDP, only the main process validates, writes the log,
    checkpoints and the store entry; the others wait for it at a barrier.
    """

    # Assigned by setup(), in this order: each setup step's product, kept whole.
    run_data: RunData
    accelerator: Any = None  # None until setup: one process
    run_model: RunModel
    features: RunFeatures
    optimization: Optimization
    meta: dict[str, Any]
    state: ckpt.TrainState

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

    def run(self) -> TrainResult:
        """Every step of the run; returns what it stored (on every process)."""
        self.setup()
        self.train()
        return self.save()

    def setup(self) -> None:
        """Every setup step, in order; what each returns is assigned here and only here."""
        self.run_data = self.setup_data()
        self.accelerator = self.setup_accelerator()
        self.run_model = self.setup_model()
        self.features = self.setup_features()
        self.optimization = self.setup_optimizer(self.run_model.model)
        self.meta = self.run_meta()
        self.state = self.restore()
        self.start_log({"event": "start", "step": self.state.step,
                        "total_steps": self.optimization.total_steps,
                        "task": self.task, "base": self.base, "resumed": self.resume,
                        "processes": self.processes})  # fmt: skip

    # Processes ---------------------------------------------------------------------------

    @property
    def process(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    # Read through the setup products ------------------------------------------------------

    @property
    def label2id(self) -> dict[str, int]:
        """A classifier's label -> output index (empty for other tasks)."""
        return {name: i for i, name in enumerate(self.run_data.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        """A classifier's output index -> label (empty for other tasks)."""
        return dict(enumerate(self.run_data.labels))

    @property
    def pad_id(self) -> int:
        """The token id batches are padded with (0 when the tokenizer has no pad token)."""
        tokenizer = self.run_model.loaded.tokenizer
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

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

    def setup_data(self) -> RunData:
        """Read, validate and split the data; decide a classifier's labels."""
        config = self.config
        train = read_task_data(self.spec, self.data, self.fields, config.multi_label)
        validation = (
            read_task_data(self.spec, self.validation_data, self.fields, config.multi_label)
            if self.validation_data
            else None
        )
        if validation is None:
            # QA by article (questions on one paragraph share answers), the rest at random
            train, validation = split_for_task(
                self.spec, train, config.validation_fraction, config.seed
            )
        if not train or not validation:
            raise QuintetError(f"{self.data}: need training and validation examples, found too few")
        names: list[str] = []
        if self.spec.training is not None and self.spec.training.labelled:
            names = label_names(self.data, train, validation, self.labels)
        limit = config.eval_max_examples
        if limit and len(validation) > limit:
            validation = random.Random(config.seed).sample(validation, limit)
        check_writable(self.store)  # before minutes of loading and training, not at the first save
        return RunData(train, validation, names)

    # 2. Model ----------------------------------------------------------------------------

    def setup_accelerator(self) -> Any:
        """The processes' group (one process unless launched by torchrun/accelerate)."""
        from accelerate import Accelerator

        # accelerate only forms a CPU process group when told the run is on CPU; without
        # cpu=True every process of `torchrun` on a CPU machine trained alone (and they all
        # wrote the same checkpoint).
        return Accelerator(
            mixed_precision="bf16" if torch.cuda.is_available() else "no",
            cpu=not torch.cuda.is_available(),
        )

    def setup_model(self) -> RunModel:
        """Load the base with the task's head, wrapped in LoRA adapters when asked."""
        # Seed before loading: a new task head is initialised while the model loads, and
        # every process must start from the same weights.
        torch.manual_seed(self.config.seed)
        # The config alone decides the kind, so the weights are loaded once, with their head.
        base_config = read_config(self.base, self.store)
        kind = model_kind(self.spec, bool(getattr(base_config, "is_encoder_decoder", False)))
        extra: dict[str, Any] = {}
        if kind == "sequence-classification":
            extra = {"num_labels": len(self.label2id), "id2label": self.id2label,
                     "label2id": self.label2id}  # fmt: skip
            if self.config.multi_label:
                extra["problem_type"] = "multi_label_classification"
        loaded = load_fresh(ModelSpec(self.base, kind=kind, device="cpu"), self.store, **extra)
        model = loaded.model
        if self.config.lora:
            from quintet.core.training.lora import apply_lora

            config = self.config
            model = apply_lora(model, kind, config.lora_r, config.lora_alpha, config.lora_dropout)
        model.train()
        return RunModel(kind, loaded, model)

    def setup_features(self) -> RunFeatures:
        """Token features of the training and the validation examples."""
        train_rows = self.featurize(self.run_data.train, training=True)
        val_rows = self.featurize(self.run_data.validation, training=False)
        if not train_rows:
            raise QuintetError("no training example fits the model: raise --max-length")
        return RunFeatures(train_rows, val_rows)

    def featurize(self, examples: list, training: bool) -> list[dict]:
        """Token features of ``examples`` for this model kind."""
        tokenizer, kind = self.run_model.loaded.tokenizer, self.run_model.kind
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
        is_t5 = getattr(self.run_model.loaded.config, "model_type", "") == "t5"
        assert self.spec.training is not None  # read_task_data refused a task without one
        prefix = self.spec.training.t5_prefix if is_t5 else ""
        return feats.seq2seq_features(
            tokenizer, examples, max_source_length=max_length, prefix=prefix
        )

    # 3. Optimizer ------------------------------------------------------------------------

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (row indices), the same on every process."""
        lengths = [len(row["input_ids"]) for row in self.features.train]
        return global_batches(lengths, self.config.batch_size, self.processes,
                              seed=self.config.seed + epoch)  # fmt: skip

    def setup_optimizer(self, model: torch.nn.Module) -> Optimization:
        """AdamW over the trainable weights of ``model`` and a linear warm-up/decay schedule,
        prepared by ``accelerate``."""
        from transformers import get_linear_schedule_with_warmup

        config = self.config
        steps_per_epoch = max(1, len(self.epoch_batches(0)) // config.grad_accum)
        total_steps = config.max_steps or max(1, int(steps_per_epoch * config.epochs))
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(config.warmup_ratio * total_steps), total_steps
        )
        model, optimizer = self.accelerator.prepare(model, optimizer)
        return Optimization(model, optimizer, scheduler, trainable, total_steps,
                            config.eval_every or steps_per_epoch)  # fmt: skip

    def run_meta(self) -> dict[str, Any]:
        """What the run's checkpoints and its model card record about it."""
        return {
            "task": self.task, "base": self.base, "data": self.data,
            "kind": self.run_model.kind,
            "validation_data": self.validation_data, "config": asdict(self.config),
            "train_examples": len(self.run_data.train),
            "validation_examples": len(self.run_data.validation),
            "labels": self.id2label or None, "processes": self.processes,
        }  # fmt: skip

    # 4. Resume ---------------------------------------------------------------------------

    def restore(self) -> ckpt.TrainState:
        """The training state to start from: the run's checkpoint's (``resume``), or a fresh
        one; refuses to overwrite a checkpoint."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        found = ckpt.find_checkpoint(self.checkpoint_dir)
        state = ckpt.TrainState()
        if self.resume:
            if found is None:
                raise QuintetError(
                    f"nothing to resume: no checkpoint for {self.output!r} in {self.run_dir}"
                )
            optimization = self.optimization
            state, saved = ckpt.load_checkpoint(
                found,
                self.unwrapped(),
                optimization.optimizer,
                optimization.scheduler,
                self.process,
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
            self.say(f"resuming {self.output} at step {state.step}")
        elif found is not None:
            raise QuintetError(
                f"a run named {self.output!r} already has a checkpoint in {self.run_dir}: pass "
                "--resume to continue it, or choose another --output name"
            )
        # Every process has checked before the main one may write a first checkpoint.
        self.accelerator.wait_for_everyone()
        return state

    # 5. Train ----------------------------------------------------------------------------

    def train(self) -> None:
        """The loop: global batches, optimizer steps, validation and checkpoints."""
        config, state, total_steps = self.config, self.state, self.optimization.total_steps
        if self.processes > 1:
            self.say(
                f"training with {self.processes} processes, {config.batch_size} examples each "
                f"per batch ({config.batch_size * self.processes} per global batch)"
            )
        bar = tqdm(total=total_steps, initial=state.step, desc=f"fine-tuning {self.output}",
                   disable=not self.progress or not self.is_main)  # fmt: skip
        done = state.step >= total_steps
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
                last = state.step >= total_steps
                if state.step % self.optimization.eval_every == 0 or last:
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
        accelerator, model, rows = self.accelerator, self.optimization.model, self.features.train
        whole = [rows[i] for i in indices]
        part = [rows[i] for i in process_part(indices, self.process, self.processes)]
        batch = self.to_device(feats.collate(part, self.pad_id))
        # Gradients are averaged across processes only on the micro-batch that ends a step.
        syncing = contextlib.nullcontext() if sync else accelerator.no_sync(model)
        with syncing, accelerator.autocast():
            loss = model(**batch).loss / self.config.grad_accum
            if self.processes > 1:
                loss = loss * loss_weight(self.run_model.kind, part, whole, self.processes)
            accelerator.backward(loss)
        return float(loss.detach()) * self.config.grad_accum, len(part)

    def optimizer_step(self) -> None:
        """Clip, step the optimizer and the schedule, count the step."""
        optimization = self.optimization
        self.accelerator.clip_grad_norm_(optimization.trainable, self.config.max_grad_norm)
        optimization.optimizer.step()
        optimization.scheduler.step()
        optimization.optimizer.zero_grad(set_to_none=True)
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
            "lr": self.optimization.scheduler.get_last_lr()[0],
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
                self.unwrapped(), self.run_model.kind, self.run_data.validation,
                self.features.validation,
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
            optimization = self.optimization
            ckpt.save_checkpoint(self.checkpoint_dir, self.unwrapped(), optimization.optimizer,
                                 optimization.scheduler, self.state, self.meta, rng)  # fmt: skip
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
            export_model(
                final, self.run_model.loaded.tokenizer, self.output, self.store,
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
        return self.accelerator.unwrap_model(self.optimization.model)

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
