"""The ClickHouse engine: its SQL, its wire and its errors, against the real server
(``clickhouse-server`` from Debian, 18.16) and, for what 18.16 lacks (dedup tokens,
the JSON functions of the report), against the embedded current ClickHouse (chdb)."""

from __future__ import annotations

import importlib
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import to_json

from analytics import Summary, iter_entries, summarize
from analytics._exceptions import (
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
)
from analytics._ship.clickhouse import (
    CLICKHOUSE,
    ClickHouse,
    cluster_ddl,
    create_table_sql,
    decode_answer,
    encode_rows,
    entries_sql,
    error_for,
    insert_settings,
    insert_sql,
    select_sql,
)
from analytics._ship.engine import Batch, Engine, Row, open_engine
from analytics._ship.report import summarize_engine
from analytics._ship.target import Target, parse_target

from ..helpers import PARITY_T0, generate, same, server_unavailable
from .ch_server import PASSWORD, PASSWORD_USER, ClickHouseDatabase, ClickHouseServer

SOURCE = "host-a/d0"


def make_rows(count: int, *, start: int = 0, source: str = SOURCE) -> list[Row]:
    """``count`` tool_use rows with distinct ids and microsecond timestamps."""
    return [
        Row(
            id=f"id-{n:07d}",
            timestamp=PARITY_T0 + timedelta(seconds=n, microseconds=n % 999_999 + 1),
            type="tool_use",
            session_id=f"s{n % 7}" if n % 5 else None,
            user_id="u1" if n % 3 else None,
            data=json.dumps({"tool_name": "grep", "duration_ms": n / 8, "success": n % 4 != 0}),
            metadata="{}",
            source=source,
        )
        for n in range(start, start + count)
    ]


def rows_of(directory: Path, source: str = SOURCE) -> list[Row]:
    """Every entry of a writer directory, as the shipper hands them over."""
    return [
        Row(
            id=entry.id,
            timestamp=entry.timestamp,
            type=str(entry.type.value),
            session_id=entry.session_id,
            user_id=entry.user_id,
            data=to_json(entry.data).decode(),
            metadata=to_json(entry.metadata).decode(),
            source=source,
        )
        for entry in iter_entries(directory)
    ]


def epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- The SQL, without a server ----------------------------------------------------------


class TestStatements:
    def test_old_ddl_keeps_to_what_18_16_accepts(self) -> None:
        """No LowCardinality, no table settings; the key ends with id."""
        ddl = create_table_sql("db", "t", modern=False)
        assert "LowCardinality" not in ddl
        assert "SETTINGS" not in ddl
        assert "ORDER BY (type, timestamp, id)" in ddl
        assert ddl.startswith("CREATE TABLE IF NOT EXISTS `db`.`t`")

    def test_modern_ddl_remembers_insert_tokens(self) -> None:
        """Non-replicated tables drop a repeated token only with a dedup window."""
        ddl = create_table_sql("db", "t", modern=True)
        assert "non_replicated_deduplication_window" in ddl
        assert "type LowCardinality(String)" in ddl

    def test_insert_settings_carry_the_token_only_where_the_server_takes_it(self) -> None:
        assert insert_settings("tok", tokens=True) == {"insert_deduplication_token": "tok"}
        assert insert_settings("tok", tokens=False) == {}

    def test_inline_settings_are_quoted(self) -> None:
        sql = insert_sql("db", "t", {"insert_deduplication_token": "a'b\\c"})
        assert sql == (
            "INSERT INTO `db`.`t` SETTINGS insert_deduplication_token = 'a\\'b\\\\c'"
            " FORMAT JSONEachRow"
        )

    def test_entries_reads_with_final(self) -> None:
        sql = entries_sql("db", "t", ["type = 'x'", "source = 'y'"])
        assert "FROM `db`.`t` FINAL WHERE (type = 'x') AND (source = 'y')" in sql
        assert sql.endswith(") AS e")


