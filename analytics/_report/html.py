"""The HTML report: one self-contained page (no network, no external files), a panel
per kind of data present, real tables sortable on click, charts from ``charts``.

:func:`page` is the whole document. A page of its own (the live dashboard) embeds the
report with :data:`STYLE` and :data:`SCRIPT` in its head and :func:`body` in a
container it may replace at will: the script listens on the document (event
delegation), so sorting and tooltips keep working in replaced content, and it installs
itself once however often it is included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from .._read.summary import RunStats, Summary, ToolStats
from .charts import duration, exact, latency_chart, stacked_bars, time_bars

__all__ = ["PANELS", "SCRIPT", "STYLE", "body", "bucket_name", "page"]

PANELS = (
    "overview",
    "tools",
    "operations",
    "errors",
    "tokens",
    "agents",
    "commands",
    "hooks",
    "checkpoints",
)
"""Each panel's name, in page order; a panel is ``<section id="panel-NAME">``."""

STYLE = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1c1d21;--muted:#5c6270;--card:#f5f6f8;
--border:#d8dbe0;--grid:#e4e6ea;--axis:#7d8390;--c1:#0072b2;--c2:#e69f00;--c3:#d55e00;
--c4:#1c1d21;--c5:#009e73;--c6:#cc79a7;--c7:#56b4e9;--c8:#f0e442}
@media (prefers-color-scheme:dark){:root{--bg:#15171b;--fg:#e7e8ea;--muted:#a3a8b3;
--card:#1e2127;--border:#353a44;--grid:#2b2f37;--axis:#7d8390;--c1:#56b4e9;--c2:#e69f00;
--c3:#ef7b3e;--c4:#e7e8ea;--c5:#2ec4a0;--c6:#cc79a7;--c7:#0072b2;--c8:#f0e442}}
html,body{margin:0;background:var(--bg);color:var(--fg)}
.analytics-report{box-sizing:border-box;max-width:1240px;margin:0 auto;padding:16px;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.analytics-report *,.analytics-report *::before{box-sizing:border-box}
.analytics-report h1{font-size:1.5rem;margin:.2em 0}
.analytics-report h2{font-size:1.2rem;margin:0 0 .6em}
.analytics-report h3{font-size:.95rem;margin:0 0 .3em;font-weight:600}
.analytics-report p{margin:.3em 0}
.analytics-report .muted,.analytics-report figcaption small{color:var(--muted)}
.analytics-report .panel{border:1px solid var(--border);border-radius:8px;padding:14px;
margin:14px 0;min-width:0}
.analytics-report .grid{display:grid;gap:16px;
grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr))}
.analytics-report .grid>*{min-width:0}
.analytics-report figure{margin:0}
.analytics-report svg.chart{display:block;width:100%;height:auto;overflow:hidden}
.analytics-report .stats{display:grid;gap:10px;margin:0 0 12px;
grid-template-columns:repeat(auto-fit,minmax(min(100%,150px),1fr))}
.analytics-report .stats div{background:var(--card);border-radius:6px;padding:8px 10px}
.analytics-report .stats dt{font-size:.8rem;color:var(--muted)}
.analytics-report .stats dd{margin:0;font-size:1.25rem;font-weight:600;
font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.analytics-report .table-wrap{overflow-x:auto;max-width:100%}
.analytics-report table{border-collapse:collapse;font-size:.88rem;width:100%}
.analytics-report caption{text-align:left;padding:0 0 4px}
.analytics-report th,.analytics-report td{padding:4px 8px;border-bottom:1px solid var(--border);
text-align:left;vertical-align:top}
.analytics-report td.name{min-width:8em;max-width:28em;overflow-wrap:break-word}
.analytics-report .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.analytics-report th button{font:inherit;font-weight:600;color:inherit;background:none;
border:0;padding:0;cursor:pointer;white-space:nowrap}
.analytics-report th[aria-sort=ascending] button::after{content:" \\25B2"}
.analytics-report th[aria-sort=descending] button::after{content:" \\25BC"}
.analytics-report .chart text{fill:var(--fg)}
.analytics-report .chart .tick,.analytics-report .chart .legend{fill:var(--muted)}
.analytics-report .chart .axis-title{fill:var(--muted);font-style:italic}
.analytics-report .chart .grid{stroke:var(--grid)}
.analytics-report .chart .zero,.analytics-report .chart .axis-line{stroke:var(--axis);
stroke-width:1.2}
.analytics-report .chart .range{stroke:var(--axis);stroke-width:2}
.analytics-report .chart .hit{fill:transparent}
.analytics-report .chart .row:hover .hit{fill:var(--grid)}
.analytics-report .chart [data-tip]:hover{opacity:.85}
.analytics-report .s1{fill:var(--c1)}.analytics-report .s2{fill:var(--c2)}
.analytics-report .s3{fill:var(--c3)}.analytics-report .s4{fill:var(--c4)}
.analytics-report .s5{fill:var(--c5)}.analytics-report .s6{fill:var(--c6)}
.analytics-report .s7{fill:var(--c7)}.analytics-report .s8{fill:var(--c8)}
#analytics-tip{position:fixed;z-index:10;pointer-events:none;max-width:min(340px,90vw);
background:var(--fg);color:var(--bg);font:13px/1.35 system-ui,sans-serif;padding:5px 8px;
border-radius:5px;left:0;top:0}
"""
"""The report's CSS: light and dark schemes after the browser's preference; every rule
but the colours and the tooltip is scoped to ``.analytics-report``."""

SCRIPT = """\
(function () {
  if (window.analyticsReportScript) return;
  window.analyticsReportScript = true;
  function sortKey(row, index, numeric) {
    var cell = row.cells[index];
    var value = cell.getAttribute("data-value");
    if (numeric) return value === null || value === "" ? NaN : parseFloat(value);
    return (value === null ? cell.textContent : value).toLowerCase();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("table.sortable th button");
    if (!button) return;
    var th = button.parentElement, table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentElement.children, th);
    var numeric = th.getAttribute("data-type") === "number";
    var now = th.getAttribute("aria-sort");
    var order = now === "descending" ? "ascending" : now === "ascending" ? "descending"
      : numeric ? "descending" : "ascending";
    Array.prototype.forEach.call(th.parentElement.children, function (h) {
      h.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", order);
    var sign = order === "ascending" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a, index, numeric), y = sortKey(b, index, numeric);
      if (numeric) {
        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  /* unknown values last */
        return sign * (x - y);
      }
      return sign * (x < y ? -1 : x > y ? 1 : 0);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
  var tip = null;
  function show(event) {
    var mark = event.target.closest && event.target.closest("[data-tip]");
    if (!mark) { if (tip) tip.hidden = true; return; }
    if (!tip) {
      tip = document.createElement("div");
      tip.id = "analytics-tip";
      tip.setAttribute("role", "tooltip");
      document.body.appendChild(tip);
    }
    tip.textContent = mark.getAttribute("data-tip");
    tip.hidden = false;
    var x = Math.min(event.clientX + 12, window.innerWidth - tip.offsetWidth - 4);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight) y = event.clientY - tip.offsetHeight - 8;
    tip.style.left = Math.max(x, 4) + "px";
    tip.style.top = Math.max(y, 4) + "px";
  }
  document.addEventListener("mousemove", show);
  document.addEventListener("pointerdown", show);
})();
"""
"""The report's script: sorts a ``table.sortable`` when a header is clicked, and shows
a chart mark's ``data-tip``. It does nothing else and loads nothing."""


# -- Pieces ---------------------------------------------------------------------------


def _num(value: float | None, text: str | None = None) -> str:
    """A numeric cell: right-aligned, sorted by its exact value."""
    if value is None:
        return '<td class="num" data-value="">-</td>'
    shown = text if text is not None else exact(value)
    return f'<td class="num" data-value="{value!r}">{escape(shown)}</td>'


def _ms(value: float | None) -> str:
    return _num(value, None if value is None else exact(value, "ms"))


def _rate(value: float | None) -> str:
    return _num(value, None if value is None else f"{value * 100:.1f}%")


_NUM_CLASS = ' class="num"'


def _table(caption: str, headers: Sequence[tuple[str, bool]], rows: list[list[str]]) -> str:
    """A sortable table; ``headers`` are (name, numeric) each, rows are ``<td>`` cells."""
    head = "".join(
        f'<th scope="col" data-type="{"number" if numeric else "text"}" aria-sort="none"'
        f'{_NUM_CLASS if numeric else ""}><button type="button">{escape(name)}</button></th>'
        for name, numeric in headers
    )
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return (
        f'<div class="table-wrap"><table class="sortable"><caption class="muted">'
        f"{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def _name(text: str) -> str:
    return f'<td class="name">{escape(text)}</td>'


def _figure(title: str, note: str, svg: str) -> str:
    return (
        f"<figure><figcaption><h3>{escape(title)}</h3><small>{escape(note)}</small>"
        f"</figcaption>{svg}</figure>"
    )


def _panel(name: str, heading: str, *parts: str) -> str:
    return (
        f'<section class="panel" id="panel-{name}" data-panel="{name}">'
        f"<h2>{escape(heading)}</h2>{''.join(parts)}</section>"
    )


def _stats(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    return f'<dl class="stats">{cells}</dl>'


def _span(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "-"
    seconds = (last - first).total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- Panels ---------------------------------------------------------------------------

_BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}

_BUCKET_NAMES = {
    1: "second",
    60: "minute",
    3600: "hour",
    86400: "day",
    7 * 86400: "week",
}


def bucket_name(seconds: int) -> str:
    """A bucket width as a chart says it: ``second``, ``10 s``, ``minute``, ``10 min``,
    ``hour``, ``6 h``, ``day``, ``week``, ``28 days``."""
    if seconds in _BUCKET_NAMES:
        return _BUCKET_NAMES[seconds]
    for unit, name in ((86400, "days"), (3600, "h"), (60, "min")):
        if seconds % unit == 0:
            return f"{seconds // unit} {name}"
    return f"{seconds} s"


_SERIES_SHOWN = 7
"""Series drawn by name in a chart over time; the rest are summed as ``other`` (eight
colours in all)."""


def _series_figure(
    title: str, series: Mapping[str, Mapping[str, int]], width: int, what: str
) -> str:
    """A chart of ``series`` (per bucket start, per name, as in ``Summary.series``)
    stacked by name, the biggest names first, at buckets of ``width`` seconds; or a
    sentence when every value falls in one bucket."""
    per = bucket_name(width)
    if len(series) == 1:
        (start,) = series
        return (
            f'<p class="muted">{escape(title)}: every one falls in one {per}-long bucket,'
            f" from {escape(start[:19])} UTC.</p>"
        )
    bucket = timedelta(seconds=width)
    totals: dict[str, int] = {}
    for values in series.values():
        for name, n in values.items():
            totals[name] = totals.get(name, 0) + n
    names = sorted(totals, key=lambda name: (-totals[name], name))
    shown = names if len(names) <= _SERIES_SHOWN + 1 else names[:_SERIES_SHOWN]
    starts = [datetime.fromisoformat(k).astimezone(UTC) for k in series]
    # Every bucket of the span, the empty ones at zero, so gaps show as gaps.
    n = int((starts[-1] - starts[0]) / bucket) + 1
    every = [starts[0] + bucket * i for i in range(n)] if n <= 5000 else starts
    at: dict[datetime, Mapping[str, int]] = dict(zip(starts, series.values(), strict=True))
    lines = [(name, [float(at.get(t, {}).get(name, 0)) for t in every]) for name in shown]
    if len(shown) < len(names):
        rest = set(names[len(shown) :])
        lines.append(
            (
                "other",
                [float(sum(v for k, v in at.get(t, {}).items() if k in rest)) for t in every],
            )
        )
    note = f"Bucket: {'1 ' if per in _BUCKET_NAMES.values() else ''}{per} (UTC)."
    if len(shown) < len(names):
        note += f" The {len(shown)} biggest; {len(names) - len(shown)} more as other."
    label = f"per {per}"
    return _figure(
        title,
        note,
        time_bars(
            f"{title}, {label}",
            every,
            lines,
            bucket,
            y_title=what,
            bucket_name=label,
            unit=what,
        ),
    )


def _overview(s: Summary) -> str:
    errors = s.by_type.get("error_occurred", 0)
    items = [
        ("Entries", f"{s.entries:,}"),
        ("Sessions", f"{s.sessions.count:,}"),
        ("Span", _span(s.first, s.last)),
        ("Error rate", f"{errors / s.entries * 100:.1f}%" if s.entries else "-"),
    ]
    if s.sessions.duration_s_p50 is not None:
        items.append(("Session p50", duration(s.sessions.duration_s_p50 * 1000)))
    if s.sessions.tokens_total:
        items.append(("Session tokens", f"{s.sessions.tokens_total:,}"))
    if s.bad_lines:
        items.append(("Bad lines skipped", f"{s.bad_lines:,}"))
    when = (
        f"From {s.first:%Y-%m-%d %H:%M:%S} to {s.last:%Y-%m-%d %H:%M:%S} UTC."
        if s.first and s.last
        else ""
    )
    note = f'<p class="muted">{escape(when)} Error rate: error entries among all entries.'
    if not s.percentiles_exact:
        note += " Percentiles are approximate (within 1%): some series were very large."
    note += "</p>"
    parts = [_stats(items), note]
    figures = []
    if s.series:
        figures.append(
            _series_figure(
                "Entries over time by type", s.series, s.series_bucket_seconds, "entries"
            )
        )
    else:  # a Summary without series (written before them): the timeline
        if len(s.timeline) == 1:
            (start,) = s.timeline
            figures.append(
                f'<p class="muted">Every entry falls in one {s.bucket}, from {escape(start[:16])}'
                f" UTC: the timeline's buckets are {s.bucket}s, too coarse to chart this span.</p>"
            )
        elif s.timeline:
            starts = [datetime.fromisoformat(k).astimezone(UTC) for k in s.timeline]
            bucket = _BUCKETS[s.bucket]
            # Every bucket of the span, the empty ones at zero, so gaps show as gaps.
            n = int((starts[-1] - starts[0]) / bucket) + 1
            # (A clock gone wrong can spread a few entries over centuries: then only the
            # buckets that hold entries are listed; the x axis keeps them in place.)
            every = [starts[0] + bucket * i for i in range(n)] if n <= 5000 else starts
            counts = {k: v for k, v in zip(starts, s.timeline.values(), strict=True)}
            figures.append(
                _figure(
                    f"Entries per {s.bucket}",
                    f"Bucket: 1 {s.bucket} (UTC).",
                    time_bars(
                        f"Entries per {s.bucket}",
                        every,
                        [("entries", [float(counts.get(t, 0)) for t in every])],
                        bucket,
                        y_title="entries",
                        bucket_name=f"per {s.bucket}",
                        unit="entries",
                    ),
                )
            )
    by_type = sorted(s.by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    figures.append(
        _table(
            "Entries by type",
            [("type", False), ("entries", True), ("share", True)],
            [[_name(k), _num(n), _rate(n / s.entries)] for k, n in by_type],
        )
    )
    parts.append(f'<div class="grid">{"".join(figures)}</div>')
    return _panel("overview", "Overview", *parts)


_RUNS = (
    # Summary field, panel heading, what a row is, what its count counts
    ("tools", "Tool calls", "tool", "calls"),
    ("operations", "Operations", "operation", "timings"),
    ("agents", "Agents", "agent", "runs"),
    ("commands", "Commands", "command", "runs"),
    ("hooks", "Hooks", "hook", "runs"),
)


def _runs_panel(
    field: str,
    heading: str,
    what: str,
    counted: str,
    runs: Mapping[str, ToolStats | RunStats],
) -> str:
    def count(r: ToolStats | RunStats) -> int:
        return r.calls if isinstance(r, ToolStats) else r.count

    ordered = sorted(runs.items(), key=lambda kv: (-count(kv[1]), kv[0]))
    total = sum(count(r) for _, r in ordered)
    failures = sum(int(r.failures) for _, r in ordered)
    stats = _stats(
        [
            (counted.capitalize(), f"{total:,}"),
            (f"{what.capitalize()}s", f"{len(ordered):,}"),
            ("Success rate", f"{(total - failures) / total * 100:.1f}%" if total else "-"),
        ]
    )
    chart = latency_chart(
        f"{heading}: duration per {what}",
        [
            (
                name,
                count(r),
                [r.duration_ms_p50, r.duration_ms_p95, r.duration_ms_p99, r.duration_ms_max],
            )
            for name, r in ordered
        ],
        what=counted,
    )
    shown = "" if len(ordered) <= 25 else f" The 25 {what}s with most {counted}; the table has all."
    figure = _figure(
        f"Duration per {what}",
        f"p50, p95, p99 and max, log scale.{shown}",
        chart,
    )
    if all(r.duration_ms_max is None for _, r in ordered):
        figure = f'<p class="muted">No {what} reported a duration.</p>'  # nothing to chart
    table = _table(
        f"{heading}: click a column to sort",
        [
            (what, False),
            (counted, True),
            ("failures", True),
            ("success", True),
            ("p50", True),
            ("p95", True),
            ("p99", True),
            ("max", True),
        ],
        [
            [
                _name(name),
                _num(count(r)),
                _num(r.failures),
                _rate(r.success_rate),
                _ms(r.duration_ms_p50),
                _ms(r.duration_ms_p95),
                _ms(r.duration_ms_p99),
                _ms(r.duration_ms_max),
            ]
            for name, r in ordered
        ],
    )
    return _panel(field, heading, stats, f'<div class="grid">{figure}{table}</div>')


def _errors(s: Summary) -> str:
    rows = list(s.errors.items())  # most frequent first
    chart = stacked_bars(
        "Errors by type",
        [(k, [float(e.count)]) for k, e in rows],
        ["errors"],
        x_title="errors (count)",
        y_title="error type",
        unit="errors",
    )
    table = _table(
        "Errors: click a column to sort",
        [("error type", False), ("count", True), ("first message", False)],
        [[_name(k), _num(e.count), _name(e.example[:200])] for k, e in rows],
    )
    total = sum(e.count for _, e in rows)
    over_time = ""
    if s.errors_series:
        over_time = _series_figure(
            "Errors over time by type", s.errors_series, s.series_bucket_seconds, "errors"
        )
    return _panel(
        "errors",
        "Errors",
        _stats([("Errors", f"{total:,}"), ("Error types", f"{len(rows):,}")]),
        f'<div class="grid">{_figure("Errors by type", "Count over the whole span.", chart)}'
        f"{over_time}{table}</div>",
    )


def _tokens(s: Summary) -> str:
    rows = sorted(s.tokens_by_model.items(), key=lambda kv: (-kv[1].total_tokens, kv[0]))
    chart = stacked_bars(
        "Tokens by model",
        [(m, [float(t.input_tokens), float(t.output_tokens)]) for m, t in rows],
        ["input", "output"],
        x_title="tokens",
        y_title="model",
        unit="tokens",
    )
    table = _table(
        "Tokens by model: click a column to sort",
        [("model", False), ("calls", True), ("input", True), ("output", True), ("total", True)],
        [
            [
                _name(m),
                _num(t.calls),
                _num(t.input_tokens),
                _num(t.output_tokens),
                _num(t.total_tokens),
            ]
            for m, t in rows
        ],
    )
    total = sum(t.total_tokens for _, t in rows)
    over_time = ""
    if s.tokens_series:
        over_time = _series_figure(
            "Tokens over time by model", s.tokens_series, s.series_bucket_seconds, "tokens"
        )
    return _panel(
        "tokens",
        "Tokens",
        _stats([("Tokens", f"{total:,}"), ("Models", f"{len(rows):,}")]),
        f'<div class="grid">{_figure("Tokens by model", "Input and output tokens.", chart)}'
        f"{over_time}{table}</div>",
    )


def _checkpoints(s: Summary) -> str:
    c = s.checkpoints
    items = [("Checkpoints", f"{c.count:,}"), ("Sessions", f"{c.sessions:,}")]
    if c.files_changed_mean is not None:
        items += [
            ("Files changed", f"{c.files_changed_total:,}"),
            ("Mean per checkpoint", f"{c.files_changed_mean:,.1f}"),
            ("Most in one", f"{c.files_changed_max or 0:,}"),
        ]
    return _panel("checkpoints", "Checkpoints", _stats(items))


def body(summary: Summary) -> str:
    """The report's content: a ``<div class="analytics-report">`` holding a heading and
    one panel per kind of data present (:data:`PANELS`); it needs :data:`STYLE` and
    :data:`SCRIPT` on its page."""
    s = summary
    parts = ['<div class="analytics-report"><header><h1>analytics report</h1>']
    if not s.entries:
        parts.append("<p>No entries.</p></header></div>")
        return "".join(parts)
    parts.append("</header>")
    parts.append(_overview(s))
    for field, heading, what, counted in _RUNS[:2]:
        if getattr(s, field):
            parts.append(_runs_panel(field, heading, what, counted, getattr(s, field)))
    if s.errors:
        parts.append(_errors(s))
    if s.tokens_by_model:
        parts.append(_tokens(s))
    for field, heading, what, counted in _RUNS[2:]:
        if getattr(s, field):
            parts.append(_runs_panel(field, heading, what, counted, getattr(s, field)))
    if s.checkpoints.count:
        parts.append(_checkpoints(s))
    parts.append("</div>")
    return "".join(parts)


def page(summary: Summary, *, title: str = "analytics report") -> str:
    """The whole report as one HTML document that needs nothing else to open."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"{body(summary)}<script>{SCRIPT}</script></body></html>\n"
    )
