"""Shared Streamlit widgets for the Quintet pages.

README for page authors
=======================

A task page (``apps/<task>/page.py``) is a plain script that Streamlit runs top to bottom.
It draws widgets from here and calls its app's Python API; it holds no model code.

.. code-block:: python

    import streamlit as st

    from quintet.apps.translation import Translator
    from quintet.apps.ui import (
        batch_upload, cached_app, decode_controls, download_results, model_picker,
        run_with_progress, show_error, show_timings, text_or_file_input,
    )

    st.title("Translation")
    with st.sidebar:
        model = model_picker("translation", key="tr-model", auto_label="Automatic (by pair)")
        decode = decode_controls(key="tr-decode", max_new_tokens=256)
    text = text_or_file_input("Text to translate", key="tr-text")
    if st.button("Translate", type="primary") and text.strip():
        try:
            app = cached_app(Translator, model)          # loaded once per process, shared
            results, seconds = run_with_progress(
                lambda progress: app.translate(text, "en", "de", progress=progress, **decode),
                label="Translating",
            )
        except Exception as exc:                        # noqa: BLE001 - shown, not raised
            show_error(exc, "translating")
        else:
            st.write(results[0].text)
            show_timings(seconds, items=1)

Widgets
-------
* :func:`model_picker` (task, key): the task default preselected, the catalog's models for the
  task and the store's (fine-tuned ones included) with present/missing status, and "Other"
  for a hub id or a local path. Returns a name for ``load()`` / the app class, or None
  (the ``auto_label`` choice, or "Other" left empty).
* :func:`decode_controls` (key): strategy greedy / beam / sampling, beams, temperature,
  top-k, top-p, max new tokens. Returns ``DecodeConfig`` keyword arguments, already
  validated, to pass as ``**decode`` to an app method.
* :func:`text_or_file_input`: type a text or upload a .txt/.md file; returns the text.
* :func:`batch_upload`: a CSV / TSV / JSONL / text file -> :class:`BatchInput` (rows, the
  chosen column, its texts). :func:`download_results` offers the results as CSV and JSONL.
* :func:`run_with_progress` (fn, label): calls ``fn(progress)`` with a ``(done, total)``
  callback that moves a progress bar (the apps' ``progress=`` argument takes it) under a
  spinner with the elapsed time (alone for a single item); returns ``(result, seconds)``.
  :func:`run_in_batches` does the same for an API without a progress argument by calling it
  on slices of the input.
* :func:`growing_text`: a context manager yielding a callback for the apps' ``on_text=``
  argument: a single output's text shown as it is generated, removed when the block ends
  (the page then shows the final output in its place).
* :func:`show_timings`: one line of timings (seconds, items/s, tokens/s, first token).
* :func:`show_error` (exc, doing): a readable ``st.error``; QuintetError messages are shown
  as they are, anything else gets a generic line and the details in a closed expander.
  :func:`guarded` is the same as a context manager.

Models and sessions: see :mod:`quintet.apps.ui.cache` (``cached_app``, ``cached_generator``,
``model_lock``). Per-session state (a chat history) lives in ``st.session_state``; models
never do.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import streamlit as st

from quintet.apps.ui.messages import for_pages
from quintet.core import catalog
from quintet.core.config import BACKENDS, DecodeConfig
from quintet.core.data import parse_records
from quintet.core.errors import QuintetError, UnknownModelError
from quintet.core.inventory import model_status
from quintet.core.store import ModelStore
from quintet.core.tasks import task_specs

log = logging.getLogger(__name__)
T = TypeVar("T")

OTHER = "Other: a hub id or a local path…"
# How the catalog's mode notes end for a default that a background recipe replaces.
UNTIL_RECIPE = " until the recipe has run"
STRATEGIES = ("greedy", "beam search", "sampling")
TEXT_COLUMNS = ("text", "sentence", "source", "document", "dialogue", "question", "content")


# Models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """One option of the model picker."""

    name: str
    present: bool
    status: str


def serving_kinds(task: str) -> tuple[str, ...]:
    """The model kinds that can serve ``task`` (its spec's; the encoders for embeddings), for
    store models whose manifest names no task."""
    if task == catalog.EMBEDDINGS:
        return catalog.EMBEDDING_KINDS
    return next((spec.kinds for spec in task_specs() if spec.name == task), ())


def model_choices(task: str, store: ModelStore | None = None) -> list[ModelChoice]:
    """The models a task can use here: catalog entries for the task, then store models.

    Store models (fine-tuned ones included) are listed when their manifest names the task,
    or names no task but has a kind that serves it.
    """
    store = store or ModelStore()
    choices = []
    for entry in catalog.entries(task=task):
        present, status = model_status(entry, store)
        choices.append(ModelChoice(entry.name, present, status))
    known = {c.name for c in choices}
    for model in store.list():
        if model.name in known or model.converted_from is not None:
            continue
        tasks = model.manifest.get("tasks") or []
        fits = task in tasks if tasks else model.kind in serving_kinds(task)
        if fits:
            size = model.size_bytes / 1e6
            choices.append(ModelChoice(model.name, True, f"in store ({size:.0f} MB)"))
    return choices


def _default_name(task: str, store: ModelStore) -> tuple[str | None, str]:
    from quintet.core.defaults import default_model  # late: keeps this module light to import

    try:
        choice = default_model(task, store)
    except QuintetError as exc:
        return None, for_pages(str(exc))
    mode = choice.mode
    if mode.endswith(UNTIL_RECIPE):
        from quintet.apps.finetune.background import opted_out  # late: light to import

        if why := opted_out():  # no background build will come: promise none
            mode = f"{mode.removesuffix(UNTIL_RECIPE)} (the background recipe build is off: {why})"
    return choice.name, choice.reason + (f", {mode}" if mode != "native" else "")


def model_picker(
    task: str,
    *,
    key: str,
    label: str = "Model",
    auto_label: str | None = None,
    allow_other: bool = True,
    help: str | None = None,
) -> str | None:
    """Pick a model for ``task``; returns its name, hub id or path (None: automatic / unset).

    Args:
        task: a catalog task (translation, summarization, qa, classification, chat).
        key: a widget key unique on the page.
        auto_label: if given, a first option with this label that returns None (the app
            then chooses, e.g. translation routing by language pair).
        allow_other: offer "Other" with a text box for a hub id or a local directory.

    Example:
        >>> name = model_picker("chat", key="chat-model")  # doctest: +SKIP
    """
    store = ModelStore()
    choices = model_choices(task, store)
    default, reason = _default_name(task, store)
    by_name = {c.name: c for c in choices}
    if default is not None and default not in by_name:
        by_name[default] = ModelChoice(default, True, "default")
    # The default first, then present models, then the rest: what works is at the top.
    ordered = sorted(by_name.values(), key=lambda c: (c.name != default, not c.present, c.name))
    options: list[str] = ([auto_label] if auto_label else []) + [c.name for c in ordered]
    if allow_other:
        options.append(OTHER)

    def label_of(option: str) -> str:
        if option in (auto_label, OTHER):
            return option
        # Short: the sidebar is narrow; the status of the picked one is a caption below.
        mark = "✓" if by_name[option].present else "✗"
        return f"{mark} {option}" + (" (default)" if option == default else "")

    index = 0 if auto_label or default is None else options.index(default)
    # A new default (a task model the background build just stored) replaces the old one in
    # a picker left on the default; a model the user chose stays chosen.
    previous = st.session_state.get(f"{key}-default")
    if previous not in (None, default) and st.session_state.get(key) == previous:
        st.session_state[key] = default
    st.session_state[f"{key}-default"] = default
    picked = st.selectbox(
        label,
        options,
        index=index,
        key=key,
        format_func=label_of,
        help=help or "✓ works here now (store or HF cache); ✗ needs a pull, a recipe or the hub.",
    )
    if picked == OTHER:
        typed = st.text_input(
            "Hub id or local path",
            key=f"{key}-other",
            placeholder="owner/name or /path/to/model",
        ).strip()
        if not typed:
            # Say what runs meanwhile: an empty field falls back, it must not do so silently.
            fallback = auto_label.lower() if auto_label else (default or "no model")
            st.warning(f"No model typed: the page uses {fallback} until you type one.")
        return typed or None
    if picked == auto_label:
        return None
    status = for_pages(by_name[picked].status)
    if picked == default:
        st.caption(f"{status[:1].upper()}{status[1:]}; default: {reason}.")
    elif not by_name[picked].present:
        st.caption(f"Not available offline: {status}.")
    else:
        st.caption(f"{status[:1].upper()}{status[1:]}.")
    return picked


# Decoding --------------------------------------------------------------------------------


ENGINE_HELP = (
    "auto: the fastest installed engine for the model (int4/int8 ONNX Runtime GenAI for "
    "instruct models and int8 ONNX Runtime for encoders on CPU, CTranslate2 for seq2seq); "
    "transformers: the reference, every option. The caption under a result says which ran."
)


def engine_picker(key: str, *, generative: bool = True) -> str:
    """The decoding engine, ``auto`` unless the user picks one (a sidebar select box).

    ``generative=False`` (classification, extractive QA) offers auto and transformers,
    the choices every model of those pages accepts.
    """
    options = list(BACKENDS) if generative else ["auto", "transformers"]
    return st.selectbox("Engine", options, index=0, key=key, help=ENGINE_HELP)


def decode_controls(
    *,
    key: str,
    allow_beams: bool = True,
    allow_sampling: bool = True,
    max_new_tokens: int = 128,
    max_tokens_limit: int = 2048,
    show_max_tokens: bool = True,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decoding strategy and limits; returns validated ``DecodeConfig`` keyword arguments.

    Greedy returns only ``max_new_tokens``; beam search adds ``num_beams`` (and
    ``length_penalty``); sampling adds ``do_sample``, ``temperature``, ``top_k``, ``top_p``
    and ``seed`` (when set). Invalid combinations cannot be built here.

    ``defaults``: the page's starting values, ``DecodeConfig`` fields (``do_sample=True``
    starts on sampling; ``temperature``, ``top_k``, ``top_p``); unset ones keep the widgets'.

    Example:
        >>> decode = decode_controls(key="sum-decode")  # doctest: +SKIP
        >>> app.summarize(text, **decode)                 # doctest: +SKIP
    """
    strategies = [
        s
        for s in STRATEGIES
        if s == "greedy"
        or (s == "beam search" and allow_beams)
        or (s == "sampling" and allow_sampling)
    ]
    kwargs: dict[str, Any] = {}
    if show_max_tokens:
        kwargs["max_new_tokens"] = int(
            st.number_input(
                "Max new tokens",
                min_value=1,
                max_value=max_tokens_limit,
                value=min(max_new_tokens, max_tokens_limit),
                step=16,
                key=f"{key}-max",
                help="The longest output, in tokens; longer outputs end with finish 'length'.",
            )
        )
    start = dict(defaults or {})
    first = "sampling" if start.get("do_sample") and "sampling" in strategies else strategies[0]
    strategy = (
        st.radio(
            "Strategy",
            strategies,
            index=strategies.index(first),
            horizontal=True,
            key=f"{key}-strategy",
        )
        if len(strategies) > 1
        else "greedy"
    )
    if strategy == "beam search":
        kwargs["num_beams"] = int(
            st.slider("Beams", 2, 8, 4, key=f"{key}-beams", help="Hypotheses kept per step.")
        )
        kwargs["length_penalty"] = float(
            st.slider(
                "Length penalty",
                0.0,
                2.0,
                1.0,
                0.1,
                key=f"{key}-lp",
                help="> 1 favours longer outputs, < 1 shorter ones.",
            )
        )
    elif strategy == "sampling":
        kwargs["do_sample"] = True
        kwargs["temperature"] = float(
            st.slider(
                "Temperature", 0.05, 2.0, start.get("temperature", 0.7), 0.05, key=f"{key}-temp"
            )  # fmt: skip
        )
        kwargs["top_k"] = int(
            st.number_input("Top-k (0 = off)", 0, 1000, start.get("top_k", 50), key=f"{key}-topk")
        )
        kwargs["top_p"] = float(
            st.slider("Top-p", 0.05, 1.0, start.get("top_p", 0.95), 0.05, key=f"{key}-topp")
        )
        seed = st.number_input(
            "Seed (0 = random)", 0, 2**31 - 1, 0, key=f"{key}-seed", help="Repeat a sample."
        )
        if seed:
            kwargs["seed"] = int(seed)
    if strategy != "beam search":
        penalty = st.slider(
            "Repetition penalty (1 = off)",
            1.0,
            2.0,
            float(start.get("repetition_penalty", 1.0)),
            0.05,
            key=f"{key}-rep",
            help="> 1 makes tokens already in the text less likely: small models loop without "
            "it. The int8 ONNX Runtime GenAI engine has no such penalty, so auto then decodes "
            "on transformers.",
        )
        if penalty != 1.0:
            kwargs["repetition_penalty"] = float(penalty)
    DecodeConfig(**kwargs)  # the widgets' ranges make this valid; fail here if not
    return kwargs


# Input -----------------------------------------------------------------------------------


def _read_text(upload: Any) -> str:
    raw = upload.getvalue()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise QuintetError(
            f"{upload.name} is not UTF-8 text (byte 0x{raw[exc.start]:02X} on line {line}; "
            "Latin-1 or Windows-1252, perhaps): open it in a text editor, save it with the "
            "UTF-8 encoding, and upload it again"
        ) from None


def text_or_file_input(
    label: str,
    *,
    key: str,
    height: int = 200,
    placeholder: str = "",
    value: str = "",
    file_types: Sequence[str] = ("txt", "md"),
) -> str:
    """A text area, or an uploaded text file; returns the text (``""`` when there is none).

    Example:
        >>> text = text_or_file_input("Document", key="sum-text")  # doctest: +SKIP
    """
    mode = st.radio(
        f"{label}: input",
        ["Type", "Upload a file"],
        horizontal=True,
        key=f"{key}-mode",
        label_visibility="collapsed",
    )
    if mode == "Type":
        return st.text_area(label, value=value, height=height, key=key, placeholder=placeholder)
    upload = st.file_uploader(label, type=list(file_types), key=f"{key}-file")
    if upload is None:
        return ""
    try:
        text = _read_text(upload)
    except QuintetError as exc:
        show_error(exc)
        return ""
    st.caption(f"{upload.name}: {len(text):,} characters")
    with st.expander("Preview", expanded=False):
        st.text(text[:2000] + ("…" if len(text) > 2000 else ""))
    return text


@dataclass
class BatchInput:
    """An uploaded batch file: its rows, the chosen text column and that column's texts."""

    filename: str
    rows: list[dict[str, str]]
    column: str
    columns: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [str(row.get(self.column) or "") for row in self.rows]


def parse_rows(name: str, text: str) -> list[dict[str, str]]:
    """Rows of a CSV / TSV / JSONL / JSON file (parsed as :func:`quintet.core.data.read_records`
    parses
    files, values as strings), or one ``{"text": line}`` per non-empty line of any other file.

    Raises:
        DataError: a malformed file, with the line (``name:line: what; what was expected``).
    """
    if not name.lower().endswith((".jsonl", ".ndjson", ".json", ".csv", ".tsv")):
        return [{"text": line} for line in text.splitlines() if line.strip()]
    return [
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in row.items()}
        for _, row in parse_records(name, text)
    ]


