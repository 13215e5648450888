"""The PostgreSQL engine, against a real PostgreSQL started by the tests."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from analytics import MetricEntry, MetricsWriter, MetricType, Summary, summarize
from analytics._exceptions import (
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
)
from analytics._ship.engine import Batch, Engine, Row, open_engine
from analytics._ship.postgresql import PostgreSQL
from analytics._ship.report import summarize_engine
from analytics._ship.target import parse_target
from analytics.testing import MemorySink, write_data_file

from ..helpers import foreign_entry, line_of
from .pg_server import SHIPPER_PASSWORD, PgDatabase, PgServer, boot, create_database

pytest.importorskip("asyncpg")

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SOURCE = "host-a/0123abcd"


def row_of(entry: MetricEntry, source: str = SOURCE) -> Row:
    """``entry`` as the shipper hands it over."""
    return Row(
        id=entry.id,
        timestamp=entry.timestamp,
        type=entry.type.value,
        session_id=entry.session_id,
        user_id=entry.user_id,
        data=to_json(entry.data).decode(),
        metadata=to_json(entry.metadata).decode(),
        source=source,
    )


def rows(count: int, start: int = 0, **data: Any) -> list[Row]:
    return [
        Row(
            id=f"id-{number}",
            timestamp=T0 + timedelta(microseconds=number),
            type="tool_use",
            session_id=f"s{number % 3}",
            user_id=None,
            data=json.dumps({"tool_name": "grep", "n": number, **data}),
            metadata="{}",
            source=SOURCE,
        )
        for number in range(start, start + count)
    ]


async def opened(url: str) -> PostgreSQL:
    engine = open_engine(parse_target(url))
    assert isinstance(engine, PostgreSQL)
    await engine.open()
    return engine


async def count(database: PgDatabase, table: str = "entries") -> int:
    ((number,),) = await database.fetch(f"SELECT count(*) FROM {table}")
    assert isinstance(number, int)
    return number


async def ids(database: PgDatabase, table: str = "entries") -> list[str]:
    return [str(i) for (i,) in await database.fetch(f"SELECT id FROM {table} ORDER BY seq")]


async def catalog(database: PgDatabase, table: str) -> tuple[list[tuple[object, ...]], ...]:
    """The table's columns and indexes as the server describes them."""
    columns = await database.fetch(
        "SELECT column_name, data_type, is_nullable, is_identity, identity_generation"
        f" FROM information_schema.columns WHERE table_name = '{table}'"
        " ORDER BY ordinal_position"
    )
    indexes = await database.fetch(
        f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename = '{table}' ORDER BY indexname"
    )
    return columns, indexes


class TestTable:
    async def test_open_creates_the_table_ddl_describes(
        self, pg_server: PgServer, pg_database: PgDatabase
    ) -> None:
        """open() creates exactly the table and indexes of ddl(): the same catalog as
        ddl() run by hand in another database."""
        engine = await opened(pg_database.url)
        await engine.aclose()
        columns, indexes = await catalog(pg_database, "entries")
        assert columns == [
            ("id", "text", "NO", "NO", None),
            ("timestamp", "timestamp with time zone", "NO", "NO", None),
            ("type", "text", "NO", "NO", None),
            ("session_id", "text", "YES", "NO", None),
            ("user_id", "text", "YES", "NO", None),
            ("data", "jsonb", "NO", "NO", None),
            ("metadata", "jsonb", "NO", "NO", None),
            ("source", "text", "NO", "NO", None),
            ("seq", "bigint", "NO", "YES", "ALWAYS"),
        ]
        assert [name for name, _ in indexes] == [
            "entries_pkey",
            "entries_source_timestamp_idx",
            "entries_timestamp_idx",
            "entries_type_timestamp_idx",
        ]
        other = await create_database(pg_server)
        try:
            await other.execute(engine.ddl())
            assert await catalog(other, "entries") == (columns, indexes)
        finally:
            await pg_server.admin(f"DROP DATABASE {other.name} WITH (FORCE)")

    async def test_open_keeps_an_existing_table_and_its_rows(self, pg_database: PgDatabase) -> None:
        engine = await opened(pg_database.url)
        await engine.insert(Batch(rows(5), "a"))
        await engine.aclose()
        again = await opened(pg_database.url)
        await again.aclose()
        assert await count(pg_database) == 5

    async def test_the_table_named_in_the_url(self, pg_database: PgDatabase) -> None:
        engine = await opened(pg_database.url.replace("table=entries", "table=Fleet_2"))
        await engine.insert(Batch(rows(3), "a"))
        await engine.aclose()
        assert await count(pg_database, '"Fleet_2"') == 3

    def test_long_table_names_get_distinct_index_names(self) -> None:
        name = "t" * 63
        engine = open_engine(parse_target(f"postgresql://u@h/db?table={name}"))
        statements = engine.ddl().split(";")
        index_names = [s.split('"')[1] for s in statements if "CREATE INDEX" in s]
        assert len(index_names) == 3
        assert len(set(index_names)) == 3
        assert all(len(n) <= 63 for n in index_names)

    def test_unknown_url_options_are_refused_at_once(self) -> None:
        with pytest.raises(TargetError, match="unknown option 'colour'"):
            open_engine(parse_target("postgresql://u:pw@h/db?table=t&colour=red"))
        with pytest.raises(TargetError, match="bad connect_timeout"):
            open_engine(parse_target("postgresql://u@h/db?connect_timeout=soon"))
        engine = open_engine(parse_target("postgresql://u@h/db?sslmode=disable&command_timeout=5"))
        assert engine.target.options == {"sslmode": "disable", "command_timeout": "5"}


