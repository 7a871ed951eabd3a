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
import inspect
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quintet.core.errors import QuintetError
from quintet.core.locks import exclusive_output
from quintet.core.paths import shipped_or_given
from quintet.core.progress import ProgressCallback, progress_callback
from quintet.core.store import default_home
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

if TYPE_CHECKING:
    from quintet.core.cluster import ClusterOptions


class EvaluationError(QuintetError):
    """An evaluation cannot run as asked (mismatched resume, bad predictions file ...)."""


def check_resamples(resamples: int) -> None:
    """Refuse a negative ``--bootstrap`` count rather than silently drawing none."""
    if resamples < 0:
        raise EvaluationError(
            f"--bootstrap must be 0 (no intervals) or a positive number of resamples "
            f"(got {resamples})"
        )


def evaluate(
    task: str,
    model: str | None = None,
    data: str | None = None,
    *,
    limit: int | None = None,
    out: str | os.PathLike | None = None,
    decode: dict[str, Any] | None = None,
    options: DataOptions | None = None,
    batch_size: int = 16,
    bootstrap: int = 1000,
    bootstrap_seconds: float = 30.0,
    progress: bool | ProgressCallback = True,
    predictions_file: str | None = None,
    cluster: ClusterOptions | None = None,
) -> Report:
    """Evaluate ``model`` on ``task`` over ``data`` and write the report files to ``out``.

    Args:
        task: translation, summarization, qa, classification or chat.
        model: a model name, hub id or directory; None: the task's default.
        data: a dataset file, ``hf:NAME[:CONFIG]:SPLIT``, or None when ``options`` names
            plain source/reference files (translation).
        limit: evaluate only the first ``limit`` items.
        out: the run folder (default ``$QUINTET_HOME/eval/<task>-<model>-<data>-<time>``).
            A folder that already holds some predictions of the same run is resumed (only
            the missing items run); one holding another evaluation is refused.
        decode: decoding options for generative tasks (``DecodeConfig`` fields).
        options: field names and task options for reading the data.
        batch_size: items per call of the app; each finished batch is written at once, so
            a killed run loses at most the batch in flight.
        bootstrap: resamples for the 95% intervals (0: none); capped at
            ``bootstrap_seconds`` of resampling (at least 20 are always drawn).
        progress: a tqdm bar (True), nothing (False), or ``callback(done, total)`` called
            after every batch.
        predictions_file: score these predictions instead of running a model: plain text,
            one per line (read as the sacrebleu command line reads a system output), JSONL
            with ``id``/``prediction``, or SQuAD's ``{id: answer}`` JSON.
        cluster: predict on Ray actors (:mod:`quintet.core.cluster`) instead of in this process:
            the same batches, predictions, resume and report.

    Raises:
        DataError: a bad data or predictions file (``file:line`` and what was expected),
            before any model is loaded.
        EvaluationError: an ``out`` folder of another evaluation, a bad limit, no items.
        OutputInUseError: another run is writing ``out`` now.
    """
    options = options or DataOptions()
    if out is None:
        who = Path(predictions_file).stem if predictions_file is not None else model or "default"
        out = default_out_dir(task, who, data or options.source_file or "")
    # One writer per run folder: two would append to the same predictions.jsonl.
    with exclusive_output(out):
        return _evaluate(
            task, model, data, limit=limit, out_dir=Path(out), decode=decode, options=options,
            batch_size=batch_size, bootstrap=bootstrap, bootstrap_seconds=bootstrap_seconds,
            progress=progress, predictions_file=predictions_file, cluster=cluster,
        )  # fmt: skip


