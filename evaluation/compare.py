"""Compare evaluation runs of several models on the same data: ``quintet eval compare``.

Each run folder holds ``report.json`` and ``predictions.jsonl``; the items are rebuilt from
the predictions file (it keeps inputs and references), so a comparison needs no dataset and
no model. Every run is compared with the first by a paired bootstrap over the same items.

Runs must be of the same task on the same items: the same ids with the same references
(the dataset path may differ, e.g. the same file in two places). Anything else is refused
rather than intersected, since a difference measured on different items means nothing.

Example::

    >>> result = compare(["runs/a", "runs/b"], "runs/a-vs-b")          # doctest: +SKIP
    >>> result["runs"][1]["versus_first"]["bleu"]["p_value"]            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from quintet.core.errors import QuintetError
from quintet.evaluation.bootstrap import make_scorer, paired_bootstrap
from quintet.evaluation.protocol import DataOptions, EvalItem, EvalSet, Prediction, Scores
from quintet.evaluation.registry import get_harness
from quintet.evaluation.render import CSS, atomic_write, escape, fmt, html_table, md_table
from quintet.evaluation.run import EvaluationError, check_resamples
from quintet.evaluation.svg import bars

SIGNIFICANCE = 0.05


def load_run(run_dir: str | os.PathLike) -> tuple[dict, list[EvalItem], list[Prediction]]:
    """A run's report and its items and predictions, rebuilt from ``predictions.jsonl``."""
    folder = Path(run_dir)
    report_path, predictions_path = folder / "report.json", folder / "predictions.jsonl"
    if not report_path.is_file() or not predictions_path.is_file():
        raise EvaluationError(
            f"{folder}: not an evaluation run (needs report.json and predictions.jsonl)"
        )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise EvaluationError(f"{report_path}: not valid JSON; run the evaluation again") from None
    items, predictions = [], []
    lines = predictions_path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["id"], record["prediction"]  # noqa: B018 - both are required
        except (json.JSONDecodeError, KeyError, TypeError):
            raise EvaluationError(
                f"{predictions_path}:{number}: not a prediction record; was this run finished?"
            ) from None
        items.append(
            EvalItem(
                record["id"],
                record.get("inputs") or {},
                record.get("references"),
                record.get("category", ""),
            )
        )
        predictions.append(Prediction(record["id"], record["prediction"], record.get("extra", {})))
    return report, items, predictions


