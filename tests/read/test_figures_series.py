"""Series over time: the bucket width follows the span, and the Python engine (which
widens its buckets as entries come) gives what DuckDB gives at the final width."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic_core import to_json

from analytics import Summary
from analytics._read.figures import (
    FIGURES,
    MAX_BUCKETS,
    SERIES,
    Results,
    bucket_seconds,
    series_width,
)
from analytics._read.sql import DUCKDB
from analytics._read.summary import build_summary
from analytics._read.totals import Totals

from ..helpers import FIGURES_T0, Row, add, python_results

HOUR, DAY = 3600, 86400


@pytest.mark.parametrize(
    ("span", "width"),
    [
        (0, 1),
        (59, 1),
        (119, 1),
        (600, 10),
        (3600, 60),
        (6 * HOUR, 600),
        (DAY, 600),
        (7 * DAY, HOUR),
        (90 * DAY, DAY),
        (365 * DAY, 7 * DAY),
    ],
)
def test_the_bucket_width_follows_the_span(span: int, width: int) -> None:
    start = 1_764_547_200  # a Monday, 00:00 UTC: every width's bucket starts there
    assert bucket_seconds(start, start + span) == width
    assert (start + span) // width - start // width < MAX_BUCKETS


def duckdb_results(rows: list[Row]) -> Results:
    """Every figure and series, as the DuckDB engine computes them."""
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE e (timestamp TIMESTAMPTZ, type VARCHAR, session_id VARCHAR, data JSON)"
        )
        con.executemany(
            "INSERT INTO e VALUES (make_timestamptz(?::BIGINT), ?, ?, ?)",
            [
                [_us(FIGURES_T0 + timedelta(seconds=s)), kind, sid, to_json(data).decode()]
                for s, kind, sid, data in rows
            ],
        )
        results: Results = {
            f.name: DUCKDB.results(f, con.execute(DUCKDB.query(f, "e")).fetchall()) for f in FIGURES
        }
        width = series_width(results)
        for one in SERIES:
            sql = DUCKDB.series_query(one, width, "e")
            results[one.name] = DUCKDB.series_results(con.execute(sql).fetchall())
        return results
    finally:
        con.close()


def _us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def run(seconds: list[float]) -> list[Row]:
    """Entries at those offsets: tools, errors of two types, tokens of two models."""
    rows: list[Row] = []
    for n, s in enumerate(seconds):
        kind = ("tool_use", "error_occurred", "token_usage")[n % 3]
        data: dict[str, Any] = {"tool_name": "grep"}
        if kind == "error_occurred":
            data = {"error_type": ("Timeout", "KeyError")[n % 2], "error_message": "m"}
        elif kind == "token_usage":
            data = {"model": ("a", "b")[n % 2], "input_tokens": n, "output_tokens": 1}
        rows.append((s, kind, f"s{n % 4}", data))  # type: ignore[arg-type]
    return rows


def summaries(rows: list[Row]) -> tuple[Summary, Summary]:
    return build_summary(python_results(rows, FIGURES)), build_summary(duckdb_results(rows))


def test_a_one_minute_run_has_one_second_buckets_in_both_engines() -> None:
    python, duckdb = summaries(run([i * 0.5 for i in range(120)]))
    assert python.series_bucket_seconds == duckdb.series_bucket_seconds == 1
    assert python == duckdb
    assert len(python.series) == 60
    first = FIGURES_T0.isoformat()
    assert python.series[first] == {"error_occurred": 1, "tool_use": 1}
    assert sum(sum(b.values()) for b in python.series.values()) == python.entries
    errors = sum(b.get("Timeout", 0) + b.get("KeyError", 0) for b in python.errors_series.values())
    assert errors == sum(e.count for e in python.errors.values()) == 40
    tokens = sum(sum(b.values()) for b in python.tokens_series.values())
    assert tokens == sum(m.total_tokens for m in python.tokens_by_model.values())


def test_a_week_has_hour_buckets_and_the_engines_agree() -> None:
    python, duckdb = summaries(run([i * 600.5 for i in range(7 * 144)]))
    assert python.series_bucket_seconds == HOUR
    assert python == duckdb
    assert len(python.series) <= 180


def test_times_before_1970_bucket_alike() -> None:
    """Buckets are floored in every engine (SQL's % truncates toward zero)."""
    before = -(FIGURES_T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    python, duckdb = summaries(run([before + s for s in (-195.5, -30, -1, 0, 0.5, 65)]))
    assert python.series_bucket_seconds == 10
    assert python == duckdb
    assert "1969-12-31T23:56:40+00:00" in python.series


def test_merged_series_are_the_series_of_everything() -> None:
    """Parts that widened differently (a short part, a long one) merge, in either
    order, to what one pass gives."""
    rows = run([i * 7.25 for i in range(40)] + [5000 + i * 90.0 for i in range(200)])
    expected = python_results(rows, FIGURES)
    for first, second in ((rows[:40], rows[40:]), (rows[40:], rows[:40])):
        left, right = Totals(), Totals()
        for row in first:
            add(left, row)
        for row in second:
            add(right, row)
        left.merge(pickle.loads(pickle.dumps(right)))
        assert build_summary(left.results()) == build_summary(expected)
    assert build_summary(expected) == build_summary(duckdb_results(rows))


def test_nothing_has_no_series() -> None:
    summary = build_summary(Totals().results())
    assert (summary.series_bucket_seconds, summary.series, summary.tokens_series) == (0, {}, {})
