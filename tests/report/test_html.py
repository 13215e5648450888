"""The HTML report, parsed without a browser: a panel per kind present and none for
the absent, charts with ticks and axis titles, sortable tables, nothing external."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from analytics import MetricType, Summary
from analytics._read.summary import summarize_entries
from analytics._report import render
from analytics._report.html import PANELS, SCRIPT, STYLE, body, bucket_name, page

from ..helpers import foreign_at
from .samples import every_kind_over, only


class Page(HTMLParser):
    """Every element with its attributes, the panels and the charts of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.panels: list[str] = []
        self.charts: list[dict[str, list[str]]] = []  # per chart: class -> texts
        self._text_class: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "section" and "data-panel" in a:
            self.panels.append(a["data-panel"])
        if tag == "svg":
            self.charts.append({})
        self._text_class = a.get("class") if tag == "text" else None

    def handle_data(self, data: str) -> None:
        if self._text_class and self.charts:
            self.charts[-1].setdefault(self._text_class, []).append(data)
            self._text_class = None


class TestPanels:
    def test_every_kind_has_its_panel_in_order(self) -> None:
        parsed = Page(render(every_kind_over(5), "html"))
        assert parsed.panels == list(PANELS)

    @pytest.mark.parametrize(
        ("kind", "data", "panel"),
        [
            (MetricType.TOOL_USE, {"tool_name": "grep", "duration_ms": 2.0}, "tools"),
            (MetricType.PERFORMANCE, {"operation": "GET /", "duration_ms": 0.3}, "operations"),
            (MetricType.ERROR_OCCURRED, {"error_type": "Timeout"}, "errors"),
            (MetricType.TOKEN_USAGE, {"model": "m", "input_tokens": 3}, "tokens"),
            (MetricType.AGENT_EXECUTION, {"agent_name": "a"}, "agents"),
            (MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": 0}, "commands"),
            (MetricType.HOOK_TRIGGERED, {"hook_name": "h"}, "hooks"),
            (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c"}, "checkpoints"),
        ],
    )
    def test_one_kind_shows_the_overview_and_its_panel_alone(
        self, kind: MetricType, data: dict[str, object], panel: str
    ) -> None:
        assert Page(render(only(kind, data), "html")).panels == ["overview", panel]

    def test_no_entries_is_an_empty_report_without_panels(self) -> None:
        parsed = Page(render(Summary(), "html"))
        assert parsed.panels == []
        assert parsed.charts == []
        assert "No entries." in render(Summary(), "html")

    def test_the_overview_has_its_figures(self) -> None:
        summary = every_kind_over(5)
        text = body(summary)
        errors = summary.by_type["error_occurred"]
        for figure in (
            f"<dt>Entries</dt><dd>{summary.entries:,}</dd>",
            f"<dt>Sessions</dt><dd>{summary.sessions.count}</dd>",
            "<dt>Span</dt><dd>5.0 days</dd>",
            f"<dt>Error rate</dt><dd>{errors / summary.entries * 100:.1f}%</dd>",
        ):
            assert figure in text

    def test_entries_centuries_apart_draw_only_their_buckets(self) -> None:
        summary = Summary(
            entries=3,
            by_type={"tool_use": 3},
            bucket="day",
            timeline={
                "1970-01-01T00:00:00+00:00": 1,
                "2026-11-01T00:00:00+00:00": 1,
                "9999-12-31T00:00:00+00:00": 1,
            },
        )
        (chart,) = Page(body(summary)).charts
        assert len(chart["tick"]) > 2
        assert body(summary).count("data-tip=") == 3

    def test_one_bucket_is_said_not_charted(self) -> None:
        summary = summarize_entries(
            [foreign_at(0.1 * i, MetricType.TOOL_USE, {"tool_name": "grep"}) for i in range(3)]
        )
        text = render(summary, "html")
        assert "Entries over time by type: every one falls in one second-long bucket" in text
        assert Page(text).charts == []

    def test_a_summary_without_series_charts_its_timeline(self) -> None:
        """A Summary written before the series (read back from JSON): the timeline."""
        summary = every_kind_over(0.5).model_copy(
            update={"series": {}, "errors_series": {}, "tokens_series": {}}
        )
        parsed = Page(render(summary, "html"))
        assert parsed.charts[0]["axis-title"] == ["entries", "time (UTC), per hour"]
        one = Summary(entries=3, by_type={"tool_use": 3}, timeline={"2026-11-01T00:00:00+00:00": 3})
        assert "Every entry falls in one hour" in render(one, "html")


class TestCharts:
    def test_each_chart_has_ticks_and_axis_titles(self) -> None:
        for days in (0.5, 5):
            parsed = Page(render(every_kind_over(days), "html"))
            # the timeline, 4 latency charts (tools, operations, agents, hooks: the
            # commands report no duration), errors and tokens, each also over time
            assert len(parsed.charts) == 9
            for chart in parsed.charts:
                assert len(chart["tick"]) > 2, chart
                assert len(chart["axis-title"]) == 2, chart

    @pytest.mark.parametrize(
        ("days", "per"),
        [(0.5, "10 min"), (1, "10 min"), (5, "hour"), (30, "6 h"), (100, "day"), (200, "week")],
    )
    def test_every_chart_over_time_says_its_bucket(self, days: float, per: str) -> None:
        text = render(every_kind_over(days), "html")
        parsed = Page(text)
        over_time = [c for c in parsed.charts if c["axis-title"][-1].startswith("time (UTC)")]
        assert [c["axis-title"] for c in over_time] == [
            ["entries", f"time (UTC), per {per}"],
            ["errors", f"time (UTC), per {per}"],
            ["tokens", f"time (UTC), per {per}"],
        ]
        shown = f"{'1 ' if ' ' not in per else ''}{per}"
        assert text.count(f"Bucket: {shown} (UTC).") == 3

    def test_a_one_minute_run_has_one_second_buckets(self) -> None:
        entries = [
            foreign_at(0.5 * i, kind, data)
            for i in range(120)
            for kind, data in (
                (MetricType.TOOL_USE, {"tool_name": "grep"}),
                (MetricType.ERROR_OCCURRED, {"error_type": ("Timeout", "KeyError")[i % 2]}),
                (MetricType.TOKEN_USAGE, {"model": "m", "input_tokens": 10, "output_tokens": i}),
            )
        ]
        summary = summarize_entries(entries)
        assert summary.series_bucket_seconds == 1
        text = body(summary)
        parsed = Page(text)
        titles = [c["axis-title"][-1] for c in parsed.charts]
        assert titles.count("time (UTC), per second") == 3
        assert "Errors over time by type, per second" in text
        assert "Tokens over time by model, per second" in text
        # stacked by type, with a legend naming them; one bar per second and type
        entries_chart = parsed.charts[0]
        # (the legend is drawn from its right end)
        assert entries_chart["legend"] == ["error_occurred", "token_usage", "tool_use"][::-1]
        assert 'data-tip="tool_use, 2026-11-01 12:00:00 UTC, per second: 2 entries"' in text
        assert "KeyError, 2026-11-01 12:00:59 UTC, per second: 1 errors" in text
        assert '"2026-11-01 12:00:00 UTC, per second: 21 tokens"' in text  # one model: no name

    def test_a_week_has_hour_or_day_sized_buckets(self) -> None:
        summary = summarize_entries(
            [foreign_at(600.0 * i, MetricType.TOOL_USE, {"tool_name": "t"}) for i in range(1008)]
        )
        assert summary.series_bucket_seconds == 3600  # hours for a week
        text = body(summary)
        assert "time (UTC), per hour" in text
        assert "Bucket: 1 hour (UTC)." in text
        assert len(summary.series) == 168

    def test_beyond_eight_names_the_rest_is_other(self) -> None:
        entries = [
            foreign_at(float(i), MetricType.ERROR_OCCURRED, {"error_type": f"E{i % 10}"})
            for i in range(100)
        ]
        text = body(summarize_entries(entries))
        errors_chart = Page(text).charts[-1]
        assert errors_chart["legend"][::-1] == [*(f"E{i}" for i in range(7)), "other"]
        assert "The 7 biggest; 3 more as other." in text

    @pytest.mark.parametrize(
        ("seconds", "name"),
        [
            (1, "second"),
            (10, "10 s"),
            (60, "minute"),
            (600, "10 min"),
            (3600, "hour"),
            (21600, "6 h"),
            (86400, "day"),
            (604800, "week"),
            (28 * 86400, "28 days"),
        ],
    )
    def test_bucket_names(self, seconds: int, name: str) -> None:
        assert bucket_name(seconds) == name

    def test_latency_charts_are_on_a_log_scale(self) -> None:
        parsed = Page(render(every_kind_over(1), "html"))
        titles = [c["axis-title"][0] for c in parsed.charts]
        assert titles.count("duration (ms, log scale)") == 4
        assert "No command reported a duration." in render(every_kind_over(1), "html")


class TestTables:
    def test_tables_are_sortable_with_numbers_right_aligned(self) -> None:
        parsed = Page(render(every_kind_over(1), "html"))
        tables = [a for tag, a in parsed.tags if tag == "table"]
        assert len(tables) == 8
        assert all(a["class"] == "sortable" for a in tables)
        headers = [a for tag, a in parsed.tags if tag == "th"]
        assert {a["data-type"] for a in headers} == {"number", "text"}
        assert all(a["class"] == "num" for a in headers if a["data-type"] == "number")
        cells = [a for tag, a in parsed.tags if tag == "td" and a.get("class") == "num"]
        assert cells
        assert all("data-value" in a for a in cells)

    def test_a_cell_sorts_by_its_exact_value(self) -> None:
        summary = only(MetricType.TOOL_USE, {"tool_name": "grep", "duration_ms": 1234.5678})
        text = body(summary)
        assert '<td class="num" data-value="1234.5678">1,234.568 ms</td>' in text


class TestSelfContained:
    def test_nothing_is_loaded_from_elsewhere(self) -> None:
        text = render(every_kind_over(5), "html")
        parsed = Page(text)
        assert not {"link", "img", "iframe", "object"} & {tag for tag, _ in parsed.tags}
        for _, attrs in parsed.tags:
            assert not {"src", "href"} & set(attrs)
        assert [tag for tag, _ in parsed.tags].count("script") == 1
        # The only URL is the SVG namespace, which names and loads nothing.
        assert set(re.findall(r"https?://[^\s\"')]+", text)) == {"http://www.w3.org/2000/svg"}
        assert "@import" not in text
        assert "url(" not in text

    def test_names_are_escaped(self) -> None:
        summary = only(MetricType.TOOL_USE, {"tool_name": "<script>alert(1)</script>"})
        text = render(summary, "html")
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert(1)" in text

    def test_light_and_dark_schemes_and_a_viewport(self) -> None:
        text = page(every_kind_over(1))
        assert "prefers-color-scheme:dark" in STYLE
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
        assert text.count(STYLE) == 1
        assert text.count(SCRIPT) == 1

    def test_the_body_can_be_embedded_in_another_page(self) -> None:
        """The live dashboard puts STYLE and SCRIPT in its head and replaces a
        container's content with body(): body holds no style, script or document."""
        fragment = body(every_kind_over(1))
        assert fragment.startswith('<div class="analytics-report">')
        assert "<script" not in fragment
        assert "<style" not in fragment
        assert "<html" not in fragment
        assert "addEventListener" in SCRIPT
        assert "analyticsReportScript" in SCRIPT
