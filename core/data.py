"""Readers for the data files that fine-tuning and evaluation share.

Every reader returns typed examples (:mod:`quintet.core.examples`) that remember where they came
from
(``source = "path:line"``), and every problem with a file raises :class:`DataError`, whose
message starts with ``"{path}:{line}: "`` (line 0 for a problem with the whole file) and says
what is wrong and what was expected::

    data/x.csv:17: empty text in field 'sentence'

Formats, chosen by extension (or ``format=``):

- ``.jsonl``: one JSON object per line, blank lines skipped;
- ``.json``: a JSON list of objects (each item's line is the line where it starts);
- ``.csv``: a header row, then rows (standard quoting; fields may span lines);
- ``.tsv``: a header row, then tab-separated rows, no quoting (GLUE style: quotes are text).

Task readers on top: :func:`read_classification` (also TREC ``.label`` files and the original
header-less AG News CSV), :func:`read_qa` (official SQuAD v1.1/v2 JSON, or JSONL),
:func:`read_pairs` and :func:`read_parallel` (summarization / translation),
:func:`read_chats` (chat messages, Alpaca, MT-Bench), and the deterministic splitters
:func:`split_by_group` and :func:`split_items`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from quintet.core.errors import QuintetError
from quintet.core.examples import Answer, ChatExample, ClassificationExample, PairExample, QAExample
from quintet.core.input_limits import max_input_chars, too_long
from quintet.core.tasks import TaskSpec, get_task
from quintet.core.unicode import find_lone_surrogate

T = TypeVar("T")
PathLike = str | os.PathLike

FORMATS = ("jsonl", "json", "csv", "tsv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}

TEXT_FIELDS = ("sentence", "text", "question", "content", "description")
LABEL_FIELDS = ("label", "labels", "category", "coarse_label", "class index", "class")
SOURCE_FIELDS = ("dialogue", "document", "article", "text", "source", "src")
TARGET_FIELDS = ("summary", "highlights", "reference", "target", "tgt")
ID_FIELDS = ("id", "idx")
ROLES = ("system", "user", "assistant")

# The original AG News CSV (ag_news_csv/{train,test}.csv) has no header row.
AG_NEWS_FIELDS = ("label", "title", "description")

_JSON_WS = re.compile(r"[ \t\n\r]*")
_TREC_LINE = re.compile(r"([A-Z]+):(\S+)\s+(.*)")


class DataError(QuintetError):
    """A data file is missing, malformed or holds a bad record.

    ``str(error)`` is ``"{path}:{location}: {what is wrong}; {what was expected}"``;
    ``location`` is a line number (0: the whole file) or, for one-line JSON files such as
    SQuAD, a key such as ``qid=5733be284776f41900661182``.
    """

    def __init__(self, path: PathLike | str, location: int | str, message: str):
        self.path = str(path)
        self.location = location
        super().__init__(f"{self.path}:{location}: {message}")

    @classmethod
    def at(cls, source: str, message: str) -> DataError:
        """The error for an example whose ``source`` is ``"path:location"``."""
        path, _, location = source.rpartition(":")
        return cls(path or source, location or 0, message)


# ----------------------------------------------------------------------------- raw records

# An unpaired UTF-16 surrogate escape in JSON text: a high one not followed by a low one, or
# a low one not preceded by a high one (a pair such as \ud83d\ude00 is an emoji, fine).
_LONE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def check_unicode(path: PathLike, line: int | str, value: Any) -> Any:
    """``value`` (parsed JSON) unchanged, or a :class:`DataError` at ``path:line`` naming the
    field that holds a lone surrogate (see :mod:`quintet.core.unicode`) or a text over the
    input limit (see :mod:`quintet.core.input_limits`)."""
    problem = find_lone_surrogate(value)
    if problem is not None:
        raise DataError(path, line, f"{problem}; expected valid Unicode text")
    _check_sizes(path, line, value)
    return value


def _check_sizes(path: PathLike, line: int | str, record: Any) -> None:
    if not isinstance(record, dict):
        return
    limit = max_input_chars()
    for field, value in record.items():
        problem = too_long(value, limit) if isinstance(value, str) else None
        if problem is not None:
            raise DataError(path, line, f"field {field!r} is {problem}")


def check_document(path: PathLike, text: str, value: Any) -> Any:
    """:func:`check_unicode` for a whole-file JSON document, at the line of the escape."""
    if find_lone_surrogate(value) is None:
        return value
    match = _LONE_ESCAPE.search(text)
    return check_unicode(path, text.count("\n", 0, match.start()) + 1 if match else 0, value)


def _read_text(path: PathLike, what: str, *, latin1_fallback: bool = False) -> str:
    """The file's text (UTF-8, BOM dropped); DataError for missing, binary or non-UTF-8 files."""
    p = Path(path)
    if not p.exists():
        raise DataError(path, 0, f"no such file; expected an existing {what} file")
    if p.is_dir():
        raise DataError(path, 0, f"is a directory; expected a {what} file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(path, 0, f"cannot be read ({e.strerror}); expected a readable file") from e
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(path, line, f"binary data (NUL byte); expected a {what} text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if latin1_fallback:
            return data.decode("latin-1")
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            path,
            line,
            f"not UTF-8 text (byte 0x{data[e.start]:02x}); expected a UTF-8 {what} file",
        ) from e


def _format_of(path: PathLike, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        if fmt == "ndjson":
            fmt = "jsonl"
        if fmt not in FORMATS:
            raise DataError(path, 0, f"unknown format {format!r}; expected one of {FORMATS}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise DataError(
            path,
            0,
            f"unknown extension {suffix or '(none)'!r}; expected .jsonl, .json, .csv or .tsv "
            "(or pass format=)",
        )
    return _EXTENSIONS[suffix]


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _parse_jsonl(path: PathLike, text: str) -> list[tuple[int, dict]]:
    records = []
    # split on "\n" only: str.splitlines would also split on U+2028 etc. inside JSON strings
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                path,
                number,
                f"not valid JSON ({e.msg} at column {e.colno}); expected one JSON object per line",
            ) from e
        if not isinstance(obj, dict):
            raise DataError(path, number, f"{_type_name(obj)}; expected one JSON object per line")
        records.append((number, check_unicode(path, number, obj)))
    return records


def _parse_json_list(path: PathLike, text: str) -> list[tuple[int, dict]]:
    """Parse a JSON list item by item, so that each item knows the line where it starts."""
    decoder = json.JSONDecoder()
    counted_to, line = 0, 1

    def line_at(i: int) -> int:
        nonlocal counted_to, line
        line += text.count("\n", counted_to, i)
        counted_to = i
        return line

    def fail(i: int, message: str) -> DataError:
        return DataError(path, line_at(i), message)

    i = _JSON_WS.match(text, 0).end()
    if i >= len(text):
        raise DataError(path, 0, "empty file; expected a JSON list of objects")
    if text[i] != "[":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(
                path, e.lineno, f"not valid JSON ({e.msg}); expected a JSON list of objects"
            ) from e
        raise DataError(path, 0, f"{_type_name(value)}; expected a JSON list of objects")
    records: list[tuple[int, dict]] = []
    i = _JSON_WS.match(text, i + 1).end()
    if text.startswith("]", i):
        i += 1
    else:
        while True:
            start_line = line_at(i)
            try:
                obj, i = decoder.raw_decode(text, i)
            except json.JSONDecodeError as e:
                raise DataError(
                    path, e.lineno, f"not valid JSON ({e.msg}); expected a JSON list of objects"
                ) from e
            if not isinstance(obj, dict):
                raise DataError(
                    path,
                    start_line,
                    f"item {len(records) + 1} is {_type_name(obj)}; expected a JSON object",
                )
            records.append((start_line, check_unicode(path, start_line, obj)))
            i = _JSON_WS.match(text, i).end()
            if text.startswith(",", i):
                i = _JSON_WS.match(text, i + 1).end()
            elif text.startswith("]", i):
                i += 1
                break
            elif i >= len(text):
                raise fail(i, "not valid JSON (the file ends inside the list); expected ']'")
            else:
                raise fail(i, "not valid JSON (expected ',' or ']' after an item)")
    i = _JSON_WS.match(text, i).end()
    if i < len(text):
        raise fail(i, "not valid JSON (extra data after the list); expected one JSON list")
    return records


def _parse_delimited(
    path: PathLike, text: str, fmt: str, fieldnames: Sequence[str] | None
) -> list[tuple[int, dict]]:
    if csv.field_size_limit() < 2**30:
        csv.field_size_limit(2**30)  # long documents (CNN/DM articles) exceed the 128 KiB default
    if fmt == "tsv":
        reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(io.StringIO(text))
    kind = fmt.upper()
    header = list(fieldnames) if fieldnames is not None else None
    records: list[tuple[int, dict]] = []
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in row]
                if any(not name for name in header):
                    raise DataError(
                        path, start, f"empty column name in the header; expected a {kind} header"
                    )
                if len(set(header)) != len(header):
                    raise DataError(path, start, f"duplicate column names in the header {header}")
                continue
            if len(row) != len(header):
                raise DataError(
                    path,
                    start,
                    f"{len(row)} fields; expected {len(header)} as in the header "
                    f"({', '.join(header)})",
                )
            records.append((start, dict(zip(header, row, strict=True))))
    except csv.Error as e:
        raise DataError(path, reader.line_num, f"not valid {kind} ({e})") from e
    if header is None:
        raise DataError(path, 0, f"empty file; expected a {kind} header row")
    return records


