"""Report files: ``report.json``, ``predictions.jsonl``, ``report.md``, ``report.html``.

The file names and the keys of ``report.json`` are a contract other tools read
(docs/reports/README.md). The HTML is one self-contained file: inline CSS and SVG charts,
no scripts, no external requests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quintet.evaluation import svg
from quintet.evaluation.protocol import EvalItem, Prediction, Scores
from quintet.evaluation.render import CSS, atomic_write, escape, fmt, html_table, md_table

WORST_EXAMPLES = 10


@dataclass
class Report:
    """Everything ``report.json`` holds (see docs/reports/README.md: the output contract)."""

    task: str
    model: str
    dataset: str
    n: int
    metrics: dict[str, float]
    intervals: dict[str, list[float]]
    signatures: dict[str, str]
    per_category: dict[str, dict[str, Any]]
    decode: dict[str, Any]
    settings: dict[str, Any]
    timing: dict[str, float]
    versions: dict[str, str]
    date: str
    primary_metric: str
    higher_is_better: dict[str, bool]
    bootstrap: dict[str, Any]
    sections: dict[str, Any] = field(default_factory=dict)
    out_dir: str = ""
    device: str = ""  # where the model ran, e.g. "cpu (2 threads)"; "" for given predictions

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _input_words(item: EvalItem) -> int:
    """Length of an item's input in words (all string inputs; chat turns included)."""

    def words(value: Any) -> int:
        if isinstance(value, str):
            return len(value.split())
        if isinstance(value, dict):
            return sum(words(v) for k, v in value.items() if k != "role")
        if isinstance(value, list | tuple):
            return sum(words(v) for v in value)
        return 0

    return words(item.inputs)