class TestEncoding:
    def test_rows_become_one_json_object_a_line_with_exact_microseconds(self) -> None:
        rows = make_rows(3)
        lines = encode_rows(rows).splitlines()
        assert len(lines) == 3
        first = json.loads(lines[0])
        assert first["timestamp_us"] == epoch_us(rows[0].timestamp)
        assert first["timestamp"] == epoch_us(rows[0].timestamp) // 1_000_000
        assert first["session_id"] is None
        assert first["data"] == rows[0].data

    def test_times_outside_datetime_keep_their_microseconds(self) -> None:
        """DateTime holds 1970..2106; the exact time is in timestamp_us whatever it is."""
        early, late = make_rows(2)
        early = Row(**{**_fields(early), "timestamp": datetime(1960, 1, 1, tzinfo=UTC)})
        late = Row(**{**_fields(late), "timestamp": datetime(2200, 1, 1, tzinfo=UTC)})
        a, b = (json.loads(line) for line in encode_rows([early, late]).splitlines())
        assert (a["timestamp"], b["timestamp"]) == (0, 2**32 - 1)
        assert a["timestamp_us"] == epoch_us(early.timestamp) < 0

    @given(
        texts=st.lists(st.text(), min_size=5, max_size=5),
        nulls=st.tuples(st.booleans(), st.booleans()),
        micros=st.integers(-(10**15), 10**17),
    )
    def test_every_string_survives_as_json(
        self, texts: list[str], nulls: tuple[bool, bool], micros: int
    ) -> None:
        """Quotes, backslashes, control and non-ASCII characters, lone surrogates."""
        row = Row(
            id=texts[0],
            timestamp=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros),
            type=texts[1],
            session_id=None if nulls[0] else texts[2],
            user_id=None if nulls[1] else texts[3],
            data=texts[4],
            metadata="{}",
            source="s",
        )
        (line,) = encode_rows([row, row]).splitlines()[:1]
        decoded = json.loads(line)
        assert decoded == {
            "id": row.id,
            "timestamp": min(max(micros // 1_000_000, 0), 2**32 - 1),
            "timestamp_us": micros,
            "type": row.type,
            "session_id": row.session_id,
            "user_id": row.user_id,
            "data": row.data,
            "metadata": "{}",
            "source": "s",
        }

    def test_a_lone_surrogate_is_escaped_not_fatal(self) -> None:
        (row,) = make_rows(1)
        row = Row(**{**_fields(row), "user_id": "bad\ud800"})
        assert b'"bad\\ud800"' in encode_rows([row])


def _fields(row: Row) -> dict[str, Any]:
    return row._asdict()


class TestErrors:
    TARGET = parse_target("clickhouse://shipper:hunter2@h:8123/db?table=t")

    @pytest.mark.parametrize(
        ("status", "body", "kind"),
        [
            (500, "Code: 252, e.displayText() = DB::Exception: Too many parts (300)", "retry"),
            (503, "Service Unavailable", "retry"),
            (500, "Code: 210, e.displayText() = DB::NetException: Connection reset", "retry"),
            (401, "Code: 193, e.displayText() = DB::Exception: Wrong password for user", "fatal"),
            (516, "Code: 516. DB::Exception: shipper: Authentication failed", "fatal"),
            (404, "Code: 81. DB::Exception: Database db doesn't exist.", "fatal"),
            (500, "Code: 27, e.displayText() = DB::Exception: Cannot parse\n, e.what()", "reject"),
            (400, "Code: 117. DB::Exception: Unknown field found", "reject"),
            (400, "Code: 62. DB::Exception: Syntax error", "fatal"),
            (500, "Code: 115, e.displayText() = DB::Exception: Unknown setting x", "fatal"),
        ],
    )  # fmt: skip
    def test_each_answer_maps_to_what_the_shipper_must_do(
        self, status: int, body: str, kind: str
    ) -> None:
        error = error_for(status, body, self.TARGET)
        expected = {"retry": ShipRetryableError, "fatal": ShipFatalError}.get(
            kind, ShipRejectedError
        )
        assert type(error) is expected
        message = str(error)
        assert "\n" not in message
        assert "hunter2" not in message
        assert "clickhouse://shipper@h:8123/db?table=t" in message

    def test_the_exception_code_header_wins_over_the_text(self) -> None:
        error = error_for(500, "something else entirely", self.TARGET, code=252)
        assert isinstance(error, ShipRetryableError)
        assert isinstance(error_for(500, "Code: 1", self.TARGET, code=27), ShipRejectedError)


class TestClient:
    def test_open_engine_gives_this_engine(self) -> None:
        engine: Engine = open_engine(parse_target("clickhouse://h/db?table=t"))
        assert isinstance(engine, ClickHouse)
        assert engine.ddl() == create_table_sql("db", "t", modern=True)  # not opened yet

    @pytest.mark.parametrize("option", ["timeout=0", "timeout=soon", "secure=maybe"])
    def test_a_bad_option_is_a_target_error(self, option: str) -> None:
        with pytest.raises(TargetError, match=option.split("=")[0]):
            ClickHouse(parse_target(f"clickhouse://u:pw@h/db?{option}"))

    async def test_unreachable_is_retryable(self) -> None:
        engine = ClickHouse(parse_target(f"clickhouse://127.0.0.1:{_closed_port()}/db"))
        with pytest.raises(ShipRetryableError, match="cannot be reached"):
            await engine.open()
        await engine.aclose()
        await engine.aclose()  # again: nothing to close, no error


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestAnswers:
    def test_wide_integers_come_back_as_ints_and_nulls_as_none(self) -> None:
        text = json.dumps(
            {
                "meta": [
                    {"name": "a", "type": "Int128"},
                    {"name": "b", "type": "Nullable(Float64)"},
                    {"name": "c", "type": "LowCardinality(String)"},
                    {"name": "d", "type": "UInt64"},
                ],
                "data": [["170141183460469231731687303715884105727", None, "x", "7"]],
            }
        )
        assert decode_answer(text) == [(2**127 - 1, None, "x", 7)]


# -- The embedded current ClickHouse (chdb): what 18.16 lacks ---------------------------


@pytest.fixture(scope="module")
def chdb_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        session = importlib.import_module("chdb.session")
    except ModuleNotFoundError:
        server_unavailable(
            "chdb (the embedded current ClickHouse, PyPI chdb-core) is not installed"
        )
    connection = session.Session(str(tmp_path_factory.mktemp("chdb") / "db"))
    try:
        yield connection
    finally:
        connection.close()


class Chdb:
    """A database in chdb, used as an ``Engine`` for the report (queries only)."""

    def __init__(self, connection: Any, name: str) -> None:
        self.connection = connection
        self.target: Target = parse_target(f"clickhouse://localhost/{name}?table=entries")
        self.run(f"CREATE DATABASE {name}")
        self.run(self.ddl())

    def run(self, sql: str) -> str:
        answer = self.connection.query(sql, "JSONCompact")
        return "" if answer is None else str(answer.bytes().decode())

    def scalar(self, sql: str) -> int:
        return int(decode_answer(self.run(sql))[0][0])

    def put(self, batch: Batch) -> None:
        """As the HTTP engine does it, with the settings inline (no URL here)."""
        settings = insert_settings(batch.token, tokens=True)
        statement = insert_sql(self.target.database, self.target.table, settings)
        self.run(statement + "\n" + encode_rows(batch.rows).decode())

    def ddl(self) -> str:
        return create_table_sql(self.target.database, self.target.table, modern=True)

    @property
    def table(self) -> str:
        return f"{self.target.database}.{self.target.table}"

    # The report's side of ``Engine``:
    dialect = CLICKHOUSE

    def entries(self, where: Sequence[str]) -> str:
        return entries_sql(self.target.database, self.target.table, where)

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        return decode_answer(self.run(select_sql(sql)))

    async def open(self) -> None:
        pass

    async def insert(self, batch: Batch) -> None:
        self.put(batch)

    async def aclose(self) -> None:
        pass


_databases = iter(range(10**6))


@pytest.fixture
def chdb_db(chdb_session: Any) -> Chdb:
    return Chdb(chdb_session, f"c{next(_databases)}")


class TestOnCurrentClickHouse:
    def test_a_repeated_token_is_dropped_by_the_server(self, chdb_db: Chdb) -> None:
        """Same body, same token, twice: the rows are there once, even before FINAL."""
        batch = Batch(make_rows(500), "src/stem:0-500")
        chdb_db.put(batch)
        chdb_db.put(batch)
        assert chdb_db.scalar(f"SELECT count() FROM {chdb_db.table}") == 500

    def test_final_drops_the_same_ids_under_other_tokens(self, chdb_db: Chdb) -> None:
        rows = make_rows(300)
        chdb_db.put(Batch(rows, "a"))
        chdb_db.put(Batch(rows[100:], "b"))  # a re-cut batch: another token
        assert chdb_db.scalar(f"SELECT count() FROM {chdb_db.table}") == 500
        assert chdb_db.scalar(f"SELECT count() FROM {chdb_db.table} FINAL") == 300
        assert chdb_db.scalar(f"SELECT uniqExact(id) FROM {chdb_db.table}") == 300

    def test_the_cluster_ddl_parses(self, chdb_db: Chdb) -> None:
        """No cluster here: the current parser accepts both statements, though."""
        statements = cluster_ddl("db", "entries", "fleet").split(";\n\n")
        assert len(statements) == 2
        for statement in statements:
            formatted = decode_answer(
                chdb_db.run(f"SELECT formatQuery({CLICKHOUSE.string(statement.rstrip(';'))})")
            )
            assert "ON CLUSTER fleet" in formatted[0][0]
        assert "ReplicatedReplacingMergeTree" in statements[0]
        assert "cityHash64(id)" in statements[1]

    @pytest.mark.parametrize("seed", [1, 2])
    async def test_the_report_equals_the_python_engine(
        self, chdb_db: Chdb, tmp_path: Path, seed: int
    ) -> None:
        generate(tmp_path, seed)
        rows = rows_of(tmp_path)
        for start in range(0, len(rows), 1000):
            chdb_db.put(Batch(rows[start : start + 1000], f"b{start}"))
        chdb_db.put(Batch(rows[:700], "again"))  # duplicates, dropped by FINAL
        python = summarize(tmp_path)
        assert python.bad_lines == 9  # never shipped: the engine's report says 0
        assert python.tools
        assert python.errors
        assert python.checkpoints.files_changed_max is not None
        sql = await summarize_engine(chdb_db)
        assert sql.bad_lines == 0
        same(python.model_copy(update={"bad_lines": 0}), sql)

    async def test_the_report_with_filters_equals_the_python_engine(
        self, chdb_db: Chdb, tmp_path: Path
    ) -> None:
        generate(tmp_path, 4)
        rows = rows_of(tmp_path)
        chdb_db.put(Batch(rows, "all"))
        since, until = PARITY_T0 + timedelta(minutes=10), PARITY_T0 + timedelta(minutes=25)
        everything = summarize(tmp_path).entries
        for filters in (
            {"since": since, "until": until},
            {"types": ["tool_use", "error_occurred"]},
            {"session_id": "s3"},
        ):
            python = summarize(tmp_path, **filters)
            assert 0 < python.entries < everything, filters
            sql = await summarize_engine(chdb_db, **filters)
            same(python.model_copy(update={"bad_lines": 0}), sql)

    async def test_the_report_of_one_source_among_several(
        self, chdb_db: Chdb, tmp_path: Path
    ) -> None:
        generate(tmp_path / "a", 5, count=600)
        generate(tmp_path / "b", 6, count=600)
        chdb_db.put(Batch(rows_of(tmp_path / "a", "a/1"), "a"))
        chdb_db.put(Batch(rows_of(tmp_path / "b", "b/1"), "b"))
        python = summarize(tmp_path / "b")
        sql = await summarize_engine(chdb_db, source="b/1")
        same(python.model_copy(update={"bad_lines": 0}), sql)
        assert (await summarize_engine(chdb_db)).entries > python.entries

    async def test_an_empty_table_reports_nothing(self, chdb_db: Chdb) -> None:
        summary = await summarize_engine(chdb_db)
        assert summary == Summary()


# -- The real server (18.16 from Debian) -----------------------------------------------


@pytest.fixture
async def engine(clickhouse_database: ClickHouseDatabase) -> AsyncIterator[ClickHouse]:
    engine = ClickHouse(parse_target(clickhouse_database.url))
    try:
        yield engine
    finally:
        await engine.aclose()


def count_final(db: ClickHouseDatabase) -> tuple[int, int]:
    return (
        db.server.scalar(f"SELECT count() FROM {db.qualified} FINAL"),
        db.server.scalar(f"SELECT uniqExact(id) FROM {db.qualified} FINAL"),
    )


class TestOnTheServer:
    async def test_open_creates_the_table_if_absent(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase
    ) -> None:
        db = clickhouse_database
        exists = (
            f"SELECT count() FROM system.tables WHERE database = '{db.name}' AND name = 'entries'"
        )
        assert db.server.scalar(exists) == 0
        await engine.open()
        assert db.server.scalar(exists) == 1
        assert engine.version
        await engine.open()  # again: the table is there, nothing fails
        assert db.server.scalar(exists) == 1
        if engine.version.startswith("18."):
            assert engine.tokens is False
            assert "SETTINGS" not in engine.ddl()

    async def test_the_same_batch_twice_is_one_set_of_rows(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase
    ) -> None:
        await engine.open()
        batch = Batch(make_rows(2000), "s:0-2000")
        await engine.insert(batch)
        assert count_final(clickhouse_database) == (2000, 2000)
        await engine.insert(batch)
        assert count_final(clickhouse_database) == (2000, 2000)

    async def test_rows_come_back_exactly(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase
    ) -> None:
        """Microseconds, nulls, quotes, backslashes and non-ASCII text survive."""
        await engine.open()
        (base,) = make_rows(1)
        row = Row(
            **{
                **_fields(base),
                "timestamp": datetime(2026, 11, 1, 12, 0, 0, 123457, tzinfo=UTC),
                "data": json.dumps({"tool_name": 'gr\'ep\\ "x" é 😀', "n": [1, {"a": None}]}),
                "session_id": None,
                "user_id": "üser",
            }
        )
        await engine.insert(Batch([row], "one"))
        got = await engine.fetch(
            f"SELECT id, timestamp_us, toUnixTimestamp(timestamp), session_id, user_id, data,"
            f" source FROM {clickhouse_database.qualified} FINAL"
        )
        micros = epoch_us(row.timestamp)
        assert got == [(row.id, micros, micros // 1_000_000, None, "üser", row.data, row.source)]

    async def test_a_wrong_password_is_fatal_in_one_line(
        self, clickhouse_database: ClickHouseDatabase
    ) -> None:
        server = clickhouse_database.server
        wrong = ClickHouse(
            parse_target(
                server.url(clickhouse_database.name, auth=f"{PASSWORD_USER}:no-{PASSWORD}@")
            )
        )
        with pytest.raises(ShipFatalError) as caught:
            await wrong.open()
        await wrong.aclose()
        message = str(caught.value)
        assert "\n" not in message
        assert PASSWORD not in message
        assert wrong.target.display() in message
        right = ClickHouse(
            parse_target(server.url(clickhouse_database.name, auth=f"{PASSWORD_USER}:{PASSWORD}@"))
        )
        await right.open()  # the same user with its password: in
        await right.aclose()

    async def test_a_query_this_server_cannot_run_is_fatal(self, engine: ClickHouse) -> None:
        """18.16 answers every error with a 500: the code decides, not the status."""
        await engine.open()
        with pytest.raises(ShipFatalError, match="no_such_function"):
            await engine.fetch("SELECT no_such_function(1)")
        assert await engine.fetch("SELECT 1 + 1") == [(2,)]

    async def test_an_unknown_database_is_fatal(self, clickhouse_server: ClickHouseServer) -> None:
        engine = ClickHouse(parse_target(clickhouse_server.url("no_such_db")))
        with pytest.raises(ShipFatalError, match="no_such_db"):
            await engine.open()
        await engine.aclose()

    async def test_content_the_server_refuses_is_rejected(
        self, clickhouse_database: ClickHouseDatabase
    ) -> None:
        """The server's own answers to bad lines map to a rejection."""
        engine = ClickHouse(parse_target(clickhouse_database.url))
        await engine.open()
        await engine.aclose()
        query = insert_sql(clickhouse_database.name, "entries")
        async with httpx.AsyncClient() as client:
            for body in (b'{"id": "a", "timestamp_us": "zz"}\n', b'{"id": "a", "nope": 1}\n'):
                answer = await client.post(
                    clickhouse_database.server.http_url, params={"query": query}, content=body
                )
                assert answer.status_code != 200
                error = error_for(answer.status_code, answer.text, engine.target)
                assert isinstance(error, ShipRejectedError), answer.text

    async def test_a_stopped_server_is_retryable_and_the_engine_recovers(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase
    ) -> None:
        server = clickhouse_database.server
        await engine.open()
        await engine.insert(Batch(make_rows(10), "a"))
        await anyio.to_thread.run_sync(server.stop)
        with pytest.raises(ShipRetryableError):
            await engine.insert(Batch(make_rows(10, start=10), "b"))
        await anyio.to_thread.run_sync(server.start)
        await engine.insert(Batch(make_rows(10, start=10), "b"))
        assert count_final(clickhouse_database) == (20, 20)

    @pytest.mark.slow
    @pytest.mark.parametrize("seed", [1, 2])
    async def test_killed_mid_stream_the_table_converges(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase, seed: int
    ) -> None:
        """SIGKILL of the server while batches stream in; each failed batch is retried
        after a restart: after FINAL, exactly the rows sent, each once."""
        server = clickhouse_database.server
        rng = random.Random(seed)
        await engine.open()
        batches = [Batch(make_rows(500, start=n * 500), f"b{n}") for n in range(40)]
        # Kills at least two batches apart: a second kill on a server that is already
        # down would be a no-op, and the count of restarts would not say much.
        kills = sorted(rng.sample(range(3, 37, 3), 3))
        failures = restarts = 0
        killer: threading.Thread | None = None
        for number, batch in enumerate(batches):
            deferred = False
            if number in kills:
                if killer is not None:
                    # The last kill has not been felt yet (batches can take less than
                    # its delay): it lands now, this batch feels it, and this kill
                    # waits until this batch is in.
                    killer.join()
                    deferred = True
                else:  # the kill lands while this batch or the next is on the wire
                    killer = threading.Thread(target=_kill_soon, args=(server, rng.random() / 50))
                    killer.start()
            while True:
                try:
                    await engine.insert(batch)
                    break
                except ShipRetryableError:
                    failures += 1
                    if killer is not None:
                        killer.join()
                        killer = None
                    await anyio.to_thread.run_sync(server.start)
                    restarts += 1
            if deferred:
                killer = threading.Thread(target=_kill_soon, args=(server, rng.random() / 50))
                killer.start()
        if killer is not None:  # killed after the last batch was acknowledged
            killer.join()
            await anyio.to_thread.run_sync(server.start)
            restarts += 1
        assert restarts == len(kills)
        assert failures >= len(kills)
        assert count_final(clickhouse_database) == (20_000, 20_000)

    async def test_the_report_on_this_server(
        self, engine: ClickHouse, clickhouse_database: ClickHouseDatabase, tmp_path: Path
    ) -> None:
        """Equal to the Python engine where the server has the JSON functions; on 18.16
        a clear error that names what is missing, and that shipping works."""
        await engine.open()
        generate(tmp_path, 7, count=600)
        await engine.insert(Batch(rows_of(tmp_path), "all"))
        if engine.missing_functions:
            with pytest.raises(ShipFatalError) as caught:
                await summarize_engine(engine)
            message = str(caught.value)
            assert "JSONExtractString" in message
            assert engine.version is not None
            assert engine.version in message
            assert "shipping to it works" in message
        else:
            sql = await summarize_engine(engine)
            same(summarize(tmp_path).model_copy(update={"bad_lines": 0}), sql)


def _kill_soon(server: ClickHouseServer, delay: float) -> None:
    time.sleep(delay)
    server.kill()