def batch_upload(
    label: str = "Batch file",
    *,
    key: str,
    types: Sequence[str] = ("csv", "tsv", "jsonl", "txt"),
    column_label: str = "Text column",
    preferred: Sequence[str] = TEXT_COLUMNS,
    max_rows: int | None = None,
) -> BatchInput | None:
    """Upload a CSV / TSV / JSONL / text file and pick its text column.

    A .txt file gives one row per non-empty line (column ``text``). Returns None until a
    readable file is uploaded; a bad file shows its error and returns None.

    Example:
        >>> batch = batch_upload(key="cls-batch")  # doctest: +SKIP
        >>> batch.texts if batch else []
    """
    upload = st.file_uploader(
        label,
        type=list(types),
        key=key,
        help="CSV/TSV with a header row, JSONL objects, or plain text (one item per line).",
    )
    if upload is None:
        return None
    try:
        rows = parse_rows(upload.name, _read_text(upload))
    except QuintetError as exc:
        show_error(exc)
        return None
    if not rows:
        st.warning(f"{upload.name} holds no rows.")
        return None
    if max_rows is not None and len(rows) > max_rows:
        st.warning(f"{upload.name} has {len(rows):,} rows: using the first {max_rows:,}.")
        rows = rows[:max_rows]
    columns = list(rows[0])
    index = _text_column_index(rows, columns, preferred)
    column = st.selectbox(column_label, columns, index=index, key=f"{key}-column")
    st.caption(f"{upload.name}: {len(rows):,} rows")
    return BatchInput(upload.name, rows, column, columns)


