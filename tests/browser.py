"""A real browser for the tests that look at pages: Debian's ``chromium``, driven by
Playwright (``pip install playwright``; never ``playwright install``: the browser is
the system's, at ``/usr/bin/chromium`` or ``ANALYTICS_CHROMIUM``).

``browser`` is one headless Chromium for the session, started with a fresh profile
(Playwright gives each launch its own temporary ``--user-data-dir`` and removes it)
and without background networking, updates or sync; ``artifacts`` is a directory
for screenshots (under pytest's temporary directory, never committed). Without
Chromium or Playwright the tests skip with the reason; with
``ANALYTICS_REQUIRE_SERVERS=1`` (CI sets it) they fail instead.

Playwright's sync API keeps an event loop running in the test's thread while the
browser is open: run asyncio code (a writer, a server) in another thread or process.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from tests.ship.pg_server import require_servers

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

__all__ = ["FLAGS", "Opened", "artifacts", "browser", "find_chromium", "open_page"]

FLAGS = [
    "--headless",
    "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> NoReturn:
    if require_servers():
        pytest.fail(f"{reason} (ANALYTICS_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    """The Chromium executable: ``ANALYTICS_CHROMIUM``, else ``chromium`` on the PATH."""
    override = os.environ.get("ANALYTICS_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install playwright")
    executable = find_chromium()
    if executable is None:
        _unavailable("Chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests save screenshots: ``<pytest's basetemp>/artifacts``."""
    path = tmp_path_factory.getbasetemp() / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class Opened:
    """A page and what went wrong on it: console errors and uncaught exceptions."""

    page: Page
    errors: list[str] = field(default_factory=list)


def open_page(browser: Browser, url: str, width: int, height: int) -> Opened:
    """``url`` in a new page of ``width`` x ``height`` CSS pixels, loaded, with its
    console errors collected from the start. Close it with ``opened.page.close()``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    opened = Opened(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.goto(url, wait_until="load")
    return opened
