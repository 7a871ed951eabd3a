"""``quintet qa``: answer a question from a context, or a JSONL file of them.

quintet qa --question "Who won?" --context "The Denver Broncos won Super Bowl 50."
quintet qa --question "Who won?" --context-file report.txt --top-k 3 --allow-no-answer
quintet qa --input questions.jsonl --output answers.jsonl     # {"question", "context"} per line
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quintet.apps.cli_io import add_cluster_options, checked_text, cluster_options, read_text_file
from quintet.apps.flags import add_deprecated_alias
from quintet.core.errors import ConfigError


def _read_context(args: argparse.Namespace) -> str:
    if args.context is not None and args.context_file is not None:
        raise ConfigError("give --context TEXT or --context-file FILE, not both")
    if args.context_file is not None:
        return read_text_file(args.context_file, "--context-file")
    if args.context is None:
        raise ConfigError("give the context: --context TEXT or --context-file FILE")
    return checked_text(args.context, "--context")


def cmd_qa(args: argparse.Namespace) -> int:
    from quintet.apps.qa import QuestionAnswerer

    batch = args.input is not None
    if batch and (args.question or args.context or args.context_file):
        raise ConfigError("--input FILE holds the questions: drop --question and --context")
    if batch and not args.output:
        raise ConfigError("--input needs --output FILE.jsonl for the answers")
    if not batch and args.question is None:
        raise ConfigError("give --question Q with --context TEXT (or --input FILE.jsonl)")
    cluster = cluster_options(args)
    if cluster is not None and not batch:
        raise ConfigError("--ray answers files: give --input FILE.jsonl --output FILE.jsonl")
    options = {
        "top_k": args.top_k,
        "max_answer_len": args.max_answer_len,
        "allow_no_answer": args.allow_no_answer,
        "no_answer_threshold": args.threshold,
    }
    if batch:
        return _batch(args, options, cluster)
    checked_text(args.question, "--question")
    context = _read_context(args)
    qa = QuestionAnswerer(args.model, device=args.device)
    answers = qa.answer(args.question, context, doc_stride=args.doc_stride, **options)
    if args.json:
        print(json.dumps([_as_dict(a) for a in answers], ensure_ascii=False, indent=2))
        return 0
    for rank, a in enumerate(answers, start=1):
        prefix = f"{rank}. " if len(answers) > 1 else ""
        if a.is_no_answer:
            why = " (the model's answer is not in the context)" if not a.grounded else ""
            print(f"{prefix}(no answer){why}  score {a.score:.3f}")
        else:
            print(f"{prefix}{a.text}  [chars {a.start}-{a.end}, p={a.probability:.3f}]")
    print(f"model: {qa.model_name} ({qa.mode})", file=sys.stderr)
    return 0


def _as_dict(a) -> dict:
    return {
        "text": a.text,
        "start": a.start,
        "end": a.end,
        "score": round(a.score, 4),
        "probability": round(a.probability, 4),
        "window": a.window,
        "grounded": a.grounded,
    }


def _batch(args: argparse.Namespace, options: dict, cluster=None) -> int:
    """Answer every ``{question, context}`` line of ``--input`` into ``--output``
    (``answers_predicted`` added), 16 questions per batch, here or on the cluster; a cut
    run resumes after the last complete line (``--restart``: start over)."""
    from quintet.core.batch_files import Records, read_rows, run_batch_file

    records = read_rows(args.input, "jsonl", _question_problem)
    model = args.model or "the task default"

    def answered(rows: list[dict], result: tuple[list, str]) -> list[dict]:
        nonlocal model
        answers, model = result
        return [{**row, "answers_predicted": [_as_dict(a) for a in found]}
                for row, found in zip(rows, answers, strict=True)]  # fmt: skip

    done = run_batch_file(
        [record for _, record in records], len(records), args.output, Records.extending(records),
        _AnswerOnActor(args.model, args.device, args.doc_stride, options), answered,
        inputs=lambda rows: [(row["question"], row["context"]) for row in rows],
        batch_size=16, resume=not args.restart, cluster=cluster, unit="q",
    )  # fmt: skip
    resumed = f", {done.resumed} kept from an earlier run" if done.resumed else ""
    print(f"{done.rows} answers written to {args.output} (model {model}){resumed}",
          file=sys.stderr)  # fmt: skip
    return 0


def _question_problem(record: dict) -> str | None:
    """What is wrong with a line of a questions file (None: nothing)."""
    question, context = record.get("question"), record.get("context")
    if not isinstance(question, str) or not question.strip():
        return "no 'question' text; expected {question, context}"
    if not isinstance(context, str):
        return "no 'context' text; expected {question, context}"
    return None


@dataclass(frozen=True)
class _AnswerOnActor:
    """Opens the QA model once (here, or on each Ray actor) and answers chunks of questions."""

    model: str | None
    device: str
    doc_stride: int | None
    options: dict[str, Any]

    def __call__(self) -> Callable[[list], tuple[list, str]]:
        from quintet.apps.qa import QuestionAnswerer

        qa = QuestionAnswerer(self.model, device=self.device)

        def run(pairs: list) -> tuple[list, str]:
            answers = qa.answer_many(pairs, doc_stride=self.doc_stride, **self.options)
            return answers, qa.model_name

        return run


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``qa`` to the ``quintet`` parser."""
    p = commands.add_parser(
        "qa",
        help="answer a question from a context (extractive QA)",
        description="quintet qa --question Q (--context TEXT | --context-file FILE) | "
        "--input FILE.jsonl --output FILE.jsonl",
    )
    p.add_argument("--question", help="the question to answer")
    # -q is --quiet in the other commands; it meant --question here.
    add_deprecated_alias(p, "-q", dest="question", use="--question")
    p.add_argument("--context", "-c", help="the text to answer from")
    p.add_argument("--context-file", help="read the context from this UTF-8 file")
    p.add_argument("--input", help="JSONL with question and context per line (batch mode)")
    p.add_argument("--output", help="batch mode: JSONL written with answers_predicted added")
    p.add_argument("--restart", action="store_true", help="with --output: do not resume")
    p.add_argument("--model", help="span or instruct model (default: the task default)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--max-answer-len", type=int, default=30, help="tokens")
    p.add_argument("--doc-stride", type=int, help="tokens shared by neighbouring windows")
    p.add_argument("--allow-no-answer", action="store_true", help="SQuAD v2 style no-answer")
    p.add_argument(
        "--threshold", type=float, default=0.0, help="no-answer margin over the best span"
    )
    p.add_argument("--json", action="store_true", help="print the answers as JSON")
    add_cluster_options(p)
    p.set_defaults(func=cmd_qa)