def _text_column_index(
    rows: Sequence[dict[str, Any]], columns: list[str], preferred: Sequence[str]
) -> int:
    """The column to offer first: a known text column name, else the column with the longest
    values on average (a ``review`` column rather than an ``id``)."""
    for name in preferred:
        if name in columns:
            return columns.index(name)
    sample = rows[:200]

    def mean_length(column: str) -> float:
        return sum(len(str(row.get(column) or "")) for row in sample) / len(sample)

    return max(range(len(columns)), key=lambda i: mean_length(columns[i]))


def download_results(
    rows: Sequence[dict[str, Any]], *, key: str, filename: str = "results"
) -> None:
    """Two download buttons: the rows as CSV and as JSONL."""
    if not rows:
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    jsonl = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    left, right = st.columns(2)
    left.download_button(
        "Download CSV", buffer.getvalue(), f"{filename}.csv", "text/csv", key=f"{key}-csv"
    )
    right.download_button(
        "Download JSONL", jsonl, f"{filename}.jsonl", "application/jsonl", key=f"{key}-jsonl"
    )


# Running ---------------------------------------------------------------------------------

ProgressCallback = Callable[[int, int], None]


def run_with_progress(
    fn: Callable[[ProgressCallback], T], *, label: str = "Working"
) -> tuple[T, float]:
    """Run ``fn(progress)`` with a progress bar; returns ``(result, seconds)``.

    ``progress(done, total)`` may be called from the script thread (the apps' ``progress=``
    arguments are). The bar is removed when ``fn`` returns or raises; exceptions propagate.
    """
    bar = st.empty()
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        text = progress_text(label, done, total, time.perf_counter() - started)
        if text is not None:
            bar.progress(min(done / total, 1.0), text=text)

    try:
        # The spinner's clock runs in the browser: a single item shows time passing instead
        # of a bar frozen at 0/1; several items get the bar under it as well.
        with st.spinner(f"{label}…", show_time=True):
            result = fn(progress)
    finally:
        bar.empty()
    return result, time.perf_counter() - started


