"""ClickHouse as a central engine, over its HTTP interface (``httpx``).

Rows go in as ``INSERT INTO db.t FORMAT JSONEachRow``; the table is a
``ReplacingMergeTree`` ordered by a key that ends with ``id``, so the same entry
shipped twice is one row once parts merge, and every query reads with ``FINAL``.
Where the server knows ``insert_deduplication_token`` (current versions; 18.16
answers "Unknown setting"), each batch carries its token, and a retried batch is
dropped by the server before it makes a part.

The SQL is made by plain functions (:func:`create_table_sql`, :func:`insert_sql`,
:func:`insert_settings`, :func:`encode_rows`), so that what this client sends can be
checked on an embedded ClickHouse (``chdb``) as well as on a server.

One schema for every version from 18.16 on: ``timestamp`` is a ``DateTime`` (whole
seconds, for partitions and for people) and ``timestamp_us`` the exact epoch
microseconds the report reads; ``data`` and ``metadata`` are JSON text.

The report's figures need ``JSONExtract*``/``JSONType`` (ClickHouse 19.x and later:
18.16 only has the ``visitParam*`` functions, which find a key at any depth and so
are not exact) and the ``-OrNull`` combinators; on a server without them,
:attr:`ClickHouse.dialect` raises a ``ShipFatalError`` that says so. Shipping works
on every version.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx

from .._exceptions import ShipFatalError, ShipRejectedError, ShipRetryableError, TargetError
from .._read.figures import QUANTILES, Aggregate, Figure
from .._read.sql import Dialect
from .engine import Batch, Row
from .target import Target

__all__ = [
    "CLICKHOUSE",
    "COLUMNS",
    "DEDUP_WINDOW",
    "REPORT_FUNCTIONS",
    "ClickHouse",
    "ClickHouseDialect",
    "cluster_ddl",
    "create_table_sql",
    "decode_answer",
    "encode_rows",
    "entries_sql",
    "error_for",
    "insert_settings",
    "insert_sql",
    "select_sql",
]

logger = logging.getLogger("analytics")

KEEPALIVE_EXPIRY = 0.8
"""Seconds an idle connection is kept: below the server's keep_alive_timeout."""

DEDUP_WINDOW = 10_000
"""How many recent insert tokens a (non-replicated) table remembers on servers that
take ``insert_deduplication_token``: a retried batch older than that many inserts is
no longer dropped at insert, only by ``FINAL``/merges."""

COLUMNS = ("timestamp_us", "type", "session_id", "user_id", "data", "source")
"""The columns :meth:`ClickHouse.entries` gives the report's queries."""

REPORT_FUNCTIONS = (
    "JSONType",
    "JSONExtractString",
    "JSONExtractRaw",
    "JSONExtractFloat",
    "JSONExtractBool",
    "toInt128",
    "arraySort",
)
"""Functions the report's queries use that old servers lack (18.16 has none of the
``JSON*`` ones). The ``-OrNull`` and ``-If`` combinators come with them."""

_ENCODE_IN_THREAD = 2_000
"""Batches of more rows than this are encoded in a worker thread."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_DATETIME = 2**32 - 1  # DateTime is a UInt32 of seconds


def _identifier(name: str) -> str:
    """A quoted ClickHouse identifier (names are checked by ``parse_target`` already)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    """A ClickHouse string literal: a backslash is an escape there, as is a quote."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _table(database: str, table: str) -> str:
    return f"{_identifier(database)}.{_identifier(table)}"


def create_table_sql(database: str, table: str, *, modern: bool) -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement for the central table.

    Args:
        modern: the server takes ``insert_deduplication_token`` (and so
            ``LowCardinality`` and ``non_replicated_deduplication_window``); False
            gives DDL that ClickHouse 18.16 accepts.
    """
    short = "LowCardinality(String)" if modern else "String"
    settings = f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if modern else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {_table(database, table)}\n"
        "(\n"
        "    id String,\n"
        "    timestamp DateTime('UTC'),\n"
        "    timestamp_us Int64,\n"
        f"    type {short},\n"
        "    session_id Nullable(String),\n"
        "    user_id Nullable(String),\n"
        "    data String,\n"
        "    metadata String,\n"
        f"    source {short}\n"
        ")\n"
        "ENGINE = ReplacingMergeTree\n"
        "PARTITION BY toYYYYMM(timestamp)\n"
        f"ORDER BY (type, timestamp, id){settings}"
    )


