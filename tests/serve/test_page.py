"""The dashboard page: a pure function of a view, self-contained, with an empty state
for each way of having nothing to show."""

from __future__ import annotations

from datetime import timedelta

from analytics import Summary
from analytics._read.summary import summarize_entries
from analytics._serve.index import Facets, View
from analytics._serve.page import WINDOWS, content, page, status_line

from ..helpers import T0, at

FACETS = Facets(types=["tool_use"], tools=["grep", "<b>"], sessions=["s1", 's"2'])


def view_of(summary: Summary, state: str = "ready", total: int = 0) -> View:
    return View(
        state=state,  # type: ignore[arg-type]
        directory="/srv/app/metrics",
        summary=summary,
        facets=FACETS,
        total_entries=total or summary.entries,
    )


ENTRIES = [at(i, data={"tool_name": "grep", "success": True, "duration_ms": 2.0}) for i in range(5)]


class TestContent:
    def test_a_view_with_entries_is_the_reports_body(self) -> None:
        html = content(view_of(summarize_entries(ENTRIES)))
        assert 'id="panel-overview"' in html
        assert 'id="panel-tools"' in html
        assert 'id="panel-errors"' not in html  # a kind absent: no panel
        assert "<body" not in html
        assert "<html" not in html
        assert "data-empty" not in html

    def test_each_empty_state_says_what_to_expect(self) -> None:
        missing = content(view_of(Summary(), "missing"))
        empty = content(view_of(Summary(), "empty"))
        window = content(view_of(Summary(), "ready", total=1234))
        assert "No data directory yet" in missing
        assert "/srv/app/metrics" in missing
        assert "No entries yet" in empty
        assert "No entries in this window" in window
        assert "1,234" in window
        assert all('data-empty="true"' in html for html in (missing, empty, window))


class TestPage:
    def test_the_page_is_self_contained(self) -> None:
        html = page(view_of(summarize_entries(ENTRIES)), {}, 2.5)
        assert html.startswith("<!DOCTYPE html>")
        assert "<script src" not in html
        assert 'href="http' not in html
        assert 'src="http' not in html
        assert '"refreshMs": 2500' in html
        assert html.split("</head>")[0].count("<title>") == 1  # the report's own is dropped

    def test_controls_offer_every_window_and_the_facets_escaped(self) -> None:
        html = page(view_of(summarize_entries(ENTRIES)), {"window": "24h"}, 3)
        for key in [*WINDOWS, "custom"]:
            assert f'<option value="{key}"' in html
        assert '<option value="24h" selected>' in html
        assert "&lt;b&gt;" in html
        assert "<b>" not in html.split("<main")[0]
        assert "s&quot;2" in html

    def test_a_custom_window_is_chosen_when_since_is_given(self) -> None:
        since = (T0 - timedelta(hours=1)).isoformat()
        html = page(view_of(Summary(), "empty"), {"since": since}, 3)
        assert '<option value="custom" selected>' in html
        assert 'data-empty="true"' in html

    def test_the_status_line_counts_shown_and_total(self) -> None:
        line = status_line(view_of(summarize_entries(ENTRIES), total=12_000))
        assert line.startswith("5 of 12,000 entries")
        assert "/srv/app/metrics" in line
