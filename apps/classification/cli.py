"""``quintet classify``: label texts, a file column, or fit a calibration.

quintet classify "a joy to watch" "dull and lifeless"              # default model
quintet classify --model minilm-l6 --labels sports,business,politics "The striker scored"
quintet classify --input reviews.csv --text-column review --output labelled.csv
quintet classify --model minilm-l6-sst2 --calibrate data/classification/sst2/dev.tsv
"""

from __future__ import annotations

import argparse
import json
import sys

from quintet.apps.cli_io import (
    add_cluster_options,
    checked_arguments,
    checked_text,
    cluster_options,
)
from quintet.apps.flags import add_deprecated_alias
from quintet.core.errors import ConfigError


def cmd_classify(args: argparse.Namespace) -> int:
    from quintet.apps.classification import Classifier

    modes = [bool(args.texts), args.input is not None, args.calibrate is not None]
    if sum(modes) != 1:
        raise ConfigError(
            "give texts to classify, or --input FILE --output FILE, or --calibrate FILE "
            "(exactly one of them)"
        )
    if args.input is not None and not args.output:
        raise ConfigError("--input needs --output FILE (.csv, .tsv or .jsonl)")
    cluster = cluster_options(args)
    if cluster is not None and args.input is None:
        raise ConfigError("--ray classifies files: give --input FILE --output FILE")
    checked_arguments(args.texts, "TEXT")  # before a model loads
    if args.labels is not None:
        checked_text(args.labels, "--labels")
    classifier = Classifier(
        args.model,
        labels=args.labels,
        multi_label=True if args.multi_label else None,
        device=args.device,
        temperature=args.temperature,
    )
    where = f"model: {classifier.model_name} ({classifier.mode}, T={classifier.temperature:.3g})"
    if args.calibrate is not None:
        return _calibrate(classifier, args)
    if args.input is not None:
        result = classifier.classify_csv(
            args.input,
            args.output,
            args.text_column,
            top_k=args.top_k,
            threshold=args.threshold,
            resume=not args.restart,
            cluster=cluster,
        )
        resumed = f", {result.resumed} kept from an earlier run" if result.resumed else ""
        empty = f", {result.empty} empty texts left unlabelled" if result.empty else ""
        print(f"{result.written} rows classified into {args.output}{resumed}{empty} "
              f"in {result.seconds:.1f}s", file=sys.stderr)  # fmt: skip
        print(where, file=sys.stderr)
        return 0
    results = classifier.classify(args.texts, top_k=args.top_k, threshold=args.threshold)
    if args.json:
        rows = [{"text": t, "label": r.label, "score": r.score, "labels": list(r.labels),
                 "scores": r.scores} for t, r in zip(args.texts, results, strict=True)]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for text, r in zip(args.texts, results, strict=True):
            chosen = "|".join(r.labels) if classifier.multi_label else r.label
            others = ", ".join(f"{k} {v:.3f}" for k, v in r.scores.items())
            print(f"{chosen or '(none)'}\t{r.score:.3f}\t{text[:60]}\t[{others}]")
    print(where, file=sys.stderr)
    return 0


def _calibrate(classifier, args: argparse.Namespace) -> int:
    from quintet.core.data import read_classification

    examples = read_classification(args.calibrate, args.text_column, args.label_field)
    fit = classifier.calibrate([e.text for e in examples], [e.labels[0] for e in examples])
    print(fit.summary())
    print("stored: the next classifier on this model and labels uses it", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``classify`` to the ``quintet`` parser."""
    p = commands.add_parser(
        "classify",
        help="classify texts (fine-tuned or zero-shot with --labels), a file, or calibrate",
        description="quintet classify [--model M] [--labels a,b,c] (TEXT ... | --input FILE "
        "--output FILE [--text-column C] | --calibrate LABELLED_FILE)",
    )
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--model", help="classifier, NLI, encoder or instruct model (default: task)")
    p.add_argument("--labels", help="zero-shot labels, comma-separated")
    p.add_argument("--input", help="CSV/TSV/JSONL file to classify")
    p.add_argument("--text-column", help="the column with the texts (default: sentence/text...)")
    p.add_argument("--output", help="where to write the labelled rows (.csv, .tsv or .jsonl)")
    p.add_argument("--restart", action="store_true", help="ignore rows an earlier run wrote")
    p.add_argument("--calibrate", metavar="FILE", help="fit the temperature on labelled data")
    p.add_argument("--label-field", help="--calibrate: the label column (default: label...)")
    p.add_argument("--top-k", type=int, help="show only the K most probable labels")
    p.add_argument("--multi-label", action="store_true", help="independent label probabilities")
    p.add_argument("--threshold", type=float, default=0.5, help="multi-label: chosen if >= this")
    p.add_argument(
        "--calibration-temperature",
        dest="temperature",
        type=float,
        help="override the stored calibration temperature (not a decoding setting)",
    )
    # --temperature is a decoding setting in translate/summarize/chat/eval.
    add_deprecated_alias(
        p, "--temperature", dest="temperature", use="--calibration-temperature", type=float
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--json", action="store_true", help="print results as JSON")
    add_cluster_options(p)
    p.set_defaults(func=cmd_classify)
