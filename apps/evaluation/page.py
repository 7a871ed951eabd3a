"""Streamlit page: evaluate models on a dataset, read the reports, compare runs.

Everything goes through ``quintet.evaluation.harness.evaluate`` and
``quintet.evaluation.compare.compare``;
the page adds the choices (task, models, shipped or uploaded data), a job in a worker process
(:func:`quintet.apps.ui.jobs.start_process_job`, so the other pages stay responsive) with a
progress bar, and the report viewer. (No ``__init__.py`` here on purpose: a package
``apps/evaluation`` could shadow the top-level ``evaluation`` package.)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from quintet.apps.ui import decode_controls, model_choices, model_picker, show_error
from quintet.apps.ui.eval_worker import BATCH_SIZE
from quintet.apps.ui.jobs import Job, all_jobs, get_job, start_process_job
from quintet.apps.ui.uploads import save_upload
from quintet.core.paths import data_path, example_reports_root
from quintet.core.store import ModelStore
from quintet.core.tasks import TASK_TITLES, get_task
from quintet.evaluation.registry import task_names

REPORT_FILES = ("report.html", "report.md", "report.json", "predictions.jsonl")
TASK_LABELS = TASK_TITLES


FIELD_OPTIONS = (
    "text_field",
    "target_field",
    "label_field",
    "question_field",
    "context_field",
    "answers_field",
    "id_field",
    "category_field",
)


REFRESH_S = 1.0  # how often a running job's progress is redrawn


def available_tasks() -> list[str]:
    """Tasks with an installed evaluation harness
    (:func:`quintet.evaluation.registry.task_names`)."""
    return [t for t in task_names() if t in TASK_LABELS]


def eval_home() -> Path:
    return ModelStore().home / "eval"


def find_runs() -> list[Path]:
    """Finished run folders (with report.json): this store's, then the shipped examples."""
    found: list[Path] = []
    for root in (eval_home(), example_reports_root()):
        if root is not None and root.is_dir():
            runs = [p.parent for p in root.glob("*/report.json")]
            found += sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
    return found


def read_report(run: Path) -> dict[str, Any]:
    return json.loads((run / "report.json").read_text())


def parse_options(text: str) -> dict[str, Any]:
    """``key=value`` lines (as ``quintet eval --option``) -> dict."""
    from quintet.apps.eval_cli import parse_pairs

    return parse_pairs([line.strip() for line in text.splitlines() if line.strip()], "--option")


# Running -----------------------------------------------------------------------------------


def run_job(
    task: str,
    models: list[str | None],
    data: str | None,
    limit: int | None,
    decode: dict,
    options: dict,
    extra: dict,
    cluster: Any = None,
) -> Job:
    """Start the evaluation of every model in a worker process (on ``cluster``, a
    :class:`quintet.core.cluster.ClusterOptions`, when given); returns the job."""
    from quintet.apps.ui.eval_worker import evaluate_models

    job_id = f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    kwargs = {"task": task, "models": models, "data": data, "limit": limit, "decode": decode,
              "options": options, "extra": extra, "cluster": cluster}  # fmt: skip
    job = start_process_job(job_id, f"{TASK_LABELS[task]} evaluation", evaluate_models, kwargs)
    st.session_state["eval-job"] = job.id
    return job


def task_of(job: Job) -> str | None:
    """The task of an evaluation job (its label starts with the task's title)."""
    return next((task for task, title in TASK_LABELS.items() if job.label.startswith(title)), None)


