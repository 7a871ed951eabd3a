"""``quintet eval TASK ...`` and ``quintet eval compare RUN ...``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from quintet.apps.cli_io import (
    LazyChoices,
    add_backend_option,
    add_cluster_options,
    cluster_options,
)
from quintet.apps.flags import add_decode_options, decode_from_args, parse_pairs
from quintet.core.errors import ConfigError
from quintet.core.tasks import task_names


def cmd_eval(args: argparse.Namespace) -> int:
    from quintet.evaluation.harness import run_evaluation
    from quintet.evaluation.protocol import DataOptions
    from quintet.evaluation.run import EvalRun

    if args.data is None and args.source is None:
        raise ConfigError("give --data FILE (or --source FILE --reference FILE for translation)")
    if args.predictions and args.model:
        raise ConfigError("give --model (to run it) or --predictions FILE (to score), not both")
    cluster = cluster_options(args)
    if cluster is not None and args.predictions:
        raise ConfigError("--ray runs a model; --predictions scores a file: not both")
    options = DataOptions(
        text_field=args.text_field,
        target_field=args.target_field,
        label_field=args.label_field,
        question_field=args.question_field,
        context_field=args.context_field,
        answers_field=args.answers_field,
        id_field=args.id_field,
        category_field=args.category_field,
        src=args.src,
        tgt=args.tgt,
        source_file=args.source,
        reference_files=tuple(args.reference or ()),
        extra=parse_pairs(args.option, "--option"),
    )
    run = EvalRun(
        args.task,
        args.model,
        args.data,
        # Every model of the run (the judge's too) decodes on this engine.
        backend=args.backend,
        decode=decode_from_args(args),
        options=options,
        limit=args.limit,
        bootstrap=args.bootstrap,
        cluster=cluster,
        out=args.out,
        batch_size=args.batch_size,
        predictions_file=args.predictions,
    )
    # Say where the run goes up front: that folder is how to resume it.
    out = run.out_dir()
    print(f"writing to {out}", flush=True)
    try:
        report = run_evaluation(replace(run, out=out))
    except KeyboardInterrupt:
        print(
            f"interrupted: the predictions written so far are kept in {out}; run the same "
            f"command with --out {out} to resume",
            file=sys.stderr,
        )
        return 130
    print(f"{report.task}: {report.model} on {report.dataset} ({report.n} examples)")
    for name, value in report.metrics.items():
        interval = report.intervals.get(name)
        ci = f"  95% CI [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
        print(f"  {name:<22} {value:8.2f}{ci}")
    if report.bootstrap.get("resamples"):
        print(f"  (95% CI: bootstrap over items, {report.bootstrap['resamples']} resamples)")
    timing = report.timing
    if args.predictions:
        print(f"  time: {timing['total_s']:.1f}s scoring the given predictions")
    else:
        speed = f", {timing['tokens_per_s']:.1f} tokens/s" if "tokens_per_s" in timing else ""
        print(
            f"  time: {timing['predict_s']:.1f}s predicting on {report.device}, "
            f"{timing['examples_per_s']:.2f} examples/s{speed}"
        )
    print(f"report: {report.out_dir}/report.html (also report.md, report.json, predictions.jsonl)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from quintet.evaluation.compare import compare

    result = compare(args.runs, args.out, resamples=args.bootstrap)
    from quintet.evaluation.compare import render_markdown

    print(render_markdown(result))
    print(f"report: {result['out_dir']}/comparison.html")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the ``quintet`` parser."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a model on a dataset and write a report (or: eval compare RUN RUN ...)",
        description="quintet eval TASK --data FILE [--model M] ... | quintet eval compare RUN...",
    )
    parser.add_argument(
        "task",
        choices=LazyChoices(lambda: (*task_names(), "compare")),
        metavar="TASK",
        help="%(choices)s",
    )
    parser.add_argument("runs", nargs="*", help="compare: run folders, the first is the baseline")
    parser.add_argument("--model", help="name, hub id or directory (default: the task default)")
    parser.add_argument("--data", help="dataset file or hf:NAME[:CONFIG]:SPLIT")
    parser.add_argument("--limit", type=int, help="evaluate the first N examples only")
    parser.add_argument("--out", help="report folder (resumed if it holds a partial run)")
    parser.add_argument("--option", nargs="*", metavar="KEY=VALUE", help="task options")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (0: none)")
    parser.add_argument("--predictions", help="score this file instead of running a model")
    add_backend_option(parser)
    add_cluster_options(parser)
    for field in ("text", "target", "label", "question", "context", "answers", "id", "category"):
        parser.add_argument(f"--{field}-field")
    parser.add_argument("--src", help="translation: source language code")
    parser.add_argument("--tgt", help="translation: target language code")
    parser.add_argument("--source", help="translation: plain text source file, one per line")
    parser.add_argument("--reference", nargs="+", help="translation: reference file(s)")
    add_decode_options(parser)
    parser.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.task == "compare":
        if len(args.runs) < 2:
            raise ConfigError("quintet eval compare RUN_DIR RUN_DIR ...: give two or more runs")
        return cmd_compare(args)
    if args.runs:
        raise ConfigError(f"unexpected arguments {' '.join(args.runs)}: use --data FILE")
    return cmd_eval(args)
