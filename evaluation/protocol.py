"""The contract between the shared evaluation runner and each task's harness.

``evaluation/harness.py`` (the runner) does everything that is the same for every task:
reading options, resuming from ``predictions.jsonl``, batching with progress, timing,
bootstrap confidence intervals, writing the report files. Each task's harness
(``apps/<task>/harness.py``: it calls that app's Python API, so it lives with the app)
implements :class:`TaskHarness`: how to read its data, how to run its app on a batch, and
how to score. The runner finds a harness by task name (:mod:`quintet.evaluation.registry`), never
by importing the apps.

Harnesses are stateless: what one evaluation learns while reading its data (a chat file's
mode, a classifier's label names, a translation's languages) lives in the :class:`EvalSet`
that :meth:`TaskHarness.read` returns, which the runner hands back to ``open`` and
``score``. Two evaluations at once (threads, a server, a UI with two tabs, Ray actors that
receive a pickled copy) therefore never share state through the harness object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from quintet.core.data import DataError
from quintet.core.progress import ProgressCallback


@dataclass(frozen=True)
class DataOptions:
    """How to read an evaluation file: field names and task options from the CLI / API.

    Any field left ``None`` means "the task's default", which reads the shipped sets as they
    are. ``extra`` carries task-specific options (e.g. ``{"labels": "a,b"}``).
    """

    text_field: str | None = None
    target_field: str | None = None
    label_field: str | None = None
    question_field: str | None = None
    context_field: str | None = None
    answers_field: str | None = None
    id_field: str | None = None
    category_field: str | None = None
    src: str | None = None  # translation: source language code
    tgt: str | None = None  # translation: target language code
    source_file: str | None = None  # translation: plain text sources, one per line
    reference_files: tuple[str, ...] = ()  # translation: plain text references
    extra: dict[str, Any] = field(default_factory=dict)


def split_option(data: str, options: DataOptions) -> str:
    """``--option split=``: ``"heldout"`` (what a recipe held back from training) or
    ``"all"`` (the default); anything else is refused in one line, never ignored."""
    split = options.extra.get("split")
    if split in (None, "", "all"):
        return "all"
    if split == "heldout":
        return "heldout"
    raise DataError(data, 0, f"unknown split={split!r}: use split=heldout or split=all")


@dataclass(frozen=True)
class EvalItem:
    """One example to evaluate, as the task harness read it.

    ``inputs`` is what the app is called with (JSON-serialisable: text, question and
    context, messages ...); ``references`` what the prediction is scored against (reference
    texts, gold answers, gold label(s)); ``category`` drives the per-category breakdown.
    """

    id: str
    inputs: dict[str, Any]
    references: Any
    category: str = ""
    source: str = ""  # "file:line", for error messages and the worst-examples table


@dataclass(frozen=True)
class Prediction:
    """The app's output for one item.

    ``prediction`` is what gets scored (a text, an answer text, a label); ``extra`` keeps
    anything a report may show (probabilities, answer offsets, token counts, latency).
    """

    id: str
    prediction: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scores:
    """A task's scores on a set of items.

    ``metrics``: flat ``{name: number}`` computed on the whole corpus (never averaged per
    item unless the metric is an average by definition, such as accuracy or SQuAD EM).
    ``per_item``: one ``{metric: number}`` per item, in item order (score distribution,
    worst examples, length vs score). ``signatures``: how the metrics were computed
    (sacreBLEU signature, ROUGE settings). ``sections``: extra report sections, e.g.
    ``{"confusion_matrix": {...}, "per_class": {...}}``; each section is a dict with a
    ``kind`` the report knows how to draw:

    - ``{"kind": "table", "title": str, "columns": [str], "rows": [[value, ...]]}``
    - ``{"kind": "confusion_matrix", "title": str, "labels": [str], "matrix": [[int]]}``
      (rows: gold label, columns: predicted label)
    - ``{"kind": "bar", "title": str, "values": {name: number}}``
    - ``{"kind": "text", "title": str, "body": markdown}``

    The runner adds what is the same for every task: per-category scores (by calling
    :meth:`TaskHarness.score` on each category's items), score distribution, input length
    vs score, worst examples (lowest primary per-item score) and bootstrap intervals.
    """

    metrics: dict[str, float]
    per_item: list[dict[str, float]] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSet:
    """One evaluation's data, as its task harness read it: the items and the run's state.

    ``primary_metric`` is the headline number for this data (a chat file decides between
    ``ref_chrf`` and ``perplexity``). A task with more state subclasses this with more
    fields; keep it a plain dataclass of plain values: it is pickled to Ray actors and
    copied with :func:`dataclasses.replace` (the runner's ``--limit``).
    """

    items: list[EvalItem]
    primary_metric: str


class Predictor(Protocol):
    """A task app opened on one model, ready to predict batches."""

    model_name: str  # what was actually loaded (after default resolution / routing)
    settings: dict[str, Any]  # decode settings and mode, as recorded in the report

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        """Run the app's Python API on a batch; one prediction per item, in order.

        ``progress(done, total)``, where given, reports the work done inside the batch in
        the predictor's own units (outputs, chunks, turns): the runner turns it into items,
        so a long batch does not sit at its first count until it ends. Optional: a
        ``predict(items)`` without it (an older plugin) is called without it.
        """
        ...


class TaskHarness(Protocol):
    """One task's evaluation: read, open the app, score. Holds no state of a run.

    Optional, for fast bootstrap intervals: ``resampler(run, items, predictions)`` returning
    a function ``indices -> {metric: value}`` that gives exactly what ``score`` would give on
    the items at those indices (which may repeat), from statistics computed once; see
    :func:`quintet.evaluation.bootstrap.sacrebleu_resampler` and
    :func:`quintet.evaluation.bootstrap.mean_resampler`. Without it the runner rescores each
    resample
    with :meth:`score`, which is exact but slower.

    Optional: ``restore(run, settings) -> EvalSet``, given the ``settings`` a predictor
    recorded, returns ``run`` with the scoring state that only the opened model knows (a
    classifier's own label names). The runner calls it after predicting (``open`` may have
    run in another process, so it cannot change ``run`` itself); ``quintet eval compare``
    calls it with a finished run's ``report.json`` settings, so runs can be rescored
    without their model.
    """

    task: str
    primary_metric: str  # the usual headline; the run's own is EvalSet.primary_metric
    higher_is_better: dict[str, bool]  # for every metric name the task reports

    def read(self, data: str, options: DataOptions) -> EvalSet:
        """Read a dataset file (already local) into items and the run's state; no model work.

        Raises :class:`quintet.core.data.DataError` naming file and line for a bad file.
        """
        ...

    def open(
        self, run: EvalSet, model: str | None, decode: dict[str, Any], options: DataOptions
    ) -> Predictor:
        """Open the task's app on ``model`` (None: the task's default) with decode options,
        for the data ``run`` holds (``run`` is read, never changed)."""
        ...

    def score(
        self, run: EvalSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]
    ) -> Scores:
        """Score predictions against ``items``' references (corpus-level metrics); ``items``
        are ``run``'s or a subset of them (a category, a bootstrap resample)."""
        ...
