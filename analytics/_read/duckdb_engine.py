"""The same ``Summary`` as the Python engine, computed in SQL by DuckDB.

For directories beyond what one Python process should scan: DuckDB reads ``.jsonl``
and ``.jsonl.gz`` natively, in parallel. Install with
``pip install 'asyncio-jsonl-analytics[duckdb]'``.
The Python engine decides which files to read (our names only, a source next to its
complete ``.gz`` skipped, ``since``/``until`` pushed down to the files' entry-time bounds), so both
engines see the same files. What is computed is not written here: each figure of
``analytics._read.figures.FIGURES`` is one query, spelled by a dialect, and
``build_summary`` makes the ``Summary``, as for the Python engine.

This module reads the files once: every line as text (so that bad lines are counted
in the same pass), parsed once by ``json_transform`` into the entry's fields and the
values of ``data`` the figures read, decoded by the figures' rules into a narrow
table; the figures' queries then read that table. DuckDB keeps it within
``MEMORY_LIMIT`` and spills the rest to a temporary directory.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Unpack

from .._exceptions import MissingDependencyError
from .._models import MetricType
from .figures import COUNT_LIMIT, FIGURES, SERIES, series_width
from .files import ReadStats, damaged_prefix, resolve_metrics_dir, select_files
from .filter import Filter, FilterKeywords
from .sql import DuckDB
from .summary import Summary, build_summary

__all__ = ["summarize_duckdb"]

_COLUMNS = (
    "{'id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'type': 'VARCHAR', "
    "'session_id': 'VARCHAR', 'user_id': 'VARCHAR', 'data': 'JSON', 'metadata': 'JSON'}"
)


def summarize_duckdb(
    base_path: str | os.PathLike[str],
    **filters: Unpack[FilterKeywords],
) -> Summary:
    """:func:`analytics.summarize`, computed by DuckDB.

    Raises:
        MissingDependencyError: DuckDB is not installed
            (``pip install 'asyncio-jsonl-analytics[duckdb]'``).
        MetricsDirNotFoundError: the directory does not exist.
    """
    duckdb = _import_duckdb("the duckdb engine")
    keep = Filter(**filters)
    directory = resolve_metrics_dir(base_path)
    files = [str(path) for _, path, _ in select_files(directory, keep, ReadStats())]
    if not files:
        return Summary()
    try:
        return _run(duckdb, files, *_where(keep))
    except duckdb.IOException:
        # A file vanished (rotated) or a .gz is damaged: read what can be read.
        with tempfile.TemporaryDirectory(prefix="analytics-") as scratch:
            readable = [_readable(path, Path(scratch)) for path in files]
            return _run(duckdb, [p for p in readable if p], *_where(keep))


def _where(
    keep: Filter,
) -> tuple[datetime | None, datetime | None, Iterable[MetricType] | None, str | None, str | None]:
    """The filter's since, until, types, session_id and user_id, as ``_run`` takes them."""
    return keep.since, keep.until, keep.types, keep.session_id, keep.user_id


def _readable(path: str, scratch: Path) -> str | None:
    """``path``, its ``.gz`` if it was compressed and removed since, or a copy of what
    a damaged ``.gz`` holds before the damage (warned about, as the Python engine
    does); ``None`` if it is gone."""
    source = Path(path)
    if not source.name.endswith(".gz"):
        if source.exists():
            return path
        source = source.with_name(source.name + ".gz")
        if not source.exists():
            return None
    intact = damaged_prefix(source)
    if intact is None:
        return str(source)
    copy = scratch / source.name.removesuffix(".gz")
    copy.write_bytes(intact)
    return str(copy)


def _run(
    duckdb: Any,
    files: list[str],
    since: datetime | None,
    until: datetime | None,
    types: Iterable[MetricType | str] | None,
    session_id: str | None,
    user_id: str | None,
) -> Summary:
    if not files:
        return Summary()
    with tempfile.TemporaryDirectory(prefix="analytics-duckdb-") as spill:
        con = duckdb.connect(
            config={
                "preserve_insertion_order": False,
                "memory_limit": MEMORY_LIMIT,
                "temp_directory": spill,
            }
        )
        try:
            return _scan(con, files, since, until, types, session_id, user_id)
        finally:
            con.close()


MEMORY_LIMIT = "256MB"
"""DuckDB's memory limit: what the scanned entries take beyond it goes to a temporary
directory (removed after), so memory does not grow with the directory."""


