"""The classification task, as the other layers see it (registered in ``pyproject.toml``)."""

from __future__ import annotations

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

NAME = "classification"


def read_classification(path: str, fields: FieldNames, multi_label: bool = False) -> list:
    """Labelled texts (CSV, TSV, JSONL, TREC); ``fields`` renames their columns."""
    from quintet.core import data  # torch comes with it; the spec is read for --help

    return data.read_classification(
        path, text_field=fields.text, label_field=fields.label, multi_label=multi_label
    )


SST2 = Recipe(
    name="minilm-l6-sst2",
    task=NAME,
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
    ),
    description="sentiment classifier: minilm-l6 on SST-2 train (600 steps of 32 phrases, "
    "29% of it: about ten minutes on a 2-core CPU), validated on all of SST-2 dev",
    kind="sequence-classification",
    serves=(NAME,),
    summary="minilm-l6 fine-tuned on SST-2 train (binary sentiment)",
    license="Apache-2.0 (weights); SST-2 data: see data/",
    size_mb=91,
)

SPEC = TaskSpec(
    name=NAME,
    title="Classification",
    icon=":material/label:",
    blurb="Sentiment, topics or your own labels (zero-shot), with probabilities.",
    kinds=("sequence-classification", "encoder", "causal"),
    aliases=("classify",),
    data_fields=("text", "label"),
    route="classify",
    default_models=TaskDefaults(
        task=NAME,
        hub_default="distilbert-sst2",
        offline_defaults=(SST2.name, "minilm-l6"),
        mode_note={"minilm-l6": "zero-shot by embedding similarity to the label names"},
    ),
    eval_sets=(
        EvalSet(
            "SST-2 dev (labels 0/1 read as negative/positive)",
            "data/classification/sst2/dev.tsv",
            extra={"label_map": "0=negative,1=positive"},
        ),
        EvalSet(
            "TREC coarse, 500 held-out questions (zero-shot label names)",
            "data/classification/trec/heldout_500.label",
            extra={
                "label_map": "ABBR=abbreviation,DESC=description,ENTY=entity,"
                "HUM=person,LOC=location,NUM=number"
            },
        ),
        EvalSet("AG News test, 1000 articles", "data/classification/ag_news/test_1000.csv"),
    ),
    harness="quintet.apps.classification.harness:HARNESS",
    training=TrainingTask(
        read=read_classification,
        kind="sequence-classification",
        labelled=True,
        shipped=(
            TrainingData(
                "SST-2 sentiment (train, dev for validation)", SST2.train, SST2.validation
            ),
            TrainingData(
                "TREC question types (train split)", "classification/trec/train_rest.label"
            ),
        ),
    ),
    recipes=(SST2,),
    order=40,
)