def read_records(
    path: PathLike, format: str | None = None, *, fieldnames: Sequence[str] | None = None
) -> list[tuple[int, dict]]:
    """Read a data file as ``(line number, record)`` pairs.

    The format comes from the extension (``.jsonl``, ``.json``, ``.csv``, ``.tsv``) unless
    ``format`` is given. CSV/TSV values are strings; ``fieldnames`` names the columns of a
    CSV/TSV without a header row. A file that is not what its format says fails at once with
    the file and line (:class:`DataError`).

    Example::

        >>> read_records("data/sst2/dev.tsv")[0]
        (2, {'sentence': "it 's a charming and often affecting journey . ", 'label': '1'})
    """
    fmt = _format_of(path, format)
    return parse_records(path, _read_text(path, fmt.upper()), fmt, fieldnames=fieldnames)


def parse_records(
    name: PathLike,
    text: str,
    format: str | None = None,
    *,
    fieldnames: Sequence[str] | None = None,
) -> list[tuple[int, dict]]:
    """:func:`read_records` on text already in memory (an upload); ``name`` gives the format
    (unless ``format`` does) and is what errors cite."""
    fmt = _format_of(name, format)
    if fmt == "jsonl":
        return _parse_jsonl(name, text)
    if fmt == "json":
        return _parse_json_list(name, text)
    records = _parse_delimited(name, text, fmt, fieldnames)
    for line, record in records:
        _check_sizes(name, line, record)
    return records