class TestInsert:
    async def test_a_batch_sent_twice_is_in_the_table_once(self, pg_database: PgDatabase) -> None:
        engine = await opened(pg_database.url)
        batch = Batch(rows(500), "b1")
        await engine.insert(batch)
        await engine.insert(batch)
        assert await count(pg_database) == 500
        # A batch overlapping it adds only what is new, after what was there.
        await engine.insert(Batch(rows(500, start=250), "b2"))
        await engine.aclose()
        assert await ids(pg_database) == [f"id-{n}" for n in range(750)]

    async def test_rows_arrive_as_sent(self, pg_database: PgDatabase) -> None:
        row = Row(
            id="é-1",
            timestamp=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            type="error_occurred",
            session_id=None,
            user_id="ü",
            data='{"error_message":"naïve ✓","n":[1,2.5,null]}',
            metadata='{"host":"a"}',
            source=SOURCE,
        )
        engine = await opened(pg_database.url)
        await engine.insert(Batch([row], "t"))
        got = await engine.fetch(
            f"SELECT id, {engine.dialect.column('timestamp')}, type, session_id, user_id,"
            " data::text, metadata->>'host', source FROM entries"
        )
        await engine.aclose()
        data = '{"n": [1, 2.5, null], "error_message": "naïve ✓"}'  # as jsonb spells it
        assert got == [("é-1", -1, "error_occurred", None, "ü", data, "a", SOURCE)]

    async def test_a_nul_escape_rejects_the_batch_whole(self, pg_database: PgDatabase) -> None:
        """jsonb refuses \\u0000: the server's message, nothing of the batch inserted,
        and the connection still good for the next batch."""
        engine = await opened(pg_database.url)
        batch = rows(10)
        batch[7] = rows(1, start=7, note="a\u0000b")[0]
        assert "\\u0000" in batch[7].data
        with pytest.raises(ShipRejectedError) as caught:
            await engine.insert(Batch(batch, "t"))
        message = str(caught.value)
        assert "unsupported Unicode escape sequence" in message
        assert "\n" not in message
        assert SHIPPER_PASSWORD not in message
        assert await count(pg_database) == 0
        connection = engine._connection
        await engine.insert(Batch(rows(10), "t"))
        assert engine._connection is connection
        await engine.aclose()
        assert await count(pg_database) == 10

    @pytest.mark.parametrize(
        ("field", "value", "says"),
        [
            ("session_id", "a\x00b", "invalid byte sequence"),
            ("user_id", "lone \ud800", "surrogates not allowed"),
            ("data", '{"a": ', "invalid input syntax for type json"),
        ],
    )
    async def test_other_content_the_server_refuses(
        self, pg_database: PgDatabase, field: str, value: str, says: str
    ) -> None:
        good = rows(3)
        bad = Row(**{**good[1]._asdict(), field: value})
        engine = await opened(pg_database.url)
        with pytest.raises(ShipRejectedError, match=says):
            await engine.insert(Batch([good[0], bad, good[2]], "t"))
        await engine.aclose()
        assert await count(pg_database) == 0

    async def test_an_insert_cancelled_midway_leaves_all_or_nothing(
        self, pg_database: PgDatabase
    ) -> None:
        """A cancelled insert drops its connection (its state is unknown); the batch
        is in the table whole or not at all, and sending it again completes it."""
        engine = await opened(pg_database.url)
        batch = Batch(rows(20_000), "big")
        task = asyncio.create_task(engine.insert(batch))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine._connection is None
        assert await count(pg_database) in (0, 20_000)
        await engine.insert(batch)
        await engine.aclose()
        assert await count(pg_database) == 20_000

    async def test_shippers_opening_at_once_all_get_the_table(
        self, pg_database: PgDatabase
    ) -> None:
        engines = [open_engine(parse_target(pg_database.url)) for _ in range(6)]
        await asyncio.gather(*(engine.open() for engine in engines))
        for number, engine in enumerate(engines):
            await engine.insert(Batch(rows(3, start=3 * number), "a"))
            await engine.aclose()
        assert await count(pg_database) == 18

    async def test_an_empty_batch_is_nothing(self, pg_database: PgDatabase) -> None:
        engine = await opened(pg_database.url)
        await engine.insert(Batch([], "t"))
        await engine.aclose()
        assert await count(pg_database) == 0


