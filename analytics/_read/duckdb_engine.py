"""The same ``Summary`` as the Python engine, computed in SQL by DuckDB.

For directories beyond what one Python process should scan: DuckDB reads ``.jsonl``
and ``.jsonl.gz`` natively, in parallel. Install with
``pip install 'asyncio-jsonl-analytics[duckdb]'``.
The Python engine decides which files to read (our names only, a source next to its
complete ``.gz`` skipped, ``since``/``until`` pushed down to the files' entry-time bounds), so both
engines see the same files. What is computed is not written here: each figure of
``analytics._read.figures.FIGURES`` is one query in DuckDB's dialect (``DUCKDB``), and
``build_summary`` makes the ``Summary``, as for the Python engine. This module only
loads the files into a table ``e`` and counts the bad lines.
"""

from __future__ import annotations

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
from .figures import FIGURES, SERIES, series_width
from .files import ReadStats, damaged_prefix, resolve_metrics_dir, select_files
from .filter import Filter, FilterKeywords
from .sql import DUCKDB
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
    con = duckdb.connect()
    try:
        valid_types = ", ".join(f"'{t.value}'" for t in MetricType)
        con.execute(
            f"CREATE TEMP TABLE raw AS SELECT * FROM read_json(?, format='newline_delimited',"
            f" columns={_COLUMNS}, ignore_errors=true)"
            f" WHERE id IS NOT NULL AND timestamp IS NOT NULL AND type IN ({valid_types})",
            [files],
        )
        total_lines = con.execute(
            "SELECT count(*) FROM read_csv(?, columns={'line': 'VARCHAR'}, delim=chr(1),"
            " quote='', escape='', header=false, auto_detect=false, strict_mode=false)"
            " WHERE line IS NOT NULL AND line <> ''",
            [files],
        ).fetchone()
        conditions, params = ["true"], []  # type: list[str], list[Any]
        if since is not None:
            conditions.append("epoch_us(timestamp) >= ?")
            params.append(_epoch_us(since))
        if until is not None:
            conditions.append("epoch_us(timestamp) < ?")
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
        con.execute(
            f"CREATE TEMP TABLE e AS SELECT * FROM raw WHERE {' AND '.join(conditions)}", params
        )
        return _summary(con, (total_lines[0] if total_lines else 0) - _count(con, "raw"))
    finally:
        con.close()


def _epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _count(con: Any, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _summary(con: Any, bad_lines: int) -> Summary:
    """Every figure, one query each, read into the Python engine's results."""
    results = {
        figure.name: DUCKDB.results(figure, con.execute(DUCKDB.query(figure, "e")).fetchall())
        for figure in FIGURES
    }
    width = series_width(results)
    for one in SERIES:
        rows = con.execute(DUCKDB.series_query(one, width, "e")).fetchall()
        results[one.name] = DUCKDB.series_results(rows)
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