class GrowingText:
    """A bordered box showing a single output's text as it is generated: call it with the
    text so far (it is an ``on_text`` callback); :meth:`clear` removes it. Updates come at
    most every ``every_s`` seconds: each is a message to the browser, and engines write 100
    tokens a second."""

    def __init__(self, *, every_s: float = 0.1) -> None:
        self.slot = st.empty()
        self.every_s = every_s
        self.shown_at = 0.0

    def __call__(self, text: str) -> None:
        now = time.perf_counter()
        if not text or now - self.shown_at < self.every_s:
            return
        self.shown_at = now
        with self.slot.container(border=True):
            st.caption("Generating…")
            st.text(text)

    def clear(self) -> None:
        self.slot.empty()


@contextmanager
def growing_text(*, every_s: float = 0.1) -> Iterator[GrowingText]:
    """Yield a :class:`GrowingText` box for the apps' ``on_text=``; it is removed when the
    block ends, so the page's final output (or its error) takes its place."""
    box = GrowingText(every_s=every_s)
    try:
        yield box
    finally:
        box.clear()


def progress_text(label: str, done: int, total: int, elapsed: float) -> str | None:
    """The progress bar's text, or None when a bar says nothing (one item or fewer: it would
    sit at 0/1 until the end, so the spinner's elapsed time is shown alone)."""
    if total <= 1:
        return None
    eta = f", about {elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
    return f"{label}: {done:,}/{total:,} ({elapsed:.0f} s{eta})"


