"""A real OTLP receiver for the OTelSink tests: rotel, a collector written in Rust and
shipped as a wheel on PyPI (``pip install rotel``; the binary is ``rotel/rotel-agent``
inside the package).

The test starts it on 127.0.0.1 on free ports in a temporary directory, in the
foreground of its own process (the pid we hold is the collector's), with the
``blackhole`` exporter and its debug log of logs and metrics in ``detailed``
verbosity going to a file: everything it received, as text, which
:meth:`OtlpReceiver.log_records` parses. It is stopped (and started again on the same
ports) by that pid, never by name.

Without the package the tests skip with the reason; with ``ANALYTICS_REQUIRE_SERVERS=1``
(CI sets it) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import server_unavailable, signal_and_reap

__all__ = ["LogRecordSeen", "OtlpReceiver", "find_rotel", "otlp_receiver"]

STARTUP_TIMEOUT = 20.0

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ATTRIBUTE = re.compile(r"^\s*-> ([^:]+): (\w+)\((.*)\)\s*$")


def find_rotel() -> Path | None:
    """The ``rotel-agent`` binary of the installed ``rotel`` package
    (``ANALYTICS_ROTEL`` overrides)."""
    override = os.environ.get("ANALYTICS_ROTEL")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "rotel-agent"
        if binary.is_file():
            return binary
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _value(kind: str, text: str) -> object:
    if kind == "Int":
        return int(text)
    if kind == "Double":
        return float(text)
    if kind == "Bool":
        return text == "true"
    return text


@dataclass
class LogRecordSeen:
    """One log record as the collector printed it."""

    event_name: str = ""
    severity: str = ""
    body: str = ""
    timestamp: int = 0
    attributes: dict[str, object] = field(default_factory=dict)
    resource: dict[str, object] = field(default_factory=dict)


class OtlpReceiver:
    """One rotel collector, its ports and its log of what it received."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="analytics-otlp-"))
        self.received = self.base / "received.log"
        self.http_port = _free_port()
        self.grpc_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        args = [
            str(self.binary), "start",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--exporter", "blackhole",
            "--debug-log", "logs", "--debug-log", "metrics",
            "--debug-log-verbosity", "detailed",
            "--batch-timeout", "50ms",
            "--pid-file", str(self.base / "rotel.pid"),
            "--log-file", str(self.base / "rotel.log"),
        ]  # fmt: skip
        out = self.received.open("ab")
        try:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.base
            )
        finally:
            out.close()
        began = time.monotonic()
        while time.monotonic() - began < STARTUP_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"rotel exited ({self.process.returncode}):\n{self.text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"rotel did not listen within {STARTUP_TIMEOUT}s:\n{self.text()}")

    def stop(self) -> None:
        """SIGTERM to our pid, then SIGKILL if it lingers."""
        process, self.process = self.process, None
        signal_and_reap(process, signal.SIGTERM, 10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def text(self) -> str:
        """Everything the collector printed, without colours and NUL padding."""
        try:
            raw = self.received.read_bytes()
        except FileNotFoundError:
            return ""
        return _ANSI.sub("", raw.replace(b"\x00", b"").decode(errors="replace"))

    def log_records(self) -> list[LogRecordSeen]:
        """Every log record received so far, with its resource's attributes."""
        records: list[LogRecordSeen] = []
        resource: dict[str, object] = {}
        current: LogRecordSeen | None = None
        section = ""
        for line in self.text().splitlines():
            stripped = line.strip()
            if stripped.startswith("ResourceLog #") or stripped.startswith("ResourceMetrics #"):
                resource, current, section = {}, None, "resource"
            elif stripped == "Resource attributes:":
                section = "resource"
            elif stripped.startswith("LogRecord #"):
                current = LogRecordSeen(resource=resource)
                records.append(current)
                section = "record"
            elif stripped.startswith(("Metric #", "ScopeLogs #", "ScopeMetrics #")):
                current, section = None, ""
            elif current is not None and stripped.startswith("EventName: "):
                current.event_name = stripped.removeprefix("EventName: ")
            elif current is not None and stripped.startswith("SeverityNumber: "):
                current.severity = stripped.removeprefix("SeverityNumber: ")
            elif current is not None and stripped.startswith("Timestamp: "):
                current.timestamp = int(stripped.removeprefix("Timestamp: "))
            elif current is not None and stripped.startswith("Body: Str("):
                current.body = stripped.removeprefix("Body: Str(")[:-1]
            elif stripped == "Attributes:" and current is not None:
                section = "attributes"
            elif (match := _ATTRIBUTE.match(line)) is not None:
                key, kind, text = match.groups()
                if section == "resource":
                    resource[key] = _value(kind, text)
                elif section == "attributes" and current is not None:
                    current.attributes[key] = _value(kind, text)
        return records

    def metric_names(self) -> set[str]:
        """The names of the metrics received so far."""
        return set(re.findall(r"-> Name: (\S+)", self.text()))

    def wait_for(self, count: int, timeout: float = 15.0) -> list[LogRecordSeen]:
        """The log records, once at least ``count`` arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        records = self.log_records()
        while len(records) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            records = self.log_records()
        return records


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A rotel collector of this test's own (a test may stop and restart it)."""
    binary = find_rotel()
    if binary is None:
        server_unavailable("no OTLP receiver: pip install rotel (the test extra has it)")
    receiver = OtlpReceiver(binary)
    try:
        receiver.start()
        yield receiver
    finally:
        receiver.stop()
        # Captured: pytest shows it only if the test failed.
        print(f"--- what rotel printed (the end) ---\n{receiver.text()[-5000:]}")
        receiver.cleanup()