class TestErrors:
    async def test_a_wrong_password_is_fatal_in_one_line(self, pg_database: PgDatabase) -> None:
        url = pg_database.url.replace(SHIPPER_PASSWORD, "wrong-password")
        engine = open_engine(parse_target(url))
        with pytest.raises(ShipFatalError) as caught:
            await engine.open()
        message = str(caught.value)
        assert "password authentication failed" in message
        assert engine.target.display() in message
        assert "wrong-password" not in message
        assert "\n" not in message

    async def test_a_missing_database_is_fatal(self, pg_server: PgServer) -> None:
        engine = open_engine(parse_target(pg_server.url("no_such_db")))
        with pytest.raises(ShipFatalError, match='database "no_such_db" does not exist'):
            await engine.open()

    async def test_a_missing_role_is_fatal(self, pg_database: PgDatabase) -> None:
        engine = open_engine(parse_target(pg_database.url.replace("shipper:", "nobody:")))
        with pytest.raises(ShipFatalError, match='"nobody"'):
            await engine.open()

    async def test_a_missing_privilege_is_fatal(
        self, pg_server: PgServer, pg_database: PgDatabase
    ) -> None:
        await pg_database.execute(
            "CREATE TABLE theirs (id text); REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
            " ALTER SCHEMA public OWNER TO postgres"
        )
        engine = open_engine(parse_target(pg_database.url))
        with pytest.raises(ShipFatalError, match="permission denied"):
            await engine.open()

    async def test_nobody_listening_is_retryable(self, pg_database: PgDatabase) -> None:
        port = str(parse_target(pg_database.url).port)
        engine = open_engine(parse_target(pg_database.url.replace(port, "1")))
        with pytest.raises(ShipRetryableError, match=r"127\.0\.0\.1:1/"):
            await engine.open()

    async def test_a_table_dropped_under_the_engine_is_created_again(
        self, pg_database: PgDatabase
    ) -> None:
        engine = await opened(pg_database.url)
        await engine.insert(Batch(rows(2), "a"))
        await pg_database.execute("DROP TABLE entries")
        with pytest.raises(ShipRetryableError, match="does not exist"):
            await engine.insert(Batch(rows(2), "a"))
        await engine.insert(Batch(rows(2), "a"))
        await engine.aclose()
        assert await count(pg_database) == 2

    async def test_a_table_of_another_shape_is_fatal(self, pg_database: PgDatabase) -> None:
        await pg_database.execute("CREATE TABLE entries (id text PRIMARY KEY, other int)")
        await pg_database.execute("ALTER TABLE entries OWNER TO shipper")
        engine = open_engine(parse_target(pg_database.url))
        with pytest.raises(ShipFatalError, match='column "timestamp" does not exist'):
            await engine.open()


