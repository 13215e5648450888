"""Rendering a Summary: text, JSON, Markdown and CSV; HTML comes from ``html``.

Text, Markdown and HTML show a section only for what the entries hold (no empty
"Tools" table for a service that records only request timings); JSON always has every
field; CSV has one table per non-empty section, separated by a blank line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from .._exceptions import ReportFormatError
from .._read.summary import RunStats, Summary, ToolStats
from .html import page

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
        return page(summary)
    if fmt in ("text", "markdown"):
        return _sections(summary, markdown=fmt == "markdown")
    raise ReportFormatError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A plain-text table as the text report draws one: a header, a rule, the rows."""
    return _table(headers, rows, markdown=False)
