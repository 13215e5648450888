"""A real ClickHouse server for the tests, started by the tests themselves.

The Debian package ``clickhouse-server`` (18.16 on bookworm) or a current
``clickhouse`` binary: a generated configuration in a temporary directory (data, logs,
users), 127.0.0.1 only, free ports, no interserver port; started as a process of its
own, so the ``Popen`` pid is the server's, and stopped or killed by that pid only.

Fixtures: ``clickhouse_server`` (one per session) and ``clickhouse_database`` (a fresh
database per test, with its ``clickhouse://`` URL).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.helpers import log_on_failure, server_unavailable, signal_and_reap

__all__ = [
    "PASSWORD",
    "PASSWORD_USER",
    "ClickHouseDatabase",
    "ClickHouseServer",
    "clickhouse_database",
    "clickhouse_server",
    "find_clickhouse",
]

PASSWORD_USER = "shipper"
PASSWORD = "s3cret-Pa55"
"""A user with a password, for the authentication tests (``default`` has none)."""

_READY_TIMEOUT = 60.0


def find_clickhouse() -> list[str] | None:
    """The command that runs a ClickHouse server here, or ``None``."""
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        found = shutil.which(name)
        if found:
            return [found]
    for name in ("clickhouse", "/usr/bin/clickhouse"):
        found = shutil.which(name)
        if found:
            return [found, "server"]
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>{root}/log/server.log</log>
    <errorlog>{root}/log/error.log</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
  <max_concurrent_queries>50</max_concurrent_queries>
  <keep_alive_timeout>1</keep_alive_timeout>
</yandex>
"""

_USER = """    <{name}>
      <password>{password}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </{name}>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
{users}  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


class ClickHouseServer:
    """One ClickHouse server in ``root``; ``start()``, ``stop()`` and ``kill()`` may be
    called again and again: it comes back on the same ports and data."""

    def __init__(self, command: list[str], root: Path) -> None:
        self.command = command
        self.root = root
        self.http_port = _free_port()
        self.tcp_port = _free_port()
        while self.tcp_port == self.http_port:
            self.tcp_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        """How long the last start took, until /ping answered."""
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.config = root / "config.xml"
        self.config.write_text(
            _CONFIG.format(root=escape(str(root)), http_port=self.http_port, tcp_port=self.tcp_port)
        )
        users = _USER.format(name="default", password="") + _USER.format(
            name=PASSWORD_USER, password=escape(PASSWORD)
        )
        (root / "users.xml").write_text(_USERS.format(users=users))

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Start the server and wait until ``GET /ping`` answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        began = time.monotonic()
        with (self.root / "log" / "stdout.log").open("ab") as out:
            self.process = subprocess.Popen(
                [*self.command, f"--config-file={self.config}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # a signal to the test run does not reach it
            )
        deadline = began + _READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"clickhouse exited with status {self.process.returncode} at start:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(f"{self.http_url}ping", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"clickhouse did not answer /ping:\n{self.log_tail()}")
            time.sleep(0.02)
        self.start_seconds = time.monotonic() - began

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM by pid, and wait until the server has exited."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL by pid (a crash), and reap it."""
        self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout: float) -> None:
        signal_and_reap(self.process, signum, timeout)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def url(self, database: str, table: str = "entries", *, auth: str = "") -> str:
        """The shipping URL of ``database.table`` (``auth``: ``"user:password@"``)."""
        return f"clickhouse://{auth}127.0.0.1:{self.http_port}/{database}?table={table}"

    def query(self, sql: str) -> str:
        """Run ``sql`` as ``default`` and return the answer's text (blocking)."""
        request = urllib.request.Request(self.http_url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text: str = answer.read().decode()
                return text
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{sql!r}: {exc.read().decode(errors='replace')}") from None

    def scalar(self, sql: str) -> int:
        return int(self.query(sql).strip())

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("stdout.log", "error.log", "server.log"):
            path = self.root / "log" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)


@dataclass
class ClickHouseDatabase:
    """A fresh database on the session's server."""

    server: ClickHouseServer
    name: str
    table: str = "entries"

    @property
    def url(self) -> str:
        return self.server.url(self.name, self.table)

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.table}"


@pytest.fixture(scope="session")
def clickhouse_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ClickHouseServer]:
    """A ClickHouse server for the session (skipped where none can be installed,
    failed instead when ``ANALYTICS_REQUIRE_SERVERS=1``)."""
    command = find_clickhouse()
    if command is None:
        server_unavailable(
            "no ClickHouse server binary (clickhouse-server or clickhouse) on this machine:"
            " apt-get install clickhouse-server"
        )
    server = ClickHouseServer(command, tmp_path_factory.mktemp("clickhouse"))
    server.start()
    try:
        with log_on_failure(request, "clickhouse_server", "clickhouse server log", server.log_tail):
            yield server
    finally:
        server.stop()


@pytest.fixture
def clickhouse_database(clickhouse_server: ClickHouseServer) -> Iterator[ClickHouseDatabase]:
    """A fresh, empty database (no table yet), dropped afterwards."""
    if clickhouse_server.process is None or clickhouse_server.process.poll() is not None:
        clickhouse_server.start()  # a crash test before left it down
    name = f"t_{uuid.uuid4().hex[:12]}"
    clickhouse_server.query(f"CREATE DATABASE {name}")
    yield ClickHouseDatabase(clickhouse_server, name)
    if clickhouse_server.process is None or clickhouse_server.process.poll() is not None:
        clickhouse_server.start()
    clickhouse_server.query(f"DROP DATABASE IF EXISTS {name}")