def compare(
    run_dirs: list[str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    resamples: int = 1000,
    max_seconds: float = 60.0,
) -> dict[str, Any]:
    """Compare runs on the same items; writes ``comparison.{json,md,html}`` to ``out``.

    Each run is rescored by its own copy of the task harness, prepared as it was for the
    run (its dataset read again with the run's options where the file is still there, then
    ``harness.restore(settings)`` where the harness has it), and that rescoring must give the
    metrics its ``report.json`` holds: a run that cannot be rescored faithfully is refused
    rather than compared on wrong numbers.

    Raises:
        EvaluationError: fewer than two runs, different tasks, different items, or a run
            whose metrics cannot be reproduced.
    """
    if len(run_dirs) < 2:
        raise EvaluationError("compare needs at least two run folders")
    check_resamples(resamples)
    runs = [load_run(d) for d in run_dirs]
    base_report, base_items, base_predictions = runs[0]
    task = base_report["task"]
    for (report, items, _), folder in zip(runs[1:], run_dirs[1:], strict=True):
        if report["task"] != task:
            raise EvaluationError(f"{folder} is a {report['task']} run, {run_dirs[0]} {task}")
        _check_same_items(base_items, items, run_dirs[0], folder)
    metrics = list(base_report["metrics"])

    def scorer(report: dict, predictions: list[Prediction], folder: Any):
        # Every run is scored against the first run's items (same ids and references).
        by_id = {p.id: p for p in predictions}
        aligned = [by_id[item.id] for item in base_items]
        harness, eval_set, run, options = _prepared_harness(task, report, folder)
        try:
            scores = _check_reproduced(harness, eval_set, report, base_items, aligned, folder)
        except EvaluationError:
            # Scoring state that only the opened model knows and the report's settings do
            # not hold: open the run's model again, where it is at hand, and retry once.
            eval_set = _reopened(harness, eval_set, run, options)
            if eval_set is None:
                raise
            scores = _check_reproduced(harness, eval_set, report, base_items, aligned, folder)
        return make_scorer(harness, eval_set, base_items, aligned, scores)

    base_score = scorer(base_report, base_predictions, run_dirs[0])
    rows = []
    for index, ((report, _items, predictions), folder) in enumerate(
        zip(runs, run_dirs, strict=True)
    ):
        entry = {
            "run": str(folder),
            "model": report["model"],
            "decode": report.get("decode", {}),
            "metrics": report["metrics"],
            "intervals": report.get("intervals", {}),
            "timing": report.get("timing", {}),
        }
        if index > 0:
            entry["versus_first"] = paired_bootstrap(
                base_score,
                scorer(report, predictions, folder),
                len(base_items),
                metrics,
                resamples=resamples,
                max_seconds=max_seconds,
            )
        rows.append(entry)
    result = {
        "task": task,
        "dataset": base_report["dataset"],
        "datasets": sorted({str(report["dataset"]) for report, _, _ in runs}),
        "n": len(base_items),
        "metrics": metrics,
        "higher_is_better": base_report.get("higher_is_better", {}),
        "runs": rows,
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    out_dir = Path(out) if out else Path(run_dirs[0]).parent / f"compare-{task}-{_stamp()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(
        out_dir / "comparison.json", json.dumps(result, indent=2, ensure_ascii=False, default=str)
    )
    atomic_write(out_dir / "comparison.md", render_markdown(result))
    atomic_write(out_dir / "comparison.html", render_html(result))
    result["out_dir"] = str(out_dir)
    return result


def _prepared_harness(
    task: str, report: dict, folder: Any
) -> tuple[Any, EvalSet, dict, DataOptions]:
    """The task harness, the run's :class:`EvalSet` in the state it was scored in, the run's
    identity (``run.json``) and its data options.

    The state comes from ``read`` (translation: the target language's tokenizer;
    classification: label maps) and from the report's settings through ``restore`` (a
    classifier's own label names); each run has its own, so two runs with different states
    stay apart during the paired bootstrap.
    """
    harness = get_harness(task)
    state_path = Path(folder) / "run.json"
    run = {}
    if state_path.is_file():
        try:
            run = json.loads(state_path.read_text(encoding="utf-8")).get("run") or {}
        except json.JSONDecodeError:
            run = {}
    data = _local_dataset(str(run.get("dataset") or report.get("dataset") or ""))
    options = _options(run.get("options") or {})
    # Without the data file, the items rebuilt from the predictions and no read state.
    eval_set = EvalSet([], report.get("primary_metric", ""))
    if data is not None or options.source_file:
        # The data moved or changed: the reproduction check decides whether that matters.
        with contextlib.suppress(QuintetError, OSError):
            eval_set = harness.read(data or "", options)
    return harness, _restored(harness, eval_set, report.get("settings") or {}), run, options


def _restored(harness: Any, eval_set: EvalSet, settings: dict[str, Any]) -> EvalSet:
    restore = getattr(harness, "restore", None)
    return restore(eval_set, settings) if callable(restore) else eval_set


def _reopened(harness: Any, eval_set: EvalSet, run: dict, options: DataOptions) -> EvalSet | None:
    """``eval_set`` with the state the run's model gives when opened again; None if it
    cannot be: a scored predictions file, or a model that is not available here."""
    model = run.get("model")
    if not model or str(model).startswith("predictions:"):
        return None
    try:
        predictor = harness.open(eval_set, model, run.get("decode") or {}, options)
    except (QuintetError, OSError):
        return None
    return _restored(harness, eval_set, dict(predictor.settings))


def _local_dataset(dataset: str) -> str | None:
    if dataset.startswith("hf:"):
        # Only hf: data needs the hub client (evaluation.datasets imports huggingface_hub).
        from quintet.evaluation.datasets import local_path

        path = local_path(dataset)
        return str(path) if path.is_file() else None
    return dataset if dataset and Path(dataset).exists() else None


def _options(saved: dict[str, Any]) -> DataOptions:
    known = {f.name for f in fields(DataOptions)}
    values = {k: v for k, v in saved.items() if k in known}
    if "reference_files" in values:
        values["reference_files"] = tuple(values["reference_files"])
    return DataOptions(**values)


def _check_reproduced(
    harness: Any,
    eval_set: EvalSet,
    report: dict,
    items: list[EvalItem],
    predictions: list[Prediction],
    folder: Any,
) -> Scores:
    """Refuse a run whose predictions no longer score to the metrics its report holds;
    returns the scores."""
    scores = harness.score(eval_set, items, predictions)
    again = scores.metrics
    for name, value in report.get("metrics", {}).items():
        mine = again.get(name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if not isinstance(mine, int | float) or abs(mine - value) > 1e-6 * max(1.0, abs(value)):
            raise EvaluationError(
                f"{folder}: rescoring its predictions gives {name} {mine} but its report says "
                f"{value}; its data file or options changed, or the {report['task']} harness "
                "cannot restore how it scored this run: run both evaluations again"
            )
    return scores


def _check_same_items(
    base: list[EvalItem], items: list[EvalItem], base_dir: object, folder: object
) -> None:
    """Refuse runs on different items: other ids, or the same ids with other references."""
    ours, theirs = {i.id: i for i in base}, {i.id: i for i in items}
    if ours.keys() != theirs.keys():
        only = sorted(ours.keys() ^ theirs.keys())
        raise EvaluationError(
            f"{folder} was not run on the same items as {base_dir} ({len(items)} vs "
            f"{len(base)} items; e.g. id {only[0]!r} is in only one): compare runs of the same "
            "dataset with the same number of examples (--limit)"
        )
    for key, item in ours.items():
        if _canonical(item.references) != _canonical(theirs[key].references):
            raise EvaluationError(
                f"{folder} and {base_dir} have different references for item {key!r}: "
                "compare runs of the same dataset (and the same data options)"
            )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _delta_cell(entry: dict, metric: str) -> str:
    test = entry.get("versus_first", {}).get(metric)
    if not test:
        return "(baseline)"
    mark = " *" if test["p_value"] < SIGNIFICANCE else ""
    interval = f"[{test['low']:+.2f}, {test['high']:+.2f}]"
    return f"{test['delta']:+.2f} {interval} p={test['p_value']:.3f}{mark}"


def _labels(result: dict) -> list[str]:
    """What names each run: its model, or model and run folder where a model repeats."""
    models = [entry["model"] for entry in result["runs"]]
    labels = [
        f"{entry['model']} ({Path(entry['run']).name})" if models.count(entry["model"]) > 1
        else entry["model"]
        for entry in result["runs"]
    ]  # fmt: skip
    # Still the same (one folder given twice): number them, or charts would merge them.
    return [f"{x} #{i + 1}" if labels.count(x) > 1 else x for i, x in enumerate(labels)]


def _resamples(result: dict) -> int:
    tests = [t for e in result["runs"] for t in e.get("versus_first", {}).values()]
    return max((t["resamples"] for t in tests), default=0)


def _rows(result: dict) -> list[list[Any]]:
    return [
        [
            label,
            *(fmt(entry["metrics"].get(m, "")) for m in result["metrics"]),
            *(_delta_cell(entry, m) for m in result["metrics"]),
        ]
        for label, entry in zip(_labels(result), result["runs"], strict=True)
    ]


def _columns(result: dict) -> list[str]:
    metrics = result["metrics"]
    better = result.get("higher_is_better", {})
    arrows = {m: "↑" if better.get(m, True) else "↓" for m in metrics}
    return ["model", *(f"{m} {arrows[m]}" for m in metrics),
            *(f"Δ {m} vs first" for m in metrics)]  # fmt: skip


def _explanation(result: dict) -> str:
    return (
        f"Δ: difference from the first run with its 95% paired-bootstrap interval and two-sided "
        f"p-value ({_resamples(result)} resamples of the same items); * marks p < "
        f"{SIGNIFICANCE}; ↑/↓: higher/lower is better."
    )


def render_markdown(result: dict) -> str:
    """The comparison as a Markdown table (* marks p < 0.05)."""
    return (
        f"# {result['task']} comparison on `{result['dataset']}` ({result['n']} items)\n\n"
        + md_table(_columns(result), _rows(result))
        + "\n"
        + _explanation(result)
        + "\n"
    )


def render_html(result: dict) -> str:
    """The comparison as one self-contained HTML page with a bar chart per metric."""
    labels = _labels(result)
    charts = "".join(
        bars(
            {k: e["metrics"].get(m, 0.0) for k, e in zip(labels, result["runs"], strict=True)},
            m,
            intervals={
                k: e["intervals"].get(m) for k, e in zip(labels, result["runs"], strict=True)
            },
        )
        for m in result["metrics"]
    )
    body = (
        f"<h1>{escape(result['task'])} comparison</h1><p class='muted'>Dataset "
        f"<code>{html.escape(str(result['dataset']))}</code>, {result['n']} items. "
        f"{escape(_explanation(result))}</p>"
        + html_table(_columns(result), _rows(result))
        + f"<div class='plots'>{charts}</div>"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>comparison</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
