"""Small self-contained SVG charts for the HTML report.

Plain SVG strings (no plotting library, no scripts, no external fonts) so a report opens
offline in any browser and can be attached to an e-mail as one file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

_W, _H, _PAD = 520, 260, 44  # two charts side by side fit the page
_BLUE = "#3b6ea8"
_GRID = "#e2e6ea"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(body: str, title: str, width: int = _W, height: int = _H) -> str:
    return (
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}" '
        f'font-family="sans-serif" font-size="11">'
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{_esc(title)}</text>{body}</svg>'
    )


def _axes(
    x_label: str, y_label: str, x_range: tuple[float, float], y_range: tuple[float, float]
) -> str:
    left, right, top, bottom = _PAD, _W - 12, 28, _H - _PAD
    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#555"/>',
    ]
    for i in range(5):
        fy = i / 4
        y = bottom - fy * (bottom - top)
        value = y_range[0] + fy * (y_range[1] - y_range[0])
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}</text>')
        x = left + fy * (right - left)
        value = x_range[0] + fy * (x_range[1] - x_range[0])
        parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{value:.3g}</text>')
    parts.append(
        f'<text x="{(left + right) / 2}" y="{_H - 8}" text-anchor="middle">{_esc(x_label)}</text>'
    )
    parts.append(
        f'<text x="12" y="{(top + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + bottom) / 2})">{_esc(y_label)}</text>'
    )
    return "".join(parts)


def histogram(values: Sequence[float], title: str, x_label: str, bins: int = 20) -> str:
    """A histogram of ``values``."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    top_count = max(counts)
    left, right, top, bottom = _PAD, _W - 12, 28, _H - _PAD
    width = (right - left) / bins
    bars = []
    for i, c in enumerate(counts):
        h = c / top_count * (bottom - top)
        bars.append(
            f'<rect x="{left + i * width + 1:.1f}" y="{bottom - h:.1f}" width="{width - 2:.1f}" '
            f'height="{h:.1f}" fill="{_BLUE}"><title>{c}</title></rect>'
        )
    return _frame(_axes(x_label, "items", (lo, hi), (0, top_count)) + "".join(bars), title)


def scatter(points: Sequence[tuple[float, float]], title: str, x_label: str, y_label: str) -> str:
    """A scatter plot of ``(x, y)`` points."""
    points = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, right, top, bottom = _PAD, _W - 12, 28, _H - _PAD
    dots = "".join(
        f'<circle cx="{left + (x - x0) / (x1 - x0) * (right - left):.1f}" '
        f'cy="{bottom - (y - y0) / (y1 - y0) * (bottom - top):.1f}" r="2.5" '
        f'fill="{_BLUE}" fill-opacity="0.55"/>'
        for x, y in points
    )
    return _frame(_axes(x_label, y_label, (x0, x1), (y0, y1)) + dots, title)


def bars(values: Mapping[str, float], title: str, *, intervals: Mapping | None = None) -> str:
    """Horizontal bars, one per name, with optional ``[low, high]`` whiskers."""
    if not values:
        return ""
    names = list(values)
    row = 20
    height = 40 + row * len(names)
    label_w = min(200, 8 + 7 * max(len(str(n)) for n in names))
    left, right = label_w, _W - 60
    high = max([abs(v) for v in values.values()] + [1e-9])
    if intervals:
        high = max([high] + [abs(i[1]) for i in intervals.values() if i])
    parts = []
    for k, name in enumerate(names):
        y = 30 + k * row
        w = max(0.0, values[name]) / high * (right - left)
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{_esc(name)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{_BLUE}"/>'
        )
        end = left + w  # the value goes right of the bar, or of its whisker
        interval = (intervals or {}).get(name)
        if interval:
            a, b = (left + max(0.0, v) / high * (right - left) for v in interval)
            parts.append(
                f'<line x1="{a:.1f}" y1="{y + row / 2}" x2="{b:.1f}" '
                f'y2="{y + row / 2}" stroke="#222" stroke-width="1.5"/>'
            )
            end = max(end, b)
        parts.append(f'<text x="{end + 4:.1f}" y="{y + 13}">{values[name]:.3g}</text>')
    return _frame("".join(parts), title, height=height)


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """A confusion matrix: rows are gold labels, columns predicted labels."""
    if not labels:
        return ""
    n = len(labels)
    cell = max(18, min(48, 360 // n))
    label_w = min(160, 8 + 7 * max(len(str(x)) for x in labels))
    width = label_w + cell * n + 20
    height = 60 + label_w + cell * n
    top = 40 + label_w
    peak = max([max(row) for row in matrix] + [1])
    parts = [f'<text x="{label_w + cell * n / 2}" y="34" text-anchor="middle">predicted</text>']
    for j, name in enumerate(labels):
        x = label_w + j * cell + cell / 2
        parts.append(
            f'<text x="{x}" y="{top - 6}" transform="rotate(-60 {x} {top - 6})">{_esc(name)}</text>'
        )
    for i, name in enumerate(labels):
        y = top + i * cell
        parts.append(
            f'<text x="{label_w - 6}" y="{y + cell / 2 + 4}" text-anchor="end">{_esc(name)}</text>'
        )
        for j in range(n):
            value = matrix[i][j]
            shade = value / peak
            red, green, blue = (int(255 - k * shade) for k in (196, 145, 87))
            colour = f"rgb({red},{green},{blue})"
            text_colour = "#fff" if shade > 0.55 else "#222"
            x = label_w + j * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" '
                f'stroke="#fff"/>'
            )
            parts.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                f'fill="{text_colour}">{value}</text>'
            )
    return _frame("".join(parts), title, width=width, height=height)
