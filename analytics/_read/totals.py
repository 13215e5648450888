"""The Python engine's arithmetic: the figures of ``analytics._read.figures.FIGURES``, added
one entry at a time, merged across worker processes, read as ``Results``.

The per-entry ``add`` is generated from the figures (one branch per entry kind, each
aggregate inlined, as one would write it by hand), because an interpreter walking the
figures for each entry was several times slower at this step, which is a large part of
the engine's cost per entry. ``python_source()`` shows the code; ``merge`` and
``results``, run once per part, interpret the figures plainly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .figures import (
    BUCKET_SECONDS,
    FIGURES,
    MAX_BUCKETS,
    QUANTILES,
    SERIES,
    Aggregate,
    Figure,
    Results,
    Series,
    Spread,
    as_count,
    as_number,
    as_text,
    bucket_seconds,
    epoch_seconds,
)
from .quantiles import Quantiles

__all__ = ["Totals", "python_source"]


def _python_new(aggregate: Aggregate) -> Any:
    """The state an aggregate starts from (``count`` and ``sum``: 0)."""
    if aggregate.op in ("count", "count_if", "count_of", "sum"):
        return 0
    if aggregate.op == "distinct":
        return set()
    if aggregate.op == "quantiles":
        return Quantiles()
    return None  # min, max; earliest, latest: (moment, value)


def _python_add(aggregate: Aggregate, slot: str) -> list[str]:
    """Statements adding one entry to the state at ``slot`` (``row[i]``)."""
    op, value = aggregate.op, aggregate.value
    if op == "count":
        return [f"{slot} += 1"]
    assert value is not None, op
    v = value.python()
    if op == "count_if":
        return [f"if {v}:", f"    {slot} += 1"]
    checked = [f"x = {v}", "if x is not None:"] if value.nullable else [f"x = {v}", "if True:"]
    if op == "count_of":
        return [*checked, f"    {slot} += 1"]
    if op == "sum":
        return [*checked, f"    {slot} += x"]
    if op == "distinct":
        return [*checked, f"    {slot}.add(x)"]
    if op == "quantiles":
        return [*checked, f"    {slot}.add(x)"]
    if op in ("min", "max"):
        better = "<" if op == "min" else ">"
        return [*checked, f"    if {slot} is None or x {better} {slot}:", f"        {slot} = x"]
    # earliest: strictly earlier replaces (a tie keeps the first); latest: a tie replaces
    better = "<" if op == "earliest" else ">="
    return [
        *checked,
        f"    if {slot} is None or moment {better} {slot}[0]:",
        f"        {slot} = (moment, x)",
    ]


def _python_merge(aggregate: Aggregate, mine: Any, theirs: Any) -> Any:
    """The state of both, as if ``theirs``'s entries were added after ``mine``'s."""
    op = aggregate.op
    if op in ("count", "count_if", "count_of", "sum"):
        return mine + theirs
    if op == "distinct":
        mine |= theirs
        return mine
    if op == "quantiles":
        mine.merge(theirs)
        return mine
    if mine is None or theirs is None:
        return theirs if mine is None else mine
    if op == "min":
        return theirs if theirs < mine else mine
    if op == "max":
        return theirs if theirs > mine else mine
    if op == "earliest":
        return theirs if theirs[0] < mine[0] else mine
    return theirs if theirs[0] >= mine[0] else mine  # latest


def _python_result(aggregate: Aggregate, state: Any) -> Any:
    op = aggregate.op
    if op == "distinct":
        return len(state)
    if op == "quantiles":
        return Spread(
            tuple(state.quantile(q) for q in QUANTILES),
            state.maximum if state.count else None,
            state.exact,
        )
    if op in ("earliest", "latest"):
        return None if state is None else state[1]
    return state


def python_source(figures: tuple[Figure, ...] = FIGURES, series: tuple[Series, ...] = ()) -> str:
    """The source of the Python engine's ``add`` for ``figures`` and ``series``: those
    of every kind first, then one branch per entry kind holding those of that kind,
    each aggregate inlined (as one would write it by hand, for speed)."""
    lines = ["def make_add(states, new_rows, series_states):"]
    for index in range(len(figures)):
        lines.append(f"    state_{index} = states[{index}]")
        lines.append(f"    new_row_{index} = new_rows[{index}]")
    for index in range(len(series)):
        lines.append(f"    series_{index} = series_states[{index}]")
    lines.append("    def add(kind, moment, hour, sid, data):")
    every = [(i, f) for i, f in enumerate(figures) if f.kinds is None]
    body = ["    " * 2 + line for line in _figures_code(every)]
    if series:
        body += [
            "        # the entry's epoch second: its hour's (cached), then within the hour",
            "        sec = HOURS.get(hour)",
            "        if sec is None:",
            "            sec = hour_seconds(hour)",
            "        sec += moment.minute * 60 + moment.second",
        ]
    every_series = [(i, t) for i, t in enumerate(series) if t.kinds is None]
    body += ["    " * 2 + line for line in _series_code(every_series)]
    kinds: dict[str, list[tuple[int, Figure]]] = {}
    kinds_series: dict[str, list[tuple[int, Series]]] = {}
    for index, figure in enumerate(figures):
        for kind in figure.kinds or ():
            kinds.setdefault(kind, []).append((index, figure))
    for index, one in enumerate(series):
        for kind in one.kinds or ():
            kinds.setdefault(kind, [])
            kinds_series.setdefault(kind, []).append((index, one))
    for number, (kind, some) in enumerate(kinds.items()):
        body.append(f"        {'if' if number == 0 else 'elif'} kind == {kind!r}:")
        code = _figures_code(some) + _series_code(kinds_series.get(kind, []))
        body += ["    " * 3 + line for line in code or ["pass"]]
    lines += body or ["        pass"]
    lines.append("    return add")
    return "\n".join(lines) + "\n"


def _figures_code(figures: list[tuple[int, Figure]]) -> list[str]:
    code: list[str] = []
    for index, figure in figures:
        code.append(f"# {figure.name}")
        if figure.group is None:
            code.append(f"row = state_{index}")
            indent = ""
        else:
            code += [
                f"key = {figure.group.python()}",
                "if key is not None:" if figure.group.nullable else "if True:",
                f"    row = state_{index}.get(key)",
                "    if row is None:",
                f"        row = state_{index}[key] = new_row_{index}()",
            ]
            indent = "    "
        for slot, aggregate in enumerate(figure.aggregates.values()):
            code += [indent + line for line in _python_add(aggregate, f"row[{slot}]")]
    return code


def _series_code(series: list[tuple[int, Series]]) -> list[str]:
    code: list[str] = []
    for index, one in series:
        code.append(f"# {one.name}")
        code.append(f"key = (sec - sec % series_{index}.width, {one.key.python()})")
        indent = ""
        if one.key.nullable:
            code.append("if key[1] is not None:")
            indent = "    "
        if one.amounts:
            code.append(indent + "amount = 0")
            for value in one.amounts:
                code += [
                    indent + f"x = {value.python()}",
                    indent + "if x is not None:",
                    indent + "    amount += x",
                ]
        else:
            code.append(indent + "amount = 1")
        code += [
            indent + f"counts = series_{index}.counts",
            indent + "n = counts.get(key)",
            indent + "if n is None:",
            indent + f"    series_{index}.insert(key, amount)",
            indent + "else:",
            indent + "    counts[key] = n + amount",
        ]
    return code


class _SeriesState:
    """A series' counts in the Python engine: per ``(bucket start, key)``, buckets of
    ``width`` seconds, the finest of ``BUCKET_SECONDS`` giving at most ``MAX_BUCKETS``
    buckets over the buckets seen (so never wider than ``series_width``'s)."""

    __slots__ = ("counts", "high", "low", "width")

    def __init__(self) -> None:
        self.width = BUCKET_SECONDS[0]
        self.counts: dict[tuple[int, Any], Any] = {}
        self.low: int | None = None
        self.high: int | None = None

    def insert(self, key: tuple[int, Any], amount: Any) -> None:
        """A new ``(bucket, key)``: widen the buckets if there are now too many."""
        self.counts[key] = amount
        bucket = key[0]
        if self.low is None or bucket < self.low:
            self.low = bucket
        if self.high is None or bucket > self.high:
            self.high = bucket
        if self.high // self.width - self.low // self.width >= MAX_BUCKETS:
            self.widen(bucket_seconds(self.low, self.high))

    def widen(self, width: int) -> None:
        if width <= self.width:
            return
        counts: dict[tuple[int, Any], Any] = {}
        for (bucket, key), amount in self.counts.items():
            merged = (bucket - bucket % width, key)
            counts[merged] = counts.get(merged, 0) + amount
        self.counts, self.width = counts, width
        if self.low is not None and self.high is not None:
            self.low, self.high = self.low - self.low % width, self.high - self.high % width

    def merge(self, other: _SeriesState) -> None:
        if other.low is None or other.high is None:
            return
        low = other.low if self.low is None else min(self.low, other.low)
        high = other.high if self.high is None else max(self.high, other.high)
        width = max(self.width, other.width, bucket_seconds(low, high))
        self.widen(width)
        self.low, self.high = low - low % width, high - high % width
        for (bucket, key), amount in other.counts.items():
            merged = (bucket - bucket % width, key)
            self.counts[merged] = self.counts.get(merged, 0) + amount

    def __getstate__(self) -> tuple[Any, ...]:
        return self.width, self.counts, self.low, self.high

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.width, self.counts, self.low, self.high = state


_HOURS: dict[str, int] = {}
"""Epoch seconds of the hours met (``YYYY-MM-DDTHH``, UTC): subtracting aware
datetimes per entry costs several times more."""


def _hour_seconds(hour: str) -> int:
    if len(_HOURS) >= 100_000:
        _HOURS.clear()
    seconds = _HOURS[hour] = epoch_seconds(datetime.fromisoformat(hour + ":00+00:00"))
    return seconds


AddFunction = Callable[[str, datetime, str, "str | None", dict[str, Any]], None]


@dataclass(frozen=True)
class _Engine:
    """What the Python engine runs for some figures: the generated ``make_add`` and,
    per figure, a function giving a new row of states."""

    make_add: Callable[[list[Any], list[Callable[[], list[Any]]], list[_SeriesState]], AddFunction]
    new_rows: list[Callable[[], list[Any]]]


@functools.cache
def _engine(figures: tuple[Figure, ...], series: tuple[Series, ...]) -> _Engine:
    names = [figure.name for figure in figures] + [one.name for one in series]
    if len(set(names)) < len(names):
        raise ValueError("two figures have the same name")
    namespace: dict[str, Any] = {
        "as_text": as_text,
        "as_number": as_number,
        "as_count": as_count,
        "HOURS": _HOURS,
        "hour_seconds": _hour_seconds,
    }
    exec(compile(python_source(figures, series), "<analytics figures>", "exec"), namespace)
    return _Engine(namespace["make_add"], [_new_row(figure) for figure in figures])


def _new_row(figure: Figure) -> Callable[[], list[Any]]:
    aggregates = tuple(figure.aggregates.values())
    return lambda: [_python_new(a) for a in aggregates]


class Totals:
    """The Python engine's state: the aggregates of every figure (:data:`FIGURES`
    unless told), added one entry at a time (:attr:`add`), merged from other processes
    (:meth:`merge`), and read as :data:`Results` (:meth:`results`).

    It owns only the arithmetic; what the figures are is :data:`FIGURES`' business and
    what they mean is ``build_summary``'s. Nothing depends on the order entries arrive
    in (the earliest error message, the first session start, the last session end are
    chosen by timestamp), so files can be summarized one after another, or in several
    processes, and merged.
    """

    def __init__(
        self, figures: tuple[Figure, ...] = FIGURES, series: tuple[Series, ...] | None = None
    ) -> None:
        self.figures = figures
        self.series = (SERIES if figures is FIGURES else ()) if series is None else series
        """:data:`SERIES` with the default figures, else none unless told."""
        engine = _engine(figures, self.series)
        self.states: list[Any] = [
            {} if figure.group is not None else new_row()
            for figure, new_row in zip(figures, engine.new_rows, strict=True)
        ]
        self.series_states = [_SeriesState() for _ in self.series]
        self.add: AddFunction = engine.make_add(self.states, engine.new_rows, self.series_states)
        """Count one entry: ``add(kind, moment, hour, session_id, data)``, ``moment`` in
        UTC, ``hour`` its first 13 characters in ISO form (``YYYY-MM-DDTHH``)."""

    def __getstate__(self) -> dict[str, Any]:  # worker processes send totals back
        return {
            "figures": self.figures,
            "states": self.states,
            "series": self.series,
            "series_states": self.series_states,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.figures, self.states = state["figures"], state["states"]
        self.series, self.series_states = state["series"], state["series_states"]
        engine = _engine(self.figures, self.series)
        self.add = engine.make_add(self.states, engine.new_rows, self.series_states)

    def value(self, figure_name: str, aggregate_name: str) -> Any:
        """One aggregate of an ungrouped figure, now (``value("entries", "count")``)."""
        for figure, state in zip(self.figures, self.states, strict=True):
            if figure.name == figure_name:
                names = list(figure.aggregates)
                index = names.index(aggregate_name)
                return _python_result(figure.aggregates[aggregate_name], state[index])
        raise KeyError(figure_name)

    def merge(self, other: Totals) -> None:
        """Add everything ``other`` counted (the files it read), as if read here."""
        for index, figure in enumerate(self.figures):
            aggregates = tuple(figure.aggregates.values())
            mine, theirs = self.states[index], other.states[index]
            if figure.group is None:
                mine[:] = [
                    _python_merge(a, m, t) for a, m, t in zip(aggregates, mine, theirs, strict=True)
                ]
                continue
            for key, row in theirs.items():
                known = mine.get(key)
                if known is None:
                    mine[key] = row
                else:
                    known[:] = [
                        _python_merge(a, m, t)
                        for a, m, t in zip(aggregates, known, row, strict=True)
                    ]
        for mine_series, theirs_series in zip(self.series_states, other.series_states, strict=True):
            mine_series.merge(theirs_series)

    def results(self) -> Results:
        """Every figure's rows, with each aggregate's final value."""
        results: Results = {}
        for figure, state in zip(self.figures, self.states, strict=True):
            names = tuple(figure.aggregates)
            aggregates = tuple(figure.aggregates.values())
            rows = {None: state} if figure.group is None else state
            results[figure.name] = {
                key: {
                    n: _python_result(a, s) for n, a, s in zip(names, aggregates, row, strict=True)
                }
                for key, row in rows.items()
            }
        for one, counts in zip(self.series, self.series_states, strict=True):
            results[one.name] = {key: {"amount": n} for key, n in counts.counts.items()}
        return results
