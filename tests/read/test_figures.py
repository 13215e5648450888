"""One definition per figure (``analytics._read.figures``): the Python engine
(``analytics._read.totals``) and the SQL engines (``analytics._read.sql``) compute it alike.

A figure defined once here (every aggregate, every kind of value) is computed by the
Python engine's ``Totals`` (generated ``add``, ``merge``) and by DuckDB through its
``Dialect``; both must give the same ``Results``.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json, to_json

from analytics import Summary
from analytics._read.figures import (
    FIGURES,
    Aggregate,
    AllOf,
    AnyOf,
    Column,
    Count,
    Figure,
    IsFalse,
    NonZero,
    NotBoolean,
    Number,
    Results,
    Text,
)
from analytics._read.sql import DUCKDB, Dialect
from analytics._read.summary import build_summary
from analytics._read.totals import Totals, python_source

T0 = datetime(2026, 11, 1, tzinfo=UTC)

TIMESTAMP, HOUR, KIND, SESSION = (
    Column("timestamp"),
    Column("hour"),
    Column("type"),
    Column("session_id"),
)
FAILED = AnyOf((IsFalse("ok"), AllOf((NotBoolean("ok"), NonZero(Number("code"))))))

EVERY_AGGREGATE = {
    "count": Aggregate("count"),
    "failed": Aggregate("count_if", FAILED),
    "with_n": Aggregate("count_of", Count("n")),
    "n_total": Aggregate("sum", Count("n")),
    "n_min": Aggregate("min", Count("n")),
    "d_max": Aggregate("max", Number("d")),
    "first": Aggregate("min", TIMESTAMP),
    "last": Aggregate("max", TIMESTAMP),
    "sessions": Aggregate("distinct", SESSION),
    "names": Aggregate("distinct", Text("name")),
    "first_note": Aggregate("earliest", Text("note", "")),
    "last_d": Aggregate("latest", Number("d")),
    "d": Aggregate("quantiles", Number("d")),
}

TEST_FIGURES = (
    Figure("all", None, None, EVERY_AGGREGATE),
    Figure("per_name", ("a", "b"), Text("name"), EVERY_AGGREGATE),
    Figure("per_session", ("b",), SESSION, EVERY_AGGREGATE),
    Figure("per_hour", None, HOUR, {"count": Aggregate("count")}),
    Figure("per_kind", ("c",), KIND, {"count": Aggregate("count")}),
)

# JSON values an entry's data may hold, as other writers write them.
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([10**400, -(10**400), 0, 2**63, 2**63 - 1024, 1e300]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["x", "", "it's", "0"]),
)
# Names (any JSON but floats: their text is the writer's, not a rule of ours).
_names = st.one_of(
    st.sampled_from(["grep", "edit", "é", "x", ""]),
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.lists(st.sampled_from([1, "a", None]), max_size=2),
)
_data = st.fixed_dictionaries(
    {},
    optional={
        "name": _names,
        "ok": _anything,
        "code": _anything,
        "n": _anything,
        "d": _anything,
        "note": _names,
    },
)
_rows = st.lists(
    st.tuples(
        st.integers(0, 400_000),  # seconds after T0: distinct (ties are not ordered in SQL)
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["s1", "s2", "it's", None]),
        _data,
    ),
    max_size=30,
    unique_by=lambda row: row[0],
)

Row = tuple[int, str, str | None, dict[str, Any]]


def python_results(rows: list[Row], figures: tuple[Figure, ...] = TEST_FIGURES) -> Results:
    totals = Totals(figures)
    for row in rows:
        add(totals, row)
    return totals.results()


def add(totals: Totals, row: Row) -> None:
    seconds, kind, sid, data = row
    moment = T0 + timedelta(seconds=seconds)
    # As the Python engine gets data: parsed from the line's JSON.
    totals.add(kind, moment, moment.isoformat()[:13], sid, from_json(to_json(data)))


def sql_results(rows: list[Row], figures: tuple[Figure, ...] = TEST_FIGURES) -> Results:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE e (timestamp TIMESTAMPTZ, type VARCHAR, session_id VARCHAR, data JSON)"
        )
        if rows:
            con.executemany(
                "INSERT INTO e VALUES (make_timestamptz(?::BIGINT), ?, ?, ?)",
                [
                    [int(T0.timestamp() + seconds) * 10**6, kind, sid, to_json(data).decode()]
                    for seconds, kind, sid, data in rows
                ],
            )
        return {
            figure.name: DUCKDB.results(figure, con.execute(DUCKDB.query(figure, "e")).fetchall())
            for figure in figures
        }
    finally:
        con.close()


@settings(max_examples=40, deadline=None)
@given(rows=_rows)
def test_both_engines_compute_a_figure_defined_once_alike(rows: list[Row]) -> None:
    """Every aggregate over every kind of value, grouped and not: the generated Python
    and the rendered SQL agree, rows with a null group value left out alike."""
    assert python_results(rows) == sql_results(rows)


def test_the_comparison_sees_every_aggregate() -> None:
    """The property above is not empty: on a fixed sample every aggregate has a value."""
    rows: list[Row] = [
        (0, "a", "s1", {"name": "grep", "ok": False, "n": 3, "d": 1.5, "note": "first"}),
        (1, "b", "s2", {"name": "edit", "code": 2, "n": 4.9, "d": 7, "note": "second"}),
        (7200, "b", None, {"name": None, "ok": True, "code": 1, "d": 10**400, "n": 10**400}),
        (7201, "c", "s1", {"name": 12, "ok": "false", "code": 0.0}),
    ]
    python = python_results(rows)
    every = python["all"][None]
    assert every == {
        "count": 4,
        "failed": 2,  # ok false; no boolean ok and a non-zero code
        "with_n": 2,  # 10**400 is no count
        "n_total": 7,  # 4.9 is truncated
        "n_min": 3,
        "d_max": 7.0,
        "first": T0,
        "last": T0 + timedelta(seconds=7201),
        "sessions": 2,
        "names": 4,  # grep, edit, "?" for null, "12" for a number
        "first_note": "first",
        "last_d": 7.0,  # the latest number; 10**400 is none
        "d": every["d"],
    }
    assert every["d"].percentiles == (1.5, 7.0, 7.0)
    assert every["d"].maximum == 7.0
    assert set(python["per_name"]) == {"grep", "edit", "?"}
    assert set(python["per_session"]) == {"s2"}  # the null session is left out
    assert python["per_hour"] == {"2026-11-01T00": {"count": 2}, "2026-11-01T02": {"count": 2}}
    assert python["per_kind"] == {"c": {"count": 1}}
    assert python == sql_results(rows)


@settings(max_examples=40, deadline=None)
@given(rows=_rows, cut=st.integers(0, 30))
def test_merged_totals_are_the_totals_of_everything(rows: list[Row], cut: int) -> None:
    """What worker processes count and send back merges to what one process counts."""
    expected = python_results(rows)
    for first, second in ((rows[:cut], rows[cut:]), (rows[cut:], rows[:cut])):
        left, right = Totals(TEST_FIGURES), Totals(TEST_FIGURES)
        for row in first:
            add(left, row)
        for row in second:
            add(right, row)
        left.merge(pickle.loads(pickle.dumps(right)))  # as a worker sends it
        assert left.results() == expected


def test_totals_keep_counting_after_a_trip_through_pickle() -> None:
    totals = Totals(TEST_FIGURES)
    add(totals, (0, "a", "s1", {"name": "grep"}))
    copy = pickle.loads(pickle.dumps(totals))
    add(copy, (1, "a", "s1", {"name": "grep"}))
    assert copy.value("all", "count") == 2
    assert copy.results()["per_name"]["grep"]["count"] == 2
    assert totals.value("all", "count") == 1


def test_the_generated_code_has_one_branch_per_kind() -> None:
    source = python_source(TEST_FIGURES)
    assert source.count("kind == 'a'") == source.count("kind == 'b'") == 1
    assert "# per_name" in source
    assert "# per_session" in source
    compile(python_source(), "<figures>", "exec")  # the real figures' code compiles


def test_every_figure_runs_in_duckdb_and_nothing_gives_the_empty_summary() -> None:
    """The real figures, rendered for DuckDB, run on an empty table; both engines'
    results of nothing give the empty Summary."""
    assert build_summary(sql_results([], FIGURES)) == Summary()
    assert build_summary(Totals().results()) == Summary()


def test_a_dialect_spells_only_values_and_percentiles() -> None:
    """A new database overrides the spellings; the queries come from the figures."""

    class Spelled(Dialect):
        def column(self, name: str) -> str:
            return f"col_{name}"

        def text(self, key: str, default: str) -> str:
            return f"text_{key}"

        def number(self, key: str) -> str:
            return f"number_{key}"

        def count(self, key: str) -> str:
            return f"count_{key}"

        def is_false(self, key: str) -> str:
            return f"false_{key}"

        def not_boolean(self, key: str) -> str:
            return f"notbool_{key}"

        def percentile(self, value: str, q: float) -> str:
            return f"quantile({q})({value})"

    query = Spelled().query(TEST_FIGURES[1], "t")
    assert query.startswith("SELECT text_name, count(*), count(*) FILTER (WHERE ((false_ok)")
    assert "quantile(0.99)(number_d)" in query
    assert query.endswith(
        "FROM t WHERE true AND type IN ('a', 'b') AND text_name IS NOT NULL GROUP BY 1"
    )


def test_a_tie_in_time_keeps_the_first_for_earliest_and_the_last_for_latest() -> None:
    """In the Python engine, as before: the first error message seen at the earliest
    moment is the example; the last duration reported at the latest moment counts."""
    rows: list[Row] = [
        (5, "a", None, {"note": "one", "d": 1.0}),
        (5, "a", None, {"note": "two", "d": 2.0}),
    ]
    every = python_results(rows)["all"][None]
    assert (every["first_note"], every["last_d"]) == ("one", 2.0)
    left, right = Totals(TEST_FIGURES), Totals(TEST_FIGURES)
    add(left, rows[0])
    add(right, rows[1])
    left.merge(right)  # the merged part counts as added later
    every = left.results()["all"][None]
    assert (every["first_note"], every["last_d"]) == ("one", 2.0)
