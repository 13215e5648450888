"""Pure SVG charts for the HTML report: nice ticks and human numbers, gridlines, a zero
line, axis titles with units, legends, and exact values on hover.

Every function returns a string of inline SVG that scales with its box (``viewBox``,
no fixed size) and takes its colours from the page's CSS (classes ``s1``..``s8``: the
Okabe-Ito palette, with dark variants). A mark's exact value is in its ``data-tip``,
which the page's script shows on hover or tap; without the script the tables hold the
same numbers. No scripts, styles or external references are inside the SVG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

__all__ = [
    "WIDTH",
    "duration",
    "exact",
    "human",
    "latency_chart",
    "linear_ticks",
    "log_ticks",
    "stacked_bars",
    "time_bars",
    "time_label",
    "time_ticks",
]

WIDTH = 480
"""The width of every chart's ``viewBox``; text is 12 units high, so it reads at 9 px
on a 360-px phone column and at about 14 px in a desktop half-column."""
_FONT = 12
_CHAR = 6.6
"""The mean width of a character at ``_FONT`` (sans-serif), to fit labels."""
_MAX_ROWS = 25
"""Rows drawn in a chart of named rows; the table beside it has them all."""

Format = Callable[[float], str]


# -- Numbers for people ---------------------------------------------------------------


def _trim(x: float) -> str:
    text = f"{x:.3g}"
    if "e" in text:  # tiny or huge: keep it readable rather than short
        text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text


def human(value: float) -> str:
    """A count for an axis: ``950``, ``1.2k``, ``2.5M``, ``3G``."""
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return _trim(value / limit) + suffix
    return _trim(value)


def duration(ms: float) -> str:
    """A duration in milliseconds for an axis: ``250 µs``, ``2.5 ms``, ``1.5 s``,
    ``2 min``, ``3 h``."""
    size = abs(ms)
    if size == 0:
        return "0"
    if size < 1:
        return f"{_trim(ms * 1000)} µs"
    if size < 1000:
        return f"{_trim(ms)} ms"
    if size < 60_000:
        return f"{_trim(ms / 1000)} s"
    if size < 3_600_000:
        return f"{_trim(ms / 60_000)} min"
    return f"{_trim(ms / 3_600_000)} h"


def exact(value: float, unit: str = "") -> str:
    """A value as a tooltip gives it: grouped digits, up to three decimals."""
    text = f"{value:,.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


# -- Ticks ----------------------------------------------------------------------------


def _nice(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    for step in (1.0, 2.0, 2.5, 5.0):
        if raw <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def linear_ticks(high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks from 0 to at least ``high`` at a nice step (1, 2, 2.5 or 5 times a power of
    ten), about ``count`` of them and never fewer than three."""
    high = high if high > 0 and math.isfinite(high) else 1.0
    step = _nice(high / (count - 1))
    if integer:
        step = max(step, 1.0)
    n = max(math.ceil(high / step - 1e-9), 2)
    return [float(f"{i * step:.12g}") for i in range(n + 1)]  # 4 * 2.5e-6 is 1e-5, exactly


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log scale covering ``low``..``high`` (both > 0), at least three and
    at most seven: the 1-2-5 (else 1-5) steps closest around the data, or powers of ten
    alone when the data spans more decades than those steps can show."""
    low, high = min(low, high), max(low, high)
    first, last = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9)
    for steps in ((1, 2, 5), (1, 5)):
        candidates = [m * 10.0**e for e in range(first - 1, last + 2) for m in steps]
        below = max(c for c in candidates if c <= low * (1 + 1e-9))
        above = min(c for c in candidates if c >= high * (1 - 1e-9))
        lo, hi = candidates.index(below), candidates.index(above)
        while hi - lo < 2:  # fewer than three: widen, above first
            hi, lo = (hi + 1, lo) if hi - lo == 0 or lo == 0 else (hi, lo - 1)
        if hi - lo < 7:
            return candidates[lo : hi + 1]
    decades = [10.0**e for e in range(first, max(last, first + 2) + 1)]
    stride = math.ceil(len(decades) / 7)
    return decades[::stride]


_TIME_STEPS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800, 2592000,
)  # fmt: skip
"""Tick steps of a time axis, in seconds."""
_YEAR = 365 * 86400


def time_ticks(start: datetime, end: datetime, count: int = 5) -> list[datetime]:
    """Ticks at round times (a step of 1 s .. 30 days, aligned in UTC) within
    ``start``..``end``."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), None)
    if step is None:  # beyond months: a nice number of (365-day) years
        step = int(_nice(span / count / _YEAR) * _YEAR)
    first = math.ceil(start.timestamp() / step) * step
    ticks = []
    t = first
    while t <= end.timestamp() + 1e-6:
        ticks.append(datetime.fromtimestamp(t, UTC))
        t += step
    return ticks