class TestServerRestarts:
    async def test_stopped_then_started_again(self, pg_private_server: PgServer) -> None:
        """A stopped server is retryable; started again, the same engine object goes
        on (it reconnects)."""
        database = await create_database(pg_private_server)
        engine = await opened(database.url)
        await engine.insert(Batch(rows(10), "a"))
        await asyncio.to_thread(pg_private_server.stop)
        with pytest.raises(ShipRetryableError):
            await engine.insert(Batch(rows(10, start=10), "b"))
        with pytest.raises(ShipRetryableError, match=r"Connect call failed|refused"):
            await engine.insert(Batch(rows(10, start=10), "b"))
        await asyncio.to_thread(pg_private_server.start)
        await engine.insert(Batch(rows(10, start=10), "b"))
        await engine.aclose()
        assert await ids(database) == [f"id-{n}" for n in range(20)]

    @pytest.mark.slow
    async def test_killed_in_the_middle_of_inserts_then_restarted(
        self, pg_private_server: PgServer
    ) -> None:
        """Immediate shutdowns at random points of a stream of inserts: the failed
        batches sent again after each restart, the table holds exactly what was sent,
        once each, in the order sent."""
        server = pg_private_server
        database = await create_database(server)
        engine = await opened(database.url)
        rng = random.Random(14)
        batches = [rows(400, start=400 * n) for n in range(60)]
        failures = restarts = kills = 0
        done = asyncio.Event()
        starting = asyncio.Lock()  # a kill lands on a running server, not on its start

        async def killer() -> None:
            nonlocal kills
            while kills < 3 and not done.is_set():
                await asyncio.sleep(rng.uniform(0.02, 0.3))
                async with starting:
                    if server.running and not done.is_set():
                        await asyncio.to_thread(server.kill_immediate)
                        kills += 1

        killing = asyncio.create_task(killer())
        for number, batch in enumerate(batches):
            while True:
                try:
                    await engine.insert(Batch(batch, f"b{number}"))
                    break
                except ShipRetryableError:
                    failures += 1
                    async with starting:
                        if not server.running:
                            await asyncio.to_thread(server.start)
                            restarts += 1
        done.set()
        await killing
        await engine.aclose()
        assert kills >= 1
        assert restarts == kills
        assert failures >= restarts
        sent = [row.id for batch in batches for row in batch]
        assert await ids(database) == sent

    async def test_a_statement_that_takes_too_long_is_retryable(
        self, pg_database: PgDatabase
    ) -> None:
        """A table locked by someone else past command_timeout: retryable, and the
        next try (on a new connection) goes through once the lock is gone."""
        import asyncpg  # type: ignore[import-untyped]

        engine = await opened(pg_database.url + "&command_timeout=0.3")
        target = engine.target
        holder = await asyncpg.connect(
            host=target.host, port=target.port, user="postgres", database=target.database
        )
        try:
            locked = holder.transaction()
            await locked.start()
            await holder.execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ShipRetryableError, match="timed out"):
                await engine.insert(Batch(rows(5), "a"))
            await locked.rollback()
        finally:
            await holder.close()
        await engine.insert(Batch(rows(5), "a"))
        await engine.aclose()
        assert await count(pg_database) == 5

    async def test_a_server_that_never_answers_is_retryable(self) -> None:
        """A port that accepts connections (the kernel's backlog) but never speaks."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            url = f"postgresql://u:pw-1234@127.0.0.1:{port}/db?connect_timeout=0.3"
            with pytest.raises(ShipRetryableError, match="timed out"):
                await open_engine(parse_target(url)).open()


class TestFixture:
    def test_missing_binaries_skip_or_fail_under_ci(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No PostgreSQL: a skip naming the package, or a failure with
        ANALYTICS_REQUIRE_SERVERS=1."""
        monkeypatch.setenv("ANALYTICS_PG_BINDIR", str(tmp_path))
        monkeypatch.delenv("ANALYTICS_REQUIRE_SERVERS", raising=False)
        with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
            boot()
        monkeypatch.setenv("ANALYTICS_REQUIRE_SERVERS", "1")
        with pytest.raises(pytest.fail.Exception, match="ANALYTICS_REQUIRE_SERVERS=1"):
            boot()

    def test_the_engine_satisfies_the_protocol(self) -> None:
        engine: Engine = PostgreSQL(parse_target("postgresql://u@h/db"))  # checked by mypy
        assert engine.dialect.column("timestamp").endswith("::bigint")
        assert engine.entries([]) == '"analytics_entries" AS e'


