"""Refresh the screenshots of docs/reporting.md: run the demo's simulated service, render
its HTML report, and photograph it in headless Chromium at desktop and phone sizes.

    python docs/screenshots.py            # writes docs/img/report-*.png

Needs Playwright (``pip install playwright``) and Debian's ``chromium`` (or
``ANALYTICS_CHROMIUM=/path/to/chromium``); never ``playwright install``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from analytics import summarize
from analytics._cli.simulator import simulate
from analytics._report import render

IMG = Path(__file__).resolve().parent / "img"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = [
    # file, viewport, colour scheme, whole page
    ("report-desktop.png", (1440, 900), "light", True),
    ("report-phone.png", (400, 800), "light", True),
    ("report-dark.png", (1440, 900), "dark", False),
]


def main() -> int:
    chromium = os.environ.get("ANALYTICS_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        sys.stderr.write("chromium not found: apt-get install chromium\n")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        # The demo's defaults: 50 sessions for 3 seconds.
        asyncio.run(simulate(Path(tmp) / "demo", 3.0, 50, 256 * 1024))
        page_file = Path(tmp) / "report.html"
        page_file.write_text(render(summarize(Path(tmp) / "demo"), "html"), encoding="utf-8")
        IMG.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            for name, (width, height), scheme, full in SHOTS:
                page = browser.new_page(
                    viewport={"width": width, "height": height},
                    color_scheme=scheme,  # type: ignore[arg-type]
                )
                page.goto(page_file.as_uri())
                page.screenshot(path=str(IMG / name), full_page=full)
                page.close()
                sys.stdout.write(f"wrote {IMG / name}\n")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
