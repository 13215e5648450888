"""A real Prometheus for the PrometheusSink tests, started by the tests themselves.

The server is Debian's ``prometheus`` package (``/usr/bin/prometheus``;
``ANALYTICS_PROMETHEUS`` overrides), started in the foreground of its own process on
127.0.0.1 on a free port, with its configuration and its database in a temporary
directory, scraping the given targets every second; queried over its HTTP API, and
stopped by the pid we hold, never by name.

Without the binary the tests skip with the reason; with ``ANALYTICS_REQUIRE_SERVERS=1``
(CI sets it) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import server_unavailable, signal_and_reap

__all__ = ["PrometheusServer", "find_prometheus", "prometheus_server"]

STARTUP_TIMEOUT = 30.0


def find_prometheus() -> Path | None:
    override = os.environ.get("ANALYTICS_PROMETHEUS")
    found = override or shutil.which("prometheus")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """One Prometheus scraping ``targets`` (``host:port``) every second."""

    def __init__(self, binary: Path, targets: list[str]) -> None:
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="analytics-prometheus-"))
        self.log = self.base / "prometheus.log"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (self.base / "prometheus.yml").write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: analytics\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [
            str(self.binary),
            f"--config.file={self.base / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.base / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        log = self.log.open("ab")
        try:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.base
            )
        finally:
            log.close()
        began = time.monotonic()
        while time.monotonic() - began < STARTUP_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({self.process.returncode}):\n{self.text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus was not ready within {STARTUP_TIMEOUT}s:\n{self.text()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        signal_and_reap(process, signal.SIGTERM, 15)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        query = urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def targets_up(self) -> bool:
        """Whether every target was scraped successfully at least once."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as response:
            answer = json.load(response)
        active = answer["data"]["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)

    def wait_until(
        self, expression: str, ok: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """The result of ``expression`` once ``ok`` holds for it (or at the timeout)."""
        deadline = time.monotonic() + timeout
        result = self.query(expression)
        while not ok(result) and time.monotonic() < deadline:
            time.sleep(0.25)
            result = self.query(expression)
        return result


@pytest.fixture
def prometheus_server() -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """Starts a Prometheus scraping the given targets; stopped after the test."""
    binary = find_prometheus()
    if binary is None:
        server_unavailable("no prometheus binary: apt-get install prometheus")
    started: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(binary, targets)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
            print(f"--- prometheus's log ---\n{server.text()[-5000:]}")
            server.cleanup()