# -- The report on PostgreSQL equals the Python engine's --------------------------------


def same(python: Summary, sql: Summary) -> None:
    """Equal, but for the mean session duration, whose sum may be added in another
    order (the last bit)."""
    a, b = python.model_dump(), sql.model_dump()
    mean_a = a["sessions"].pop("duration_s_mean")
    mean_b = b["sessions"].pop("duration_s_mean")
    assert (mean_a is None) == (mean_b is None)
    if mean_a is not None:
        assert mean_a == pytest.approx(mean_b, rel=1e-12)
    assert a == b


async def every_kind(seed: int) -> list[MetricEntry]:
    """Entries of every type as the writer's helpers make them, with missing and
    null fields, failures, durations of every sort, tokens, non-ASCII names, and
    timestamps that tie (several entries in the same microsecond)."""
    rng = random.Random(seed)
    sink = MemorySink()
    metrics = MetricsWriter(sink, user_id="ü-user")
    sessions = ["s-1", "s-2", "séance-3", "s-4"]
    for started in sessions:
        await metrics.track_session_start(started, model="m")
    for _ in range(300):
        session = rng.choice([*sessions, None])
        duration = rng.choice([None, rng.randint(0, 500), round(rng.lognormvariate(2, 1), 3), 0.0])
        kind = rng.randrange(9)
        if kind == 0:
            await metrics.track_tool_use(
                session, rng.choice(["grep", "édit", "bash ✓"]), rng.random() > 0.2, duration
            )
        elif kind == 1:
            await metrics.track_agent_execution(
                session, rng.choice(["planner", "coder"]), rng.random() > 0.3, duration
            )
        elif kind == 2:
            await metrics.track_checkpoint_created(
                session, f"c{rng.randint(0, 99)}", files_changed=rng.choice([None, 0, 3, 17])
            )
        elif kind == 3:
            await metrics.track_hook_triggered(
                session, "pre-commit", success=rng.choice([None, True, False]), duration_ms=duration
            )
        elif kind == 4:
            await metrics.track_command_executed(
                session, rng.choice(["make", "ls"]), exit_code=rng.choice([None, 0, 1, 2]),
                duration_ms=duration, success=rng.choice([None, True, False]),
            )  # fmt: skip
        elif kind == 5:
            await metrics.track_error(
                session,
                rng.choice(["Timeout", "KeyError", "Ошибка"]),
                f"message {rng.randint(0, 9)}",
            )
        elif kind == 6:
            await metrics.track_token_usage(
                session,
                rng.choice(["model-a", "modèle-b"]),
                rng.randint(0, 5000),
                rng.randint(0, 900),
            )
        elif kind == 7:
            operation = rng.choice(["http.request", "db.query"])
            ms = rng.choice([round(rng.random() * 100, 4), rng.randint(1, 50)])
            await metrics.track_performance(session, operation, rng.random() > 0.1, ms)
        else:
            await metrics.track_session_end(
                rng.choice(sessions),
                duration_seconds=rng.choice([None, round(rng.uniform(1, 600), 2)]),
            )
    entries = []
    moment = T0
    for entry in sink.entries:
        if rng.random() > 0.3:  # else the same microsecond as the entry before
            moment += timedelta(microseconds=rng.choice([1, 999, 1_000_000, 3_600_000_000]))
        entries.append(entry.model_copy(update={"timestamp": moment}))
    # Names that are not strings, values no double holds, both engines alike:
    for value in (None, 7, True, False):
        data = {"error_type": value, "error_message": value}
        entries.append(foreign_entry(type=MetricType.ERROR_OCCURRED, timestamp=moment, data=data))
    entries.append(foreign_entry(type=MetricType.CHECKPOINT_CREATED, timestamp=moment,
                                 data={"files_changed": 10**400}))  # fmt: skip
    entries.append(foreign_entry(type=MetricType.TOOL_USE, timestamp=moment,
                                 data={"tool_name": "grep", "duration_ms": 10**400}))  # fmt: skip
    return entries


