"""The Evaluation page's job, run in a worker process (:func:`quintet.apps.ui.jobs.
start_process_job`): every model on the same data, then their comparison."""

from __future__ import annotations

from typing import Any

BATCH_SIZE = 16  # examples per call of the app (the harness's default)


def evaluate_models(
    job: Any,
    task: str,
    models: list[str | None],
    data: str | None,
    limit: int | None,
    decode: dict[str, Any],
    options: dict[str, Any],
    extra: dict[str, Any],
    cluster: Any = None,
) -> list[str]:
    """Evaluate each model (``options``: DataOptions fields, ``extra`` its ``--option``
    values; ``cluster``: a :class:`quintet.core.cluster.ClusterOptions`); with several models,
    compare them (paired bootstrap). Returns the run folders, the first the baseline."""
    from quintet.evaluation.harness import evaluate
    from quintet.evaluation.protocol import DataOptions

    data_options = DataOptions(**options, extra=extra)
    folders = []
    for number, model in enumerate(models, 1):
        job.note = f"model {number}/{len(models)}: {model or 'task default'}"
        job.progress(0, 0)
        report = evaluate(
            task,
            model,
            data,
            limit=limit,
            decode=decode or None,
            options=data_options,
            progress=job.progress,
            batch_size=BATCH_SIZE,
            cluster=cluster,
        )
        folders.append(str(report.out_dir))
    if len(folders) > 1:
        from quintet.evaluation.compare import compare

        job.note = "comparing the runs (paired bootstrap)"
        compare(folders, max_seconds=20.0)
    return folders