def time_label(moment: datetime, span: timedelta) -> str:
    """A tick's label, as precise as the span needs: ``12:00:30``, ``12:30``,
    ``Nov 02 12:00``, ``Nov 02`` or ``2026-11-02``."""
    moment = moment.astimezone(UTC)
    if span <= timedelta(minutes=5):
        return moment.strftime("%H:%M:%S")
    if span <= timedelta(days=1):
        return moment.strftime("%H:%M")
    if span <= timedelta(days=4) and (moment.hour or moment.minute):
        return moment.strftime("%b %d %H:%M")
    if span <= timedelta(days=300):
        return moment.strftime("%b %d")
    return moment.strftime("%Y-%m-%d")


# -- Drawing --------------------------------------------------------------------------


def _attrs(**attrs: object) -> str:
    return "".join(
        f' {k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items()
    )


def _text(x: float, y: float, text: str, cls: str, anchor: str = "middle", **more: object) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}"{_attrs(**more)}>'
        f"{escape(text)}</text>"
    )


def _svg(title: str, height: float, parts: list[str], kind: str) -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {height:.0f}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"'
        f' font-size="{_FONT}"><title>{escape(title)}</title>' + "".join(parts) + "</svg>"
    )


_LEGEND_LINE = 14.0
"""The height of a line of a legend."""
_LEGEND_CHAR = 7.6
"""A legend's character width, estimated wide: underscores and capitals are wider than
the mean."""


def _legend_lines(names: Sequence[str], right: float, left: float = 4.0) -> list[list[int]]:
    """The indexes of ``names`` on each line of a legend between ``left`` and
    ``right``, in order, as many on a line as fit."""
    lines: list[list[int]] = [[]]
    room = right - left
    used = 0.0
    for index, name in enumerate(names):
        width = min(len(name) * _LEGEND_CHAR, room - 26) + 26  # swatch, gap, name, spacing
        if lines[-1] and used + width > room:
            lines.append([])
            used = 0.0
        lines[-1].append(index)
        used += width
    return lines


def _legend(names: Sequence[str], y: float, right: float, left: float = 4.0) -> list[str]:
    """Swatches and names, right-aligned at ``y``, on as many lines of
    :data:`_LEGEND_LINE` as they need (see :func:`_legend_lines`)."""
    parts = []
    for line, indexes in enumerate(_legend_lines(names, right, left)):
        x = right
        top = y + line * _LEGEND_LINE
        for index in reversed(indexes):
            name = _fit(names[index], right - left - 26)
            # anchored at its end: a name wider than estimated overlaps its swatch a
            # little rather than running out of the chart
            parts.append(_text(x, top + 9, name, "legend", "end"))
            x -= len(name) * _LEGEND_CHAR + 14
            parts.append(
                f'<rect x="{x:.1f}" y="{top}" width="10" height="10" class="s{index + 1}"/>'
            )
            x -= 12
    return ['<g class="legend">', *parts, "</g>"]


def _anchor(x: float, text: str) -> str:
    """Centred on ``x``, unless that would cut the label at an edge of the chart."""
    half = len(text) * _CHAR / 2
    return "start" if x - half < 0 else "end" if x + half > WIDTH else "middle"


def _fit(name: str, room: float) -> str:
    chars = max(int(room / _CHAR), 4)
    return name if len(name) <= chars else name[: chars - 1] + "…"


