"""The recipes that build Quintet's offline task models from the packaged ones.

Each recipe is one call of :func:`quintet.core.training.trainer.finetune` on data shipped in
``data/``, plus the evaluation its report needs. ``quintet recipes run NAME`` runs one;
the result lands in the store under the recipe's name, where the apps find it.

Recipes are task-level (each names a task, its shipped data and the evaluation its report
needs), so they live in the apps layer, on top of core's task-agnostic fine-tuning engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from quintet.core import paths
from quintet.core.config import DecodeConfig, TrainConfig
from quintet.core.data import read_pairs, split_for_task
from quintet.core.errors import ModelNotFoundError, QuintetError
from quintet.core.metrics import rouge_scores
from quintet.core.store import ModelStore
from quintet.core.task_prompts import summarize_prompt
from quintet.core.training.tasks import FieldNames


@dataclass(frozen=True)
class Recipe:
    """One reproducible fine-tuning run."""

    name: str
    task: str
    base: str
    train: str  # relative to the data root
    validation: str | None
    config: TrainConfig
    description: str
    fields: FieldNames = field(default_factory=FieldNames)
    # Extra evaluation after training (e.g. ROUGE before/after); returns report entries.
    report: Callable[[Recipe, Any, Path], dict[str, Any]] | None = None


def _samsum_rouge(recipe: Recipe, result: Any, data_root: Path) -> dict[str, Any]:
    """ROUGE of the base and the fine-tuned model on held-back SAMSum dialogues."""
    # Imported here: torch, for a report that only runs after training.
    from quintet.core.decoding import Generator

    pairs = read_pairs(str(data_root / recipe.train))
    _, held_back = split_for_task(
        recipe.task, pairs, recipe.config.validation_fraction, recipe.config.seed
    )
    held_back = held_back[:100]
    chats = [[{"role": "user", "content": summarize_prompt(p.source_text)}] for p in held_back]
    references = [p.target for p in held_back]
    config = DecodeConfig(max_new_tokens=64)
    report = {"held_back_dialogues": len(held_back)}
    for label, model in (("before", recipe.base), ("after", recipe.name)):
        started = time.perf_counter()
        outputs = Generator(model, batch_size=8).generate(chats, config, progress=True)
        scores = rouge_scores([o.text for o in outputs], references)
        report[f"rouge_{label}"] = scores
        report[f"generation_seconds_{label}"] = time.perf_counter() - started
    return report


RECIPES: dict[str, Recipe] = {
    "minilm-l6-sst2": Recipe(
        name="minilm-l6-sst2",
        task="classification",
        base="minilm-l6",
        train="classification/sst2/train.tsv",
        validation="classification/sst2/dev.tsv",
        config=TrainConfig(
            max_steps=600,
            learning_rate=1e-4,
            batch_size=32,
            max_length=66,
            eval_every=200,
            save_every=100,
            eval_max_examples=None,
        ),  # fmt: skip
        description="sentiment classifier: minilm-l6 on SST-2 train (600 steps of 32 phrases, "
        "29% of it: about ten minutes on a 2-core CPU), validated on all of SST-2 dev",
    ),
    "minilm-l6-squad": Recipe(
        name="minilm-l6-squad",
        task="qa",
        base="minilm-l6",
        train="qa/squad_v1.1/dev-v1.1.articles-00-23.json",
        validation=None,
        config=TrainConfig(
            max_steps=300,
            learning_rate=2e-4,
            batch_size=16,
            max_length=256,
            doc_stride=96,
            validation_fraction=0.2,
            eval_max_examples=None,
            save_every=50,
            eval_every=150,
        ),  # fmt: skip
        description="extractive QA: minilm-l6 with a span head on SQuAD v1.1 dev articles "
        "0-23, split by article (80% train, 20% held back); 256-token windows, 300 steps of 16",
    ),
    "smollm2-135m-samsum": Recipe(
        name="smollm2-135m-samsum",
        task="summarization",
        base="smollm2-135m-instruct",
        train="summarization/samsum/val.csv",
        validation=None,
        config=TrainConfig(
            max_steps=60,
            learning_rate=3e-4,
            batch_size=4,
            lora=True,
            max_length=512,
            validation_fraction=0.15,
            eval_max_examples=40,
            save_every=20,
            eval_every=30,
        ),  # fmt: skip
        description="dialogue summarizer: smollm2-135m-instruct + LoRA (merged) on SAMSum "
        "validation dialogues (60 steps of 4), 15% held back",
        report=_samsum_rouge,
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a one-line error listing the real ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}"
        ) from None


def run_recipe(
    name: str,
    *,
    data_root: Path | None = None,
    store: ModelStore | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    extra_report: bool = True,
) -> dict[str, Any]:
    """Run a recipe end to end and return its report (also written to the run folder).

    ``extra_report=False`` skips the recipe's extra evaluation after training (SAMSum's
    ROUGE of the base and the new model: about 4 of its 10 minutes); the model and its
    validation figures are the same. The background builder skips it.
    """
    # Imported here: the engine pulls torch, which `quintet recipes list` does not need.
    from quintet.core.training.trainer import finetune

    recipe = get_recipe(name)
    if overrides:
        recipe = replace(recipe, config=replace(recipe.config, **overrides))
    data_root = data_root or paths.data_root()
    store = store or ModelStore()
    train = data_root / recipe.train
    if not train.is_file():
        raise QuintetError(
            f"recipe {name} needs {train}: run it from a Quintet checkout or set "
            f"{paths.DATA_ENV} to a copy of its data/ folder"
        )
    started = time.perf_counter()
    result = finetune(
        recipe.task,
        recipe.base,
        train,
        recipe.name,
        recipe.config,
        validation_data=data_root / recipe.validation if recipe.validation else None,
        fields=recipe.fields,
        resume=resume,
        store=store,
    )
    report: dict[str, Any] = {
        "recipe": name,
        "description": recipe.description,
        "base": recipe.base,
        "steps": result.steps,
        "training_seconds": result.seconds,
        "validation": result.validation,
        "config": asdict(recipe.config),
    }
    if recipe.report is not None and extra_report:
        report.update(recipe.report(recipe, result, data_root))
    report["total_seconds"] = time.perf_counter() - started
    out = store.home / "runs" / name / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