async def ship(url: str, entries: Sequence[MetricEntry], batch: int = 97) -> PostgreSQL:
    engine = await opened(url)
    shipped = [row_of(entry) for entry in entries]
    for start in range(0, len(shipped), batch):
        await engine.insert(Batch(shipped[start : start + batch], f"t{start}"))
    return engine


def written(directory: Path, entries: Iterable[MetricEntry]) -> Path:
    """``entries`` in one data file, in order (values only another writer writes, as
    it would)."""
    path = write_data_file(directory / "metrics", [], created=T0)
    path.write_bytes(b"".join(line_of(entry) for entry in entries))
    return directory


class TestReportParity:
    @pytest.mark.parametrize("seed", [1, 2])
    async def test_same_summary_as_the_python_engine(
        self, tmp_path: Path, pg_database: PgDatabase, seed: int
    ) -> None:
        entries = await every_kind(seed)
        python = summarize(written(tmp_path, entries))
        # The data covers what it should, or the comparison proves little.
        assert python.entries == len(entries)
        for section in (python.tools, python.agents, python.commands, python.hooks):
            assert any(run.failures for run in section.values())
        assert python.errors["?"].count == 1
        assert python.checkpoints.files_changed_max == 17
        assert python.sessions.duration_s_mean is not None
        engine = await ship(pg_database.url, entries)
        try:
            same(python, await summarize_engine(engine))
        finally:
            await engine.aclose()

    async def test_same_summary_with_filters(self, tmp_path: Path, pg_database: PgDatabase) -> None:
        entries = await every_kind(3)
        written(tmp_path, entries)
        engine = await ship(pg_database.url, entries)
        everything = summarize(tmp_path)
        since = T0 + (entries[-1].timestamp - T0) / 3
        until = T0 + (entries[-1].timestamp - T0) * 2 / 3
        try:
            filters: dict[str, Any]
            for filters in (
                {"since": since, "until": until},
                {"since": since},
                {"until": until},
                {"types": ["tool_use", "error_occurred"]},
                {"session_id": "séance-3"},
                {"user_id": "ü-user"},
            ):
                python = summarize(tmp_path, **filters)
                assert 0 < python.entries < everything.entries, filters
                same(python, await summarize_engine(engine, **filters))
            assert (await summarize_engine(engine, source="elsewhere")).entries == 0
            same(everything, await summarize_engine(engine, source=SOURCE))
        finally:
            await engine.aclose()

    async def test_ties_pick_the_entry_shipped_first_or_last(
        self, tmp_path: Path, pg_database: PgDatabase
    ) -> None:
        """Errors in one microsecond: the example is the first one's message; session
        ends in one microsecond: the reported duration is the last one's."""
        entries = [
            MetricEntry(type=MetricType.ERROR_OCCURRED, timestamp=T0, session_id="s",
                        data={"error_type": "E", "error_message": message})
            for message in ("first", "second", "third")
        ] + [
            MetricEntry(type=MetricType.SESSION_START, timestamp=T0, session_id="s"),
        ] + [
            MetricEntry(type=MetricType.SESSION_END, timestamp=T0 + timedelta(seconds=9),
                        session_id="s", data={"duration_seconds": seconds})
            for seconds in (1.0, 2.0, 3.0)
        ]  # fmt: skip
        python = summarize(written(tmp_path, entries))
        assert python.errors["E"].example == "first"
        engine = await ship(pg_database.url, entries, batch=2)
        try:
            sql = await summarize_engine(engine)
        finally:
            await engine.aclose()
        assert sql.errors["E"].example == "first"
        same(python, sql)

    async def test_numbers_at_the_edges_of_a_double(
        self, tmp_path: Path, pg_database: PgDatabase
    ) -> None:
        """Values no double holds are skipped, tiny ones read as 0: no query fails."""
        literals = ["1e-400", "5e-324", "1.7976931348623157e308", "1.8e308", "-0.0", "10" * 200]
        lines = [
            f'{{"id":"n{i}","timestamp":"2026-11-01T12:00:00Z","type":"tool_use",'
            f'"data":{{"tool_name":"t","duration_ms":{literal}}},"metadata":{{}}}}\n'
            for i, literal in enumerate(literals)
        ]
        (tmp_path / "metrics").mkdir()
        path = write_data_file(tmp_path / "metrics", [])
        path.write_text("".join(lines))
        python = summarize(tmp_path)
        assert python.bad_lines == 0
        shipped = [
            Row(id=f"n{i}", timestamp=T0, type="tool_use", session_id=None, user_id=None,
                data=f'{{"tool_name":"t","duration_ms":{literal}}}', metadata="{}", source=SOURCE)
            for i, literal in enumerate(literals)
        ]  # fmt: skip
        engine = await opened(pg_database.url)
        try:
            await engine.insert(Batch(shipped, "t"))
            sql = await summarize_engine(engine)
        finally:
            await engine.aclose()
        assert python.tools["t"].duration_ms_max == 1.7976931348623157e308
        same(python, sql)

    async def test_names_that_are_arrays_or_objects_read_as_jsonb_spells_them(
        self, tmp_path: Path, pg_database: PgDatabase
    ) -> None:
        """The one known difference: jsonb's text of an array or object has spaces
        (and sorted keys), where the Python engine writes compact JSON."""
        entries = [
            foreign_entry(type=MetricType.TOKEN_USAGE, timestamp=T0,
                          data={"model": [1, "a"], "input_tokens": 1, "output_tokens": 2}),
        ]  # fmt: skip
        python = summarize(written(tmp_path, entries))
        engine = await ship(pg_database.url, entries)
        try:
            sql = await summarize_engine(engine)
        finally:
            await engine.aclose()
        assert set(python.tokens_by_model) == {'[1,"a"]'}
        assert set(sql.tokens_by_model) == {'[1, "a"]'}