def time_bars(
    title: str,
    starts: Sequence[datetime],
    series: Sequence[tuple[str, Sequence[float]]],
    bucket: timedelta,
    *,
    y_title: str,
    bucket_name: str,
    unit: str = "",
    integer: bool = True,
) -> str:
    """Bars over time, one per bucket (stacked when there are several ``series``), on a
    linear y axis from zero.

    Args:
        title: what the chart shows.
        starts: each bucket's start, ascending.
        series: (name, one value per bucket) each; a legend names them when there are
            several.
        bucket: the buckets' length.
        y_title: the y axis' title, with its unit.
        bucket_name: said in the x axis' title (``per hour``).
        unit: after exact values in tooltips.
        integer: the values are counts (ticks at whole numbers).
    """
    height, left, right, top, bottom = 240.0, 52.0, WIDTH - 12.0, 26.0, 196.0
    names = [name for name, _ in series] if len(series) > 1 else []
    more = (len(_legend_lines(names, right)) - 1) * _LEGEND_LINE  # a legend of several lines
    height, top, bottom = height + more, top + more, bottom + more
    totals = [sum(values[i] for _, values in series) for i in range(len(starts))]
    ticks = linear_ticks(max(totals, default=0.0), integer=integer)
    start = starts[0] if starts else datetime(1970, 1, 1, tzinfo=UTC)
    try:
        end = (starts[-1] if starts else start) + bucket
    except OverflowError:  # the last bucket of year 9999
        end = datetime.max.replace(tzinfo=UTC)
    seconds = max((end - start).total_seconds(), 1e-9)

    def x(moment: datetime) -> float:
        return left + (right - left) * (moment - start).total_seconds() / seconds

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / ticks[-1]

    parts = ['<g class="y axis">']
    for tick in ticks:
        cls = "zero" if tick == 0 else "grid"
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="{cls}"/>'
        )
        parts.append(_text(left - 5, y(tick) + 4, human(tick), "tick", "end"))
    parts.append("</g>")
    span = end - start
    parts.append('<g class="x axis">')
    for when in time_ticks(start, end):
        tx = x(when)
        text = time_label(when, span)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{bottom}" y2="{bottom + 4}" class="axis-line"/>'
        )
        parts.append(_text(tx, bottom + 16, text, "tick", _anchor(tx, text)))
    parts.append("</g>")
    parts.append('<g class="marks">')
    width = max(x(start + bucket) - x(start) - 1, 0.5)
    for i, moment in enumerate(starts):
        base = 0.0
        for number, (name, values) in enumerate(series, 1):
            value = values[i]
            if value <= 0:
                continue
            tip = f"{moment:%Y-%m-%d %H:%M:%S} UTC, {bucket_name}: {exact(value, unit)}"
            if len(series) > 1:
                tip = f"{name}, {tip}"
            parts.append(
                f'<rect x="{x(moment) + 0.5:.2f}" y="{y(base + value):.2f}" width="{width:.2f}"'
                f' height="{y(base) - y(base + value):.2f}" class="s{number}"'
                f"{_attrs(data_tip=tip)}/>"
            )
            base += value
    parts.append("</g>")
    parts.append(
        _text(
            12,
            (top + bottom) / 2,
            y_title,
            "axis-title",
            transform=f"rotate(-90 12 {(top + bottom) / 2})",
        )
    )
    parts.append(_text((left + right) / 2, height - 6, f"time (UTC), {bucket_name}", "axis-title"))
    if names:
        parts += _legend(names, 4, right)
    return _svg(title, height, parts, "time-bars")


def _rows_frame(
    names: Sequence[str], legend: Sequence[str]
) -> tuple[float, float, float, float, list[str], list[str]]:
    """The layout of a chart of named rows: (left, top, row height, height, the fitted
    names, the legend's parts)."""
    label_room = min(max((len(n) for n in names), default=4) * _CHAR, 150.0)
    left = label_room + 10
    top, row = 26.0, 22.0
    height = top + row * len(names) + 46
    return (
        left,
        top,
        row,
        height,
        [_fit(n, label_room) for n in names],
        _legend(legend, 6, WIDTH - 12.0),
    )


def _x_axis(
    ticks: Sequence[float],
    x: Callable[[float], float],
    top: float,
    bottom: float,
    label: Format,
    zero: bool,
) -> list[str]:
    parts = ['<g class="x axis">']
    for tick in ticks:
        cls = "zero" if zero and tick == 0 else "grid"
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" class="{cls}"/>'
        )
        tx, text = x(tick), label(tick)
        parts.append(_text(tx, bottom + 15, text, "tick", _anchor(tx, text)))
    parts.append("</g>")
    return parts


