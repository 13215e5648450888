"""A real browser for the tests that look at pages: Debian's ``chromium``, driven by
Playwright (``pip install playwright``; never ``playwright install``: the browser is
the system's, ``chromium`` on the PATH or ``ANALYTICS_CHROMIUM``).

``chromium`` is one headless Chromium for the whole session, started by the tests as
the database servers are: on 127.0.0.1 (its DevTools port, chosen by the browser and
read from its log), with a fresh ``--user-data-dir`` in a temporary directory, without
background networking, updates or sync, and stopped by the pid it was started with.
``browser`` is Playwright connected to it, for one test module: Playwright's sync API
keeps an event loop running in the test's thread while it is connected, which would
break every asyncio test after it, so the connection ends with the module (run
asyncio code in another thread while it is open). ``artifacts`` is a directory for
screenshots (under pytest's temporary directory, never committed).

Without Chromium or Playwright the tests skip with the reason; with
``ANALYTICS_REQUIRE_SERVERS=1`` (CI sets it) they fail instead.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import server_unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

__all__ = [
    "FLAGS",
    "Chromium",
    "Opened",
    "artifacts",
    "browser",
    "chromium",
    "find_chromium",
    "open_page",
]

FLAGS = [
    "--headless",
    "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # the browser picks a free port and logs it
]
STARTUP_TIMEOUT = 30.0
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    """The Chromium executable: ``ANALYTICS_CHROMIUM``, else ``chromium`` on the PATH."""
    override = os.environ.get("ANALYTICS_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Chromium:
    """The running browser: its process, its DevTools URL and what it logged."""

    process: subprocess.Popen[str]
    url: str
    log: list[str]


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One headless Chromium for the whole session, stopped by its pid."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        server_unavailable("Playwright is not installed: pip install playwright")
    executable = find_chromium()
    if executable is None:
        server_unavailable("Chromium is not installed: apt-get install chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # the browser blocks if nobody reads its log
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        url = None
        while url is None:
            try:
                line = lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                line = None
            if line is None:
                pytest.fail("Chromium did not start:\n" + "".join(log[-30:]), pytrace=False)
            found = _LISTENING.search(line)
            url = found.group(1) if found else None
        yield Chromium(process, url, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture(scope="module")
def browser(chromium: Chromium) -> Iterator[Browser]:
    """Playwright connected to the session's Chromium, for one test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        connected = playwright.chromium.connect_over_cdp(chromium.url)
        try:
            yield connected
        finally:
            connected.close()


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