# ------------------------------------------------------------------------------ helpers


def _find_field(
    path: PathLike,
    records: list[tuple[int, dict]],
    wanted: str | None,
    candidates: Sequence[str],
    role: str,
    option: str,
) -> str | None:
    """The record key to use: ``wanted`` as given, else the first candidate present.

    Candidates match case-insensitively (Kaggle's AG News has ``Class Index``). Returns None
    when there are no records. A missing field fails at the first record's line.
    """
    if not records:
        return None
    line, first = records[0]
    if wanted is not None:
        if wanted not in first:
            raise DataError(
                path,
                line,
                f"no field {wanted!r} for the {role}; the record has {_keys(first)}",
            )
        return wanted
    lower = {key.lower(): key for key in first if isinstance(key, str)}
    for name in candidates:
        if name in lower:
            return lower[name]
    raise DataError(
        path,
        line,
        f"no {role} field: the record has {_keys(first)}; expected one of "
        f"{', '.join(candidates)} (or pass {option}=)",
    )


def _keys(record: dict) -> str:
    return ", ".join(repr(k) for k in record) or "no fields"


def _get(path: PathLike, line: int | str, record: dict, field: str) -> Any:
    if field not in record:
        raise DataError(path, line, f"missing field {field!r}; the record has {_keys(record)}")
    return record[field]


def _text(path: PathLike, line: int | str, value: Any, field: str) -> str:
    """A non-empty text value (numbers are turned into strings)."""
    if value is None:
        raise DataError(path, line, f"empty text in field {field!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(
            path, line, f"field {field!r} is {_type_name(value)}; expected a text string"
        )
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise DataError(path, line, f"empty text in field {field!r}")
    return text


def _record_id(record: dict, line: int) -> str:
    for name in ID_FIELDS:
        value = record.get(name)
        if value is not None and value != "":
            return str(value)
    return str(line)


# ------------------------------------------------------------------------- classification


def _label_values(
    path: PathLike, line: int, value: Any, field: str, multi_label: bool
) -> tuple[str, ...]:
    if isinstance(value, list):
        if not multi_label:
            raise DataError(
                path,
                line,
                f"field {field!r} is a list of labels; expected one label (or pass "
                "multi_label=True)",
            )
        items = value
    elif isinstance(value, str):
        items = value.split("|") if multi_label else [value]
    elif value is None or isinstance(value, dict):
        items = [] if value is None else [value]
    else:
        items = [value]
    labels = []
    for item in items:
        if isinstance(item, dict | list):
            raise DataError(
                path, line, f"a label in field {field!r} is {_type_name(item)}; expected a string"
            )
        if item is None:
            continue
        label = str(item).strip()
        if label:
            labels.append(label)
    if not labels:
        raise DataError(path, line, f"missing label in field {field!r}")
    return tuple(labels)