def run_in_batches(
    fn: Callable[[list[Any]], Sequence[T]],
    items: Sequence[Any],
    *,
    batch_size: int = 8,
    label: str = "Working",
) -> tuple[list[T], float]:
    """Call ``fn`` on slices of ``items`` with a progress bar; returns all results in order.

    For APIs without a ``progress`` argument: the bar moves after each slice.
    """

    def work(progress: ProgressCallback) -> list[T]:
        results: list[T] = []
        progress(0, len(items))
        for start in range(0, len(items), batch_size):
            results += list(fn(list(items[start : start + batch_size])))
            progress(min(start + batch_size, len(items)), len(items))
        return results

    return run_with_progress(work, label=label)


def show_timings(
    seconds: float,
    *,
    items: int | None = None,
    tokens: int | None = None,
    first_token_s: float | None = None,
    **extra: Any,
) -> None:
    """One caption line: total time, items/s, tokens/s, time to first token, extras.

    Example:
        >>> show_timings(1.5, items=3, tokens=60, model="opus-mt-en-de")  # doctest: +SKIP
    """
    parts = [f":material/timer: {seconds:.2f} s"]
    if items:
        parts.append(f"{items:,} item{'s' if items != 1 else ''}")
        if seconds > 0 and items > 1:
            parts.append(f"{items / seconds:.2f} items/s")
    if tokens:
        parts.append(
            f"{tokens:,} tokens" + (f", {tokens / seconds:.1f} tokens/s" if seconds else "")
        )
    if first_token_s is not None:
        parts.append(f"first token after {first_token_s:.2f} s")
    parts += [f"{k.replace('_', ' ')}: {v}" for k, v in extra.items() if v not in (None, "")]
    st.caption(" · ".join(parts))


