"""Table and value formatting shared by the report and comparison files (Markdown, HTML)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fmt(value: Any) -> str:
    """A number as the reports show it: 2 decimals, 4 below 0.01; anything else as str."""
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"
    return str(value)


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells formatted with :func:`fmt`."""

    def cell(v: Any) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(v) for v in row) + " |\n" for row in rows)


CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #dde;border-radius:8px;
padding:.6rem 1rem;min-width:120px}.card .v{font-size:1.6rem;font-weight:600}
.card .n{color:#555;font-size:.85rem}.muted{color:#666;font-size:.85rem}
code{background:#f3f5f7;padding:0 .2rem;border-radius:3px;font-size:.85rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
.wide td{max-width:360px;overflow-wrap:break-word;white-space:pre-wrap}
.wide td.num,.wide td:first-child{white-space:nowrap}
"""


def escape(value: Any) -> str:
    """HTML-escaped text of a value (numbers formatted with :func:`fmt`)."""
    return html.escape(fmt(value) if not isinstance(value, str) else value)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    """An HTML table; numeric cells right-aligned."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)

    def cell(v: Any) -> str:
        numeric = isinstance(v, int | float) and not isinstance(v, bool)
        return f'<td class="num">{escape(v)}</td>' if numeric else f"<td>{escape(v)}</td>"

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'
