"""Rendering a Summary: text, JSON, Markdown, CSV and a self-contained HTML page."""

from __future__ import annotations

import csv
import html
import io

from ._summary import Summary

__all__ = ["render"]

FORMATS = ("text", "json", "markdown", "csv", "html")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _table(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return lines
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return lines


def _sections(s: Summary, markdown: bool) -> str:
    h = "## " if markdown else ""
    out = [
        ("# analytics report" if markdown else "analytics report"),
        "",
        f"{s.entries:,} entries from {s.first or '-'} to {s.last or '-'}"
        + (f"; {s.bad_lines} bad lines skipped" if s.bad_lines else ""),
        "",
        f"{h}Entries by type",
        "",
        *_table(["type", "count"], [[t, f"{n:,}"] for t, n in s.by_type.items()], markdown),
        "",
        f"{h}Tools",
        "",
        *_table(
            ["tool", "calls", "failures", "success", "p50 ms", "p95 ms", "p99 ms", "max ms"],
            [
                [
                    name,
                    f"{t.calls:,}",
                    f"{t.failures:,}",
                    _rate(t.success_rate),
                    _ms(t.duration_ms_p50),
                    _ms(t.duration_ms_p95),
                    _ms(t.duration_ms_p99),
                    _ms(t.duration_ms_max),
                ]
                for name, t in s.tools.items()
            ],
            markdown,
        ),
        "",
        f"{h}Sessions",
        "",
        f"{s.sessions.count:,} sessions; duration p50 {_ms(s.sessions.duration_s_p50)} s,"
        f" max {_ms(s.sessions.duration_s_max)} s; {s.sessions.tokens_total:,} tokens",
        "",
        f"{h}Errors",
        "",
        *_table(
            ["error type", "count", "example"],
            [[k, f"{e.count:,}", e.example[:80]] for k, e in s.errors.items()],
            markdown,
        ),
        "",
        f"{h}Tokens by model",
        "",
        *_table(
            ["model", "calls", "input", "output", "total"],
            [
                [
                    m,
                    f"{t.calls:,}",
                    f"{t.input_tokens:,}",
                    f"{t.output_tokens:,}",
                    f"{t.total_tokens:,}",
                ]
                for m, t in s.tokens_by_model.items()
            ],
            markdown,
        ),
        "",
        f"{h}Entries per {s.bucket}",
        "",
        *_table([s.bucket, "entries"], [[k, f"{n:,}"] for k, n in s.timeline.items()], markdown),
    ]
    if not s.percentiles_exact:
        out += ["", "Percentiles are approximate (within 1%): some series were very large."]
    return "\n".join(out) + "\n"


def _csv(s: Summary) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "tool",
            "calls",
            "failures",
            "success_rate",
            "duration_ms_p50",
            "duration_ms_p95",
            "duration_ms_p99",
            "duration_ms_max",
        ]
    )
    for name, t in s.tools.items():
        writer.writerow(
            [
                name,
                t.calls,
                t.failures,
                t.success_rate,
                t.duration_ms_p50,
                t.duration_ms_p95,
                t.duration_ms_p99,
                t.duration_ms_max,
            ]
        )
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


def _html(s: Summary) -> str:
    timeline = _bars_svg(
        f"Entries per {s.bucket}",
        list(s.timeline),
        [("entries", [float(v) for v in s.timeline.values()], "#3b6ea5")],
    )
    tools = list(s.tools)
    latency = _bars_svg(
        "Tool latency (ms)",
        tools,
        [
            ("p50", [s.tools[t].duration_ms_p50 or 0.0 for t in tools], "#3b6ea5"),
            ("p95", [s.tools[t].duration_ms_p95 or 0.0 for t in tools], "#e59c3b"),
            ("p99", [s.tools[t].duration_ms_p99 or 0.0 for t in tools], "#c0392b"),
        ],
    )
    body = html.escape(_sections(s, markdown=False))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>analytics report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}</style></head><body>"
        "<h1>analytics report</h1>"
        f"<p>{s.entries:,} entries from {html.escape(str(s.first))} to"
        f" {html.escape(str(s.last))}</p>"
        f"<figure>{timeline}</figure><figure>{latency}</figure>"
        f"<pre>{body}</pre></body></html>\n"
    )


def render(summary: Summary, fmt: str) -> str:
    """The summary in one of ``FORMATS``."""
    if fmt == "json":
        return summary.model_dump_json(indent=2) + "\n"
    if fmt == "csv":
        return _csv(summary)
    if fmt == "html":
        return _html(summary)
    return _sections(summary, markdown=fmt == "markdown")
