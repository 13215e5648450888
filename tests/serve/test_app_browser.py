"""The dashboard in a real browser (headless Chromium), served by a real uvicorn on a
free port: no script errors, nothing wider than the screen on a desktop or a phone,
new entries shown without a reload, and the time window respected.

Screenshots go to pytest's ``artifacts`` directory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from analytics import MetricEntry, MetricType, summarize
from analytics._serve.app import create_app
from analytics._serve.server import DashboardServer
from analytics.testing import write_data_file

from ..browser import Opened, open_page
from ..helpers import line_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SIZES = {"desktop": (1440, 900), "phone": (400, 800)}
AGES = (2 * 86400, 2 * 3600, 20 * 60, 60)
"""Seconds before the test starts of each group of entries: one in each window."""


def entries_at(now: datetime, age: float, count: int = 4) -> list[MetricEntry]:
    made = []
    for i in range(count):
        moment = now - timedelta(seconds=age - i)
        made.append(
            MetricEntry(
                type=MetricType.TOOL_USE,
                timestamp=moment,
                session_id=f"s{i % 2}",
                data={
                    "tool_name": ("grep", "edit")[i % 2],
                    "success": i != 3,
                    "duration_ms": 1.5 * (i + 1),
                },
            )
        )
    made.append(
        MetricEntry(
            type=MetricType.ERROR_OCCURRED,
            timestamp=now - timedelta(seconds=age - 5),
            session_id="s0",
            data={"error_type": "Timeout", "error_message": "slow"},
        )
    )
    return made


@dataclass
class Live:
    base: Path
    active: Path
    url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A directory with entries two days, two hours, twenty minutes and a minute
    old, served on 127.0.0.1 and a free port (refreshing every 0.3 s) from a thread;
    stopped by its handle."""
    base = tmp_path_factory.mktemp("live")
    now = datetime.now(UTC)
    metrics = base / "metrics"
    old = [e for age in AGES[:2] for e in entries_at(now, age)]
    write_data_file(metrics, old, created=now - timedelta(days=3), compressed=True)
    new = [e for age in AGES[2:] for e in entries_at(now, age)]
    active = write_data_file(metrics, new, created=now - timedelta(hours=1), tag="7e570001")
    port = _free_port()
    server = DashboardServer(create_app(base, refresh_seconds=0.3), "127.0.0.1", port)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server stopped"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield Live(base, active, f"http://127.0.0.1:{port}/")
    finally:
        server.stop()
        thread.join(timeout=30)


NO_WIDER_THAN_THE_SCREEN = """() => {
  const width = window.innerWidth, offenders = [];
  for (const el of document.querySelectorAll("body *")) {
    const inBox = el.parentElement && el.parentElement.closest(".table-wrap");
    if (inBox) continue;  // a wide table scrolls inside its own box
    const r = el.getBoundingClientRect();
    if (r.width && (r.left < -1 || r.right > width + 1)) {
      offenders.push(`${el.tagName}#${el.id} ${r.left}..${r.right}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, offenders};
}"""

STATUS = "() => document.getElementById('dashboard-status').textContent"


def shown_entries(opened: Opened) -> int:
    """The entries the status line says are shown (``N of M entries``)."""
    text: str = opened.page.evaluate(STATUS)
    return int(text.split(" of ")[0].replace(",", ""))


def wait_for_status(opened: Opened, prefix: str) -> None:
    opened.page.wait_for_function(
        f"() => document.getElementById('dashboard-status').textContent.startsWith({prefix!r})",
        timeout=15_000,
    )


@pytest.fixture(params=list(SIZES), ids=str)
def opened(
    request: pytest.FixtureRequest, browser: Browser, live: Live, artifacts: Path
) -> Iterator[Opened]:
    size = request.param
    page = open_page(browser, live.url, *SIZES[size])
    try:
        yield page
        page.page.screenshot(path=str(artifacts / f"dashboard-{size}.png"), full_page=True)
    finally:
        page.page.close()


class TestTheDashboardInABrowser:
    def test_no_script_errors_across_refreshes(self, opened: Opened) -> None:
        opened.page.wait_for_function(
            "() => document.getElementById('dashboard-status').textContent.includes('updated')"
            " && !document.getElementById('dashboard-status').textContent.includes('now')",
            timeout=15_000,
        )  # the script has refreshed the report in place at least once
        opened.page.mouse.move(200, 300)
        assert opened.errors == []
        assert opened.page.locator("section.panel").count() >= 3

    def test_nothing_is_wider_than_the_screen(self, opened: Opened) -> None:
        opened.page.select_option("#dashboard-window", "custom")  # every control shown
        found = opened.page.evaluate(NO_WIDER_THAN_THE_SCREEN)
        assert found["offenders"] == []
        assert found["scroll"] <= found["width"]

    def test_new_entries_show_up_without_a_reload(self, opened: Opened, live: Live) -> None:
        opened.page.evaluate("() => { window.notReloaded = true; }")
        before = shown_entries(opened)
        with open(live.active, "ab") as f:
            f.write(b"".join(line_of(e) for e in entries_at(datetime.now(UTC), 1, 2)))
        wait_for_status(opened, f"{before + 3} of ")
        assert opened.page.evaluate("() => window.notReloaded") is True
        assert opened.errors == []

    def test_the_time_window_is_respected(self, opened: Opened, live: Live) -> None:
        for window, back in (
            ("15m", timedelta(minutes=15)),
            ("1h", timedelta(hours=1)),
            ("24h", timedelta(hours=24)),
        ):
            opened.page.select_option("#dashboard-window", window)
            # No entry lies near a window's edge: the browser's and the test's clocks agree.
            want = summarize(live.base, since=datetime.now(UTC) - back).entries
            wait_for_status(opened, f"{want} of ")
            assert f"window={window}" in opened.page.url
        opened.page.select_option("#dashboard-window", "custom")
        now = datetime.now(UTC)
        since, until = now - timedelta(hours=3), now - timedelta(minutes=10)
        local = "(iso) => { const d = new Date(iso); d.setMinutes(d.getMinutes() -"
        local += " d.getTimezoneOffset()); return d.toISOString().slice(0, 19); }"
        for field, moment in (("#dashboard-since", since), ("#dashboard-until", until)):
            value = opened.page.evaluate(local, moment.isoformat())
            opened.page.fill(field, value)
        opened.page.click("button[type=submit]")
        want = summarize(
            live.base,
            since=since.replace(microsecond=0),
            until=until.replace(microsecond=0),
        ).entries
        wait_for_status(opened, f"{want} of ")
        assert opened.errors == []

    def test_the_page_answers_what_the_api_answers(self, live: Live) -> None:
        """The numbers the page shows come from the same summary as /api/summary."""
        api = httpx.get(live.url + "api/summary", params={"window": "1h"}, timeout=10).json()
        assert (
            api["entries"]
            == summarize(live.base, since=datetime.now(UTC) - timedelta(hours=1)).entries
        )