def _check_labels(
    path: PathLike,
    line: int,
    labels: tuple[str, ...],
    label_set: frozenset[str] | None,
    field: str,
) -> None:
    if label_set is None:
        return
    for label in labels:
        if label not in label_set:
            raise DataError(
                path,
                line,
                f"unknown label {label!r} in field {field!r}; expected one of "
                f"{', '.join(sorted(label_set))}",
            )


def _read_trec(
    path: PathLike, label_field: str | None, label_set: frozenset[str] | None
) -> list[ClassificationExample]:
    which = label_field or "coarse"
    if which not in ("coarse", "fine"):
        raise DataError(
            path, 0, f"label_field {label_field!r} for a TREC .label file; expected coarse or fine"
        )
    # the cogcomp originals are Latin-1 (one 0xF0 byte in train_5500.label)
    text = _read_text(path, "TREC .label", latin1_fallback=True)
    examples = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _TREC_LINE.fullmatch(line)
        if not match:
            raise DataError(
                path,
                number,
                f"not a TREC line ({line[:40]!r}); expected 'COARSE:fine question text'",
            )
        coarse, fine, question = match.groups()
        if not question.strip():
            raise DataError(path, number, "empty text in field 'question'")
        labels = (coarse,) if which == "coarse" else (f"{coarse}:{fine}",)
        _check_labels(path, number, labels, label_set, which)
        examples.append(
            ClassificationExample(
                text=question, labels=labels, source=f"{path}:{number}", id=str(number)
            )
        )
    return examples


