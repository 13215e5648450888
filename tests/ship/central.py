"""What the shipping tests share: one face for both central engines (a fresh table's
URL, what is in it after dedup, the server's crash and restart), and helpers to write
entries, run the command and wait for a shipper."""

from __future__ import annotations

import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from analytics import JSONLWriter, MetricsWriter, ShipFatalError, Shipper, summarize_central
from analytics._checkpoint import load_checkpoint

from .ch_server import ClickHouseDatabase, ClickHouseServer
from .pg_server import SHIPPER_USER, PgDatabase, PgServer, boot

ENGINES = ["postgresql", "clickhouse"]


@dataclass
class Central:
    engine: str
    url: str
    table: str
    _rows: Callable[[str], Awaitable[list[tuple[object, ...]]]]
    crash: Callable[[], None]
    """Kill the server (SIGKILL of ClickHouse; PostgreSQL's immediate shutdown)."""
    restart: Callable[[], None]

    async def ids(self) -> list[str]:
        """Every row's id, after dedup (ClickHouse: FINAL), duplicates kept."""
        return [str(row[0]) for row in await self.rows("id")]

    async def by_source(self) -> Counter[str]:
        return Counter(str(row[0]) for row in await self.rows("source"))

    async def rows(self, columns: str) -> list[tuple[object, ...]]:
        return await self._rows(columns)


def _postgresql(database: PgDatabase, server: PgServer) -> Central:
    async def rows(columns: str) -> list[tuple[object, ...]]:
        exists = await database.fetch("SELECT to_regclass('entries') IS NOT NULL")
        if not exists[0][0]:
            return []  # the shipper has not created it yet
        return await database.fetch(f"SELECT {columns} FROM entries")

    def restart() -> None:
        server.start()

    return Central("postgresql", database.url, "entries", rows, server.kill_immediate, restart)


def _clickhouse(database: ClickHouseDatabase, server: ClickHouseServer) -> Central:
    async def rows(columns: str) -> list[tuple[object, ...]]:
        exists = await anyio.to_thread.run_sync(
            server.query, f"EXISTS TABLE {database.qualified} FORMAT TSV"
        )
        if exists.strip() != "1":
            return []  # the shipper has not created it yet
        text = await anyio.to_thread.run_sync(
            server.query, f"SELECT {columns} FROM {database.qualified} FINAL FORMAT TSV"
        )
        return [tuple(line.split("\t")) for line in text.splitlines()]

    return Central("clickhouse", database.url, "entries", rows, server.kill, server.start)


def _fresh_database(server: PgServer) -> PgDatabase:
    name = f"t_{secrets.token_hex(6)}"
    server.psql(f"CREATE DATABASE {name} OWNER {SHIPPER_USER}")
    return PgDatabase(server, name, server.url(name))


@pytest.fixture(params=ENGINES)
def central(request: pytest.FixtureRequest) -> Iterator[Central]:
    """A fresh table on each engine's session server."""
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        database = _fresh_database(server)
        yield _postgresql(database, server)
        if server.running:
            server.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")
    else:
        ch: ClickHouseDatabase = request.getfixturevalue("clickhouse_database")
        yield _clickhouse(ch, ch.server)


@pytest.fixture(params=ENGINES)
def crashable(request: pytest.FixtureRequest) -> Iterator[Central]:
    """A fresh table on a server of the test's own, which it may kill: the session's
    servers are never left recovering from a crash for the tests after it."""
    if request.param == "postgresql":
        server = boot()
        try:
            yield _postgresql(_fresh_database(server), server)
        finally:
            server.cleanup()
    else:
        session: ClickHouseServer = request.getfixturevalue("clickhouse_server")  # skip rule
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        ch = ClickHouseServer(session.command, factory.mktemp("clickhouse-own"))
        ch.start()
        try:
            database = ClickHouseDatabase(ch, f"t_{secrets.token_hex(6)}")
            ch.query(f"CREATE DATABASE {database.name}")
            yield _clickhouse(database, ch)
        finally:
            ch.kill()


FAST: dict[str, Any] = {"poll_interval": 0.05, "min_insert_interval": 0.05, "max_retry_delay": 0.5}


async def write_mixed(base: Path, n: int, *, session: str = "s", **options: Any) -> list[str]:
    """``n`` entries of several types through a real writer; their ids."""
    ids: list[str] = []
    settings: dict[str, Any] = {"max_file_size": "256 KiB", "max_files": 10_000} | options
    async with JSONLWriter(base, **settings) as writer:
        metrics = MetricsWriter(writer)
        for i in range(n):
            kind = i % 4
            if kind == 0:
                entry = await metrics.track_tool_use(
                    session, f"tool{i % 7}", i % 5 != 0, duration_ms=float(i % 300)
                )
            elif kind == 1:
                entry = await metrics.track_token_usage(session, "m1", i % 100, i % 50)
            elif kind == 2:
                entry = await metrics.track_error(session, "Timeout", f"attempt {i} - ü")
            else:
                entry = await metrics.track_session_start(f"{session}-{i}", user_id="u")
            ids.append(entry.id)
    return ids


def shipped_ids(ids: list[str]) -> set[str]:
    assert len(ids) == len(set(ids)), "a duplicate survived dedup"
    return set(ids)


async def wait_caught_up(shipper: Shipper, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stats = shipper.stats()
        if stats.lag_bytes == 0 and stats.oldest_unshipped_age is None and stats.batches:
            checkpoint = load_checkpoint(shipper.checkpoint_file)
            assert checkpoint is not None
            active = [p for p in shipper.checkpoint_file.parent.glob("metrics_*.jsonl")]
            sizes = {p.name: p.stat().st_size for p in active if p.exists()}
            if all(
                checkpoint.files.get(n) and checkpoint.files[n].offset >= s
                for n, s in sizes.items()
            ):
                return
        assert time.monotonic() < deadline, f"not caught up: {stats}"
        await anyio.sleep(0.05)


def ship_command(directory: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analytics", "ship", str(directory), "--to", url, *extra]


async def reports_on_server(central: Central) -> bool:
    """Whether the server can compute the report (ClickHouse 18.16 lacks the JSON
    functions: the report says so in one line, which is checked here)."""
    if central.engine == "postgresql":
        return True
    try:
        await summarize_central(central.url)
    except ShipFatalError as exc:
        message = str(exc)
    else:
        return True
    assert "cannot compute the report" in message
    assert "\n" not in message
    return False