def latency_chart(
    title: str, rows: Sequence[tuple[str, int, Sequence[float | None]]], *, what: str = "calls"
) -> str:
    """Per named row (a tool, an operation...), its p50, p95, p99 and maximum duration
    on a log scale: dots joined by a line, so fast and slow rows both show.

    Args:
        title: what the chart shows.
        rows: (name, count, [p50, p95, p99, max] in ms, ``None`` when unknown) each,
            in the order to draw; beyond 25 rows the rest are left to the table.
        what: what the count counts, in tooltips.
    """
    rows = list(rows)[:_MAX_ROWS]
    marks = ("p50", "p95", "p99", "max")
    names = [name for name, _, _ in rows]
    left, top, row_h, height, fitted, legend = _rows_frame(names, marks)
    right, bottom = WIDTH - 14.0, top + row_h * len(rows)
    positive = [v for _, _, values in rows for v in values if v is not None and v > 0]
    low, high = (min(positive), max(positive)) if positive else (1.0, 10.0)
    ticks = log_ticks(low, high)
    lo, hi = math.log10(ticks[0]), math.log10(ticks[-1])

    def x(value: float) -> float:
        value = max(value, ticks[0])
        return left + (right - left) * (math.log10(value) - lo) / (hi - lo)

    parts = _x_axis(ticks, x, top, bottom, duration, zero=False)
    parts.append('<g class="marks">')
    for i, ((name, count, values), label) in enumerate(zip(rows, fitted, strict=True)):
        cy = top + row_h * (i + 0.5)
        known = [v for v in values if v is not None]
        tip = f"{name}: {exact(count)} {what}; " + ", ".join(
            f"{m} {exact(v, 'ms')}" for m, v in zip(marks, values, strict=True) if v is not None
        )
        parts.append(
            f'<g class="row"{_attrs(data_tip=tip)}>'
            f'<rect x="0" y="{cy - row_h / 2:.1f}" width="{WIDTH}" height="{row_h}" class="hit"/>'
        )
        parts.append(_text(left - 6, cy + 4, label, "label", "end"))
        if known:
            parts.append(
                f'<line x1="{x(min(known)):.1f}" x2="{x(max(known)):.1f}" y1="{cy:.1f}"'
                f' y2="{cy:.1f}" class="range"/>'
            )
        for number, value in enumerate(values, 1):
            if value is None:
                continue
            if number == 4:  # the maximum: a bar, as it is one value, not a percentile
                parts.append(
                    f'<rect x="{x(value) - 1.5:.1f}" y="{cy - 6:.1f}" width="3" height="12"'
                    f' class="s{number}"/>'
                )
            else:
                parts.append(f'<circle cx="{x(value):.1f}" cy="{cy:.1f}" r="4" class="s{number}"/>')
        parts.append("</g>")
    parts.append("</g>")
    parts.append(_text((left + right) / 2, height - 8, "duration (ms, log scale)", "axis-title"))
    parts.append(_text(4, 15, "name", "axis-title", "start"))
    parts += legend
    return _svg(title, height, parts, "latency")


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    x_title: str,
    y_title: str,
    unit: str = "",
    integer: bool = True,
) -> str:
    """Horizontal bars per named row from zero, stacked by ``series`` (a legend names
    them when there are several), on a linear axis with nice ticks.

    Args:
        title: what the chart shows.
        rows: (name, one value per series) each, in the order to draw; beyond 25 rows
            the rest are left to the table.
        series: the series' names.
        x_title: the value axis' title, with its unit.
        y_title: what a row is.
        unit: after exact values in tooltips.
        integer: the values are counts.
    """
    rows = list(rows)[:_MAX_ROWS]
    names = [name for name, _ in rows]
    left, top, row_h, height, fitted, legend = _rows_frame(names, series if len(series) > 1 else ())
    right, bottom = WIDTH - 14.0, top + row_h * len(rows)
    ticks = linear_ticks(max((sum(v) for _, v in rows), default=0.0), integer=integer)

    def x(value: float) -> float:
        return left + (right - left) * value / ticks[-1]

    parts = _x_axis(ticks, x, top, bottom, human, zero=True)
    parts.append('<g class="marks">')
    for i, ((name, values), label) in enumerate(zip(rows, fitted, strict=True)):
        cy = top + row_h * (i + 0.5)
        parts.append(_text(left - 6, cy + 4, label, "label", "end"))
        base = 0.0
        for number, (kind, value) in enumerate(zip(series, values, strict=True), 1):
            if value <= 0:
                continue
            tip = f"{name}: {exact(value, unit)}"
            if len(series) > 1:
                tip = f"{name}, {kind}: {exact(value, unit)} of {exact(sum(values), unit)}"
            parts.append(
                f'<rect x="{x(base):.2f}" y="{cy - 7:.1f}" width="{x(base + value) - x(base):.2f}"'
                f' height="14" class="s{number}"{_attrs(data_tip=tip)}/>'
            )
            base += value
    parts.append("</g>")
    parts.append(_text((left + right) / 2, height - 8, x_title, "axis-title"))
    parts.append(_text(4, 15, y_title, "axis-title", "start"))
    parts += legend
    return _svg(title, height, parts, "bars")
