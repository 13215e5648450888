"""One face for both central engines in the shipper's tests: a fresh table's URL,
what is in it after dedup, and the server's crash and restart."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
import pytest

from .ch_server import ClickHouseDatabase, ClickHouseServer
from .pg_server import PgDatabase, PgServer, boot, create_database

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
        return await database.fetch(f"SELECT {columns} FROM entries")

    def restart() -> None:
        server.start()

    return Central("postgresql", database.url, "entries", rows, server.kill_immediate, restart)


def _clickhouse(database: ClickHouseDatabase, server: ClickHouseServer) -> Central:
    async def rows(columns: str) -> list[tuple[object, ...]]:
        text = await anyio.to_thread.run_sync(
            server.query, f"SELECT {columns} FROM {database.qualified} FINAL FORMAT TSV"
        )
        return [tuple(line.split("\t")) for line in text.splitlines()]

    return Central("clickhouse", database.url, "entries", rows, server.kill, server.start)


@pytest.fixture(params=ENGINES)
async def central(request: pytest.FixtureRequest) -> AsyncIterator[Central]:
    """A fresh table on each engine's session server."""
    if request.param == "postgresql":
        database: PgDatabase = request.getfixturevalue("pg_database")
        yield _postgresql(database, database.server)
    else:
        ch: ClickHouseDatabase = request.getfixturevalue("clickhouse_database")
        yield _clickhouse(ch, ch.server)


@pytest.fixture(params=ENGINES)
async def crashable(request: pytest.FixtureRequest) -> AsyncIterator[Central]:
    """A fresh table on a server the test may kill: a private PostgreSQL, or the
    session's ClickHouse (its database fixture brings it back)."""
    if request.param == "postgresql":
        server = boot()
        try:
            database = await create_database(server)
            yield _postgresql(database, server)
        finally:
            server.cleanup()
    else:
        ch: ClickHouseDatabase = request.getfixturevalue("clickhouse_database")
        yield _clickhouse(ch, ch.server)
