"""PostgreSQL as a central engine, through ``asyncpg``: the exact reference for small
fleets.

A batch is ``COPY``-ed (binary) into a temporary staging table, then moved into the
table by ``INSERT … SELECT … ON CONFLICT (id) DO NOTHING``, both in one transaction:
a batch is in the table whole or not at all, and a batch sent again (after a lost
acknowledgement, a crash, a restart) adds nothing.

Rows keep the order they were sent in (the ``seq`` identity column), so "the earliest
error message" of two errors with the same timestamp is the one shipped first, as the
Python engine keeps the first one read.

Install with ``pip install 'asyncio-jsonl-analytics[postgresql]'``. Needs PostgreSQL
14 or newer (``extract`` giving exact numerics; ``GENERATED … AS IDENTITY``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .._exceptions import (
    ShipError,
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
)
from .._read.figures import COUNT_LIMIT, Aggregate
from .._read.sql import Dialect
from .engine import Batch
from .target import Target

__all__ = ["POSTGRESQL", "PostgreSQL", "PostgreSQLDialect"]

logger = logging.getLogger("analytics")

CONNECT_TIMEOUT = 10.0
"""Seconds to connect and log in (``?connect_timeout=`` in the URL overrides)."""
COMMAND_TIMEOUT = 120.0
"""Seconds one statement may take (``?command_timeout=`` overrides)."""

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_STAGING = "analytics_staging"
_COLUMNS = ("id", "timestamp", "type", "session_id", "user_id", "data", "metadata", "source")

# Where a JSON number stops being a double: a magnitude from the midpoint between the
# largest double and 2**1024 up rounds to infinity (the Python engine skips it; a cast
# in PostgreSQL fails), and one up to half the smallest subnormal rounds to zero (the
# Python engine reads 0.0; a cast in PostgreSQL fails). Both are exact numerics.
_HUGE = str(2**1024 - 2**970)
_TINY = "2.4703282292062328e-324"
"""Just above 2**-1075 (an exact bound would be 750 digits long): a magnitude between
the two reads as 0 here and as the smallest subnormal in Python; nothing else differs."""


class PostgreSQLDialect(Dialect):
    """PostgreSQL's spelling of the report's figures, over the shipped table (``data``
    is ``jsonb``; ``timestamp`` a ``timestamptz``; ``seq`` the order rows came in).

    Names (``tool_name``…) that are strings, null, booleans or integers read as in the
    Python engine; an object, an array or a number written with an exponent reads as
    ``jsonb`` spells it (keys sorted, spaces after ``:`` and ``,``; ``1e20`` in full).
    """

    def column(self, name: str) -> str:
        """``timestamp`` as epoch microseconds, ``hour`` as epoch hours (exact
        integers, ``bigint``)."""
        return {
            "timestamp": '(extract(epoch FROM "timestamp") * 1000000)::bigint',
            "hour": 'floor(extract(epoch FROM "timestamp") / 3600)::bigint',
            "type": "type",
            "session_id": "session_id",
        }[name]

    def text(self, key: str, default: str) -> str:
        return f"coalesce(data->>{self.string(key)}, {self.string(default)})"

    def number(self, key: str) -> str:
        """``float8``; NULL if not a number, or one no double holds."""
        path = f"(data->{self.string(key)})"
        return (
            f"CASE WHEN jsonb_typeof({path}) = 'number' THEN"
            f" CASE WHEN abs({path}::numeric) >= {_HUGE} THEN NULL"
            f" WHEN abs({path}::numeric) <= {_TINY} THEN 0::float8"
            f" ELSE {path}::float8 END END"
        )

    def count(self, key: str) -> str:
        """``bigint``, truncated; NULL if not a number or not below ``COUNT_LIMIT``."""
        number = self.number(key)
        return (
            f"CASE WHEN abs({number}) < {float(COUNT_LIMIT)!r}::float8"
            f" THEN trunc({number})::bigint END"
        )

    def is_false(self, key: str) -> str:
        return f"coalesce((data->{self.string(key)}) = 'false'::jsonb, false)"

    def not_boolean(self, key: str) -> str:
        return f"coalesce(jsonb_typeof(data->{self.string(key)}), '') <> 'boolean'"

    order_time = '"timestamp", seq'

    def aggregate(self, aggregate: Aggregate) -> list[str]:
        """As the base, with ``earliest``/``latest`` spelled without ``arg_min``: the
        first value in time order (ties: the row shipped first / last)."""
        if aggregate.op not in ("earliest", "latest"):
            return super().aggregate(aggregate)
        assert aggregate.value is not None
        v = aggregate.value.sql(self)
        order = '"timestamp", seq' if aggregate.op == "earliest" else '"timestamp" DESC, seq DESC'
        return [f"(array_agg({v} ORDER BY {order}) FILTER (WHERE {v} IS NOT NULL))[1]"]


POSTGRESQL = PostgreSQLDialect()


class PostgreSQL:
    """A shipper's PostgreSQL client (one connection; one batch in flight).

    Raises (from every coroutine but :meth:`aclose`): ``ShipRetryableError`` when the
    server cannot be reached, times out or restarts (the connection is dropped, and
    made again at the next call); ``ShipFatalError`` when the login is refused or the
    role or database does not exist; ``ShipRejectedError`` when the server refuses the
    batch's content (nothing of the batch is then in the table).
    """

    def __init__(self, target: Target) -> None:
        """Store ``target``; no I/O.

        Raises:
            TargetError: an option in the URL this engine does not know or cannot use.
        """
        self.target = target
        self._connect_timeout = CONNECT_TIMEOUT
        self._command_timeout = COMMAND_TIMEOUT
        self._ssl: str | None = None
        for key, value in target.options.items():
            if key in ("connect_timeout", "command_timeout"):
                try:
                    seconds = float(value)
                except ValueError:
                    seconds = 0.0
                if not 0 < seconds < 86400:
                    raise TargetError(f"bad {key} {value!r} in {target.display()}: seconds > 0")
                if key == "connect_timeout":
                    self._connect_timeout = seconds
                else:
                    self._command_timeout = seconds
            elif key == "sslmode":
                if value not in _SSLMODES:
                    raise TargetError(
                        f"bad sslmode {value!r} in {target.display()}:"
                        f" one of {', '.join(_SSLMODES)}"
                    )
                self._ssl = value
            else:
                raise TargetError(
                    f"unknown option {key!r} in {target.display()}: PostgreSQL takes"
                    " table, sslmode, connect_timeout and command_timeout"
                )
        self._table = _identifier(target.table)
        self._connection: Any = None
        self._table_ready = False
        self._insert_sql = (
            f"INSERT INTO {self._table} ({', '.join(map(_identifier, _COLUMNS))})"
            f' SELECT id, "timestamp", type, session_id, user_id, data::jsonb,'
            f" metadata::jsonb, source FROM pg_temp.{_STAGING} ORDER BY ord"
            f" ON CONFLICT (id) DO NOTHING"
        )

    def __repr__(self) -> str:
        return f"PostgreSQL({self.target.display()!r})"

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL

    def ddl(self) -> str:
        """The statements :meth:`open` runs to create the table (idempotent: ``IF NOT
        EXISTS``). Each connection also makes itself a temporary staging table, which
        lives and dies with the session and needs no privilege beyond ``TEMP``."""
        table = self._table
        name = self.target.table
        return (
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            "    id text PRIMARY KEY,\n"
            '    "timestamp" timestamptz NOT NULL,\n'
            "    type text NOT NULL,\n"
            "    session_id text,\n"
            "    user_id text,\n"
            "    data jsonb NOT NULL,\n"
            "    metadata jsonb NOT NULL,\n"
            "    source text NOT NULL,\n"
            "    seq bigint GENERATED ALWAYS AS IDENTITY\n"
            ");\n"
            f"CREATE INDEX IF NOT EXISTS {_index(name, 'timestamp')}"
            f' ON {table} ("timestamp");\n'
            f"CREATE INDEX IF NOT EXISTS {_index(name, 'type_timestamp')}"
            f' ON {table} (type, "timestamp");\n'
            f"CREATE INDEX IF NOT EXISTS {_index(name, 'source_timestamp')}"
            f' ON {table} (source, "timestamp");\n'
        )

    def entries(self, where: Sequence[str]) -> str:
        if not where:
            return f"{self._table} AS e"
        conditions = " AND ".join(f"({condition})" for condition in where)
        return f"(SELECT * FROM {self._table} WHERE {conditions}) AS e"

    async def open(self) -> None:
        """Connect, and create the table if it is absent (:meth:`ddl`)."""
        await self._connect()

    async def insert(self, batch: Batch) -> None:
        """``COPY`` the rows into the staging table and move the new ones into the
        table, in one transaction."""
        if not batch.rows:
            return
        records = [(number, *row) for number, row in enumerate(batch.rows)]
        connection = await self._connect()
        try:
            async with connection.transaction():
                await connection.copy_records_to_table(
                    _STAGING, records=records, columns=("ord", *_COLUMNS)
                )
                await connection.execute(self._insert_sql)
        except Exception as exc:
            raise self._failed(exc, f"inserting a batch of {len(records)}") from exc
        except BaseException:
            self._drop()  # cancelled mid-statement: the connection's state is unknown
            raise

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of one ``SELECT``; ``numeric`` values (sums of ``bigint``) as ``int``
        when whole, else ``float``."""
        connection = await self._connect()
        try:
            records = await connection.fetch(sql)
        except Exception as exc:
            raise self._failed(exc, "querying") from exc
        except BaseException:
            self._drop()  # cancelled mid-statement: the connection's state is unknown
            raise
        return [tuple(_value(value) for value in record) for record in records]

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.close(timeout=5)
        except BaseException:
            connection.terminate()

    async def _connect(self) -> Any:
        """The open connection, made (and the table and staging table created) if
        there is none."""
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        self._connection = None
        target = self.target
        try:
            connection = await asyncpg.connect(
                host=target.host,
                port=target.port,
                user=target.user,
                password=target.password,
                database=target.database,
                ssl=self._ssl,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={"application_name": "analytics-shipper"},
            )
        except Exception as exc:
            raise self._failed(exc, "connecting") from exc
        except BaseException:
            self._drop()  # cancelled mid-statement: the connection's state is unknown
            raise
        self._connection = connection
        version = connection.get_server_version()
        if version.major < 14 and not self._table_ready:
            logger.warning(
                "%s runs PostgreSQL %s.%s: shipping works, but the report needs 14 or newer"
                " for exact timestamps",
                target.display(),
                version.major,
                version.minor,
            )
        try:
            if not self._table_ready:
                await self._create_table(connection)
            await connection.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (ord integer,"
                ' id text, "timestamp" timestamptz, type text, session_id text,'
                " user_id text, data text, metadata text, source text)"
                " ON COMMIT DELETE ROWS"
            )
        except Exception as exc:
            raise self._failed(exc, "creating the table") from exc
        except BaseException:
            self._drop()  # cancelled mid-statement: the connection's state is unknown
            raise
        return connection

    async def _create_table(self, connection: Any) -> None:
        # Shippers starting together would race: IF NOT EXISTS does not see a table
        # another transaction has not committed yet. An advisory lock on the table's
        # name makes them take turns; the retry is for creators that do not take it.
        key = int.from_bytes(
            hashlib.sha256(f"analytics:{self.target.table}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        for attempt in range(3):
            try:
                async with connection.transaction():
                    await connection.execute(f"SELECT pg_advisory_xact_lock({key})")
                    await connection.execute(self.ddl())
                break
            except (
                asyncpg.UniqueViolationError,
                asyncpg.DuplicateTableError,
                asyncpg.DuplicateObjectError,
            ):
                if attempt == 2:
                    raise
        self._table_ready = True
        logger.debug("table %s ready on %s", self.target.table, self.target.display())

    def _failed(self, exc: Exception, doing: str) -> ShipError:
        """The error to raise for ``exc`` (which happened while ``doing``), and the
        connection dropped unless it is still good for the next batch."""
        kind, message = _classify(exc)
        if kind is not ShipRejectedError:
            self._drop()
        if isinstance(exc, asyncpg.UndefinedTableError):
            self._table_ready = False  # dropped under us: create it again at the next try
        text = f"{self.target.display()}: {doing}: {message}"
        if self.target.password and len(self.target.password) >= 4:
            text = text.replace(self.target.password, "***")
        return kind(_one_line(text))

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()


def _classify(exc: Exception) -> tuple[type[ShipError], str]:
    """Which error ``exc`` is for the shipper, and what to say."""
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        message = exc.message if isinstance(exc.message, str) else str(exc)
        detail = getattr(exc, "detail", None)
        if detail:
            message = f"{message} ({detail})"
        message = f"{message} [SQLSTATE {state}]" if state else message
        if state.startswith("28") or state in ("3D000", "3F000", "42501"):
            return ShipFatalError, message
        if state.startswith(("22", "23", "54")):
            return ShipRejectedError, message
        if state.startswith("42") and state != "42P01":
            # The table is not what we created (a column missing or of another type).
            return ShipFatalError, message
        return ShipRetryableError, message  # 08 connection, 57P0x shutdown, 53 resources…
    if isinstance(exc, UnicodeEncodeError):
        return ShipRejectedError, f"text PostgreSQL cannot store: {exc}"
    if isinstance(exc, asyncpg.ClientConfigurationError | asyncpg.UnsupportedServerFeatureError):
        return ShipFatalError, str(exc)
    if isinstance(exc, TimeoutError):
        return ShipRetryableError, f"timed out ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return ShipRetryableError, str(exc) or type(exc).__name__
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        return ShipRetryableError, str(exc) or type(exc).__name__
    return ShipRetryableError, f"{type(exc).__name__}: {exc}"


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _index(table: str, what: str) -> str:
    """An index name that stays unique within PostgreSQL's 63 bytes."""
    name = f"{table}_{what}_idx"
    if len(name) > 63:
        digest = hashlib.sha1(table.encode()).hexdigest()[:8]
        name = f"{table[: 63 - len(what) - 14]}_{digest}_{what}_idx"
    return _identifier(name)


def _value(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        whole = int(value)
        return whole if whole == value else float(value)
    return value