def cluster_ddl(database: str, table: str, cluster: str) -> str:
    """The statements for a real cluster (not run by :meth:`ClickHouse.open`): a
    ``ReplicatedReplacingMergeTree`` table ``<table>_local`` on every node, and the
    ``Distributed`` table ``<table>`` the shipper inserts into and the report reads.

    Rows are sharded by ``cityHash64(id)``, so every copy of an entry lands on one
    shard, where ``FINAL`` finds and drops the others. Replicated tables remember
    insert tokens without a table setting (``replicated_deduplication_window``);
    inserting into the ``Distributed`` table with ``distributed_foreground_insert = 1``
    (``insert_distributed_sync`` before 23.x) keeps a batch's token with it.
    """
    local = f"{table}_local"
    on = f"ON CLUSTER {_identifier(cluster)}"
    columns = create_table_sql(database, local, modern=True)
    body = columns[columns.index("(") : columns.index("ENGINE")]
    return (
        f"CREATE TABLE IF NOT EXISTS {_table(database, local)} {on}\n"
        f"{body}"
        f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{database}/{local}',"
        " '{replica}')\n"
        "PARTITION BY toYYYYMM(timestamp)\n"
        "ORDER BY (type, timestamp, id);\n\n"
        f"CREATE TABLE IF NOT EXISTS {_table(database, table)} {on} AS {_table(database, local)}\n"
        f"ENGINE = Distributed({_identifier(cluster)}, {_identifier(database)},"
        f" {_identifier(local)}, cityHash64(id));"
    )


def insert_settings(token: str, *, tokens: bool) -> dict[str, str]:
    """The settings an insert of a batch carries: its dedup token where the server
    takes one (``tokens``)."""
    return {"insert_deduplication_token": token} if tokens else {}


def insert_sql(database: str, table: str, settings: Mapping[str, str] | None = None) -> str:
    """``INSERT INTO db.t FORMAT JSONEachRow``, the rows following as the body.

    Args:
        settings: written into the statement (``SETTINGS k = 'v'``), for a client
            that cannot pass them beside the query (the HTTP client passes them as URL
            parameters instead, which 18.16 also takes).
    """
    clause = ""
    if settings:
        pairs = ", ".join(f"{name} = {_literal(value)}" for name, value in settings.items())
        clause = f" SETTINGS {pairs}"
    return f"INSERT INTO {_table(database, table)}{clause} FORMAT JSONEachRow"


_MICROSECOND = timedelta(microseconds=1)


def encode_rows(rows: Iterable[Row]) -> bytes:
    """The ``JSONEachRow`` body of ``rows``: one JSON object per line, UTF-8 (text
    with a lone surrogate, which UTF-8 cannot hold, goes as ``\\uXXXX`` escapes)."""
    rows = list(rows)
    try:
        return _encode(rows, _json_string).encode()
    except UnicodeEncodeError:
        return _encode(rows, _json_ascii).encode()