def show_job(job: Job) -> None:
    """Progress of an evaluation job; its reports once it is done."""
    if job.state == "running":
        counts = f"{job.done:,}/{job.total:,} examples" if job.total else "reading data, loading"
        if job.total > 0 and job.done < job.total:
            # Generative tasks count each example as it finishes; encoders (and beam search)
            # a whole batch at once: say what is being worked on, so a still count is clear.
            batch = min(BATCH_SIZE, job.total - job.done)
            counts += f", working on the next {batch}" if batch > 1 else ", the next one now"
        st.progress(job.fraction, text=f"{job.label}: {job.note} — {counts} ({job.seconds:.0f} s)")
    elif job.state == "failed":
        show_error(job.error or RuntimeError("unknown"), "evaluating", task=task_of(job))
    else:
        st.success(f"{job.label} finished in {job.seconds:.0f} s: {len(job.result)} run(s).")
        if st.session_state.get("eval-shown") != job.id:
            st.session_state["eval-shown"] = job.id
            # Show the new run in the Reports tab (drawn after this in the same run).
            st.session_state["eval-pick"] = str(Path(job.result[-1]))


def job_monitor() -> None:
    """The job's progress, redrawn every second while it runs (the rest of the page stays
    usable); nothing polls while no job runs (an idle tab reran 24 times in 30 s)."""
    job_id = st.session_state.get("eval-job")
    job = get_job(job_id) if job_id else None
    running = job is not None and job.state == "running"
    st.fragment(run_every=REFRESH_S if running else None)(_job_monitor)()


def _job_monitor() -> None:
    job_id = st.session_state.get("eval-job")
    job = get_job(job_id) if job_id else None
    if job is None:
        return
    show_job(job)
    if job.state != "running" and st.session_state.get("eval-rerun") != job.id:
        st.session_state["eval-rerun"] = job.id
        st.rerun()  # once: the report list and viewer below pick up the new run


def run_tab() -> None:
    tasks = available_tasks()
    task = st.selectbox("Task", tasks, format_func=TASK_LABELS.get, key="eval-task")
    left, right = st.columns(2)
    with left:
        # Translation left on automatic routes by language pair, as the app does; the
        # default's name would be recorded as "the model you chose".
        auto = "Automatic (by language pair)" if task == "translation" else None
        model = model_picker(task, key=f"eval-model-{task}", auto_label=auto)
        others = [c.name for c in model_choices(task) if c.present and c.name != model]
        more = st.multiselect(
            "More models on the same data (compared side by side)", others, key=f"eval-more-{task}"
        )
    with right:
        source = st.radio("Dataset", ["Shipped", "Upload"], horizontal=True, key="eval-source")
        data: str | None = None
        options: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if source == "Shipped":
            sets = get_task(task).eval_sets
            picked = st.selectbox(
                "Shipped dataset",
                range(len(sets)),
                format_func=lambda i: sets[i].label,
                key=f"eval-set-{task}",
            )
            dataset = sets[picked]
            data, options = str(data_path(dataset.data)), dict(dataset.options)
            extra = dataset.extra
        else:
            upload = st.file_uploader(
                "Dataset file",
                type=["jsonl", "json", "csv", "tsv", "label", "txt"],
                key=f"eval-upload-{task}",
                help="The formats of `quintet eval` (see docs/evaluation.md): JSONL/CSV/TSV "
                "with the task's fields, SQuAD JSON, TREC .label.",
            )
            if upload is not None:
                data = str(save_upload(upload))
            if task == "translation":
                a, b = st.columns(2)
                options["src"] = a.text_input("Source language", "en", key="eval-src")
                options["tgt"] = b.text_input("Target language", "de", key="eval-tgt")
        limit = st.number_input(
            "Examples (0 = all)",
            0,
            100_000,
            20,
            key="eval-limit",
            help="Start small: on a CPU a generative model takes seconds per example.",
        )
        with st.expander("Field names and options"):
            for name in FIELD_OPTIONS:
                value = st.text_input(
                    name.replace("_", " "), key=f"eval-{name}", placeholder="task default"
                )
                if value.strip():
                    options[name] = value.strip()
            typed = st.text_area(
                "Options (key=value per line, as --option)",
                "\n".join(f"{k}={v}" for k, v in extra.items()),
                key=f"eval-extra-{task}-{data}",
            )
        decode: dict[str, Any] = {}
        if get_task(task).generative:
            with st.expander("Decoding"):
                decode = decode_controls(key=f"eval-decode-{task}", max_new_tokens=128)
        cluster = cluster_choice()
    running = (job := get_job(st.session_state.get("eval-job", ""))) and job.state == "running"
    if st.button(
        "Run evaluation", type="primary", disabled=bool(running) or data is None, key="eval-run"
    ):
        try:
            extra = parse_options(typed)
            run_job(task, [model, *more], data, int(limit) or None, decode, options, extra,
                    cluster)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - shown on the page
            show_error(exc, "starting the evaluation")
    if data is None:
        st.caption("Upload a dataset file to run.")
    job_monitor()


