"""The HTML report, parsed without a browser: a panel per kind present and none for
the absent, charts with ticks and axis titles, sortable tables, nothing external."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from analytics import MetricType, Summary
from analytics._report import render
from analytics._report.html import PANELS, SCRIPT, STYLE, body, page

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
        summary = only(MetricType.TOOL_USE, {"tool_name": "grep"}, count=3)
        text = render(summary, "html")
        assert "Every entry falls in one hour" in text
        assert "Entries per hour" not in text


class TestCharts:
    def test_each_chart_has_ticks_and_axis_titles(self) -> None:
        for days in (0.5, 5):
            parsed = Page(render(every_kind_over(days), "html"))
            # the timeline, 4 latency charts (tools, operations, agents, hooks: the
            # commands report no duration), errors and tokens
            assert len(parsed.charts) == 7
            for chart in parsed.charts:
                assert len(chart["tick"]) > 2, chart
                assert len(chart["axis-title"]) == 2, chart

    def test_the_timeline_says_its_bucket(self) -> None:
        for days, bucket in ((0.5, "hour"), (5, "day")):
            parsed = Page(render(every_kind_over(days), "html"))
            assert parsed.charts[0]["axis-title"] == ["entries", f"time (UTC), per {bucket}"]
            assert f"Bucket: 1 {bucket} (UTC)." in render(every_kind_over(days), "html")

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
