"""Hugging Face datasets as evaluation data: ``--data hf:NAME[:CONFIG]:SPLIT``.

The split is written once to ``$QUINTET_HOME/datasets/`` as JSONL and then read by the
task's ordinary reader, so field options work the same as for local files. Offline, and
without a local copy, it fails at once with what to do instead (the ``datasets`` library
would otherwise retry for a long time).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from quintet.core import hub
from quintet.core.errors import OfflineError, QuintetError
from quintet.core.store import default_home


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
    """The local JSONL of a hub dataset split, downloading it first if needed.

    Offline, the ``datasets`` library's own cache is tried (in its offline mode, which
    answers at once); without the hub or a cached copy this fails at once with what to do.
    """
    target = local_path(spec)
    if target.is_file():
        return target
    name, config, split = parse(spec)
    online = hub.hub_reachable()
    try:
        import datasets
    except ImportError:
        if not online:
            raise _offline(spec, target) from None
        raise QuintetError(
            "hf: datasets need the `datasets` package: pip install 'quintet[hf]'"
        ) from None
    try:
        if online:
            rows = datasets.load_dataset(name, config, split=split)
        else:
            with _datasets_offline(datasets):
                rows = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # the library raises many kinds: each becomes one line
        if not online:
            raise _offline(spec, target) from None
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise QuintetError(
            f"dataset {spec!r} could not be loaded ({first}); check the name, config and split "
            "on the hub, e.g. hf:glue:sst2:validation"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    tmp.replace(target)
    return target


def _offline(spec: str, target: Path) -> OfflineError:
    return OfflineError(
        f"dataset {spec!r} is not in {target.parent} and the hub cannot be reached: "
        "evaluate a local file instead (data/ holds shipped sets; JSONL, CSV, TSV and "
        "SQuAD JSON are read)"
    )


# The offline switch is a module attribute of ``datasets``: one load at a time flips it, so
# two threads never restore each other's value.
_OFFLINE_LOCK = threading.Lock()


@contextlib.contextmanager
def _datasets_offline(datasets_module: object) -> Iterator[None]:
    """Run ``load_dataset`` from its cache only: no network retries when there is none.

    Only the ``datasets`` module's own switch changes, for this block: the process's
    environment (which other libraries and child processes read) is left alone. The
    environment variable would not even work here: ``datasets`` reads it once, on import.
    """
    config = getattr(datasets_module, "config", None)
    if config is None:
        yield
        return
    with _OFFLINE_LOCK:
        before = getattr(config, "HF_DATASETS_OFFLINE", None)
        config.HF_DATASETS_OFFLINE = True
        try:
            yield
        finally:
            config.HF_DATASETS_OFFLINE = before