def cluster_choice() -> Any:
    """With ``RAY_ADDRESS`` set: a box to send the run to that Ray cluster, and its number of
    workers (``quintet eval --ray``). Returns the ``ClusterOptions``, or None."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address or not st.checkbox(
        f"Run on the Ray cluster at {address}",
        key="eval-ray",
        help="The examples go to Ray actors, each with its own copy of the model; same "
        "predictions and report as here (needs quintet[cluster]).",
    ):
        return None
    from quintet.core.cluster import ClusterOptions

    workers = st.number_input("Ray workers", 1, 1024, 2, key="eval-ray-workers")
    return ClusterOptions(address=address, workers=int(workers))


# Reading -----------------------------------------------------------------------------------


def run_label(run: Path) -> str:
    try:
        report = read_report(run)
    except (OSError, json.JSONDecodeError):
        return f"{run.name} (unreadable report.json)"
    where = "example" if run.parent == example_reports_root() else "yours"
    metric = report.get("primary_metric")
    score = report.get("metrics", {}).get(metric)
    headline = f", {metric} {score:.1f}" if isinstance(score, int | float) else ""
    return (
        f"{report.get('task')} · {report.get('model')} · {Path(report.get('dataset', '')).name}"
        f"{language_pair(report)} · n={report.get('n')}{headline} · "
        f"{report.get('date', '')[:16]} ({where})"
    )


def language_pair(report: dict[str, Any]) -> str:
    """`` · en→de`` for a translation run (runs of one dataset in two directions had the
    same name in Reports and Compare), else ``""``."""
    settings = report.get("settings") or {}
    src, tgt = settings.get("src"), settings.get("tgt")
    return f" · {src}→{tgt}" if src and tgt else ""


def format_timing(timing: dict[str, Any]) -> str:
    """``{"total_s": 12.3, "examples_per_s": 4.1, ...}`` -> "12.3 s total · 4.10 examples/s"."""
    parts = []
    for key, value in timing.items():
        if not isinstance(value, int | float):
            continue
        if key.endswith("_per_s"):
            unit = key.removesuffix("_per_s")
            if value >= 1:
                parts.append(f"{value:,.2f} {unit}/s")
            elif value > 0:  # slow runs: "360.0 s per example" reads better than "0.00/s"
                parts.append(f"{1 / value:,.1f} s per {unit.removesuffix('s')}")
        elif key.endswith("_s"):
            parts.append(f"{value:,.1f} s {key.removesuffix('_s').replace('_', ' ')}")
        else:
            parts.append(f"{value:,.0f} {key.replace('_', ' ')}")
    return " · ".join(parts)


def show_report(run: Path) -> None:
    """Metrics with intervals and timing natively, then the full HTML report embedded."""
    report = read_report(run)
    st.subheader(f"{report['model']} on {Path(report['dataset']).name} ({report['n']} examples)")
    metrics = report.get("metrics", {})
    intervals = report.get("intervals", {})
    columns = st.columns(max(1, min(len(metrics), 5)))
    for i, (name, value) in enumerate(metrics.items()):
        ci = intervals.get(name)
        columns[i % len(columns)].metric(
            name,
            f"{value:.2f}",
            help=f"95% bootstrap interval [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else None,
        )
        if ci:
            columns[i % len(columns)].caption(f"95% CI {ci[0]:.1f} – {ci[1]:.1f}")
    speed = format_timing(report.get("timing", {}))
    st.caption(f":material/timer: {speed} · {report.get('date', '')} · `{run}`")
    cols = st.columns(len(REPORT_FILES))
    for col, name in zip(cols, REPORT_FILES, strict=True):
        path = run / name
        if path.is_file():
            col.download_button(
                name,
                path.read_bytes(),
                file_name=name,
                key=f"dl-{run.name}-{name}",
                icon=":material/download:",
            )
    html = run / "report.html"
    if html.is_file():
        # report.py escapes every text it embeds (inputs, predictions), so the page is
        # safe to show as is.
        st.iframe(html, height=900)
    elif (run / "report.md").is_file():
        st.markdown((run / "report.md").read_text())


def reports_tab() -> None:
    runs = find_runs()
    if not runs:
        st.info("No evaluation run yet: run one in the first tab.")
        return
    labels = {str(r): run_label(r) for r in runs}
    keys = list(labels)
    if st.session_state.get("eval-pick") not in keys:
        st.session_state.pop("eval-pick", None)  # a deleted run folder
    picked = st.selectbox("Run", keys, format_func=labels.get, key="eval-pick")
    try:
        show_report(Path(picked))
    except Exception as exc:  # noqa: BLE001 - a damaged run folder must not break the page
        show_error(exc, f"reading {picked}")


def compare_tab() -> None:
    runs = find_runs()
    labels = {str(r): run_label(r) for r in runs}
    picked = st.multiselect(
        "Runs on the same data (the first is the baseline)",
        list(labels),
        format_func=labels.get,
        key="eval-compare",
    )
    if st.button("Compare", disabled=len(picked) < 2, key="eval-compare-run"):
        from quintet.evaluation.compare import compare

        try:
            with st.spinner("Paired bootstrap over the runs…"):
                result = compare(
                    picked,
                    eval_home() / f"compare-{time.strftime('%Y%m%d-%H%M%S')}",
                    max_seconds=20.0,
                )
        except Exception as exc:  # noqa: BLE001 - shown on the page
            show_error(exc, "comparing")
        else:
            st.session_state["eval-comparison"] = result["out_dir"]
    folder = st.session_state.get("eval-comparison")
    if folder and Path(folder, "comparison.json").is_file():
        result = json.loads(Path(folder, "comparison.json").read_text())
        st.dataframe(
            comparison_table(result).style.format(precision=3, na_rep="(baseline)"),
            hide_index=True,
            width="stretch",
        )
        left, right = st.columns(2)
        for col, name in ((left, "comparison.md"), (right, "comparison.html")):
            col.download_button(
                name,
                Path(folder, name).read_bytes(),
                file_name=name,
                key=f"dl-cmp-{name}",
                icon=":material/download:",
            )
        st.iframe(Path(folder, "comparison.html"), height=500)


def comparison_table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per run: its metrics and, against the baseline (the first run), each metric's
    p-value; the baseline's own p-values are NaN (drawn "(baseline)", not "None")."""
    rows = []
    for entry in result["runs"]:
        row = {"model": entry["model"], **{m: round(v, 2) for m, v in entry["metrics"].items()}}
        for metric, stats in (entry.get("versus_first") or {}).items():
            if isinstance(stats, dict) and "p_value" in stats:
                row[f"{metric} p"] = round(stats["p_value"], 3)
        rows.append(row)
    table = pd.DataFrame(rows)
    numeric = [c for c in table.columns if c != "model"]
    table[numeric] = table[numeric].apply(pd.to_numeric, errors="coerce")
    return table


def render() -> None:
    st.title("Evaluation")
    st.caption(
        "Score a model on a dataset with the task's reference metrics (sacreBLEU, ROUGE, "
        "SQuAD EM/F1, accuracy/macro-F1), with 95% bootstrap intervals, timing and plots."
    )
    running = [job for job in all_jobs("eval-") if job.state == "running"]
    if running and "eval-job" not in st.session_state:
        st.session_state["eval-job"] = running[0].id  # a reload finds its running job
    run, reports, comparison = st.tabs(["Run", "Reports", "Compare"])
    with run:
        run_tab()
    with reports:
        reports_tab()
    with comparison:
        compare_tab()


render()
