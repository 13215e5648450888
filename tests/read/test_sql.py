"""The figures in SQL: a dialect spells only values and percentiles, and every figure
runs in DuckDB."""

from __future__ import annotations

from analytics import Summary
from analytics._read.figures import (
    FIGURES,
)
from analytics._read.sql import Dialect
from analytics._read.summary import build_summary
from analytics._read.totals import Totals

from ..helpers import (
    TEST_FIGURES,
    sql_results,
)


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


def test_every_figure_runs_in_duckdb_and_nothing_gives_the_empty_summary() -> None:
    """The real figures, rendered for DuckDB, run on an empty table; both engines'
    results of nothing give the empty Summary."""
    assert build_summary(sql_results([], FIGURES)) == Summary()
    assert build_summary(Totals().results()) == Summary()