_json_string: Callable[[str], str] = json.encoder.encode_basestring
_json_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _encode(rows: list[Row], quote: Callable[[str], str]) -> str:
    # One f-string per row, the strings quoted by json's C escaper: several times
    # faster than a dict through json.dumps, and the shipper's hot path.
    lines = []
    for row in rows:
        micros = (row.timestamp - _EPOCH) // _MICROSECOND
        seconds = min(max(micros // 1_000_000, 0), _MAX_DATETIME)
        session = "null" if row.session_id is None else quote(row.session_id)
        user = "null" if row.user_id is None else quote(row.user_id)
        lines.append(
            f'{{"id":{quote(row.id)},"timestamp":{seconds},"timestamp_us":{micros},'
            f'"type":{quote(row.type)},"session_id":{session},"user_id":{user},'
            f'"data":{quote(row.data)},"metadata":{quote(row.metadata)},'
            f'"source":{quote(row.source)}}}\n'
        )
    return "".join(lines)


def entries_sql(database: str, table: str, where: Sequence[str]) -> str:
    """The deduplicated entries as the report's ``FROM`` (a subquery aliased ``e``)."""
    conditions = " AND ".join(f"({condition})" for condition in where) or "1"
    return (
        f"(SELECT {', '.join(COLUMNS)} FROM {_table(database, table)} FINAL"
        f" WHERE {conditions}) AS e"
    )


# -- The report's figures in ClickHouse's SQL ------------------------------------------


class ClickHouseDialect(Dialect):
    """ClickHouse's spelling of the figures, over ``data`` as JSON text.

    A big integer (beyond 64 bits) is a string to ClickHouse's JSON functions: it is
    never a number here, while the Python engine takes one up to about 1.8e308 as a
    float. A line holding a number no float holds (``1e999``) is not JSON to
    ClickHouse at all: every key of it reads as missing.
    """

    _NUMBER = "('Double', 'Int64', 'UInt64')"
    order_time = "timestamp_us"

    def column(self, name: str) -> str:
        return {
            "timestamp": "timestamp_us",
            # floored (before 1970 too), as the Python engine's hour
            "hour": "intDiv(timestamp_us - (timestamp_us % 3600000000 + 3600000000)"
            " % 3600000000, 3600000000)",
            "type": "type",
            "session_id": "session_id",
        }[name]

    def string(self, text: str) -> str:
        return _literal(text)

    def text(self, key: str, default: str) -> str:
        """A string as it is, JSON text for other values, ``default`` when missing or
        null."""
        k = _literal(key)
        return (
            f"multiIf(JSONType(data, {k}) = 'String', JSONExtractString(data, {k}),"
            f" JSONType(data, {k}) = 'Null', {_literal(default)}, JSONExtractRaw(data, {k}))"
        )

    def number(self, key: str) -> str:
        """Float64; NULL if not a number, or not finite."""
        k = _literal(key)
        value = f"JSONExtractFloat(data, {k})"
        return (
            f"if(JSONType(data, {k}) IN {self._NUMBER} AND isFinite({value}),"
            f" toNullable({value}), NULL)"
        )

    def count(self, key: str) -> str:
        """Int128, truncated; NULL if not a number or not below ``COUNT_LIMIT``."""
        number = self.number(key)
        return f"if(abs({number}) < 9.223372036854776e18, toInt128(trunc({number})), NULL)"

    def is_false(self, key: str) -> str:
        k = _literal(key)
        return f"(JSONType(data, {k}) = 'Bool' AND JSONExtractBool(data, {k}) = 0)"

    def not_boolean(self, key: str) -> str:
        return f"JSONType(data, {_literal(key)}) <> 'Bool'"

    def aggregate(self, aggregate: Aggregate) -> list[str]:
        op = aggregate.op
        if op == "count":
            return ["count()"]
        assert aggregate.value is not None, op
        v = aggregate.value.sql(self)
        if op == "quantiles":
            return [self.percentile(v, q) for q in QUANTILES] + [f"maxOrNull({v})"]
        t = self.order_time
        return [
            {
                "count_if": f"countIf({v})",
                "count_of": f"count({v})",
                "sum": f"coalesce(sum({v}), 0)",
                "min": f"minOrNull({v})",
                "max": f"maxOrNull({v})",
                "distinct": f"uniqExact({v})",
                "earliest": f"argMinIfOrNull({v}, {t}, isNotNull({v}))",
                "latest": f"argMaxIfOrNull({v}, {t}, isNotNull({v}))",
            }[op]
        ]

    def percentile(self, value: str, q: float) -> str:
        """The nearest-rank ``q`` percentile: the ``ceil(q * n)``-th smallest value, as
        the Python engine takes it (ClickHouse's ``quantileExact*`` pick other ranks)."""
        return (
            f"if(count({value}) = 0, NULL, arrayElement(arraySort(groupArray({value})),"
            f" toUInt64(greatest(1, ceil({q!r} * count({value}))))))"
        )

    def query(self, figure: Figure, table: str) -> str:
        columns = [c for a in figure.aggregates.values() for c in self.aggregate(a)]
        where = ["1"]
        if figure.kinds is not None:
            where.append(f"type IN ({', '.join(self.string(kind) for kind in figure.kinds)})")
        if figure.group is None:
            return f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)}"
        group = figure.group.sql(self)
        where.append(f"isNotNull({group})")
        # GROUP BY the expression: positional GROUP BY is off on servers before 22.7.
        return (
            f"SELECT {group}, {', '.join(columns)} FROM {table}"
            f" WHERE {' AND '.join(where)} GROUP BY {group}"
        )


CLICKHOUSE = ClickHouseDialect()


# -- Errors ----------------------------------------------------------------------------

