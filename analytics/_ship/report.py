"""The report's figures computed by a central engine, over what was shipped to it.

The queries come from ``analytics._read.figures.FIGURES`` in the engine's dialect,
as for DuckDB: a figure is defined once, whatever runs it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Unpack

from .._read.figures import FIGURES, SERIES, series_width
from .._read.filter import Filter, FilterKeywords
from .._read.summary import Summary, build_summary
from .engine import Engine, open_engine
from .target import parse_target

__all__ = ["summarize_central", "summarize_engine"]


async def summarize_engine(
    engine: Engine, *, source: str | None = None, **filters: Unpack[FilterKeywords]
) -> Summary:
    """The :class:`Summary` of the entries in ``engine``'s table (an opened engine),
    after dedup, computed on the server; only those shipped from ``source`` if given.

    The numbers equal the Python engine's over the same entries. (Lines that are not
    entries are never shipped, so ``bad_lines`` is 0.)
    """
    keep = Filter(**filters)
    dialect = engine.dialect
    where = []
    timestamp = dialect.column("timestamp")
    if keep.since is not None:
        where.append(f"{timestamp} >= {_epoch_us(keep.since)}")
    if keep.until is not None:
        where.append(f"{timestamp} < {_epoch_us(keep.until)}")
    if keep.type_names:
        names = ", ".join(dialect.string(name) for name in sorted(keep.type_names))
        where.append(f"type IN ({names})")
    for column, value in (
        ("session_id", keep.session_id),
        ("user_id", keep.user_id),
        ("source", source),
    ):
        if value is not None:
            where.append(f"{column} = {dialect.string(value)}")
    table = engine.entries(where)
    results = {}
    for figure in FIGURES:
        rows = await engine.fetch(dialect.query(figure, table))
        results[figure.name] = dialect.results(figure, rows)
    width = series_width(results)  # the span is known: the series' buckets follow
    for one in SERIES:
        rows = await engine.fetch(dialect.series_query(one, width, table))
        results[one.name] = dialect.series_results(rows)
    return build_summary(results, 0, exact_limit=sys.maxsize)


def _epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


async def summarize_central(
    url: str, *, source: str | None = None, **filters: Unpack[FilterKeywords]
) -> Summary:
    """The :class:`Summary` of what was shipped to ``url`` (the URL given to the
    shipper), computed by that engine: the whole fleet, or only the entries shipped
    from ``source`` (a shipper's ``source``).

    Raises:
        TargetError: the URL cannot be used.
        MissingDependencyError: the engine's client is not installed.
        ShipRetryableError: the engine cannot be reached.
        ShipFatalError: authentication failed, or the database does not exist.
    """
    keep = Filter(**filters)  # bad filters fail before any connection
    del keep
    engine = open_engine(parse_target(url))
    await engine.open()
    try:
        return await summarize_engine(engine, source=source, **filters)
    finally:
        await engine.aclose()