def _short(value: Any, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _readable(value: Any) -> str:
    """An input, prediction or reference as a person reads it, not as JSON.

    ``{"text": t}`` -> ``t``; ``{"question": q, "context": c}`` -> ``question: q`` lines; chat
    messages -> ``role: content`` lines; a list of references -> one per line.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if len(value) == 1:
            return _readable(next(iter(value.values())))
        if set(value) >= {"role", "content"}:
            return f"{value['role']}: {_readable(value['content'])}"
        # Several fields (question and context): each kept short, so one long field (the
        # context) does not push the others out of the table.
        return "\n".join(f"{key}: {_short(_readable(v), 240)}" for key, v in value.items())
    if isinstance(value, list | tuple) and all(isinstance(v, str | dict) for v in value):
        # SQuAD lists the same gold answer once per annotator: show each answer once.
        return "\n".join(dict.fromkeys(_readable(v) for v in value))
    return json.dumps(value, ensure_ascii=False, default=str)


_TIMING_NAMES = {
    "total_s": "total time (s)",
    "predict_s": "predicting (s)",
    "examples_per_s": "examples / s",
    "generated_tokens": "generated tokens",
    "tokens_per_s": "generated tokens / s",
}


def _timing_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """Timing with readable names, then where it ran and how the intervals were made."""
    timing = dict(data["timing"])
    if str(data.get("model", "")).startswith("predictions:"):
        # Scored a given file: no model ran, so no prediction speed to report.
        timing = {"total_s": timing.get("total_s", 0.0)}
    rows: list[tuple[str, Any]] = [(_TIMING_NAMES.get(k, k), v) for k, v in timing.items()]
    if data.get("device"):
        rows.append(("device", data["device"]))
    boot = data.get("bootstrap") or {}
    if boot.get("resamples"):
        rows.append(("bootstrap resamples", boot["resamples"]))
    return rows


def _plotted_metric(primary: str, scores: Scores) -> str | None:
    """The primary metric if any item has it, else the first per-item metric there is."""
    if any(primary in row for row in scores.per_item):
        return primary
    return next((key for row in scores.per_item for key in row), None)


def worst_examples(
    report: Report, items: Sequence[EvalItem], predictions: Sequence[Prediction], scores: Scores
) -> list[dict[str, Any]]:
    """The items with the worst primary per-item score."""
    metric = _plotted_metric(report.primary_metric, scores)
    if metric is None:
        return []
    better_high = report.higher_is_better.get(metric, True)
    # Only items the metric applies to (e.g. chat: questions with a reference answer).
    scored = [i for i in range(len(items)) if metric in scores.per_item[i]]
    order = sorted(scored, key=lambda i: scores.per_item[i][metric], reverse=not better_high)
    return [
        {
            "id": items[i].id,
            "score": scores.per_item[i].get(metric),
            "metric": metric,
            "input": items[i].inputs,
            "prediction": predictions[i].prediction,
            "references": items[i].references,
            "source": items[i].source,
        }
        for i in order[:WORST_EXAMPLES]
    ]


def write_report(
    report: Report,
    items: Sequence[EvalItem],
    predictions: Sequence[Prediction],
    scores: Scores,
    out_dir: Path,
) -> None:
    """Write the four report files into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    data["worst_examples"] = worst_examples(report, items, predictions, scores)
    atomic_write(
        out_dir / "report.json", json.dumps(data, indent=2, ensure_ascii=False, default=str)
    )
    lines = []
    for i, (item, prediction) in enumerate(zip(items, predictions, strict=True)):
        record = {
            "id": item.id,
            "prediction": prediction.prediction,
            "references": item.references,
            "inputs": item.inputs,
            "category": item.category,
            "scores": scores.per_item[i] if scores.per_item else {},
            "extra": prediction.extra,
        }
        lines.append(json.dumps(record, ensure_ascii=False, default=str))
    atomic_write(out_dir / "predictions.jsonl", "\n".join(lines) + "\n")
    atomic_write(out_dir / "report.md", render_markdown(data))
    atomic_write(out_dir / "report.html", render_html(data, items, scores))


# Markdown ------------------------------------------------------------------------------------


def _metric_rows(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, value in data["metrics"].items():
        interval = data["intervals"].get(name)
        ci = f"[{fmt(interval[0])}, {fmt(interval[1])}]" if interval else ""
        arrow = "↑" if data["higher_is_better"].get(name, True) else "↓"
        rows.append((f"{name} {arrow}", fmt(value), ci))
    return rows


def _section_markdown(section: dict[str, Any]) -> str:
    kind, title = section.get("kind"), section.get("title", "")
    if kind == "table":
        return f"### {title}\n\n" + md_table(section["columns"], section["rows"])
    if kind == "confusion_matrix":
        labels = section["labels"]
        rows = [[f"**{g}**", *row] for g, row in zip(labels, section["matrix"], strict=True)]
        return f"### {title} (rows: gold, columns: predicted)\n\n" + md_table(
            ["gold \\ predicted", *labels], rows
        )
    if kind == "bar":
        return f"### {title}\n\n" + md_table(["", "value"], list(section["values"].items()))
    if kind == "text":
        return f"### {title}\n\n{section['body']}\n"
    return ""


def render_markdown(data: dict[str, Any]) -> str:
    """``report.md``: the report as Markdown tables."""
    out = [
        f"# {data['task']} evaluation: {data['model']}\n",
        f"Dataset `{data['dataset']}`, {data['n']} examples, {data['date']}.\n",
        "## Metrics\n",
        md_table(["metric", "value", "95% CI"], _metric_rows(data)),
    ]
    boot = data["bootstrap"]
    if boot.get("resamples"):
        n = boot["resamples"]
        out.append(f"\nIntervals: percentile bootstrap over items, {n} resamples.\n")
    if data["signatures"]:
        out.append("\n## How the metrics were computed\n")
        out += [f"- **{k}**: `{v}`" for k, v in data["signatures"].items()]
        out.append("")
    out.append("\n## Timing\n")
    out.append(md_table(["", "value"], _timing_rows(data)))
    settings = {**data["settings"], **({"decode": data["decode"]} if data["decode"] else {})}
    if settings:
        out.append("\n## Settings\n")
        out += [f"- {k}: `{json.dumps(v, default=str)}`" for k, v in settings.items()]
        out.append("")
    if data["per_category"]:
        out.append("\n## Per category\n")
        metrics = list(data["metrics"])
        rows = [
            [name, cat["n"], *(cat.get(m, "") for m in metrics)]
            for name, cat in data["per_category"].items()
        ]
        out.append(md_table(["category", "n", *metrics], rows))
    for section in data["sections"].values():
        out.append("\n" + _section_markdown(section))
    if data.get("worst_examples"):
        out.append("\n## Worst examples\n")
        rows = [
            [
                w["id"],
                w["score"],
                _short(_readable(w["input"]), 160),
                _short(_readable(w["prediction"]), 160),
                _short(_readable(w["references"]), 160),
            ]
            for w in data["worst_examples"]
        ]
        metric = data["worst_examples"][0]["metric"]
        out.append(md_table(["id", metric, "input", "prediction", "references"], rows))
    out.append(f"\nSoftware: {', '.join(f'{k} {v}' for k, v in data['versions'].items())}.\n")
    return "\n".join(out)


# HTML ----------------------------------------------------------------------------------------


def _section_html(section: dict[str, Any]) -> str:
    kind, title = section.get("kind"), section.get("title", "")
    if kind == "table":
        return f"<h3>{escape(title)}</h3>" + html_table(section["columns"], section["rows"])
    if kind == "confusion_matrix":
        return svg.heatmap(section["labels"], section["matrix"], title)
    if kind == "bar":
        return svg.bars(section["values"], title)
    if kind == "text":
        return f"<h3>{escape(title)}</h3><p>{escape(section['body'])}</p>"
    return ""


def render_html(data: dict[str, Any], items: Sequence[EvalItem], scores: Scores) -> str:
    """``report.html``: one self-contained page with the report and its charts."""
    cards = "".join(
        f'<div class="card"><div class="n">{escape(name)}</div><div class="v">{escape(value)}</div>'
        f'<div class="n">{escape(f"95% CI {ci}" if ci else "")}</div></div>'
        for name, value, ci in _metric_rows(data)
    )
    parts = [
        f"<h1>{escape(data['task'])} evaluation: {escape(data['model'])}</h1>",
        f'<p class="muted">Dataset <code>{escape(data["dataset"])}</code>, {data["n"]} '
        f"examples, {escape(data['date'])}. 95% bootstrap intervals over items "
        f"({data['bootstrap'].get('resamples', 0)} resamples).</p>",
        f'<div class="cards">{cards}</div>',
    ]
    if data["signatures"]:
        parts.append("<h2>How the metrics were computed</h2><ul>")
        parts += [
            f"<li><b>{escape(k)}</b>: <code>{escape(v)}</code></li>"
            for k, v in data["signatures"].items()
        ]
        parts.append("</ul>")
    settings = {**data["settings"], **({"decode": data["decode"]} if data["decode"] else {})}
    parts.append("<h2>Timing and settings</h2>")
    parts.append(
        html_table(
            ["", "value"],
            [
                *_timing_rows(data),
                *((k, json.dumps(v, default=str)) for k, v in settings.items()),
            ],
        )
    )

    plots = []
    metric = _plotted_metric(data["primary_metric"], scores)
    scored = [
        (item, row[metric])
        for item, row in zip(items, scores.per_item, strict=False)
        if isinstance(row.get(metric), int | float)
    ]
    if scored:
        values = [v for _, v in scored]
        plots.append(svg.histogram(values, f"Distribution of per-item {metric}", metric))
        points = [(_input_words(item), v) for item, v in scored]
        plots.append(svg.scatter(points, f"Input length vs {metric}", "input words", metric))
    if data["per_category"]:
        main = data["primary_metric"]
        values = {name: cat.get(main, 0.0) for name, cat in data["per_category"].items()}
        plots.append(svg.bars(values, f"{main} per category"))
    if plots:
        parts.append("<h2>Plots</h2><div class='plots'>" + "".join(plots) + "</div>")
    if data["per_category"]:
        metrics = list(data["metrics"])
        rows = [
            [name, cat["n"], *(cat.get(m, "") for m in metrics)]
            for name, cat in data["per_category"].items()
        ]
        parts.append("<h2>Per category</h2>" + html_table(["category", "n", *metrics], rows))
    if data["sections"]:
        parts.append("<h2>Details</h2>")
        parts += [_section_html(section) for section in data["sections"].values()]
    if data.get("worst_examples"):
        worst = data["worst_examples"]
        rows = [
            [
                w["id"],
                w["score"],
                _short(_readable(w["input"]), 600),
                _short(_readable(w["prediction"]), 400),
                _short(_readable(w["references"]), 400),
            ]
            for w in worst
        ]
        parts.append(f"<h2>Worst examples (lowest {escape(worst[0]['metric'])})</h2>")
        parts.append(
            html_table(
                ["id", worst[0]["metric"], "input", "prediction", "references"], rows, "wide"
            )
        )
    versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    parts.append(f'<p class="muted">Software: {escape(versions)}.</p>')
    title = f"{data['task']} evaluation: {data['model']}"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def rerender(run_dir: str | os.PathLike) -> None:
    """Write ``report.md`` and ``report.html`` of a finished run again from its
    ``report.json`` and ``predictions.jsonl`` (after a change to this renderer; no model
    runs and nothing is rescored).

    Example::

        >>> rerender("docs/reports/qa-minilm-l6-squad-squad-heldout")  # doctest: +SKIP
    """
    folder = Path(run_dir)
    data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    records = [
        json.loads(line)
        for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    items = [
        EvalItem(r["id"], r.get("inputs") or {}, r.get("references"), r.get("category", ""))
        for r in records
    ]
    scores = Scores(
        data["metrics"],
        [r.get("scores") or {} for r in records],
        data.get("signatures", {}),
        data.get("sections", {}),
    )
    data.setdefault("device", "")
    atomic_write(folder / "report.md", render_markdown(data))
    atomic_write(folder / "report.html", render_html(data, items, scores))
