"""What a task is, and the registry that finds each task's spec by name.

A :class:`TaskSpec` gathers what the layers need to know about one task: its name, title and
aliases, the model kinds that serve it, the data fields it reads, its endpoint on the HTTP
server, its default models (:class:`TaskDefaults`), its evaluation harness, its fine-tuning
(:class:`TrainingTask`) and the recipes that build its offline models (:class:`Recipe`).
The *type* lives here, in core, so that every layer can read a spec; each *instance* lives
with its app (``apps/<task>/spec.py``) and is registered through the ``quintet.tasks`` entry
points that ``pyproject.toml`` declares (``qa = "quintet.apps.qa.spec:SPEC"``), the way
lm-evaluation-harness finds its task definitions. core therefore names no task: it is handed
a spec, or a name it looks up here.

A spec module must stay light (no torch at import): the CLI reads the specs to build its
``--help``. Anything heavy a spec does happens inside its functions, and it names its
harness by reference (``"quintet.apps.qa.harness:HARNESS"``), imported only when evaluated.

Example::

    >>> get_task("classify").name                       # doctest: +SKIP
    'classification'
    >>> [spec.route for spec in task_specs()]           # doctest: +SKIP
    ['translate', 'summarize', 'qa', 'classify', 'chat']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quintet.core.config import Kind, TrainConfig
from quintet.core.errors import ConfigError

ENTRY_POINT_GROUP = "quintet.tasks"


@dataclass(frozen=True)
class FieldNames:
    """Column names in a data file; None picks the reader's default for the task."""

    text: str | None = None
    target: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class TrainingData:
    """A training set shipped in ``data/`` that the fine-tuning page offers for a task.

    Attributes:
        label: how the page lists it.
        train: the training file, relative to the data root.
        validation: the validation file likewise, or None to hold back part of ``train``.
    """

    label: str
    train: str
    validation: str | None = None


