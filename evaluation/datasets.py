"""Hugging Face datasets as evaluation data: ``--data hf:NAME[:CONFIG]:SPLIT``.

The split is written once to ``$QUINTET_HOME/datasets/`` as JSONL and then read by the
task's ordinary reader, so field options work the same as for local files. Offline, and
without a local copy, it fails at once with what to do instead (the ``datasets`` library
would otherwise retry for a long time).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from core import hub
from core.errors import OfflineError, QuintetError
from core.store import default_home


def parse(spec: str) -> tuple[str, str | None, str]:
    """``hf:NAME[:CONFIG]:SPLIT`` -> (name, config, split)."""
    parts = spec.removeprefix("hf:").split(":")
    if len(parts) == 2 and all(parts):
        return parts[0], None, parts[1]
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
    raise QuintetError(
        f"{spec!r}: expected hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT, e.g. hf:glue:sst2:validation"
    )


def local_path(spec: str) -> Path:
    """Where the JSONL copy of ``spec`` lives."""
    name, config, split = parse(spec)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(p for p in (name, config, split) if p))
    return default_home() / "datasets" / f"{slug}.jsonl"


def materialize(spec: str) -> Path:
    """The local JSONL of a hub dataset split, downloading it first if needed."""
    target = local_path(spec)
    if target.is_file():
        return target
    name, config, split = parse(spec)
    if not hub.hub_reachable():
        raise OfflineError(
            f"dataset {spec!r} is not in {target.parent} and the hub cannot be reached: "
            "evaluate a local file instead (data/ holds shipped sets; JSONL, CSV, TSV and "
            "SQuAD JSON are read)"
        )
    try:
        import datasets
    except ImportError:
        raise QuintetError(
            "hf: datasets need the `datasets` package: pip install 'quintet[hf]'"
        ) from None
    rows = datasets.load_dataset(name, config, split=split)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    tmp.replace(target)
    return target