_FATAL_CODES = frozenset(
    {
        81,  # UNKNOWN_DATABASE
        60,  # UNKNOWN_TABLE (dropped under us)
        164,  # READONLY
        192,  # UNKNOWN_USER (18.x)
        193,  # WRONG_PASSWORD (18.x)
        194,  # REQUIRED_PASSWORD
        195,  # IP_ADDRESS_NOT_ALLOWED
        291,  # DATABASE_ACCESS_DENIED
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
    }
)
_REJECTED_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        32,  # ATTEMPT_TO_READ_AFTER_EOF (a row cut short)
        16,  # NO_SUCH_COLUMN_IN_TABLE
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        1001,  # STD_EXCEPTION (a bad UTF-8 or a value a parser throws on)
    }
)
_STATEMENT_CODES = frozenset(
    {
        42,  # NUMBER_OF_ARGUMENTS_DOESNT_MATCH
        43,  # ILLEGAL_TYPE_OF_ARGUMENT
        44,  # ILLEGAL_COLUMN
        46,  # UNKNOWN_FUNCTION
        47,  # UNKNOWN_IDENTIFIER
        48,  # NOT_IMPLEMENTED
        50,  # UNKNOWN_TYPE
        62,  # SYNTAX_ERROR
        115,  # UNKNOWN_SETTING
    }
)
"""Our statement is wrong for this server (18.16 answers them with a 500 too): trying
again cannot help, and bisecting a batch would reject every line."""
_CODE = re.compile(r"Code: (\d+)")
_TAIL = re.compile(r",? *e\.what\(\) = \S+$")


def _first_line(body: str) -> str:
    line = body.strip().split("\n", 1)[0].strip()
    line = _TAIL.sub("", line).strip().rstrip(",")
    return line[:500] or "(no message)"


def error_for(status: int, body: str, target: Target, code: int | None = None) -> Exception:
    """The exception for a ClickHouse error answer (``status``, ``body``; ``code`` from
    the ``X-ClickHouse-Exception-Code`` header when the server sends one)."""
    if code is None:
        found = _CODE.search(body)
        code = int(found.group(1)) if found else None
    message = f"ClickHouse at {target.display()}: {_first_line(body)}"
    if code in _FATAL_CODES or code in _STATEMENT_CODES or status in (401, 403):
        return ShipFatalError(message)
    if code in _REJECTED_CODES:
        return ShipRejectedError(message)
    if status >= 500 or status in (408, 429):
        return ShipRetryableError(message)
    # An unknown 4xx: our statement itself is wrong for this server. Bisecting a batch
    # over it would reject every line, so stop instead.
    return ShipFatalError(message)


# -- The client ------------------------------------------------------------------------


