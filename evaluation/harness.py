"""The shared evaluation runner: ``evaluate(task, model, data) -> Report``.

What is the same for every task lives here: reading the data before any model work,
resuming from ``predictions.jsonl``, batching with progress, timing, scoring on the corpus,
per-category scores, bootstrap confidence intervals, and writing the report files. What
differs (reading a format, calling the app, the metrics) is the task harness's job
(:mod:`quintet.evaluation.protocol`).

Example::

    >>> from evaluation.harness import evaluate
    >>> report = evaluate("qa", "minilm-l6-squad", "data/qa/squad_v1.1/heldout.json",
    ...                   limit=200, out="runs/qa")                        # doctest: +SKIP
    >>> report.metrics["f1"], report.intervals["f1"]                       # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quintet.core.locks import exclusive_output
from quintet.core.paths import shipped_or_given
from quintet.core.progress import progress_callback
from quintet.evaluation import predictions as pred_io
from quintet.evaluation.bootstrap import bootstrap_intervals, make_scorer
from quintet.evaluation.protocol import (
    DataOptions,
    EvalItem,
    EvalSet,
    Prediction,
    Scores,
    TaskHarness,
)
from quintet.evaluation.registry import get_harness
from quintet.evaluation.report import Report, write_report
from quintet.evaluation.run import (
    EvalRun,
    EvaluationError,
    accepts_keyword,
    check_resamples,
    default_out_dir,
    open_predictor,
)

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions

# The run's settings and errors live in evaluation.run; importing them from here still works.
__all__ = [
    "EvalRun",
    "EvaluationError",
    "Predicted",
    "check_resamples",
    "default_out_dir",
    "evaluate",
    "run_evaluation",
]


def evaluate(
    task: str, model: str | None = None, data: str | None = None, **settings: Any
) -> Report:
    """Evaluate ``model`` on ``task`` over ``data`` and write the report files.

    The keywords are :class:`~quintet.evaluation.run.EvalRun`'s fields (``limit``, ``out``,
    ``backend``, ``decode``, ``options``, ``batch_size``, ``bootstrap``,
    ``bootstrap_seconds``, ``progress``, ``predictions_file``, ``cluster``); see there.

    Raises:
        DataError: a bad data or predictions file (``file:line`` and what was expected),
            before any model is loaded.
        EvaluationError: an ``out`` folder of another evaluation, a bad limit, no items.
        OutputInUseError: another run is writing ``out`` now.
        TypeError: a keyword that is no setting of a run.
    """
    return run_evaluation(EvalRun(task, model, data, **settings))


def run_evaluation(run: EvalRun) -> Report:
    """Evaluate as ``run`` says; see :func:`evaluate`."""
    out_dir = run.out_dir()
    # One writer per run folder: two would append to the same predictions.jsonl.
    with exclusive_output(out_dir):
        return _evaluate(replace(run, out=out_dir))


def _evaluate(run: EvalRun) -> Report:
    """:func:`run_evaluation` into the run folder ``run.out``, whose lock the caller holds."""
    started = time.perf_counter()  # total time: reading, predicting and scoring
    out_dir = Path(run.out)
    harness = get_harness(run.task)
    run.check()
    # All reading (and its errors, with file:line) happens here, before any model work.
    data_path = _local_data(run.data)
    eval_set = harness.read(data_path or "", run.options)  # this evaluation's own state
    all_items = _unique_ids(eval_set.items)
    items = all_items[: run.limit] if run.limit is not None else all_items
    eval_set = replace(eval_set, items=items)
    if not items:
        raise EvaluationError(f"{run.dataset}: no examples to evaluate")

    if run.predictions_file is not None:
        predictions = pred_io.read_given(run.predictions_file, items, total=len(all_items))
        name = f"predictions:{Path(run.predictions_file).name}"
        predicted = Predicted(predictions, name, {}, 0.0, 0.0)
        key = _run_key(run.task, name, run.dataset, {}, run.options)
        _claim(out_dir, key, resumable=False)
        _write_state(out_dir / "run.json", key, name, {}, 0.0)
        device = ""
    else:
        predicted = _predict(harness, eval_set, items, run, _fingerprint(all_items))
        device = (
            _device(predicted.settings) if run.cluster is None else _cluster_device(run.cluster)
        )
        restore = getattr(harness, "restore", None)
        if callable(restore):  # scoring state only the opened model knows (label names)
            eval_set = restore(eval_set, predicted.settings)
    predictions = predicted.predictions
    scores = harness.score(eval_set, items, predictions)
    _check_scores(harness, scores, items)
    per_category = _per_category(harness, eval_set, items, predictions)
    intervals, boot = bootstrap_intervals(
        make_scorer(harness, eval_set, items, predictions, scores),
        len(items),
        resamples=run.bootstrap,
        max_seconds=run.bootstrap_seconds,
    )
    total_seconds = time.perf_counter() - started + predicted.earlier_seconds
    report = Report(
        task=run.task,
        model=predicted.model_name,
        dataset=str(run.dataset),
        n=len(items),
        metrics=scores.metrics,
        intervals=intervals,
        signatures=scores.signatures,
        per_category=per_category,
        decode=dict(run.decode),
        settings=predicted.settings,
        # A resumed run's total includes the predicting its earlier, interrupted runs did.
        timing=_timing(predictions, predicted.seconds, total_seconds),
        versions=_versions(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        primary_metric=eval_set.primary_metric,
        higher_is_better=dict(harness.higher_is_better),
        bootstrap=boot,
        sections=scores.sections,
        out_dir=str(out_dir),
        device=device,
    )
    write_report(report, items, predictions, scores, out_dir)
    return report


# Prediction with resume --------------------------------------------------------------------


@dataclass(frozen=True)
class Predicted:
    """What predicting a run gave: predictions in item order, the model actually used and
    its settings, the seconds spent predicting (this run and the runs it resumes) and the
    part of those the resumed runs spent."""

    predictions: list[Prediction]
    model_name: str
    settings: dict[str, Any]
    seconds: float
    earlier_seconds: float


def _predict(
    harness: TaskHarness,
    eval_set: EvalSet,
    items: list[EvalItem],
    run: EvalRun,
    fingerprint: str = "",
) -> Predicted:
    """Run the app on every item not already predicted in ``run.out``."""
    out_dir, dataset = Path(run.out), run.dataset
    key = _run_key(harness.task, run.model, dataset, run.decode, run.options)
    state = _claim(out_dir, key, resumable=True)
    state_path = out_dir / "run.json"
    log_path = out_dir / pred_io.LOG_NAME
    done: dict[str, Prediction] = {}
    previous_seconds = 0.0
    if state is not None:
        if state.get("data_fingerprint") not in (None, fingerprint):
            raise EvaluationError(
                f"{dataset} has changed since the run in {out_dir} began (other examples or "
                "references): its predictions cannot be resumed; choose another --out folder"
            )
        done = pred_io.read_log(log_path)
        previous_seconds = float(state.get("predict_seconds", 0.0))
    ids = {item.id for item in items}
    done = {k: v for k, v in done.items() if k in ids}
    todo = [item for item in items if item.id not in done]

    if run.cluster is None:
        predictor = open_predictor(harness, eval_set, run)
        model_name, settings = predictor.model_name, dict(predictor.settings)
        batches = _local_batches(
            predictor,
            todo,
            run.batch_size,
            lambda finished: report(len(done) + finished, len(items)),
        )
    else:
        from quintet.evaluation.cluster import predict_on_cluster

        opened, batches = predict_on_cluster(harness, eval_set, run, todo)
        model_name, settings = opened.model_name, dict(opened.settings)
    if done and state is not None and state.get("model_name") not in (None, model_name):
        # e.g. no --model: the default resolved to another model than the first time
        raise EvaluationError(
            f"{out_dir} holds predictions of {state['model_name']}, but this run opened "
            f"{model_name}; pass --model {state['model_name']} to resume, or another --out"
        )
    earlier_engine = ((state or {}).get("settings") or {}).get("backend")
    if done and earlier_engine not in (None, settings.get("backend")):
        # Int8 and fp32 engines give different outputs: one report must not mix them.
        raise EvaluationError(
            f"{out_dir} holds predictions decoded on {earlier_engine}, but this run opened "
            f"{settings.get('backend')}; resume with the same --backend, or use another --out"
        )
    _write_state(state_path, key, model_name, settings, previous_seconds, fingerprint)
    report = progress_callback(run.progress, len(items), desc="evaluating", unit="ex")
    report(len(done), len(items))
    seconds = previous_seconds
    with contextlib.closing(batches), pred_io.LogWriter(log_path) as log:
        began = time.perf_counter()
        for batch, outputs in batches:
            if len(outputs) != len(batch):
                raise EvaluationError(
                    f"the {harness.task} app returned {len(outputs)} predictions for "
                    f"{len(batch)} items"
                )
            seconds += time.perf_counter() - began
            for item, output in zip(batch, outputs, strict=True):
                output = Prediction(item.id, output.prediction, output.extra)
                log.append(output)
                done[item.id] = output
            _write_state(state_path, key, model_name, settings, seconds, fingerprint)
            report(len(done), len(items))
            began = time.perf_counter()
    predictions = [done[item.id] for item in items]
    return Predicted(predictions, model_name, settings, seconds, previous_seconds)


def _local_batches(
    predictor: Any,
    todo: list[EvalItem],
    batch_size: int,
    within_batch: Callable[[int], None],
) -> Iterator[tuple[list[EvalItem], list[Prediction]]]:
    """``(batch, predictions)`` for each batch of ``todo``, predicted in this process;
    ``within_batch(items)`` hears how many items of the current batch are done so far."""
    reports = accepts_keyword(predictor.predict, "progress")
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        if not reports:
            yield batch, predictor.predict(batch)
            continue

        def partial(done: int, total: int, size: int = len(batch)) -> None:
            # Whole items only: an item counts once all of its share of the work is done.
            if total > 0:
                within_batch(min(size, size * done // total))

        yield batch, predictor.predict(batch, progress=partial)


def _run_key(
    task: str, model: str | None, dataset: str, decode: dict[str, Any], options: DataOptions
) -> dict[str, Any]:
    """What must be equal for predictions in a run folder to be resumed (or compared)."""
    return {"task": task, "model": model, "dataset": str(dataset),
            "decode": json.loads(json.dumps(decode, default=str)),
            "options": _options_json(options)}  # fmt: skip


def _claim(out_dir: Path, run: dict[str, Any], *, resumable: bool) -> dict[str, Any] | None:
    """Check that ``out_dir`` is empty or holds this same run; returns its saved state.

    Predictions of another task, model, dataset, decoding or data options are refused, never
    mixed in; so is a ``predictions.jsonl`` that no run of ours wrote (no ``run.json``).
    """
    state_path, log_path = out_dir / "run.json", out_dir / pred_io.LOG_NAME
    state = None
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise EvaluationError(
                f"{state_path} is unreadable; delete {out_dir} or choose another --out"
            ) from None
        if state.get("run") != run:
            raise EvaluationError(
                f"{out_dir} holds a different evaluation ({_describe(state.get('run'))}, "
                f"this one: {_describe(run)}); choose another --out folder or delete it"
            )
    elif log_path.is_file() and log_path.stat().st_size:
        raise EvaluationError(
            f"{log_path} exists but no run.json says which evaluation wrote it; "
            "choose another --out folder (or, to score that file, --predictions FILE)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    return state if resumable else None


def _write_state(
    path: Path, run: dict, model: str, settings: dict, seconds: float, fingerprint: str = ""
) -> None:
    state = {"run": run, "model_name": model, "settings": settings, "predict_seconds": seconds}
    if fingerprint:
        state["data_fingerprint"] = fingerprint
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str))
    os.replace(tmp, path)


# Scoring helpers ---------------------------------------------------------------------------


def _check_scores(harness: TaskHarness, scores: Scores, items: Sequence[EvalItem]) -> None:
    if scores.per_item and len(scores.per_item) != len(items):
        raise EvaluationError(
            f"the {harness.task} harness scored {len(scores.per_item)} of {len(items)} items"
        )


def _per_category(
    harness: TaskHarness,
    eval_set: EvalSet,
    items: Sequence[EvalItem],
    predictions: Sequence[Prediction],
) -> dict[str, dict[str, Any]]:
    """Each category's metrics, computed on its own items (corpus metrics stay corpus-level)."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.category:
            groups.setdefault(item.category, []).append(i)
    if len(groups) < 2:
        return {}
    result = {}
    for name in sorted(groups):
        idx = groups[name]
        scores = harness.score(eval_set, [items[i] for i in idx], [predictions[i] for i in idx])
        result[name] = {"n": len(idx), **scores.metrics}
    return result