# Errors ----------------------------------------------------------------------------------


def unknown_model_message(name: str, task: str) -> str:
    """An unknown model name, with suggestions among the models that can do ``task`` (the
    core's suggestions span every model: a sentence encoder for a translation page)."""
    names = [c.name for c in model_choices(task)]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    present = [c.name for c in model_choices(task) if c.present][:4]
    hint = (
        f" Did you mean {', '.join(close)}?"
        if close
        else (f" Models for {task} here: {', '.join(present)}." if present else "")
    )
    return (
        f"unknown model {name!r}: not a directory, a store model, a catalog name or a hub id "
        f"(owner/name).{hint}"
    )


def show_error(exc: BaseException, doing: str | None = None, task: str | None = None) -> None:
    """Show ``exc`` readably: never a bare traceback.

    A :class:`QuintetError` (bad input, missing model, ...) is shown as its one-line
    message; an unknown model name, with suggestions for ``task`` when given. Anything
    else is a bug or an environment problem: a generic line, and the details (type,
    message, traceback) in a closed expander for a bug report.
    """
    where = f" while {doing}" if doing else ""
    if isinstance(exc, UnknownModelError) and task is not None:
        st.error(unknown_model_message(exc.name, task), icon=":material/warning:")
        return
    if isinstance(exc, QuintetError):
        st.error(for_pages(f"{exc}"), icon=":material/warning:")
        return
    log.exception("unexpected error%s", where, exc_info=exc)
    first_line = for_pages((str(exc).strip().splitlines() or [""])[0][:300])
    st.error(
        f"Something went wrong{where}: {type(exc).__name__}"
        + (f": {first_line}" if first_line else "")
        + ". Check the input and the model; if it persists, report it with the details below.",
        icon=":material/error:",
    )
    with st.expander("Details for a bug report", expanded=False):
        st.code("".join(traceback.format_exception(exc)), language="text")


@contextmanager
def guarded(doing: str | None = None, task: str | None = None) -> Iterator[None]:
    """``with guarded("translating"): ...``: any exception inside is shown by :func:`show_error`
    (``task``: the page's task, for suggestions when a typed model name is unknown).

    Streamlit's own control flow (``st.stop``, ``st.rerun``) passes through: it is not an
    ``Exception``.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - shown to the user, not swallowed silently
        show_error(exc, doing, task)
