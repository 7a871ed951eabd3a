"""Compare evaluation runs of several models on the same data: ``quintet eval compare``.

Each run folder holds ``report.json`` and ``predictions.jsonl``; the items are rebuilt from
the predictions file (it keeps inputs and references), so a comparison needs no dataset and
no model. Every run is compared with the first by a paired bootstrap over the same items.
"""

from __future__ import annotations

import html
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from evaluation.bootstrap import paired_bootstrap
from evaluation.harness import EvaluationError
from evaluation.protocol import EvalItem, Prediction
from evaluation.registry import get_harness
from evaluation.report import _e, _fmt, _html_table, _md_table
from evaluation.svg import bars

SIGNIFICANCE = 0.05


def load_run(run_dir: str | os.PathLike) -> tuple[dict, list[EvalItem], list[Prediction]]:
    """A run's report and its items and predictions, rebuilt from ``predictions.jsonl``."""
    folder = Path(run_dir)
    report_path, predictions_path = folder / "report.json", folder / "predictions.jsonl"
    if not report_path.is_file() or not predictions_path.is_file():
        raise EvaluationError(
            f"{folder}: not an evaluation run (needs report.json and predictions.jsonl)"
        )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    items, predictions = [], []
    for line in predictions_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
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

    Raises:
        EvaluationError: fewer than two runs, different tasks, or different items.
    """
    if len(run_dirs) < 2:
        raise EvaluationError("compare needs at least two run folders")
    runs = [load_run(d) for d in run_dirs]
    base_report, base_items, base_predictions = runs[0]
    task = base_report["task"]
    harness = get_harness(task)
    ids = [item.id for item in base_items]
    for (report, items, _), folder in zip(runs[1:], run_dirs[1:], strict=True):
        if report["task"] != task:
            raise EvaluationError(f"{folder} is a {report['task']} run, {run_dirs[0]} {task}")
        if sorted(i.id for i in items) != sorted(ids):
            raise EvaluationError(
                f"{folder} was not run on the same items as {run_dirs[0]} "
                f"({len(items)} vs {len(base_items)} items, or different ids): compare runs "
                "of the same dataset and --limit"
            )
    metrics = list(base_report["metrics"])

    def scorer(items: list[EvalItem], predictions: list[Prediction]):
        by_id = {p.id: p for p in predictions}
        aligned = [by_id[item.id] for item in base_items]

        def score(idx):
            return harness.score([base_items[i] for i in idx], [aligned[i] for i in idx]).metrics

        return score

    base_score = scorer(base_items, base_predictions)
    rows = []
    for (report, items, predictions), folder in zip(runs, run_dirs, strict=True):
        entry = {
            "run": str(folder),
            "model": report["model"],
            "metrics": report["metrics"],
            "intervals": report.get("intervals", {}),
            "timing": report.get("timing", {}),
        }
        if folder is not run_dirs[0]:
            entry["versus_first"] = paired_bootstrap(
                base_score,
                scorer(items, predictions),
                len(base_items),
                metrics,
                resamples=resamples,
                max_seconds=max_seconds,
            )
        rows.append(entry)
    result = {
        "task": task,
        "dataset": base_report["dataset"],
        "n": len(base_items),
        "metrics": metrics,
        "higher_is_better": base_report.get("higher_is_better", {}),
        "runs": rows,
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    out_dir = Path(out) if out else Path(run_dirs[0]).parent / f"compare-{task}-{_stamp()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.json").write_text(json.dumps(result, indent=2, default=str))
    (out_dir / "comparison.md").write_text(render_markdown(result))
    (out_dir / "comparison.html").write_text(render_html(result))
    result["out_dir"] = str(out_dir)
    return result


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _delta_cell(entry: dict, metric: str) -> str:
    test = entry.get("versus_first", {}).get(metric)
    if not test:
        return "(baseline)"
    mark = " *" if test["p_value"] < SIGNIFICANCE else ""
    interval = f"[{test['low']:+.2f}, {test['high']:+.2f}]"
    return f"{test['delta']:+.2f} {interval} p={test['p_value']:.3f}{mark}"


def _rows(result: dict) -> list[list[Any]]:
    return [
        [
            entry["model"],
            *(_fmt(entry["metrics"].get(m, "")) for m in result["metrics"]),
            *(_delta_cell(entry, m) for m in result["metrics"]),
        ]
        for entry in result["runs"]
    ]


def _columns(result: dict) -> list[str]:
    metrics = result["metrics"]
    return ["model", *metrics, *(f"Δ {m} vs first" for m in metrics)]


def render_markdown(result: dict) -> str:
    """The comparison as a Markdown table (* marks p < 0.05)."""
    return (
        f"# {result['task']} comparison on `{result['dataset']}` ({result['n']} items)\n\n"
        + _md_table(_columns(result), _rows(result))
        + "\nΔ: difference from the first run with its 95% paired-bootstrap interval and "
        f"p-value; * marks p < {SIGNIFICANCE}.\n"
    )


def render_html(result: dict) -> str:
    """The comparison as one self-contained HTML page with a bar chart per metric."""
    from evaluation.report import _CSS

    charts = "".join(
        bars(
            {e["model"]: e["metrics"].get(m, 0.0) for e in result["runs"]},
            m,
            intervals={e["model"]: e["intervals"].get(m) for e in result["runs"]},
        )
        for m in result["metrics"]
    )
    body = (
        f"<h1>{_e(result['task'])} comparison</h1><p class='muted'>Dataset "
        f"<code>{html.escape(str(result['dataset']))}</code>, {result['n']} items. Δ: "
        "difference from the first run, 95% paired-bootstrap interval, p-value; * marks "
        f"p &lt; {SIGNIFICANCE}.</p>"
        + _html_table(_columns(result), _rows(result))
        + f"<div class='plots'>{charts}</div>"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>comparison</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