@dataclass(frozen=True)
class TrainingTask:
    """What the fine-tuning engine needs to know about a task, handed to it as a parameter.

    Attributes:
        read: reads and validates a training file: ``read(path, fields, multi_label)``
            returns the examples; bad data raises :class:`quintet.core.data.DataError`.
        kind: the model kind trained (its head); None follows the base model: ``seq2seq``
            for an encoder-decoder, else ``causal``.
        to_chats: turns the examples into chats for a decoder-only base; None when the
            task cannot train one.
        t5_prefix: the prefix T5 was pre-trained with for this task ("" for none).
        group: the key that keeps related examples on one side of a held-out split (QA:
            the article), or None for a random split.
        labelled: the examples carry class labels the model's head is built from.
        shipped: the training sets in ``data/`` a user can start from.
    """

    read: Callable[[str, FieldNames, bool], list]
    kind: Kind | None = None
    to_chats: Callable[[Sequence[Any]], list] | None = None
    t5_prefix: str = ""
    group: Callable[[Any], str] | None = None
    labelled: bool = False
    shipped: tuple[TrainingData, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One reproducible fine-tuning run that builds an offline model of the catalog.

    The task's spec lists it; ``quintet recipes run NAME`` runs it
    (:mod:`quintet.apps.finetune.recipes`) and the catalog lists the model it builds
    (:mod:`quintet.core.catalog`), both from here.

    Attributes:
        name: the built model's name in the store and the catalog.
        task: the task it is trained for (the spec that lists it).
        base: the model it starts from.
        train: the training file, relative to the data root; ``validation`` likewise, or
            None to hold back ``config.validation_fraction`` of ``train``.
        config: the hyperparameters.
        description: what ``quintet recipes list`` says of the run.
        kind: the kind of the model it builds.
        serves: the tasks the built model is listed for in the catalog.
        summary: the catalog's description of the built model.
        license: the licence of the weights and the data.
        size_mb: about how large the built model is.
        fields: column names in the data, when not the defaults.
        report: an extra evaluation after training, ``report(recipe, result, data_root)``,
            whose entries join the run's report.
    """

    name: str
    task: str
    base: str
    train: str
    validation: str | None
    config: TrainConfig
    description: str
    kind: Kind
    serves: tuple[str, ...]
    summary: str
    license: str
    size_mb: int
    fields: FieldNames = FieldNames()
    report: Callable[..., dict[str, Any]] | None = None


@dataclass(frozen=True)
class TaskDefaults:
    """The models a task uses when the user names none (:mod:`quintet.core.defaults` picks).

    Attributes:
        task: the task they are for.
        hub_default: the hub model a user with the hub expects (a catalog name; translation's
            has ``{src}``/``{tgt}`` placeholders for the language pair).
        offline_defaults: catalog models that work without the hub, best first; the first one
            in the store is used when the hub is out of reach, and the last should be a
            packaged model, which can always be installed.
        mode_note: how the task runs on a model, by model name, where not natively (a
            prompted model, zero-shot classification).
    """

    task: str
    hub_default: str
    offline_defaults: tuple[str, ...]
    mode_note: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSet:
    """An evaluation set shipped with the task, and the options that read it.

    Attributes:
        label: how the Evaluation page lists it.
        data: its file or folder, relative to the repository (``data/...``).
        options: ``DataOptions`` fields that read it (a language pair, say).
        extra: ``DataOptions.extra``, as ``--option key=value`` sets them.
    """

    label: str
    data: str
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """One task, as every layer sees it.

    Attributes:
        name: the canonical name (``quintet eval NAME``, catalog tags, manifests).
        title: how pages show it.
        icon: its page's icon (a Streamlit icon name).
        blurb: one line on what its page does (the Home page's card).
        kinds: the model kinds that can serve it, preferred first.
        aliases: other names :func:`get_task` accepts (the server's verb, say).
        data_fields: the :class:`FieldNames` columns its data files may rename.
        route: its endpoint on ``quintet serve`` (``/v1/<route>``; chat's is
            ``/v1/chat/completions``), or None when it is not served.
        noun: how a sentence names it ("a better QA model"); None: its name.
        default_models: the models it uses when the user names none, listed by the catalog
            (:func:`quintet.core.catalog.task_defaults`); None when it has none.
        generative: its outputs are decoded text, so decoding settings apply to its
            evaluation (the Evaluation page offers them).
        eval_sets: the evaluation sets shipped with it (the Evaluation page lists them).
        harness: its evaluation harness (:mod:`quintet.evaluation.registry`), as a lazy
            ``"module:attr"`` reference (so that reading the spec imports no torch) or the
            harness object itself; None when it cannot be evaluated.
        training: how it is fine-tuned, or None when it cannot be.
        recipes: the runs that build its offline models (``quintet recipes run NAME``).
        order: where it is listed among the tasks (lower first).
    """

    name: str
    title: str
    kinds: tuple[Kind, ...]
    icon: str = ":material/apps:"
    blurb: str = ""
    aliases: tuple[str, ...] = ()
    data_fields: tuple[str, ...] = ()
    route: str | None = None
    noun: str | None = None
    default_models: TaskDefaults | None = None
    generative: bool = False
    eval_sets: tuple[EvalSet, ...] = ()
    harness: Any = None
    training: TrainingTask | None = None
    recipes: tuple[Recipe, ...] = ()
    order: int = 100

    @property
    def called(self) -> str:
        """How a sentence names the task: its ``noun``, else its name."""
        return self.noun or self.name


# Specs registered at run time (a plugin, a test): checked before the entry points.
_REGISTERED: dict[str, TaskSpec] = {}
# Specs loaded from the entry points, by name; filled on first use.
_LOADED: dict[str, TaskSpec] = {}


def _check(spec: TaskSpec) -> None:
    """Refuse a spec whose recipes or default models say they are for another task."""
    if spec.default_models is not None and spec.default_models.task != spec.name:
        raise ConfigError(
            f"default models for {spec.default_models.task!r} listed by the {spec.name!r} task"
        )
    for recipe in spec.recipes:
        if recipe.task != spec.name:
            raise ConfigError(
                f"recipe {recipe.name} is for {recipe.task!r} but listed by the {spec.name!r} task"
            )


def register(spec: TaskSpec) -> None:
    """Add ``spec`` (a new task, or one replacing an installed task of the same name)."""
    _check(spec)
    _REGISTERED[spec.name] = spec


def unregister(name: str) -> None:
    """Forget a spec :func:`register` added (an installed one comes back)."""
    _REGISTERED.pop(name, None)


def _installed() -> dict[str, TaskSpec]:
    """The specs the installed packages declare, loaded once.

    Raises:
        ConfigError: an entry point is not a task's spec, or none is installed (a checkout
            whose package metadata predates the ``quintet.tasks`` entry points).
    """
    if not _LOADED:
        # Imported here: importlib.metadata and the scan of every installed package cost
        # tens of milliseconds, which building the CLI's parser does not pay.
        from importlib.metadata import entry_points

        found: dict[str, TaskSpec] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            spec = point.load()
            if not isinstance(spec, TaskSpec) or spec.name != point.name:
                raise ConfigError(
                    f"entry point {point.name} = {point.value} is not the TaskSpec of "
                    f"{point.name!r}"
                )
            _check(spec)
            found[point.name] = spec
        if not found:
            raise ConfigError(
                f"no task is installed ({ENTRY_POINT_GROUP} entry points): reinstall Quintet "
                "(pip install -e .)"
            )
        _LOADED.update(found)  # all or nothing: a failed load is retried, not half kept
    return _LOADED


def task_specs() -> list[TaskSpec]:
    """Every task's spec, in listing order."""
    specs = {**_installed(), **_REGISTERED}
    return sorted(specs.values(), key=lambda spec: (spec.order, spec.name))


def task_names() -> tuple[str, ...]:
    """Every task's name, in listing order."""
    return tuple(spec.name for spec in task_specs())


def task_and_alias_names() -> tuple[str, ...]:
    """Every name :func:`get_task` accepts: each task's, then its aliases."""
    return tuple(name for spec in task_specs() for name in (spec.name, *spec.aliases))


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The spec of the task called ``name`` (or one of its aliases); a spec is returned as is.

    Raises:
        ConfigError: no task has that name or alias; the message lists the real ones.
    """
    if isinstance(name, TaskSpec):
        return name
    specs = task_specs()
    for spec in specs:
        if name == spec.name or name in spec.aliases:
            return spec
    raise ConfigError(
        f"unknown task {name!r}: choose one of {', '.join(spec.name for spec in specs)}"
    )


def recipes() -> dict[str, Recipe]:
    """Every task's recipes, by name, in listing order."""
    return {recipe.name: recipe for spec in task_specs() for recipe in spec.recipes}


def task_titles() -> dict[str, str]:
    """Every task's title on pages, by name, in listing order."""
    return {spec.name: spec.title for spec in task_specs()}


def __getattr__(name: str) -> Any:
    """``TASKS`` and ``TASK_TITLES``: the installed tasks, read when first asked for (the
    entry points load the app's spec modules, which may import this one)."""
    if name == "TASKS":
        return task_names()
    if name == "TASK_TITLES":
        return task_titles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