def _scan(
    con: Any,
    files: list[str],
    since: datetime | None,
    until: datetime | None,
    types: Iterable[MetricType | str] | None,
    session_id: str | None,
    user_id: str | None,
) -> Summary:
    conditions, params = ["true"], []  # type: list[str], list[Any]
    if since is not None:
        conditions.append("us >= ?")
        params.append(_epoch_us(since))
    if until is not None:
        conditions.append("us < ?")
        params.append(_epoch_us(until))
    if types:
        wanted = sorted({MetricType(t).value for t in types})
        conditions.append(f"type IN ({', '.join('?' for _ in wanted)})")
        params.extend(wanted)
    if session_id is not None:
        conditions.append("session_id = ?")
        params.append(session_id)
    if user_id is not None:
        conditions.append("user_id = ?")
        params.append(user_id)
    # One scan: every line, its JSON parsed once, the values the figures use taken
    # out into plain columns. Lines that are not entries stay, as ``ok = false``,
    # to be counted.
    con.execute(
        f"CREATE TEMP TABLE t AS SELECT * EXCLUDE (user_id) FROM ({_load_query()})"
        f" WHERE NOT ok OR ({' AND '.join(conditions)})",
        [files, *params],
    )
    con.execute("CREATE TEMP VIEW e AS SELECT * FROM t WHERE ok")
    row = con.execute("SELECT count(*) FROM t WHERE NOT ok").fetchone()
    return _summary(con, row[0] if row else 0)


def _epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Loaded(DuckDB):
    """DuckDB's spelling over the table the one scan loads: the entry's own fields as
    plain columns (``us``: the timestamp in epoch microseconds), and the values of
    ``data`` the figures read, decoded once, in columns by what they are read as (a
    text, a number, a boolean). Values read by figures of different entry kinds share
    a column (the tool's name and the model's...), so the table stays narrow.
    :func:`_load_query` learns which values are read, and for which kinds, by
    rendering the figures with this dialect."""

    order_time = "us"

    def __init__(self) -> None:
        self.used: dict[tuple[str, str], frozenset[str] | None] = {}
        """Per (``s``, ``n`` or ``b``; key): the kinds whose figures read it (None: all)."""
        self.kinds: tuple[str, ...] | None = None
        """While learning: the kinds of the figure being rendered."""
        self.slots: dict[tuple[str, str], str] | None = None
        """Once learnt: the column of each value."""

    def _use(self, usage: str, key: str) -> str:
        if self.slots is not None:
            return _identifier(self.slots[usage, key])
        seen = self.used.setdefault((usage, key), frozenset())
        if seen is not None:
            self.used[usage, key] = None if self.kinds is None else seen | set(self.kinds)
        return _identifier(f"{usage}:{key}")

    def column(self, name: str) -> str:
        return {
            "timestamp": "us",
            # floored (before 1970 too), as the Python engine's hour
            "hour": "(us - (us % 3600000000 + 3600000000) % 3600000000) // 3600000000",
            "type": "type",
            "session_id": "session_id",
        }[name]

    def text(self, key: str, default: str) -> str:
        return f"coalesce({self._use('s', key)}, {_quote(default)})"

    def number(self, key: str) -> str:
        return self._use("n", key)

    def count(self, key: str) -> str:
        number = self.number(key)
        return f"CASE WHEN abs({number}) < {float(COUNT_LIMIT)!r} THEN trunc({number})::HUGEINT END"

    def is_false(self, key: str) -> str:
        return f"({self._use('b', key)} IS NOT DISTINCT FROM false)"

    def not_boolean(self, key: str) -> str:
        return f"({self._use('b', key)} IS NULL)"


_LOADED = _Loaded()

_NUMBER_TYPES = "('DOUBLE', 'UBIGINT', 'BIGINT')"


