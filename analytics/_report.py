"""Rendering a Summary: text, JSON, Markdown, CSV and a self-contained HTML page.

Text, Markdown and HTML show a section only for what the entries hold (no empty
"Tools" table for a service that records only request timings); JSON always has every
field; CSV has one table per non-empty section, separated by a blank line.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterator
from typing import Any

from ._exceptions import ReportFormatError
from ._read.summary import RunStats, Summary, ToolStats

__all__ = ["FORMATS", "render", "text_table"]

FORMATS = ("text", "json", "markdown", "csv", "html")

_NAME_WIDTH = 60
"""Names (commands above all) longer than this are cut in text and Markdown tables."""


def _amount(value: float | None, unit: str) -> str:
    """A duration for people: ``3.3 ms``, ``1,234.5 ms``, and below 1 two significant
    digits (``0.42 ms``, ``0.0042 ms``), never a misleading ``0.0``."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    if abs(value) < 0.0001:
        return f"{'-' if value < 0 else ''}<0.0001 {unit}"
    small = f"{value:.2g}"
    if abs(value) < 1 and "." in small:  # not rounded up to 1
        return f"{small} {unit}"
    if abs(value) >= 1e12:  # a clock gone wrong: keep the cell short
        return f"{value:.3g} {unit}"
    return f"{value:,.1f} {unit}"


