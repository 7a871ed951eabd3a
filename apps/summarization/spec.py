"""The summarization task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quintet.core.config import DecodeConfig, TrainConfig
from quintet.core.task_prompts import summarize_prompt
from quintet.core.tasks import (
    EvalSet,
    FieldNames,
    Recipe,
    TaskDefaults,
    TaskSpec,
    TrainingData,
    TrainingTask,
)

NAME = "summarization"


def read_pairs(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Document/summary pairs (CSV, TSV, JSONL); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_pairs(path, source_field=fields.text, target_field=fields.target)


def as_chats(examples: Sequence[Any]) -> list:
    """Pairs as chats for a decoder-only model, asked with the prompt the app uses."""
    from quintet.core.examples import ChatExample, PairExample

    return [
        ChatExample(
            messages=(
                {"role": "user", "content": summarize_prompt(e.source_text)},
                {"role": "assistant", "content": e.target},
            ),
            source=e.source,
            id=e.id,
        )
        for e in examples
        if isinstance(e, PairExample)
    ]


def samsum_rouge(recipe: Recipe, result: Any, data_root: Path) -> dict[str, Any]:
    """ROUGE of the base and the fine-tuned model on held-back SAMSum dialogues."""
    # Imported here: torch, for a report that only runs after training.
    from quintet.core.data import read_pairs, split_for_task
    from quintet.core.decoding import Generator
    from quintet.core.metrics import rouge_scores

    pairs = read_pairs(str(data_root / recipe.train))
    _, held_back = split_for_task(
        recipe.task, pairs, recipe.config.validation_fraction, recipe.config.seed
    )
    held_back = held_back[:100]
    chats = [[{"role": "user", "content": summarize_prompt(p.source_text)}] for p in held_back]
    references = [p.target for p in held_back]
    config = DecodeConfig(max_new_tokens=64)
    report: dict[str, Any] = {"held_back_dialogues": len(held_back)}
    for label, model in (("before", recipe.base), ("after", recipe.name)):
        started = time.perf_counter()
        outputs = Generator(model, batch_size=8).generate(chats, config, progress=True)
        scores = rouge_scores([o.text for o in outputs], references)
        report[f"rouge_{label}"] = scores
        report[f"generation_seconds_{label}"] = time.perf_counter() - started
    return report


SAMSUM = Recipe(
    name="smollm2-135m-samsum",
    task=NAME,
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
    ),
    description="dialogue summarizer: smollm2-135m-instruct + LoRA (merged) on SAMSum "
    "validation dialogues (60 steps of 4), 15% held back",
    kind="causal",
    serves=(NAME, "chat"),
    summary="smollm2-135m-instruct with a merged LoRA trained on SAMSum dialogues",
    license="Apache-2.0 (weights); SAMSum: CC-BY-NC-ND-4.0, non-commercial",
    size_mb=540,
    report=samsum_rouge,
)

SPEC = TaskSpec(
    name=NAME,
    title="Summarization",
    icon=":material/summarize:",
    blurb="Documents and dialogues; map-reduce over long input.",
    kinds=("seq2seq", "causal"),
    aliases=("summarize",),
    data_fields=("text", "target"),
    route="summarize",
    default_models=TaskDefaults(
        task=NAME,
        hub_default="distilbart-cnn-12-6",
        offline_defaults=(SAMSUM.name, "smollm2-135m-instruct"),
        mode_note={"smollm2-135m-instruct": "prompted (zero-shot) until the recipe has run"},
    ),
    generative=True,
    eval_sets=(
        EvalSet(
            "SAMSum validation, held-out split",
            "data/summarization/samsum/val.csv",
            extra={"split": "heldout"},
        ),
        EvalSet("XSum test, 100 articles", "data/summarization/xsum/test_100.jsonl"),
    ),
    harness="quintet.apps.summarization.harness:HARNESS",
    # T5 was pre-trained with this prefix; it is the only language-free one it knows.
    training=TrainingTask(
        read=read_pairs,
        to_chats=as_chats,
        t5_prefix="summarize: ",
        shipped=(TrainingData("SAMSum dialogues (validation set)", SAMSUM.train),),
    ),
    recipes=(SAMSUM,),
    order=20,
)
