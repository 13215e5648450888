"""The same ``Summary`` as the Python engine, computed in SQL by DuckDB.

For directories beyond what one Python process should scan: DuckDB reads ``.jsonl``
and ``.jsonl.gz`` natively, in parallel. Install with
``pip install 'asyncio-jsonl-analytics[duckdb]'``.
The Python engine decides which files to read (our names only, a source next to its
complete ``.gz`` skipped, ``since``/``until`` pushed down to the files' entry-time bounds), so both
engines see the same files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Unpack

from ._files import ReadStats, damaged_prefix, resolve_metrics_dir, select_files
from ._filter import Filter, FilterKeywords
from ._models import MetricType
from ._summary import (
    COUNT_LIMIT,
    CheckpointStats,
    ErrorStats,
    ModelTokens,
    RunStats,
    SessionStats,
    Summary,
    ToolStats,
)

__all__ = ["summarize_duckdb"]

_COLUMNS = (
    "{'id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'type': 'VARCHAR', "
    "'session_id': 'VARCHAR', 'user_id': 'VARCHAR', 'data': 'JSON', 'metadata': 'JSON'}"
)
_NUMBER = "('DOUBLE', 'UBIGINT', 'BIGINT')"


def _num(path: str) -> str:
    """SQL for a JSON number at ``path`` as DOUBLE; NULL if it is not a number, or is
    one no DOUBLE holds (an integer beyond about 1.8e308), as the Python engine skips it."""
    return (
        f"CASE WHEN json_type({path}) IN {_NUMBER} AND isfinite(TRY_CAST({path} AS DOUBLE))"
        f" THEN TRY_CAST({path} AS DOUBLE) END"
    )


def _integer(path: str) -> str:
    """SQL for a JSON number at ``path`` as a HUGEINT count, truncated; NULL if it is
    not a number or not below ``COUNT_LIMIT`` in magnitude (as the Python engine)."""
    number = _num(path)
    return f"CASE WHEN abs({number}) < {float(COUNT_LIMIT)!r} THEN trunc({number})::HUGEINT END"


def _name(key: str) -> str:
    """SQL for the name at ``data.key``: a string as it is, JSON text for other values,
    ``?`` when missing or null."""
    return f"coalesce(data->>'{key}', '?')"


_FAILED = "(json_type(data->'success') = 'BOOLEAN' AND data->>'success' = 'false')"
"""SQL: the entry says ``success: false``."""

_EXIT_CODE = "data->'exit_code'"

_RUNS = {
    # Summary field: (entry type, the data field naming the run, SQL for "it failed")
    "operations": ("performance", "operation", _FAILED),
    "agents": ("agent_execution", "agent_name", _FAILED),
    "commands": (
        "command_executed",
        "command",
        f"({_FAILED} OR (coalesce(json_type(data->'success'), '') <> 'BOOLEAN'"
        f" AND coalesce({_num(_EXIT_CODE)} <> 0, false)))",
    ),
    "hooks": ("hook_triggered", "hook_name", _FAILED),
}


def _quantiles(table: str, key: str, value: str) -> str:
    """Nearest-rank p50/p95/p99, as the Python engine computes them."""
    picks = ", ".join(
        f"max({value}) FILTER (WHERE rn = greatest(1, ceil({q} * n))) AS p{int(q * 100)}"
        for q in (0.5, 0.95, 0.99)
    )
    return (
        f"SELECT {key}, {picks} FROM ("
        f" SELECT {key}, {value}, row_number() OVER (PARTITION BY {key} ORDER BY {value}) AS rn,"
        f" count(*) OVER (PARTITION BY {key}) AS n FROM {table} WHERE {value} IS NOT NULL"
        f") GROUP BY {key}"
    )


def _when(epoch_us: int | None) -> datetime | None:
    if epoch_us is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=epoch_us)


def summarize_duckdb(
    base_path: str | os.PathLike[str],
    **filters: Unpack[FilterKeywords],
) -> Summary:
    """:func:`analytics.summarize`, computed by DuckDB.

    Raises:
        ModuleNotFoundError: DuckDB is not installed
            (``pip install 'asyncio-jsonl-analytics[duckdb]'``).
        FileNotFoundError: the directory does not exist.
    """
    try:
        import duckdb
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the duckdb engine needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'"
        ) from exc
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
    entries, first_us, last_us = con.execute(
        "SELECT count(*), epoch_us(min(timestamp)), epoch_us(max(timestamp)) FROM e"
    ).fetchone()
    first, last = _when(first_us), _when(last_us)
    by_type = dict(
        con.execute("SELECT type, count(*) FROM e GROUP BY type ORDER BY type").fetchall()
    )

    tools = {
        name: ToolStats(calls=figures.pop("count"), **figures)
        for name, figures in _runs(con, "tool_use", "tool_name", _FAILED).items()
    }
    runs = {
        field: {name: RunStats(**figures) for name, figures in _runs(con, *run).items()}
        for field, run in _RUNS.items()
    }
    n_checkpoints, checkpoint_sessions, n_files, files_total, files_max = con.execute(
        f"SELECT count(*), count(DISTINCT session_id), count(c), coalesce(sum(c), 0), max(c)"
        f" FROM (SELECT session_id, {_integer(_json('files_changed'))} AS c"
        "       FROM e WHERE type = 'checkpoint_created')"
    ).fetchone()

    con.execute(
        "CREATE TEMP VIEW sd AS"
        " WITH s AS (SELECT DISTINCT session_id FROM e WHERE session_id IS NOT NULL),"
        " st AS (SELECT session_id, min(timestamp) AS t0 FROM e"
        "        WHERE type = 'session_start' AND session_id IS NOT NULL GROUP BY 1),"
        " en AS (SELECT session_id, max(timestamp) AS t1,"
        f"        arg_max({_num(_json('duration_seconds'))}, timestamp)"
        f"          FILTER (WHERE {_num(_json('duration_seconds'))}"
        "          IS NOT NULL) AS reported"
        "        FROM e WHERE type = 'session_end' AND session_id IS NOT NULL GROUP BY 1)"
        " SELECT s.session_id, coalesce(reported,"
        "   (epoch_us(t1) - epoch_us(t0)) / 1e6) AS dur, 1 AS one"
        " FROM s LEFT JOIN st USING (session_id) LEFT JOIN en USING (session_id)"
    )
    sessions, mean, dmax = con.execute("SELECT count(*), avg(dur), max(dur) FROM sd").fetchone()
    session_p50 = con.execute(_quantiles("sd", "one", "dur")).fetchone()
    tokens_total = con.execute(
        f"SELECT coalesce(sum(coalesce({_integer(_json('input_tokens'))}, 0)"
        f" + coalesce({_integer(_json('output_tokens'))}, 0)), 0)"
        " FROM e WHERE type = 'token_usage' AND session_id IS NOT NULL"
    ).fetchone()[0]

    errors = {
        kind: ErrorStats(count=n, example=example)
        for kind, n, example in con.execute(
            "SELECT coalesce(data->>'error_type', '?'), count(*),"
            " arg_min(coalesce(data->>'error_message', ''), timestamp)"
            " FROM e WHERE type = 'error_occurred' GROUP BY 1 ORDER BY 2 DESC, min(timestamp)"
        ).fetchall()
    }
    models = {
        model: ModelTokens(
            calls=n, input_tokens=int(i), output_tokens=int(o), total_tokens=int(i + o)
        )
        for model, n, i, o in con.execute(
            "SELECT coalesce(data->>'model', '?'), count(*),"
            f" coalesce(sum(coalesce({_integer(_json('input_tokens'))}, 0)), 0),"
            f" coalesce(sum(coalesce({_integer(_json('output_tokens'))}, 0)), 0)"
            " FROM e WHERE type = 'token_usage' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }

    bucket: Literal["hour", "day"] = "hour"
    if first is not None and last is not None and last - first > timedelta(days=3):
        bucket = "day"
    size = 86_400_000_000 if bucket == "day" else 3_600_000_000
    timeline = {
        _when(start * size).isoformat(): n  # type: ignore[union-attr]
        for start, n in con.execute(
            f"SELECT epoch_us(timestamp) // {size}, count(*) FROM e GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    return Summary(
        first=first,
        last=last,
        entries=entries,
        by_type=by_type,
        tools=tools,
        operations=runs["operations"],
        agents=runs["agents"],
        commands=runs["commands"],
        hooks=runs["hooks"],
        checkpoints=CheckpointStats(
            count=n_checkpoints,
            sessions=checkpoint_sessions,
            files_changed_total=int(files_total),
            files_changed_mean=int(files_total) / n_files if n_files else None,
            files_changed_max=None if files_max is None else int(files_max),
        ),
        sessions=SessionStats(
            count=sessions,
            duration_s_p50=session_p50[1] if session_p50 else None,
            duration_s_max=dmax,
            duration_s_mean=mean,
            tokens_total=int(tokens_total),
            tokens_per_session_mean=int(tokens_total) / sessions if sessions else None,
        ),
        errors=errors,
        tokens_by_model=models,
        bucket=bucket,
        timeline=timeline,
        bad_lines=max(bad_lines, 0),
        percentiles_exact=True,
    )


def _json(key: str) -> str:
    return f"data->'{key}'"


def _runs(con: Any, kind: str, key: str, failed: str) -> dict[str, dict[str, Any]]:
    """Per name at ``data.key`` of ``kind`` entries (sorted): count, failures, success
    rate and duration percentiles, as the Python engine's ``_Runs.figures``."""
    view = f"runs_{kind}"
    con.execute(
        f"CREATE TEMP VIEW {view} AS SELECT {_name(key)} AS name, {failed} AS failed,"
        f" {_num(_json('duration_ms'))} AS d FROM e WHERE type = '{kind}'"
    )
    counts = con.execute(
        f"SELECT name, count(*), count(*) FILTER (WHERE failed), max(d) FROM {view} GROUP BY 1"
    ).fetchall()
    pct = {row[0]: row[1:] for row in con.execute(_quantiles(view, "name", "d")).fetchall()}
    result = {}
    for name, n, failures, dmax in sorted(counts):
        p50, p95, p99 = pct.get(name, (None, None, None))
        result[name] = {
            "count": n,
            "failures": failures,
            "success_rate": (n - failures) / n,
            "duration_ms_p50": p50,
            "duration_ms_p95": p95,
            "duration_ms_p99": p99,
            "duration_ms_max": dmax,
        }
    return result


def write_parquet(jsonl_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Convert a JSON Lines file of entries (as written, in its order) to Parquet.

    Columns: ``id``, ``type``, ``session_id``, ``user_id`` as strings, ``timestamp``
    as a UTC timestamp, ``data`` and ``metadata`` as JSON text.

    Raises:
        ModuleNotFoundError: DuckDB is not installed
            (``pip install 'asyncio-jsonl-analytics[duckdb]'``).
    """
    try:
        import duckdb
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "Parquet export needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'"
        ) from exc
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
