"""The figures of ``analytics._read.figures.FIGURES`` in SQL: one ``SELECT`` per figure,
spelled by a :class:`Dialect`, its rows read back as the Python engine's ``Results``.

A dialect spells only the values (a JSON number, a name, a condition) and what differs
between databases (percentiles, ``arg_min``...); the queries come from the figures.
DuckDB's is :data:`DUCKDB`; ClickHouse or PostgreSQL would be a subclass each.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .figures import COUNT_LIMIT, QUANTILES, Aggregate, Figure, Series, Spread

__all__ = ["DUCKDB", "Dialect", "DuckDB"]


class Dialect:
    """How one SQL database spells the values and aggregates of :data:`FIGURES`, over a
    table with the columns ``timestamp``, ``type``, ``session_id`` and ``data`` (JSON).
    A new database subclasses this and overrides what it spells differently."""

    def column(self, name: str) -> str:
        """``timestamp`` as epoch microseconds, ``hour`` as epoch hours (integers)."""
        raise NotImplementedError

    def text(self, key: str, default: str) -> str:
        raise NotImplementedError

    def number(self, key: str) -> str:
        raise NotImplementedError

    def count(self, key: str) -> str:
        raise NotImplementedError

    def is_false(self, key: str) -> str:
        raise NotImplementedError

    def not_boolean(self, key: str) -> str:
        raise NotImplementedError

    def string(self, text: str) -> str:
        """``text`` as a SQL string literal."""
        return _quote(text)

    order_time = "timestamp"
    """What ``earliest`` and ``latest`` order by."""

    def aggregate(self, aggregate: Aggregate) -> list[str]:
        """The SQL columns of one aggregate (``quantiles``: the percentiles, then the
        maximum)."""
        op = aggregate.op
        if op == "count":
            return ["count(*)"]
        assert aggregate.value is not None, op
        v = aggregate.value.sql(self)
        if op == "quantiles":
            return [self.percentile(v, q) for q in QUANTILES] + [f"max({v})"]
        return [
            {
                "count_if": "count(*) FILTER (WHERE {v})",
                "count_of": "count({v})",
                "sum": "coalesce(sum({v}), 0)",
                "min": "min({v})",
                "max": "max({v})",
                "distinct": "count(DISTINCT {v})",
                "earliest": "arg_min({v}, {t}) FILTER (WHERE {v} IS NOT NULL)",
                "latest": "arg_max({v}, {t}) FILTER (WHERE {v} IS NOT NULL)",
            }[op].format(v=v, t=self.order_time)
        ]

    def percentile(self, value: str, q: float) -> str:
        """The nearest-rank ``q`` percentile of ``value``."""
        return f"percentile_disc({q}) WITHIN GROUP (ORDER BY {value})"

    def query(self, figure: Figure, table: str) -> str:
        """One ``SELECT`` giving the figure's rows: the group value (if any), then each
        aggregate's columns."""
        columns = [c for a in figure.aggregates.values() for c in self.aggregate(a)]
        where = ["true"]
        if figure.kinds is not None:
            where.append(f"type IN ({', '.join(repr(kind) for kind in figure.kinds)})")
        if figure.group is None:
            return f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)}"
        group = figure.group.sql(self)
        where.append(f"{group} IS NOT NULL")
        return (
            f"SELECT {group}, {', '.join(columns)} FROM {table}"
            f" WHERE {' AND '.join(where)} GROUP BY 1"
        )

    def results(self, figure: Figure, rows: list[tuple[Any, ...]]) -> dict[Hashable, Any]:
        """The rows :meth:`query` returned, as the figure's part of :data:`Results`."""
        figures: dict[Hashable, Any] = {}
        for row in rows:
            cells = iter(row)
            key = None if figure.group is None else figure.group.from_sql(next(cells))
            values = {}
            for name, aggregate in figure.aggregates.items():
                if aggregate.op == "quantiles":
                    *percentiles, maximum = (next(cells) for _ in range(len(QUANTILES) + 1))
                    values[name] = Spread(tuple(percentiles), maximum, True)
                elif aggregate.op in ("min", "max", "earliest", "latest"):
                    assert aggregate.value is not None
                    values[name] = aggregate.value.from_sql(next(cells))
                else:
                    values[name] = next(cells)
            figures[key] = values
        return figures

    def series_query(self, series: Series, width: int, table: str) -> str:
        """One ``SELECT`` giving the series' rows at buckets of ``width`` seconds: the
        bucket's start (epoch microseconds), the key, the amount."""
        us = self.column("timestamp")
        w = width * 1_000_000
        bucket = f"({us} - ((({us}) % {w}) + {w}) % {w})"  # floored, as Python's %
        key = series.key.sql(self)
        if series.amounts:
            amount = " + ".join(f"coalesce(sum({v.sql(self)}), 0)" for v in series.amounts)
        else:
            amount = "count(*)"
        where = [f"{key} IS NOT NULL"]
        if series.kinds is not None:
            where.append(f"type IN ({', '.join(self.string(kind) for kind in series.kinds)})")
        return (
            f"SELECT {bucket}, {key}, {amount} FROM {table}"
            f" WHERE {' AND '.join(where)} GROUP BY {bucket}, {key}"
        )

    def series_results(self, rows: list[tuple[Any, ...]]) -> dict[Hashable, Any]:
        """The rows :meth:`series_query` returned, as the series' part of :data:`Results`."""
        return {(int(bucket) // 1_000_000, key): {"amount": n} for bucket, key, n in rows}


class DuckDB(Dialect):
    """DuckDB's spelling."""

    _NUMBER = "('DOUBLE', 'UBIGINT', 'BIGINT')"

    def column(self, name: str) -> str:
        return {
            "timestamp": "epoch_us(timestamp)",
            # floored (before 1970 too), as the Python engine's hour
            "hour": "(epoch_us(timestamp) - (epoch_us(timestamp) % 3600000000 + 3600000000)"
            " % 3600000000) // 3600000000",
            "type": "type",
            "session_id": "session_id",
        }[name]

    def text(self, key: str, default: str) -> str:
        """A string as it is, JSON text for other values, ``default`` when missing or
        null."""
        return f"coalesce(data->>{_quote(key)}, {_quote(default)})"

    def number(self, key: str) -> str:
        """DOUBLE; NULL if not a number, or one no DOUBLE holds (beyond about 1.8e308)."""
        path = f"data->{_quote(key)}"
        return (
            f"CASE WHEN json_type({path}) IN {self._NUMBER}"
            f" AND isfinite(TRY_CAST({path} AS DOUBLE)) THEN TRY_CAST({path} AS DOUBLE) END"
        )

    def count(self, key: str) -> str:
        """HUGEINT, truncated; NULL if not a number or not below ``COUNT_LIMIT``."""
        number = self.number(key)
        return f"CASE WHEN abs({number}) < {float(COUNT_LIMIT)!r} THEN trunc({number})::HUGEINT END"

    def is_false(self, key: str) -> str:
        path = f"data->{_quote(key)}"
        return f"(json_type({path}) = 'BOOLEAN' AND data->>{_quote(key)} = 'false')"

    def not_boolean(self, key: str) -> str:
        return f"coalesce(json_type(data->{_quote(key)}), '') <> 'BOOLEAN'"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


DUCKDB = DuckDB()