class ClickHouse:
    """A ClickHouse server as a central engine (see the module). Target options:
    ``timeout`` (seconds, default 30) and ``secure`` (``1``: HTTPS)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        try:
            self.timeout = float(target.options.get("timeout", "30"))
        except ValueError:
            self.timeout = math.nan
        if not 0 < self.timeout < math.inf:
            raise TargetError(
                f"bad timeout {target.options['timeout']!r} in {target.display()}:"
                " a number of seconds above 0"
            )
        secure = target.options.get("secure", "0").lower()
        if secure not in ("0", "1", "true", "false"):
            raise TargetError(f"bad secure {secure!r} in {target.display()}: 0 or 1")
        self.secure = secure in ("1", "true")
        self._client: httpx.AsyncClient | None = None
        self.version: str | None = None
        """The server's version, once :meth:`open` has asked."""
        self.tokens: bool | None = None
        """Whether the server takes ``insert_deduplication_token``, once opened."""
        self.missing_functions: tuple[str, ...] = ()
        """Functions of :data:`REPORT_FUNCTIONS` the server lacks, once opened."""

    def ddl(self) -> str:
        """The statement :meth:`open` runs (for a current server until opened)."""
        modern = True if self.tokens is None else self.tokens
        return create_table_sql(self.target.database, self.target.table, modern=modern)

    @property
    def dialect(self) -> Dialect:
        """ClickHouse's dialect.

        Raises:
            ShipFatalError: the server lacks functions the report needs (18.16).
        """
        if self.missing_functions:
            raise ShipFatalError(
                f"ClickHouse {self.version} at {self.target.display()} cannot compute the"
                f" report: it lacks {', '.join(self.missing_functions)} and the -OrNull"
                " aggregate combinators (current ClickHouse versions have them); shipping to"
                " it works"
            )
        return CLICKHOUSE

    def entries(self, where: Sequence[str]) -> str:
        return entries_sql(self.target.database, self.target.table, where)

    async def open(self) -> None:
        """Connect, check the server's features, and create the table if absent.

        Raises:
            ShipRetryableError: the server cannot be reached (yet).
            ShipFatalError: authentication failed, or the database does not exist.
        """
        if self._client is None:
            # httpx loads certificates when a client is made: not on the event loop.
            self._client = await anyio.to_thread.run_sync(self._make_client)
        rows = await self.fetch("SELECT version()")
        self.version = str(rows[0][0])
        names = ", ".join(_literal(name) for name in ("insert_deduplication_token",))
        rows = await self.fetch(f"SELECT count() FROM system.settings WHERE name IN ({names})")
        self.tokens = rows[0][0] > 0
        wanted = ", ".join(_literal(name) for name in REPORT_FUNCTIONS)
        rows = await self.fetch(f"SELECT name FROM system.functions WHERE name IN ({wanted})")
        present = {row[0] for row in rows}
        self.missing_functions = tuple(name for name in REPORT_FUNCTIONS if name not in present)
        database = _literal(self.target.database)
        rows = await self.fetch(f"SELECT count() FROM system.databases WHERE name = {database}")
        if rows[0][0] == 0:
            raise ShipFatalError(
                f"ClickHouse at {self.target.display()}: database {self.target.database!r}"
                " does not exist (create it first: the shipper creates only the table)"
            )
        await self._post(self.ddl())
        if self.tokens:
            logger.debug("clickhouse %s at %s: table ready", self.version, self.target.display())
        else:
            logger.info(
                "clickhouse %s at %s takes no insert_deduplication_token: a retried batch"
                " is dropped only by FINAL and merges",
                self.version,
                self.target.display(),
            )

    def _make_client(self) -> httpx.AsyncClient:
        scheme = "https" if self.secure else "http"
        auth = None
        if self.target.user is not None or self.target.password is not None:
            auth = httpx.BasicAuth(self.target.user or "default", self.target.password or "")
        return httpx.AsyncClient(
            base_url=f"{scheme}://{self.target.host}:{self.target.port}/",
            auth=auth,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            # Let go of an idle connection before the server does (ClickHouse closes
            # them after keep_alive_timeout, 3 s by default): reusing one it has just
            # closed fails a batch for nothing.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
        )

    async def insert(self, batch: Batch) -> None:
        """Insert ``batch`` (its token as ``insert_deduplication_token`` where the
        server takes one).

        Raises:
            ShipRetryableError, ShipRejectedError, ShipFatalError: see ``engine``.
        """
        if len(batch.rows) > _ENCODE_IN_THREAD:
            body = await anyio.to_thread.run_sync(encode_rows, batch.rows)
        else:
            body = encode_rows(batch.rows)
        query = insert_sql(self.target.database, self.target.table)
        await self._post(
            body, {"query": query, **insert_settings(batch.token, tokens=bool(self.tokens))}
        )

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one ``SELECT``; values as Python objects (integers of any width as
        ``int``, floats as ``float``, NULL as ``None``)."""
        text = await self._post(select_sql(sql), {"wait_end_of_query": "1"})
        try:
            return decode_answer(text)
        except ValueError as exc:  # an error after the answer had begun
            raise error_for(500, text[-2000:], self.target) from exc

    async def _post(self, content: str | bytes, params: Mapping[str, str] | None = None) -> str:
        client = self._client
        if client is None:
            raise RuntimeError("ClickHouse engine used before open()")
        try:
            response = await client.post("", params=params, content=content)
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise ShipRetryableError(
                f"ClickHouse at {self.target.display()} cannot be reached ({detail})"
            ) from exc
        if response.status_code != 200:
            header = response.headers.get("X-ClickHouse-Exception-Code")
            raise error_for(
                response.status_code,
                response.text,
                self.target,
                int(header) if header and header.isdigit() else None,
            )
        return response.text

    async def aclose(self) -> None:
        """Close the connection; never raises."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # closing is best effort: the sockets go anyway
                logger.debug("closing the ClickHouse client failed", exc_info=True)


def select_sql(sql: str) -> str:
    """``sql`` asking for the answer :func:`decode_answer` reads."""
    return f"{sql}\nFORMAT JSONCompact"


def decode_answer(text: str) -> list[tuple[Any, ...]]:
    """The rows of a ``JSONCompact`` answer, as Python values: integers of any width
    as ``int`` (ClickHouse quotes the wide ones), floats as ``float``, NULL as
    ``None``.

    Raises:
        ValueError: ``text`` is not such an answer.
    """
    answer = json.loads(text)
    converters = [_converter(column["type"]) for column in answer["meta"]]
    return [
        tuple(convert(cell) for convert, cell in zip(converters, row, strict=True))
        for row in answer["data"]
    ]


def _converter(kind: str) -> Any:
    """How a ``JSONCompact`` cell of ClickHouse type ``kind`` becomes a Python value."""
    inner = kind
    for wrapper in ("Nullable(", "LowCardinality("):
        if inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    if re.fullmatch(r"U?Int\d+", inner):
        return lambda cell: None if cell is None else int(cell)
    if inner.startswith("Float"):
        return lambda cell: None if cell is None else float(cell)
    return lambda cell: cell