def _many(n: int, thing: str) -> str:
    return f"{n:,} {thing}" + ("" if n == 1 else "s")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _cut(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"


def _cell(text: str, markdown: bool) -> str:
    """One table cell on one line; in Markdown, a ``|`` would end the cell."""
    text = " ".join(text.split())
    return text.replace("|", "\\|") if markdown else text


def _table(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    rows = [[_cell(c, markdown) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return lines
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


_RUN_SECTIONS = (
    # Summary field, heading, the column naming each row
    ("operations", "Operations", "operation"),
    ("agents", "Agents", "agent"),
    ("commands", "Commands", "command"),
    ("hooks", "Hooks", "hook"),
)

_DURATIONS = ["p50", "p95", "p99", "max"]


def _durations(run: ToolStats | RunStats) -> list[str]:
    return [
        _amount(run.duration_ms_p50, "ms"),
        _amount(run.duration_ms_p95, "ms"),
        _amount(run.duration_ms_p99, "ms"),
        _amount(run.duration_ms_max, "ms"),
    ]


def _blocks(s: Summary, markdown: bool) -> Iterator[tuple[str, list[str]]]:
    """Each non-empty section: its heading and its lines."""
    if s.by_type:
        rows = [[t, f"{n:,}"] for t, n in s.by_type.items()]
        yield "Entries by type", _table(["type", "count"], rows, markdown)
    if s.tools:
        rows = [
            [_cut(name), f"{t.calls:,}", f"{t.failures:,}", _rate(t.success_rate), *_durations(t)]
            for name, t in s.tools.items()
        ]
        yield "Tools", _table(["tool", "calls", "failures", "success", *_DURATIONS], rows, markdown)
    for field, heading, column in _RUN_SECTIONS:
        runs: dict[str, RunStats] = getattr(s, field)
        if runs:
            rows = [
                [
                    _cut(name),
                    f"{r.count:,}",
                    f"{r.failures:,}",
                    _rate(r.success_rate),
                    *_durations(r),
                ]
                for name, r in runs.items()
            ]
            headers = [column, "count", "failures", "success", *_DURATIONS]
            yield heading, _table(headers, rows, markdown)
    c = s.checkpoints
    if c.count:
        line = f"{_many(c.count, 'checkpoint')} in {_many(c.sessions, 'session')}"
        if c.files_changed_mean is not None:
            line += (
                f"; files changed: {c.files_changed_total:,} in all,"
                f" {c.files_changed_mean:,.1f} on average, {c.files_changed_max or 0:,} at most"
            )
        yield "Checkpoints", [line]
    if s.sessions.count:
        ss = s.sessions
        yield (
            "Sessions",
            [
                f"{_many(ss.count, 'session')}; duration p50 {_amount(ss.duration_s_p50, 's')},"
                f" max {_amount(ss.duration_s_max, 's')}; {ss.tokens_total:,} tokens"
            ],
        )
    if s.errors:
        rows = [[_cut(k), f"{e.count:,}", e.example[:80]] for k, e in s.errors.items()]
        yield "Errors", _table(["error type", "count", "example"], rows, markdown)
    if s.tokens_by_model:
        rows = [
            [
                _cut(m),
                f"{t.calls:,}",
                f"{t.input_tokens:,}",
                f"{t.output_tokens:,}",
                f"{t.total_tokens:,}",
            ]
            for m, t in s.tokens_by_model.items()
        ]
        headers = ["model", "calls", "input", "output", "total"]
        yield "Tokens by model", _table(headers, rows, markdown)
    if s.timeline:
        rows = [[k, f"{n:,}"] for k, n in s.timeline.items()]
        yield f"Entries per {s.bucket}", _table([s.bucket, "entries"], rows, markdown)


def _sections(s: Summary, markdown: bool) -> str:
    if s.entries:
        span = f"{s.entries:,} entries from {s.first or '-'} to {s.last or '-'}"
    else:
        span = "No entries."
    if s.bad_lines:
        span += f"; {s.bad_lines:,} bad lines skipped"
    out = ["# analytics report" if markdown else "analytics report", "", span]
    for heading, lines in _blocks(s, markdown):
        out += ["", f"## {heading}" if markdown else heading, "", *lines]
    if not s.percentiles_exact:
        out += ["", "Percentiles are approximate (within 1%): some series were very large."]
    return "\n".join(out) + "\n"


_RUN_COLUMNS = [
    "failures",
    "success_rate",
    "duration_ms_p50",
    "duration_ms_p95",
    "duration_ms_p99",
    "duration_ms_max",
]


def _csv_tables(s: Summary) -> Iterator[tuple[list[str], list[list[Any]]]]:
    """Each non-empty table: its header (the first cell names what a row is) and rows.
    Tools come first, as they always have."""

    def runs(stats: dict[str, Any], count: str) -> list[list[Any]]:
        return [
            [name, getattr(r, count), *(getattr(r, c) for c in _RUN_COLUMNS)]
            for name, r in stats.items()
        ]

    if s.tools:
        yield ["tool", "calls", *_RUN_COLUMNS], runs(s.tools, "calls")
    for field, _, column in _RUN_SECTIONS:
        if getattr(s, field):
            yield [column, "count", *_RUN_COLUMNS], runs(getattr(s, field), "count")
    # One-row tables: the first column is named for the table and holds its count.
    if s.checkpoints.count:
        figures = s.checkpoints.model_dump()
        yield ["checkpoints", *list(figures)[1:]], [list(figures.values())]
    if s.sessions.count:
        figures = s.sessions.model_dump()
        yield ["sessions", *list(figures)[1:]], [list(figures.values())]
    if s.errors:
        yield (
            ["error_type", "count", "example"],
            [[k, e.count, e.example] for k, e in s.errors.items()],
        )
    if s.tokens_by_model:
        yield (
            ["model", "calls", "input_tokens", "output_tokens", "total_tokens"],
            [
                [m, t.calls, t.input_tokens, t.output_tokens, t.total_tokens]
                for m, t in s.tokens_by_model.items()
            ],
        )
    if s.by_type:
        yield ["type", "count"], [[t, n] for t, n in s.by_type.items()]
    if s.timeline:
        yield [s.bucket, "entries"], [[k, n] for k, n in s.timeline.items()]
    yield (
        ["entries", "first", "last", "bad_lines", "percentiles_exact"],
        [
            [
                s.entries,
                s.first.isoformat() if s.first else None,
                s.last.isoformat() if s.last else None,
                s.bad_lines,
                s.percentiles_exact,
            ]
        ],
    )


def _csv(s: Summary) -> str:
    """Every table of the report, one after another, separated by a blank line; an empty
    cell is a figure that has no value (no durations, say)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for number, (header, rows) in enumerate(_csv_tables(s)):
        if number:
            writer.writerow([])
        writer.writerow(header)
        writer.writerows(rows)
    return buffer.getvalue()


def _bars_svg(title: str, labels: list[str], series: list[tuple[str, list[float], str]]) -> str:
    """A small grouped bar chart as inline SVG (no scripts, no external resources)."""
    width, height, left, bottom, top = 720, 260, 60, 60, 30
    groups = max(len(labels), 1)
    peak = max((v for _, values, _ in series for v in values), default=0.0) or 1.0
    group_w = (width - left - 10) / groups
    bar_w = max(group_w / (len(series) + 1), 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{left}" y="18" font-size="14" font-family="sans-serif">'
        f"{html.escape(title)}</text>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}"'
        ' stroke="#444"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end"'
        f' font-family="sans-serif">{peak:,.1f}</text>',
    ]
    plot_h = height - bottom - top
    for g, label in enumerate(labels):
        x0 = left + g * group_w
        for k, (name, values, colour) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            bar_h = plot_h * value / peak
            parts.append(
                f'<rect x="{x0 + k * bar_w:.1f}" y="{height - bottom - bar_h:.1f}"'
                f' width="{bar_w * 0.9:.1f}" height="{bar_h:.1f}" fill="{colour}">'
                f"<title>{html.escape(label)} {html.escape(name)}: {value:,.2f}</title></rect>"
            )
        if groups <= 40 or g % max(groups // 20, 1) == 0:
            parts.append(
                f'<text x="{x0 + group_w / 2:.1f}" y="{height - bottom + 14}" font-size="9"'
                f' text-anchor="end" font-family="sans-serif"'
                f' transform="rotate(-35 {x0 + group_w / 2:.1f} {height - bottom + 14})">'
                f"{html.escape(label[:19])}</text>"
            )
    for k, (name, _, colour) in enumerate(series):
        parts.append(
            f'<rect x="{width - 150}" y="{8 + k * 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{width - 135}" y="{17 + k * 14}" font-size="11"'
            f' font-family="sans-serif">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _latency_svg(title: str, runs: dict[str, ToolStats] | dict[str, RunStats]) -> str:
    names = list(runs)
    return _bars_svg(
        title,
        names,
        [
            ("p50", [runs[n].duration_ms_p50 or 0.0 for n in names], "#3b6ea5"),
            ("p95", [runs[n].duration_ms_p95 or 0.0 for n in names], "#e59c3b"),
            ("p99", [runs[n].duration_ms_p99 or 0.0 for n in names], "#c0392b"),
        ],
    )


def _html(s: Summary) -> str:
    figures = []
    if s.timeline:
        figures.append(
            _bars_svg(
                f"Entries per {s.bucket}",
                list(s.timeline),
                [("entries", [float(v) for v in s.timeline.values()], "#3b6ea5")],
            )
        )
    if s.tools:
        figures.append(_latency_svg("Tool latency (ms)", s.tools))
    if s.operations:
        figures.append(_latency_svg("Operation latency (ms)", s.operations))
    span = (
        f"{s.entries:,} entries from {html.escape(str(s.first))} to {html.escape(str(s.last))}"
        if s.entries
        else "No entries."
    )
    body = html.escape(_sections(s, markdown=False))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>analytics report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>"
        "<h1>analytics report</h1>"
        f"<p>{span}</p>"
        + "".join(f"<figure>{figure}</figure>" for figure in figures)
        + f"<pre>{body}</pre></body></html>\n"
    )


def render(summary: Summary, fmt: str) -> str:
    """The summary in one of ``FORMATS``: ``text``, ``json``, ``markdown``, ``csv`` or
    ``html``. An empty summary (no entries) renders as an empty report.

    Raises:
        ValueError: ``fmt`` is not one of ``FORMATS``.
    """
    if fmt == "json":
        return summary.model_dump_json(indent=2) + "\n"
    if fmt == "csv":
        return _csv(summary)
    if fmt == "html":
        return _html(summary)
    if fmt in ("text", "markdown"):
        return _sections(summary, markdown=fmt == "markdown")
    raise ReportFormatError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A plain-text table as the text report draws one: a header, a rule, the rows."""
    return _table(headers, rows, markdown=False)