def _evaluate(
    task: str,
    model: str | None,
    data: str | None,
    *,
    limit: int | None,
    out_dir: Path,
    decode: dict[str, Any] | None,
    options: DataOptions,
    batch_size: int,
    bootstrap: int,
    bootstrap_seconds: float,
    progress: bool | ProgressCallback,
    predictions_file: str | None,
    cluster: ClusterOptions | None = None,
) -> Report:
    """:func:`evaluate` into the run folder ``out_dir``, whose lock the caller holds."""
    started = time.perf_counter()  # total time: reading, predicting and scoring
    decode = dict(decode or {})
    harness = get_harness(task)
    if limit is not None and limit < 1:
        raise EvaluationError(f"--limit must be at least 1 (got {limit})")
    if batch_size < 1:
        raise EvaluationError(f"--batch-size must be at least 1 (got {batch_size})")
    check_resamples(bootstrap)
    if cluster is not None and predictions_file is not None:
        raise EvaluationError("--ray runs a model; --predictions scores a file: not both")
    # All reading (and its errors, with file:line) happens here, before any model work.
    data_path = _local_data(data)
    eval_set = harness.read(data_path or "", options)  # this evaluation's own state
    all_items = _unique_ids(eval_set.items)
    items = all_items[:limit] if limit is not None else all_items
    eval_set = replace(eval_set, items=items)
    if not items:
        raise EvaluationError(f"{data or options.source_file}: no examples to evaluate")
    dataset = data or options.source_file or ""

    if predictions_file is not None:
        predictions = pred_io.read_given(predictions_file, items, total=len(all_items))
        model_name, settings, seconds = f"predictions:{Path(predictions_file).name}", {}, 0.0
        run = _run_key(task, model_name, dataset, {}, options)
        _claim(out_dir, run, resumable=False)
        _write_state(out_dir / "run.json", run, model_name, settings, 0.0)
        device, earlier = "", 0.0
    else:
        predictions, model_name, settings, seconds, earlier = _predict(
            harness,
            eval_set,
            items,
            model,
            decode,
            options,
            out_dir,
            dataset,
            batch_size,
            progress,
            _fingerprint(all_items),
            cluster,
        )
        device = _device(settings) if cluster is None else _cluster_device(cluster)
        restore = getattr(harness, "restore", None)
        if callable(restore):  # scoring state only the opened model knows (label names)
            eval_set = restore(eval_set, settings)
    scores = harness.score(eval_set, items, predictions)
    _check_scores(harness, scores, items)
    per_category = _per_category(harness, eval_set, items, predictions)
    intervals, boot = bootstrap_intervals(
        make_scorer(harness, eval_set, items, predictions, scores),
        len(items),
        resamples=bootstrap,
        max_seconds=bootstrap_seconds,
    )
    report = Report(
        task=task,
        model=model_name,
        dataset=str(dataset),
        n=len(items),
        metrics=scores.metrics,
        intervals=intervals,
        signatures=scores.signatures,
        per_category=per_category,
        decode=decode,
        settings=settings,
        # A resumed run's total includes the predicting its earlier, interrupted runs did.
        timing=_timing(predictions, seconds, time.perf_counter() - started + earlier),
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


def _predict(
    harness: TaskHarness,
    eval_set: EvalSet,
    items: list[EvalItem],
    model: str | None,
    decode: dict[str, Any],
    options: DataOptions,
    out_dir: Path,
    dataset: str,
    batch_size: int,
    progress: bool | ProgressCallback,
    fingerprint: str = "",
    cluster: ClusterOptions | None = None,
) -> tuple[list[Prediction], str, dict[str, Any], float, float]:
    """Run the app on every item not already predicted in ``out_dir``; returns predictions
    in item order, the model actually used, its settings, the seconds spent predicting (this
    run and the runs it resumes) and the part of those the resumed runs spent."""
    run = _run_key(harness.task, model, dataset, decode, options)
    state = _claim(out_dir, run, resumable=True)
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

    if cluster is None:
        predictor = harness.open(eval_set, model, decode, options)
        model_name, settings = predictor.model_name, dict(predictor.settings)
        batches = _local_batches(
            predictor, todo, batch_size, lambda finished: report(len(done) + finished, len(items))
        )
    else:
        from quintet.evaluation.cluster import predict_on_cluster

        opened, batches = predict_on_cluster(
            harness, eval_set, model, decode, options, todo, batch_size, cluster
        )
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
    _write_state(state_path, run, model_name, settings, previous_seconds, fingerprint)
    report = progress_callback(progress, len(items), desc="evaluating", unit="ex")
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
            _write_state(state_path, run, model_name, settings, seconds, fingerprint)
            report(len(done), len(items))
            began = time.perf_counter()
    return [done[item.id] for item in items], model_name, settings, seconds, previous_seconds


def _local_batches(
    predictor: Any,
    todo: list[EvalItem],
    batch_size: int,
    within_batch: Callable[[int], None],
) -> Iterator[tuple[list[EvalItem], list[Prediction]]]:
    """``(batch, predictions)`` for each batch of ``todo``, predicted in this process;
    ``within_batch(items)`` hears how many items of the current batch are done so far."""
    reports = _takes_progress(predictor.predict)
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


def _takes_progress(predict: Callable[..., Any]) -> bool:
    """Whether ``predict`` takes ``progress=``: plugins written before it was added (and
    wrappers of ``predict(items)``) are called as they were, and report per batch."""
    try:
        parameters = inspect.signature(predict).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(text).name if text else "data").strip("-")[:40]


def default_out_dir(task: str, model: str, dataset: str) -> Path:
    """``$QUINTET_HOME/eval/<task>-<model>-<dataset>-<timestamp>``, where a run is written
    when no ``out`` is given."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return default_home() / "eval" / f"{task}-{_slug(model)}-{_slug(dataset)}-{stamp}"


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