def is_headerless_ag_news(path: PathLike) -> bool:
    """True for the original AG News CSV: no header, rows ``"3","title","description"``."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # read_records reports the problem with file and line
    return first is not None and len(first) == 3 and first[0].strip().isdigit()


def read_classification(
    path: PathLike,
    text_field: str | None = None,
    label_field: str | None = None,
    label_set: Iterable[str] | None = None,
    multi_label: bool = False,
    *,
    format: str | None = None,
    fieldnames: Sequence[str] | None = None,
) -> list[ClassificationExample]:
    """Read text classification examples; labels stay strings (SST-2's ``"0"``/``"1"``).

    - Text field: ``text_field``, else ``title`` + ``description`` joined as
      ``"title. description"`` when both exist (AG News), else the first present of
      sentence, text, question, content, description.
    - Label field: ``label_field``, else the first of label, labels, category, coarse_label
      (also AG News' ``Class Index``). With ``multi_label`` a label is a JSON list or an
      ``"a|b"`` string.
    - TREC ``.label`` files (``COARSE:fine question`` per line): ``label_field`` is
      ``"coarse"`` (default, e.g. ``"DESC"``) or ``"fine"`` (e.g. ``"DESC:manner"``).
    - The original AG News CSV has no header: a CSV whose first row is ``"3","...","..."`` is
      read with the columns label, title, description (``fieldnames=`` to name others).

    Empty text, a missing label, or a label outside ``label_set`` raise :class:`DataError`
    with the file and line. ``id`` is the record's id field, else the line number.

    Example::

        >>> ex = read_classification("sst2/dev.tsv", label_set={"0", "1"})[0]
        >>> ex.text, ex.labels, ex.source
        ("it 's a charming and often affecting journey . ", ('1',), 'sst2/dev.tsv:2')
    """
    labels_allowed = frozenset(str(x) for x in label_set) if label_set is not None else None
    if (format or Path(path).suffix).lower().lstrip(".") == "label":
        return _read_trec(path, label_field, labels_allowed)
    fmt = _format_of(path, format)
    if fmt == "csv" and fieldnames is None and is_headerless_ag_news(path):
        fieldnames = AG_NEWS_FIELDS
    records = read_records(path, fmt, fieldnames=fieldnames)
    if not records:
        return []
    first = records[0][1]
    lower = {key.lower(): key for key in first if isinstance(key, str)}
    title_key = description_key = None
    if text_field is None and "title" in lower and "description" in lower:
        title_key, description_key = lower["title"], lower["description"]
    else:
        text_field = _find_field(path, records, text_field, TEXT_FIELDS, "text", "text_field")
    label_key = _find_field(path, records, label_field, LABEL_FIELDS, "label", "label_field")
    assert label_key is not None
    examples = []
    for line, record in records:
        if title_key is not None and description_key is not None:
            title = str(_get(path, line, record, title_key) or "").strip()
            description = str(_get(path, line, record, description_key) or "").strip()
            if not title and not description:
                raise DataError(
                    path, line, f"empty text in fields {title_key!r} and {description_key!r}"
                )
            if title and description:
                joiner = " " if title[-1] in ".!?" else ". "
                text = title + joiner + description
            else:
                text = title or description
        else:
            assert text_field is not None
            text = _text(path, line, _get(path, line, record, text_field), text_field)
        labels = _label_values(
            path, line, _get(path, line, record, label_key), label_key, multi_label
        )
        _check_labels(path, line, labels, labels_allowed, label_key)
        examples.append(
            ClassificationExample(
                text=text, labels=labels, source=f"{path}:{line}", id=_record_id(record, line)
            )
        )
    return examples


# ------------------------------------------------------------------------------------ QA


def _answers(path: PathLike, where: int | str, value: Any, context: str) -> tuple[Answer, ...]:
    """Answers from ``{"text": [...], "answer_start": [...]}`` or ``[{"text", "answer_start"}]``."""
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list):
            raise DataError(
                path,
                where,
                "field 'answers' is an object without 'text' and 'answer_start' lists; expected "
                '{"text": [...], "answer_start": [...]}',
            )
        if len(texts) != len(starts):
            raise DataError(
                path,
                where,
                f"'answers' has {len(texts)} texts and {len(starts)} answer_start values; "
                "expected as many of each",
            )
        pairs = list(zip(texts, starts, strict=True))
    elif isinstance(value, list):
        pairs = []
        for item in value:
            if not isinstance(item, dict) or "text" not in item or "answer_start" not in item:
                raise DataError(
                    path,
                    where,
                    f"an answer is {_type_name(item)} without 'text' and 'answer_start'; "
                    'expected {"text": ..., "answer_start": ...}',
                )
            pairs.append((item["text"], item["answer_start"]))
    else:
        raise DataError(
            path,
            where,
            f"field 'answers' is {_type_name(value)}; expected a list of answers or "
            '{"text": [...], "answer_start": [...]}',
        )
    answers = []
    for text, start in pairs:
        if not isinstance(text, str) or not text:
            raise DataError(path, where, f"answer text {text!r}; expected a non-empty string")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise DataError(
                path, where, f"answer_start {start!r}; expected a character offset (int >= 0)"
            )
        found = context[start : start + len(text)]
        if found != text:
            raise DataError(
                path,
                where,
                f"answer {text!r} does not match the context at answer_start {start} (the "
                f"context has {found!r} there); expected context[start:start+len(text)] == text",
            )
        answers.append(Answer(text=text, start=start))
    return tuple(answers)


def _read_squad(path: PathLike, text: str) -> list[QAExample]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, e.lineno, f"not valid JSON ({e.msg}); expected SQuAD JSON") from e
    check_document(path, text, doc)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise DataError(
            path, 0, 'no "data" list; expected SQuAD JSON {"data": [{"title", "paragraphs"}]}'
        )
    examples = []
    for a, article in enumerate(data):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(path, f"data[{a}]", "expected an article with a 'paragraphs' list")
        title = str(article.get("title") or "")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise DataError(path, where, "expected a paragraph object")
            context = _text(path, where, paragraph.get("context"), "context")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise DataError(path, where, "no 'qas' list; expected the paragraph's questions")
            for q, qa in enumerate(qas):
                if not isinstance(qa, dict):
                    raise DataError(path, f"{where}.qas[{q}]", "expected a question object")
                qid = qa.get("id")
                loc = f"qid={qid}" if qid not in (None, "") else f"{where}.qas[{q}]"
                question = _text(path, loc, qa.get("question"), "question")
                if qa.get("is_impossible"):
                    answers: tuple[Answer, ...] = ()
                else:
                    answers = _answers(path, loc, qa.get("answers", []), context)
                examples.append(
                    QAExample(
                        id=str(qid) if qid not in (None, "") else loc,
                        question=question,
                        context=context,
                        answers=answers,
                        title=title,
                        source=f"{path}:{loc}",
                    )
                )
    return examples


def read_qa(path: PathLike, format: str | None = None) -> list[QAExample]:
    """Read extractive QA examples.

    Accepts the official SQuAD JSON (``{"data": [{"title", "paragraphs": [{"context",
    "qas"}]}]}``, v1.1, or v2 with ``is_impossible``: no answers), and JSONL (or a JSON list)
    of records with ``context``, ``question`` and ``answers``, where ``answers`` is
    ``{"text": [...], "answer_start": [...]}`` (Hugging Face) or a list of ``{"text",
    "answer_start"}``; optional ``id`` and ``title``. An empty answer list is a no-answer
    question. Every answer must sit at its offset (``context[start:start+len(text)] ==
    text``), else :class:`DataError`; SQuAD JSON errors are located by question id
    (``path:qid=...``) since the file is one line.

    Example::

        >>> ex = read_qa("squad/dev-v1.1.json")[0]
        >>> ex.title, ex.question, ex.answers[0]
        ('Super_Bowl_50', 'Which NFL team represented the AFC at Super Bowl 50?',
         Answer(text='Denver Broncos', start=177))
    """
    fmt = _format_of(path, format)
    if fmt == "json":
        text = _read_text(path, "JSON")
        start = _JSON_WS.match(text, 0).end()
        if text.startswith("{", start):
            return _read_squad(path, text)
    records = read_records(path, fmt)
    examples = []
    for line, record in records:
        context = _text(path, line, _get(path, line, record, "context"), "context")
        question = _text(path, line, _get(path, line, record, "question"), "question")
        if record.get("is_impossible"):
            answers: tuple[Answer, ...] = ()
        else:
            raw = _get(path, line, record, "answers")
            if isinstance(raw, str) and fmt in ("csv", "tsv"):
                try:
                    raw = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise DataError(
                        path, line, f"field 'answers' is not JSON ({e.msg}); expected JSON answers"
                    ) from e
                check_unicode(path, line, {"answers": raw})
            answers = _answers(path, line, raw, context)
        examples.append(
            QAExample(
                id=_record_id(record, line),
                question=question,
                context=context,
                answers=answers,
                title=str(record.get("title") or ""),
                source=f"{path}:{line}",
            )
        )
    return examples


# ------------------------------------------------------------------- summarization / MT


def _targets(path: PathLike, line: int, value: Any, field: str) -> list[str]:
    if isinstance(value, list):
        if not value:
            raise DataError(path, line, f"field {field!r} is an empty list; expected references")
        return [_text(path, line, item, field) for item in value]
    return [_text(path, line, value, field)]


def read_pairs(
    path: PathLike,
    source_field: str | None = None,
    target_field: str | Sequence[str] | None = None,
    *,
    format: str | None = None,
) -> list[PairExample]:
    """Read (source text, reference(s)) pairs for summarization or translation.

    Source field default: the first present of dialogue, document, article, text, source,
    src; target: summary, highlights, reference, target, tgt (CNN/DM highlights are kept as
    they are). A list-valued target gives several references; ``target_field`` may also name
    several fields whose references are concatenated in order, e.g.
    ``["highlights", "additional_references"]`` for the SummEval CNN/DM subset. Texts are
    kept verbatim (SAMSum's ``\\r\\n`` included).

    Example::

        >>> ex = read_pairs("xsum/test.jsonl")[0]
        >>> ex.source_text[:20], ex.target[:30], ex.id
        ('The owners said the', 'Proposals for an indoor water ', '38264402')
    """
    records = read_records(path, format)
    if not records:
        return []
    src = _find_field(path, records, source_field, SOURCE_FIELDS, "source", "source_field")
    assert src is not None
    if target_field is None or isinstance(target_field, str):
        tgt = _find_field(path, records, target_field, TARGET_FIELDS, "target", "target_field")
        target_fields: list[str] = [tgt] if tgt else []
    else:
        target_fields = list(target_field)
        if not target_fields:
            raise DataError(path, 0, "target_field is an empty list; expected field names")
    examples = []
    for line, record in records:
        source_text = _text(path, line, _get(path, line, record, src), src)
        targets: list[str] = []
        for field in target_fields:
            targets += _targets(path, line, _get(path, line, record, field), field)
        examples.append(
            PairExample(
                source_text=source_text,
                targets=tuple(targets),
                source=f"{path}:{line}",
                id=_record_id(record, line),
            )
        )
    return examples


def _lines(path: PathLike) -> list[str]:
    text = _read_text(path, "plain text")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_parallel(
    source_path: PathLike, reference_paths: PathLike | Sequence[PathLike]
) -> list[PairExample]:
    """Read line-aligned plain text files: one source file and one or more reference files.

    Line ``n`` of every file is one segment (WMT newstest, FLORES). Files of different line
    counts, or an empty source line, raise :class:`DataError`.

    Example::

        >>> ex = read_parallel("newstest2014.en", ["newstest2014.de"])[0]
        >>> ex.source, ex.id
        ('newstest2014.en:1', '1')
    """
    if isinstance(reference_paths, str | os.PathLike):
        reference_paths = [reference_paths]
    if not reference_paths:
        raise DataError(source_path, 0, "no reference files; expected at least one")
    sources = _lines(source_path)
    references = []
    for ref_path in reference_paths:
        refs = _lines(ref_path)
        if len(refs) != len(sources):
            raise DataError(
                source_path,
                0,
                f"{len(sources)} lines but {ref_path} has {len(refs)}; expected line-aligned "
                "files with the same number of lines",
            )
        references.append(refs)
    examples = []
    for i, source_text in enumerate(sources):
        if not source_text.strip():
            raise DataError(source_path, i + 1, "empty line; expected one segment per line")
        examples.append(
            PairExample(
                source_text=source_text,
                targets=tuple(refs[i] for refs in references),
                source=f"{source_path}:{i + 1}",
                id=str(i + 1),
            )
        )
    return examples


# ---------------------------------------------------------------------------------- chat


def _messages(path: PathLike, line: int, value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise DataError(
            path,
            line,
            f"field 'messages' is {_type_name(value)}; expected a non-empty list of "
            '{"role", "content"} objects',
        )
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataError(
                path, line, f"message {i + 1} is {_type_name(message)}; expected an object"
            )
        role = message.get("role")
        if role not in ROLES:
            raise DataError(
                path, line, f"message {i + 1} has role {role!r}; expected one of {', '.join(ROLES)}"
            )
        if role == "system" and i != 0:
            raise DataError(
                path, line, f"message {i + 1} is a system message; expected it first only"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise DataError(
                path,
                line,
                f"message {i + 1} content is {_type_name(content)}; expected a string",
            )
        if not content.strip():
            raise DataError(path, line, f"message {i + 1} ({role}) has empty content")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise DataError(path, line, "no user message; expected at least one")
    return tuple(messages)


def read_chats(path: PathLike, format: str | None = None) -> list[ChatExample]:
    """Read conversations as OpenAI-style messages, from any of three record shapes:

    - ``{"messages": [{"role", "content"}, ...]}`` (roles system/user/assistant; a system
      message only first; string content), optional ``id`` and ``category``;
    - Alpaca ``{"instruction", "input", "output"}`` (optional ``system``): user =
      instruction + ``"\\n\\n" + input`` when input is not empty, assistant = output;
    - MT-Bench ``question.jsonl`` ``{"question_id", "category", "turns"}``: the user turns
      only (no answers), ``id`` = question_id, ``extra = {"turns": [...]}`` (plus
      ``"reference"`` when the question has reference answers). A multi-turn harness sends
      ``extra["turns"]`` one at a time, each after the model's previous answer.

    Example::

        >>> ex = read_chats("mt_bench/question.jsonl")[0]
        >>> ex.id, ex.category, len(ex.extra["turns"])
        ('81', 'writing', 2)
    """
    examples = []
    for line, record in read_records(path, format):
        source = f"{path}:{line}"
        if "messages" in record:
            examples.append(
                ChatExample(
                    messages=_messages(path, line, record["messages"]),
                    source=source,
                    id=_record_id(record, line),
                    category=str(record.get("category") or ""),
                )
            )
        elif "turns" in record:
            turns = record["turns"]
            if not isinstance(turns, list) or not turns:
                raise DataError(
                    path,
                    line,
                    f"field 'turns' is {_type_name(turns)}; expected a non-empty list of strings",
                )
            turns = [_text(path, line, turn, "turns") for turn in turns]
            qid = record.get("question_id")
            extra: dict[str, Any] = {"turns": turns}
            if record.get("reference"):
                extra["reference"] = record["reference"]
            examples.append(
                ChatExample(
                    messages=tuple({"role": "user", "content": turn} for turn in turns),
                    source=source,
                    id=str(qid) if qid not in (None, "") else _record_id(record, line),
                    category=str(record.get("category") or ""),
                    extra=extra,
                )
            )
        elif "instruction" in record:
            instruction = _text(path, line, record["instruction"], "instruction")
            extra_input = record.get("input") or ""
            if not isinstance(extra_input, str):
                raise DataError(
                    path, line, f"field 'input' is {_type_name(extra_input)}; expected a string"
                )
            output = _text(path, line, _get(path, line, record, "output"), "output")
            user = instruction + ("\n\n" + extra_input if extra_input.strip() else "")
            messages: list[dict[str, str]] = []
            system = record.get("system")
            if isinstance(system, str) and system.strip():
                messages.append({"role": "system", "content": system})
            messages += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": output},
            ]
            examples.append(
                ChatExample(messages=tuple(messages), source=source, id=_record_id(record, line))
            )
        else:
            raise DataError(
                path,
                line,
                f"unknown chat record (fields {_keys(record)}); expected 'messages', Alpaca "
                "'instruction'/'input'/'output', or MT-Bench 'turns'",
            )
    return examples


# ------------------------------------------------------------------------------ splitting


def _where(items: Sequence[Any]) -> str:
    """The file the items came from (from their ``source``), for error messages."""
    for item in items[:1]:
        source = getattr(item, "source", "")
        if isinstance(source, str) and ":" in source:
            return source.rsplit(":", 1)[0]
    return "<data>"


def _check_fraction(items: Sequence[Any], fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise DataError(
            _where(items), 0, f"validation_fraction {fraction}; expected a number in (0, 1)"
        )


def split_by_group(
    items: Sequence[T],
    group: Callable[[T], Any],
    validation_fraction: float,
    seed: int = 0,
) -> tuple[list[T], list[T]]:
    """Split ``items`` into (train, validation) so that each group lies on one side only.

    Groups (e.g. SQuAD article titles) are shuffled with ``seed`` and taken into validation
    while that brings its size closer to ``validation_fraction`` of the items; both sides get
    at least one group. Items keep their order. Deterministic for the same items and seed.
    Fewer than 2 groups: :class:`DataError`.

    Example::

        >>> train, val = split_by_group(read_qa("squad.json"), lambda ex: ex.title, 0.1)
        >>> {ex.title for ex in train} & {ex.title for ex in val}
        set()
    """
    _check_fraction(items, validation_fraction)
    sizes: dict[Any, int] = {}
    keys = [group(item) for item in items]
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    if len(sizes) < 2:
        raise DataError(
            _where(items),
            0,
            f"{len(sizes)} group(s) among {len(items)} items; expected at least 2 groups to "
            "split by group",
        )
    order = list(sizes)  # first-appearance order, then a seeded shuffle
    random.Random(seed).shuffle(order)
    target = validation_fraction * len(items)
    chosen: list[Any] = []
    size = 0
    for key in order:
        if abs(size + sizes[key] - target) < abs(size - target):
            chosen.append(key)
            size += sizes[key]
    if not chosen:
        chosen = [min(order, key=lambda k: sizes[k])]
    elif len(chosen) == len(order):
        chosen.pop()
    validation_keys = set(chosen)
    train = [item for item, key in zip(items, keys, strict=True) if key not in validation_keys]
    validation = [item for item, key in zip(items, keys, strict=True) if key in validation_keys]
    return train, validation


def split_items(
    items: Sequence[T], validation_fraction: float, seed: int = 0
) -> tuple[list[T], list[T]]:
    """Split ``items`` at random (seeded, deterministic) into (train, validation).

    Validation gets ``round(validation_fraction * len(items))`` items, at least 1 and at most
    ``len(items) - 1``; items keep their order. Fewer than 2 items: :class:`DataError`.

    Example::

        >>> train, val = split_items(list(range(10)), 0.2, seed=0)
        >>> len(train), len(val)
        (8, 2)
    """
    _check_fraction(items, validation_fraction)
    if len(items) < 2:
        raise DataError(_where(items), 0, f"{len(items)} item(s); expected at least 2 to split")
    n_val = min(max(round(validation_fraction * len(items)), 1), len(items) - 1)
    picked = set(random.Random(seed).sample(range(len(items)), n_val))
    train = [item for i, item in enumerate(items) if i not in picked]
    validation = [item for i, item in enumerate(items) if i in picked]
    return train, validation


def split_for_task(
    task: str | TaskSpec, items: Sequence[T], validation_fraction: float, seed: int = 0
) -> tuple[list[T], list[T]]:
    """The fine-tuning engine's (train, held out) split of a task's examples.

    A task whose spec names a ``group`` (extractive QA: the article title, since questions on
    one paragraph share answers, which would leak) is split by group (:func:`split_by_group`);
    every other task at random (:func:`split_items`). The evaluation harnesses'
    ``split=heldout`` calls this with a recipe's fraction and seed, so they score exactly what
    that recipe held back.
    """
    training = get_task(task).training
    if training is not None and training.group is not None:
        return split_by_group(items, training.group, validation_fraction, seed)
    return split_items(items, validation_fraction, seed)