@functools.cache
def _load_query() -> str:
    """The one scan: a row per non-empty line (``ok``: whether it is an entry), with
    the columns the figures read (see :class:`_Loaded`). Takes the list of files as
    its parameter.

    Lines are read as text (so that every line is counted, the bad ones too) and each
    is parsed once, by ``json_transform``, into the entry's fields and the values of
    ``data`` that the figures read, each kept as JSON to be decoded by the rules of
    ``analytics._read.figures`` (a number only if JSON has a number there...)."""
    for figure in FIGURES:
        _LOADED.kinds = figure.kinds
        _LOADED.query(figure, "e")
    for one in SERIES:
        _LOADED.kinds = one.kinds
        _LOADED.series_query(one, 1, "e")
    # A text is taken as DuckDB casts JSON to VARCHAR (a string as it is, other values
    # as JSON text, as ``->>`` does); anything else is kept as JSON, to be checked.
    kinds: dict[str, str] = {}
    for usage, key in _LOADED.used:
        plain = usage == "s" and kinds.get(key, "VARCHAR") == "VARCHAR"
        kinds[key] = "VARCHAR" if plain else "JSON"
    data = ", ".join(f'{_json_string(key)}: "{kind}"' for key, kind in kinds.items())
    structure = (
        '{"id": "JSON", "timestamp": "TIMESTAMPTZ", "type": "VARCHAR",'
        f' "session_id": "VARCHAR", "user_id": "VARCHAR", "data": {{{data}}}}}'
    )
    valid_types = ", ".join(_quote(t.value) for t in MetricType)

    def decoded(usage: str, key: str) -> str:
        j = f"r.data[{_quote(key)}]"
        if usage == "s":
            return j if kinds[key] == "VARCHAR" else f"{j}->>'$'"
        if usage == "n":
            return (
                f"CASE WHEN json_type({j}) IN {_NUMBER_TYPES} AND isfinite(TRY_CAST({j} AS DOUBLE))"
                f" THEN TRY_CAST({j} AS DOUBLE) END"
            )
        return f"CASE WHEN json_type({j}) = 'BOOLEAN' THEN {j}->>'$' = 'true' END"

    # Values of one usage read by disjoint kinds share a column.
    slots: list[tuple[str, set[str] | None, list[tuple[str, frozenset[str] | None]]]] = []
    for (usage, key), readers in _LOADED.used.items():
        for slot_usage, slot_kinds, members in slots:
            if (
                slot_usage == usage
                and readers is not None
                and slot_kinds is not None
                and slot_kinds.isdisjoint(readers)
            ):
                slot_kinds |= readers
                members.append((key, readers))
                break
        else:
            slots.append((usage, None if readers is None else set(readers), [(key, readers)]))
    _LOADED.slots = {}
    columns = []
    for number, (usage, _, members) in enumerate(slots):
        name = f"{usage}{number}"
        for key, _ in members:
            _LOADED.slots[usage, key] = name
        if len(members) == 1:
            value = decoded(usage, members[0][0])
        else:
            value = (
                "CASE "
                + " ".join(
                    f"WHEN r.type IN ({', '.join(map(_quote, sorted(readers or ())))})"
                    f" THEN {decoded(usage, key)}"
                    for key, readers in members
                )
                + " END"
            )
        columns.append(f"{value} AS {_identifier(name)}")
    ok = (
        # an id is a non-empty string, or missing (the entry then gets one); json_transform
        # gives a JSON null as NULL too, so a null id is taken as missing
        "(r.id IS NULL OR (json_type(r.id) = 'VARCHAR' AND r.id <> '\"\"'))"
        " AND r.timestamp IS NOT NULL AND r.type IS NOT NULL"
        f" AND r.type IN ({valid_types})"
    )
    return (
        f"SELECT coalesce({ok}, false) AS ok, epoch_us(r.timestamp) AS us, r.type AS type,"
        f" r.session_id AS session_id, r.user_id AS user_id, {', '.join(columns)}"
        f" FROM (SELECT try(json_transform(line, {_quote(structure)})) AS r"
        " FROM read_csv(?, columns={'line': 'VARCHAR'}, delim=chr(1), quote='', escape='',"
        " header=false, auto_detect=false, strict_mode=false)"
        " WHERE line IS NOT NULL AND line <> '')"
    )


def _json_string(key: str) -> str:
    """A key as a JSON string."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _summary(con: Any, bad_lines: int) -> Summary:
    """Every figure, one query each, read into the Python engine's results."""
    results = {
        figure.name: _LOADED.results(figure, con.execute(_LOADED.query(figure, "e")).fetchall())
        for figure in FIGURES
    }
    width = series_width(results)
    for one in SERIES:
        rows = con.execute(_LOADED.series_query(one, width, "e")).fetchall()
        results[one.name] = _LOADED.series_results(rows)
    return build_summary(results, bad_lines, exact_limit=sys.maxsize)


def write_parquet(jsonl_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Convert a JSON Lines file of entries (as written, in its order) to Parquet.

    Columns: ``id``, ``type``, ``session_id``, ``user_id`` as strings, ``timestamp``
    as a UTC timestamp, ``data`` and ``metadata`` as JSON text.

    Raises:
        MissingDependencyError: DuckDB is not installed
            (``pip install 'asyncio-jsonl-analytics[duckdb]'``).
    """
    duckdb = _import_duckdb("Parquet export")
    con = duckdb.connect()
    try:
        target = str(out).replace("'", "''")  # COPY takes no parameter for its target
        con.execute(
            f"COPY (SELECT id, timestamp, type, session_id, user_id,"
            f" CAST(data AS VARCHAR) AS data, CAST(metadata AS VARCHAR) AS metadata"
            f" FROM read_json(?, format='newline_delimited', columns={_COLUMNS}))"
            f" TO '{target}' (FORMAT PARQUET)",
            [str(jsonl_path)],
        )
    finally:
        con.close()


def _import_duckdb(needed_for: str) -> ModuleType:
    try:
        import duckdb
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"{needed_for} needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'",
            name="duckdb",
        ) from exc
    return duckdb
