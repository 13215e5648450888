"""A real PostgreSQL for the shipping tests, started by the tests themselves.

The server comes from the Debian packages (``/usr/lib/postgresql/<version>/bin``, the
newest there; ``ANALYTICS_PG_BINDIR`` overrides): ``initdb`` into a temporary
directory, then ``postgres`` itself (not ``pg_ctl``) on 127.0.0.1 on a free port, with
its unix socket in the temporary directory too, so that the pid we hold is the
postmaster's and every stop goes to that pid, never to a name. As root it runs as the
``postgres`` user (``initdb`` refuses root).

Two roles: ``postgres``, a superuser trusted without a password (the fixtures' own
admin connection), and ``shipper`` (password ``SHIPPER_PASSWORD``, SCRAM), which owns
the per-test databases and is what the engine under test logs in as.

Without the binaries the tests skip with the reason; with ``ANALYTICS_REQUIRE_SERVERS=1``
(CI sets it) they fail instead.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import server_unavailable

__all__ = [
    "SHIPPER_PASSWORD",
    "SHIPPER_USER",
    "PgDatabase",
    "PgServer",
    "boot",
    "create_database",
    "find_bindir",
    "pg_database",
    "pg_private_server",
    "pg_server",
]

SHIPPER_USER = "shipper"
SHIPPER_PASSWORD = "s3cret-pw"
STARTUP_TIMEOUT = 30.0

_HBA = """\
local all postgres trust
host all postgres 127.0.0.1/32 trust
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
"""


def find_bindir() -> Path | None:
    """The newest PostgreSQL's ``bin`` directory with ``initdb`` and ``postgres``."""
    override = os.environ.get("ANALYTICS_PG_BINDIR")

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = (
        [Path(override)]
        if override
        else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL cluster in a temporary directory, and the postmaster we started.

    ``start()`` (again on the same port and data directory after a stop), ``stop()``
    (a fast shutdown: SIGINT to our pid), ``kill_immediate()`` (SIGQUIT to our pid, what
    ``pg_ctl -m immediate stop`` sends: no checkpoint, crash recovery at the next
    start), ``cleanup()`` (stop, then remove the directory).
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="analytics-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "run"
        self.log = self.base / "server.log"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        """Whom the server runs as: ``postgres`` when we are root."""
        self.start_seconds: list[float] = []
        """How long each start took, until the server accepted connections."""
        self.initdb_seconds = 0.0

    def initdb(self) -> None:
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                server_unavailable(
                    "running as root and there is no 'postgres' user to run PostgreSQL"
                )
            self._user = "postgres"
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self.sockets.mkdir()
            os.chown(self.sockets, account.pw_uid, account.pw_gid)
        else:
            self.sockets.mkdir()
        began = time.monotonic()
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "--auth=trust", "--no-sync", "--no-instructions",
        )  # fmt: skip
        (self.data / "pg_hba.conf").write_text(_HBA)
        self.initdb_seconds = time.monotonic() - began

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / program), *args],
            capture_output=True,
            check=False,
            cwd=self.base,
            user=self._user,
            group=self._user,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )

    def start(self) -> None:
        """Start the postmaster (in the foreground of its own process: its pid is the
        server's) and wait until it accepts connections."""
        assert self.process is None or self.process.poll() is not None, "already running"
        began = time.monotonic()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.sockets),
            # Only an OS crash would need the fsyncs; the tests kill processes.
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
            "password_encryption": "scram-sha-256",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_checkpoints": "off",
        }
        args = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        log = self.log.open("ab")
        try:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                user=self._user,
                group=self._user,
            )
        finally:
            log.close()
        self._wait_ready(began)
        self.start_seconds.append(time.monotonic() - began)

    def _wait_ready(self, began: float) -> None:
        """Until a connection is accepted (``postmaster.pid`` says "ready", then a real
        login), or the process exited (its log then says why)."""
        assert self.process is not None
        while time.monotonic() - began < STARTUP_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if self._ready():
                return
            time.sleep(0.02)
        self.kill_immediate()
        raise RuntimeError(
            f"PostgreSQL did not start within {STARTUP_TIMEOUT} s:\n{self.log_tail()}"
        )

    def _ready(self) -> bool:
        try:
            status = (self.data / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        if len(status) < 8 or status[7].strip() != "ready":
            return False
        # A real login over TCP, as the engine will make.
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
             "-U", "postgres", "-d", "postgres", "-t", "5"],
            check=False,
        )  # fmt: skip
        return probe.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser (through the unix socket), from sync code."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres",
             "-d", database, "-c", sql],
            capture_output=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, signum: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()  # SIGKILL to our own pid, never by name
            self.process.wait()

    def stop(self) -> None:
        """A fast shutdown (SIGINT): sessions are ended, a checkpoint is written."""
        self._signal(signal.SIGINT)

    def kill_immediate(self) -> None:
        """An immediate shutdown (SIGQUIT), as ``pg_ctl -m immediate stop``: every
        backend quits at once, nothing is checkpointed, the next start recovers."""
        self._signal(signal.SIGQUIT)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, offset: int = 0, limit: int = 20_000) -> str:
        try:
            with self.log.open("rb") as log:
                log.seek(offset)
                text = log.read()
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:].decode(errors="replace")

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def url(self, database: str, *, table: str = "entries", password: str | None = None) -> str:
        """The shipping URL of ``database`` for the ``shipper`` role."""
        secret = SHIPPER_PASSWORD if password is None else password
        return (
            f"postgresql://{SHIPPER_USER}:{secret}@{self.host}:{self.port}/{database}?table={table}"
        )

    async def admin(self, sql: str, database: str = "postgres") -> None:
        """Run ``sql`` as the superuser."""
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(
            host=self.host, port=self.port, user="postgres", database=database, timeout=10
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def admin_fetch(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import asyncpg

        conn = await asyncpg.connect(
            host=self.host, port=self.port, user="postgres", database=database, timeout=10
        )
        try:
            return [tuple(record) for record in await conn.fetch(sql)]
        finally:
            await conn.close()


def boot() -> PgServer:
    """A new server, started (the caller cleans it up); skips, or fails under
    ``ANALYTICS_REQUIRE_SERVERS=1``, when PostgreSQL is not installed."""
    pytest.importorskip("asyncpg", reason="asyncpg is not installed (the test extra has it)")
    bindir = find_bindir()
    if bindir is None:
        server_unavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb;"
            " apt-get install postgresql)"
        )
    server = PgServer(bindir)
    try:
        server.initdb()
        server.start()
        server.psql(f"CREATE ROLE {SHIPPER_USER} LOGIN PASSWORD '{SHIPPER_PASSWORD}'")
    except BaseException:
        server.cleanup()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL for the session (tests that stop or kill a server take
    :func:`pg_private_server`)."""
    server = boot()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_private_server() -> Iterator[PgServer]:
    """A PostgreSQL of the test's own, free to be stopped and killed."""
    server = boot()
    try:
        yield server
    finally:
        sys.stderr.write(f"--- PostgreSQL log ---\n{server.log_tail()}")  # shown on failure
        server.cleanup()


@dataclass
class PgDatabase:
    """A fresh database owned by ``shipper``, and its shipping URL."""

    server: PgServer
    name: str
    url: str

    async def fetch(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of ``sql`` run as the superuser in this database."""
        return await self.server.admin_fetch(sql, self.name)

    async def execute(self, sql: str) -> None:
        await self.server.admin(sql, self.name)


async def _create_database(server: PgServer) -> PgDatabase:
    name = f"t_{secrets.token_hex(6)}"
    await server.admin(f"CREATE DATABASE {name} OWNER {SHIPPER_USER}")
    return PgDatabase(server, name, server.url(name))


@pytest.fixture
async def pg_database(pg_server: PgServer) -> AsyncIterator[PgDatabase]:
    """A new database per test on the session's server; the server's log of the test
    goes to the report when the test fails."""
    offset = pg_server.log_size()
    database = await _create_database(pg_server)
    try:
        yield database
    finally:
        if pg_server.running:
            await pg_server.admin(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")
        log = pg_server.log_tail(offset)
        if log.strip():
            sys.stderr.write(f"--- PostgreSQL log ---\n{log}")


async def create_database(server: PgServer) -> PgDatabase:
    """A new database on ``server`` (for a private server, whose databases go with it)."""
    return await _create_database(server)