# Names and values that both engines read alike (no NUL, which jsonb refuses; names
# that are scalars: see the test above for arrays and objects).
_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
_name = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.sampled_from(["a", "b", "é"])
_number = (
    st.none()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10**400, 2**63, -(2**63), 2.0**63, 1.7976931348623157e308, 5e-324])
    | st.sampled_from([True, "7", [1], {"a": 1}])
)
_KEYS = {
    MetricType.TOOL_USE: "tool_name",
    MetricType.PERFORMANCE: "operation",
    MetricType.AGENT_EXECUTION: "agent_name",
    MetricType.COMMAND_EXECUTED: "command",
    MetricType.HOOK_TRIGGERED: "hook_name",
    MetricType.ERROR_OCCURRED: "error_type",
    MetricType.TOKEN_USAGE: "model",
}


@st.composite
def _entries(draw: st.DrawFn) -> list[MetricEntry]:
    made = []
    moment = draw(st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)))
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(list(MetricType)))
        data: dict[str, Any] = {}
        if kind in _KEYS:
            data[_KEYS[kind]] = draw(_name)
        for key in ("duration_ms", "duration_seconds", "exit_code", "files_changed",
                    "input_tokens", "output_tokens"):  # fmt: skip
            if draw(st.booleans()):
                data[key] = draw(_number)
        if draw(st.booleans()):
            data["success"] = draw(st.none() | st.booleans() | st.integers(0, 1))
        if kind is MetricType.ERROR_OCCURRED:
            data["error_message"] = draw(_text)
        moment += timedelta(microseconds=draw(st.sampled_from([0, 1, 3_600_000_000])))
        made.append(
            foreign_entry(
                type=kind,
                timestamp=moment,
                session_id=draw(st.none() | st.sampled_from(["s1", "s2"]) | _text),
                data=data,
            )
        )
    return made


@settings(max_examples=20, deadline=None)
@given(entries=_entries())
async def test_property_same_summary_as_the_python_engine(
    tmp_path_factory: pytest.TempPathFactory, pg_database: PgDatabase, entries: list[MetricEntry]
) -> None:
    directory = written(tmp_path_factory.mktemp("parity"), entries)
    python = summarize(directory)
    table = f"p{secrets.token_hex(6)}"
    engine = await ship(pg_database.url.replace("table=entries", f"table={table}"), entries)
    try:
        same(python, await summarize_engine(engine))
    finally:
        await engine.aclose()
