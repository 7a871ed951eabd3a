"""The extractive QA task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

from typing import Any

from quintet.core.config import TrainConfig
from quintet.core.tasks import (
    EvalSet,
    FieldNames,
    Recipe,
    TaskDefaults,
    TaskSpec,
    TrainingData,
    TrainingTask,
)

NAME = "qa"


def read_qa(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Questions with their context and answers (SQuAD JSON or JSONL)."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_qa(path)


def article(example: Any) -> str:
    """The article a question is on: questions on one paragraph share answers, so a
    held-out split keeps each article whole (else the answers would leak)."""
    return example.title


SQUAD = Recipe(
    name="minilm-l6-squad",
    task=NAME,
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
    ),
    description="extractive QA: minilm-l6 with a span head on SQuAD v1.1 dev articles "
    "0-23, split by article (80% train, 20% held back); 256-token windows, 300 steps of 16",
    kind="span",
    serves=(NAME,),
    summary="minilm-l6 with a span head fine-tuned on SQuAD v1.1 dev articles",
    license="Apache-2.0 (weights); SQuAD: CC-BY-SA-4.0",
    size_mb=91,
)

SPEC = TaskSpec(
    name=NAME,
    title="Question answering",
    icon=":material/quiz:",
    blurb="Answers as highlighted spans of your context.",
    kinds=("span", "causal"),
    route="qa",
    noun="QA",
    default_models=TaskDefaults(
        task=NAME,
        hub_default="distilbert-squad",
        offline_defaults=(SQUAD.name, "smollm2-135m-instruct"),
        mode_note={"smollm2-135m-instruct": "generative answer grounded to a context span"},
    ),
    eval_sets=(
        EvalSet(
            "SQuAD v1.1 dev articles, held-out split",
            "data/qa/squad_v1.1/dev-v1.1.articles-00-23.json",
            extra={"split": "heldout"},
        ),
    ),
    harness="quintet.apps.qa.harness:HARNESS",
    training=TrainingTask(
        read=read_qa,
        kind="span",
        group=article,
        shipped=(TrainingData("SQuAD v1.1 dev articles", SQUAD.train),),
    ),
    recipes=(SQUAD,),
    order=30,
)
