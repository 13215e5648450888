"""The HTML report in a real browser (headless Chromium), on a desktop screen and on a
phone: no script errors, the panels of the kinds present and no other, charts with
ticks and axis titles, nothing wider than the screen, tables that sort on click.

Screenshots of each page go to pytest's ``artifacts`` directory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from analytics import Summary, summarize
from analytics._cli.simulator import simulate
from analytics._report import render
from analytics._report.html import PANELS

from ..browser import Opened, open_page
from .samples import every_kind_over

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SIZES = {"desktop": (1440, 900), "phone": (400, 800)}


def _expected_panels(s: Summary) -> list[str]:
    present = {
        "overview": s.entries > 0,
        "tools": bool(s.tools),
        "operations": bool(s.operations),
        "errors": bool(s.errors),
        "tokens": bool(s.tokens_by_model),
        "agents": bool(s.agents),
        "commands": bool(s.commands),
        "hooks": bool(s.hooks),
        "checkpoints": s.checkpoints.count > 0,
    }
    return [name for name in PANELS if present[name]]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Summary]]:
    """The demo's data (the simulated service, briefly) and every kind over a week,
    each rendered to a file."""
    base = tmp_path_factory.mktemp("reports")
    # Playwright's sync API runs an event loop in this thread: the service runs in another.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, simulate(base / "demo", 1.0, 12, 256 * 1024)).result()
    summaries = {"demo": summarize(base / "demo"), "week": every_kind_over(6)}
    files = {}
    for name, summary in summaries.items():
        path = base / f"{name}.html"
        path.write_text(render(summary, "html"), encoding="utf-8")
        files[name] = (path, summary)
    return files


@pytest.fixture(params=[(r, s) for r in ("demo", "week") for s in SIZES], ids=str)
def opened(
    request: pytest.FixtureRequest,
    browser: Browser,
    reports: dict[str, tuple[Path, Summary]],
    artifacts: Path,
) -> Iterator[tuple[Opened, Summary]]:
    report, size = request.param
    path, summary = reports[report]
    page = open_page(browser, path.as_uri(), *SIZES[size])
    try:
        yield page, summary
        page.page.screenshot(path=str(artifacts / f"report-{report}-{size}.png"), full_page=True)
    finally:
        page.page.close()


NO_WIDER_THAN_THE_SCREEN = """() => {
  const width = window.innerWidth, offenders = [];
  for (const el of document.querySelectorAll("body *")) {
    const inBox = el.parentElement && el.parentElement.closest(".table-wrap");
    if (inBox) continue;  // a wide table scrolls inside its own box
    const r = el.getBoundingClientRect();
    if (r.width && (r.left < -1 || r.right > width + 1)) {
      offenders.push(`${el.tagName} ${r.left}..${r.right}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, offenders};
}"""

CHARTS = """() => Array.from(document.querySelectorAll("svg.chart"), (svg) => ({
  title: svg.querySelector("title").textContent,
  ticks: svg.querySelectorAll("text.tick").length,
  valueTicks: svg.querySelectorAll(".time-bars .y.axis text.tick, .latency .x.axis text.tick,"
    + " .bars .x.axis text.tick").length,
  axisTitles: Array.from(svg.querySelectorAll("text.axis-title"), (t) => t.textContent),
  width: svg.getBoundingClientRect().width,
}))"""


class TestTheReportInABrowser:
    def test_no_script_errors(self, opened: tuple[Opened, Summary]) -> None:
        page, _ = opened
        page.page.mouse.move(200, 300)  # the tooltip's handler runs too
        page.page.mouse.click(5, 5)
        assert page.errors == []

    def test_the_panels_of_the_kinds_present_and_no_other(
        self, opened: tuple[Opened, Summary]
    ) -> None:
        page, summary = opened
        shown = page.page.eval_on_selector_all(
            "section.panel", "(all) => all.map((s) => s.dataset.panel)"
        )
        assert shown == _expected_panels(summary)
        assert len(shown) >= 4

    def test_each_chart_has_several_value_ticks_and_both_axis_titles(
        self, opened: tuple[Opened, Summary]
    ) -> None:
        page, _ = opened
        charts = page.page.evaluate(CHARTS)
        assert len(charts) >= 3
        for chart in charts:
            assert chart["valueTicks"] > 2, chart
            assert len(chart["axisTitles"]) == 2, chart
            assert chart["width"] > 300, chart  # it fills its column, even on a phone

    def test_nothing_is_wider_than_the_screen(self, opened: tuple[Opened, Summary]) -> None:
        page, _ = opened
        found = page.page.evaluate(NO_WIDER_THAN_THE_SCREEN)
        assert found["offenders"] == []
        assert found["scroll"] <= found["width"]


class TestInteraction:
    @pytest.fixture
    def week(self, browser: Browser, reports: dict[str, tuple[Path, Summary]]) -> Iterator[Opened]:
        page = open_page(browser, reports["week"][0].as_uri(), *SIZES["phone"])
        yield page
        page.page.close()

    def test_a_table_sorts_on_click(self, week: Opened) -> None:
        table = week.page.locator("#panel-tools table")

        def column(index: int) -> list[str]:
            return table.locator(f"tbody tr td:nth-child({index})").all_inner_texts()

        def numbers(index: int) -> list[float]:
            cells = table.locator(f"tbody tr td:nth-child({index})")
            return [
                float(v or "nan")
                for v in cells.evaluate_all("(all) => all.map((c) => c.dataset.value)")
            ]

        names = column(1)
        p99 = table.locator("th", has_text="p99")
        p99.locator("button").click()
        assert p99.get_attribute("aria-sort") == "descending"
        assert numbers(7) == sorted(numbers(7), reverse=True)
        p99.locator("button").click()
        assert p99.get_attribute("aria-sort") == "ascending"
        assert numbers(7) == sorted(numbers(7))
        table.locator("th", has_text="tool").locator("button").click()
        assert column(1) == sorted(names, key=str.lower)
        assert column(1) != names or names == sorted(names, key=str.lower)

    def test_hovering_a_mark_shows_its_exact_values(self, week: Opened) -> None:
        row = week.page.locator("#panel-tools svg .row").first
        row.hover()
        tip = week.page.locator("#analytics-tip")
        assert tip.is_visible()
        assert tip.inner_text() == row.get_attribute("data-tip")
        assert "p50" in tip.inner_text()
        box = tip.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= SIZES["phone"][0]

    def test_the_dark_scheme_follows_the_browser(
        self, browser: Browser, reports: dict[str, tuple[Path, Summary]]
    ) -> None:
        colours = {}
        for scheme in ("light", "dark"):
            page = browser.new_page(color_scheme=scheme)
            page.goto(reports["week"][0].as_uri())
            colours[scheme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            page.close()
        assert colours == {"light": "rgb(255, 255, 255)", "dark": "rgb(21, 23, 27)"}