def _timing(predictions: Sequence[Prediction], predict_s: float, total_s: float) -> dict:
    tokens = sum(int(p.extra.get("num_tokens", 0) or 0) for p in predictions)
    timing = {
        "total_s": round(total_s, 3),
        "predict_s": round(predict_s, 3),
        "examples_per_s": round(len(predictions) / predict_s, 3) if predict_s > 0 else 0.0,
    }
    if tokens and predict_s > 0:
        timing["generated_tokens"] = tokens
        timing["tokens_per_s"] = round(tokens / predict_s, 2)
    return timing


# Small helpers -----------------------------------------------------------------------------


def _local_data(data: str | None) -> str | None:
    if data and data.startswith("hf:"):
        # Only hf: data needs the hub client (evaluation.datasets imports huggingface_hub).
        from quintet.evaluation.datasets import materialize

        return str(materialize(data))
    return shipped_or_given(data) if data else data


def _fingerprint(items: Sequence[EvalItem]) -> str:
    """A hash of every item's id, inputs and references: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for item in items:
        record = [item.id, item.inputs, item.references]
        digest.update(json.dumps(record, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _unique_ids(items: list[EvalItem]) -> list[EvalItem]:
    """Give every item a distinct id (``id#2`` for a repeat) so resume and compare work."""
    seen: dict[str, int] = {}
    result = []
    for index, item in enumerate(items):
        key = item.id or str(index + 1)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1 or key != item.id:
            key = key if seen[key] == 1 else f"{key}#{seen[key]}"
            item = EvalItem(key, item.inputs, item.references, item.category, item.source)
        result.append(item)
    return result


def _options_json(options: DataOptions) -> dict[str, Any]:
    return {k: v for k, v in asdict(options).items() if v not in (None, (), {})}


def _describe(run: dict | None) -> str:
    if not run:
        return "unknown"
    text = f"task {run.get('task')}, model {run.get('model')}, data {run.get('dataset')}"
    if run.get("decode"):
        text += f", decode {json.dumps(run['decode'], sort_keys=True)}"
    if run.get("options"):
        text += f", options {json.dumps(run['options'], sort_keys=True, default=str)}"
    return text


def _device(settings: dict[str, Any]) -> str:
    """Where the model ran, as :func:`quintet.core.devices.describe_device` says it."""
    # Imported here: scoring a predictions file never needs torch, and it is slow to import.
    import torch

    from quintet.core.devices import describe_device, pick_device

    named = settings.get("device")
    try:
        return describe_device(torch.device(named) if named else pick_device())
    except (RuntimeError, TypeError, ValueError):
        return str(named)


def _cluster_device(cluster: ClusterOptions) -> str:
    from quintet.evaluation.cluster import describe

    return describe(cluster)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("quintet", "torch", "transformers", "sacrebleu", "rouge-score"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    import platform

    found["python"] = platform.python_version()
    return found
