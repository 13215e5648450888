"""Every figure of a report, defined once, for every engine.

A figure is a small table of named aggregates (count, sum, min, max, percentiles,
distinct count...) over named values of the entries of some kinds, optionally grouped
by one value (a tool's name, a session id...). :data:`FIGURES` lists them all. From
that one list:

- the Python engine's :class:`Totals` adds entries one at a time (a specialised
  ``add`` function is generated from the list, so the per-entry path stays flat), merges
  the totals of worker processes, and gives the :data:`Results`;
- a SQL engine renders one ``SELECT`` per figure with a :class:`Dialect` (DuckDB's is
  :data:`DUCKDB`; another database needs a dialect, not new queries) and reads its rows
  into the same :data:`Results`.

``analytics._summary.build_summary`` turns :data:`Results` into a ``Summary``, whichever
engine produced them. To add a figure: add a :class:`Figure` here, then read it in
``build_summary`` (and give it a field in the ``Summary`` models).

Rows whose group value is null (entries without a session id, for a figure grouped by
session) are left out of that figure. Values an aggregate cannot use (a missing or
non-numeric duration) are skipped by it, in both engines alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from pydantic_core import to_json

from ._quantiles import Quantiles

__all__ = [
    "COUNT_LIMIT",
    "DUCKDB",
    "FIGURES",
    "QUANTILES",
    "Aggregate",
    "Dialect",
    "Figure",
    "Results",
    "Spread",
    "Totals",
    "as_count",
    "as_number",
    "as_text",
]

# -- How a JSON value becomes a figure's value (the Python side of each rule) ---------

COUNT_LIMIT = 2**63
"""A count (tokens, files changed) is used when its magnitude is below this; larger
values are skipped, as SQL engines' 64-bit integers would overflow."""


def as_number(value: Any) -> float | None:
    """A JSON number as a float; ``None`` for anything else, and for a number no float
    holds (an integer beyond about 1.8e308, or an infinity a line spelled as 1e999):
    such values are skipped, never summed."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and +-inf give NaN
    if kind is bool or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if value - value == 0.0 else None


def as_count(value: Any) -> int | None:
    """A JSON number as a count (truncated to an integer), or ``None``."""
    number = as_number(value)
    if number is None or not -COUNT_LIMIT < number < COUNT_LIMIT:
        return None
    return int(number)


def as_text(value: Any, default: str = "?") -> str:
    """The name an entry gives (a tool's, an operation's...): a string as it is,
    ``default`` when missing or null, and anything else as its JSON text (as SQL
    engines give it)."""
    if value is None:
        return default
    if type(value) is str:
        return value
    return to_json(value).decode()


# -- Values: what an aggregate reads from an entry -------------------------------------


@dataclass(frozen=True)
class Value:
    """A value read from each entry. ``python`` is an expression over the locals of the
    generated ``add`` (``kind``, ``moment``, ``hour``, ``sid``, ``data``); ``sql``
    renders it in a dialect; ``from_sql`` turns what SQL returns into what Python
    holds (times come back as epoch microseconds)."""

    def python(self) -> str:
        raise NotImplementedError

    def sql(self, dialect: Dialect) -> str:
        raise NotImplementedError

    @property
    def nullable(self) -> bool:
        """Whether some entries have no such value (the generated code then checks)."""
        return True

    def from_sql(self, raw: Any) -> Any:
        return raw


@dataclass(frozen=True)
class Column(Value):
    """One of the entry's own fields: ``timestamp``, ``hour`` (of the timestamp, UTC),
    ``type`` or ``session_id``."""

    name: Literal["timestamp", "hour", "type", "session_id"]

    @property
    def nullable(self) -> bool:
        return self.name == "session_id"

    def python(self) -> str:
        return {"timestamp": "moment", "hour": "hour", "type": "kind", "session_id": "sid"}[
            self.name
        ]

    def sql(self, dialect: Dialect) -> str:
        return dialect.column(self.name)

    def from_sql(self, raw: Any) -> Any:
        if raw is None or self.name not in ("timestamp", "hour"):
            return raw
        if self.name == "hour":
            return (_EPOCH + timedelta(hours=raw)).isoformat()[:13]
        return _EPOCH + timedelta(microseconds=raw)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TIMESTAMP = Column("timestamp")
HOUR = Column("hour")
KIND = Column("type")
SESSION = Column("session_id")


@dataclass(frozen=True)
class Text(Value):
    """``data[key]`` as a name (:func:`as_text`)."""

    key: str
    default: str = "?"

    @property
    def nullable(self) -> bool:
        return False

    def python(self) -> str:
        # as_text, inlined for strings
        return (
            f"(_v if type(_v := data.get({self.key!r})) is str else as_text(_v, {self.default!r}))"
        )

    def sql(self, dialect: Dialect) -> str:
        return dialect.text(self.key, self.default)


@dataclass(frozen=True)
class Number(Value):
    """``data[key]`` as a finite float (:func:`as_number`), else null."""

    key: str

    def python(self) -> str:
        # as_number, inlined for finite floats
        return (
            f"(_v if type(_v := data.get({self.key!r})) is float and _v - _v == 0.0"
            " else as_number(_v))"
        )

    def sql(self, dialect: Dialect) -> str:
        return dialect.number(self.key)


@dataclass(frozen=True)
class Count(Value):
    """``data[key]`` as a count (:func:`as_count`), else null."""

    key: str

    def python(self) -> str:
        return f"as_count(data.get({self.key!r}))"

    def sql(self, dialect: Dialect) -> str:
        return dialect.count(self.key)


@dataclass(frozen=True)
class IsFalse(Value):
    """Condition: ``data[key]`` is the JSON ``false``."""

    key: str

    def python(self) -> str:
        return f"data.get({self.key!r}) is False"

    def sql(self, dialect: Dialect) -> str:
        return dialect.is_false(self.key)


@dataclass(frozen=True)
class NotBoolean(Value):
    """Condition: ``data[key]`` is missing or not a JSON boolean."""

    key: str

    def python(self) -> str:
        return f"type(data.get({self.key!r})) is not bool"

    def sql(self, dialect: Dialect) -> str:
        return dialect.not_boolean(self.key)


@dataclass(frozen=True)
class NonZero(Value):
    """Condition: a number that is there and not zero."""

    value: Value

    def python(self) -> str:
        return f"{self.value.python()} not in (None, 0.0)"

    def sql(self, dialect: Dialect) -> str:
        return f"coalesce({self.value.sql(dialect)} <> 0, false)"


@dataclass(frozen=True)
class AnyOf(Value):
    """Condition: one of ``conditions`` holds."""

    conditions: tuple[Value, ...]

    def python(self) -> str:
        return "(" + " or ".join(f"({c.python()})" for c in self.conditions) + ")"

    def sql(self, dialect: Dialect) -> str:
        return "(" + " OR ".join(f"({c.sql(dialect)})" for c in self.conditions) + ")"


@dataclass(frozen=True)
class AllOf(Value):
    """Condition: every one of ``conditions`` holds."""

    conditions: tuple[Value, ...]

    def python(self) -> str:
        return "(" + " and ".join(f"({c.python()})" for c in self.conditions) + ")"

    def sql(self, dialect: Dialect) -> str:
        return "(" + " AND ".join(f"({c.sql(dialect)})" for c in self.conditions) + ")"


# -- Aggregates ------------------------------------------------------------------------

QUANTILES = (0.50, 0.95, 0.99)
"""The percentiles a ``quantiles`` aggregate gives (nearest rank)."""


class Spread(NamedTuple):
    """What a ``quantiles`` aggregate gives: the :data:`QUANTILES` (nearest rank), the
    maximum (``None`` when no value), and whether the percentiles are exact."""

    percentiles: tuple[float | None, ...]
    maximum: float | None
    exact: bool


Op = Literal[
    "count", "count_if", "count_of", "sum", "min", "max", "distinct", "earliest", "latest",
    "quantiles",
]  # fmt: skip


@dataclass(frozen=True)
class Aggregate:
    """One aggregate of a figure.

    ``count`` rows; ``count_if`` rows where the condition ``value`` holds; ``count_of``
    rows where ``value`` is not null; ``sum``, ``min``, ``max`` of ``value`` (``sum`` is
    0 when no value); ``distinct`` the number of distinct non-null values;
    ``earliest`` / ``latest`` the non-null ``value`` of the row with the earliest /
    latest timestamp (a tie: the first / the last added); ``quantiles`` a
    :class:`Spread`.
    """

    op: Op
    value: Value | None = None


@dataclass(frozen=True)
class Figure:
    """Named aggregates over the entries of ``kinds`` (all kinds when ``None``), one
    row per distinct ``group`` value (one row in all when ``None``)."""

    name: str
    kinds: tuple[str, ...] | None
    group: Value | None
    aggregates: dict[str, Aggregate] = field(hash=False)


def _runs(name: str, kind: str, key: str, failed: Value) -> Figure:
    return Figure(
        name,
        (kind,),
        Text(key),
        {
            "count": Aggregate("count"),
            "failures": Aggregate("count_if", failed),
            "duration_ms": Aggregate("quantiles", Number("duration_ms")),
        },
    )


_FAILED = IsFalse("success")
_COMMAND_FAILED = AnyOf((_FAILED, AllOf((NotBoolean("success"), NonZero(Number("exit_code"))))))
"""A command without ``success`` failed when its ``exit_code`` is not zero."""

FIGURES: tuple[Figure, ...] = (
    Figure(
        "entries",
        None,
        None,
        {
            "count": Aggregate("count"),
            "first": Aggregate("min", TIMESTAMP),
            "last": Aggregate("max", TIMESTAMP),
            "sessions": Aggregate("distinct", SESSION),
        },
    ),
    Figure("by_type", None, KIND, {"count": Aggregate("count")}),
    Figure("timeline", None, HOUR, {"count": Aggregate("count")}),
    _runs("tools", "tool_use", "tool_name", _FAILED),
    _runs("operations", "performance", "operation", _FAILED),
    _runs("agents", "agent_execution", "agent_name", _FAILED),
    _runs("commands", "command_executed", "command", _COMMAND_FAILED),
    _runs("hooks", "hook_triggered", "hook_name", _FAILED),
    Figure(
        "checkpoints",
        ("checkpoint_created",),
        None,
        {
            "count": Aggregate("count"),
            "sessions": Aggregate("distinct", SESSION),
            "files_changed_n": Aggregate("count_of", Count("files_changed")),
            "files_changed_total": Aggregate("sum", Count("files_changed")),
            "files_changed_max": Aggregate("max", Count("files_changed")),
        },
    ),
    Figure("session_starts", ("session_start",), SESSION, {"at": Aggregate("min", TIMESTAMP)}),
    Figure(
        "session_ends",
        ("session_end",),
        SESSION,
        {
            "at": Aggregate("max", TIMESTAMP),
            "reported": Aggregate("latest", Number("duration_seconds")),
        },
    ),
    Figure(
        "errors",
        ("error_occurred",),
        Text("error_type"),
        {
            "count": Aggregate("count"),
            "first": Aggregate("min", TIMESTAMP),
            "example": Aggregate("earliest", Text("error_message", "")),
        },
    ),
    Figure(
        "tokens_by_model",
        ("token_usage",),
        Text("model"),
        {
            "calls": Aggregate("count"),
            "input_tokens": Aggregate("sum", Count("input_tokens")),
            "output_tokens": Aggregate("sum", Count("output_tokens")),
        },
    ),
    Figure(
        "session_tokens",
        ("token_usage",),
        SESSION,
        {
            "input_tokens": Aggregate("sum", Count("input_tokens")),
            "output_tokens": Aggregate("sum", Count("output_tokens")),
        },
    ),
)
"""Every figure a ``Summary`` is built from."""

Results = dict[str, dict[Hashable, dict[str, Any]]]
"""Per figure name, per group value (``None`` for an ungrouped figure), the value of
each named aggregate: what every engine gives ``build_summary``."""


# -- The Python engine -----------------------------------------------------------------


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


def python_source(figures: tuple[Figure, ...] = FIGURES) -> str:
    """The source of the Python engine's ``add`` for ``figures``: the figures of every
    kind first, then one branch per entry kind holding the figures of that kind, each
    aggregate inlined (as one would write it by hand, for speed)."""
    lines = ["def make_add(states, new_rows):"]
    for index in range(len(figures)):
        lines.append(f"    state_{index} = states[{index}]")
        lines.append(f"    new_row_{index} = new_rows[{index}]")
    lines.append("    def add(kind, moment, hour, sid, data):")
    every = [(i, f) for i, f in enumerate(figures) if f.kinds is None]
    body = ["    " * 2 + line for line in _figures_code(every)]
    kinds: dict[str, list[tuple[int, Figure]]] = {}
    for index, figure in enumerate(figures):
        for kind in figure.kinds or ():
            kinds.setdefault(kind, []).append((index, figure))
    for number, (kind, some) in enumerate(kinds.items()):
        body.append(f"        {'if' if number == 0 else 'elif'} kind == {kind!r}:")
        body += ["    " * 3 + line for line in _figures_code(some)]
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


AddFunction = Callable[[str, datetime, str, "str | None", dict[str, Any]], None]


@dataclass(frozen=True)
class _Engine:
    """What the Python engine runs for some figures: the generated ``make_add`` and,
    per figure, a function giving a new row of states."""

    make_add: Callable[[list[Any], list[Callable[[], list[Any]]]], AddFunction]
    new_rows: list[Callable[[], list[Any]]]


@functools.cache
def _engine(figures: tuple[Figure, ...]) -> _Engine:
    namespace: dict[str, Any] = {"as_text": as_text, "as_number": as_number, "as_count": as_count}
    exec(compile(python_source(figures), "<analytics figures>", "exec"), namespace)
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

    def __init__(self, figures: tuple[Figure, ...] = FIGURES) -> None:
        self.figures = figures
        engine = _engine(figures)
        self.states: list[Any] = [
            {} if figure.group is not None else new_row()
            for figure, new_row in zip(figures, engine.new_rows, strict=True)
        ]
        self.add: AddFunction = engine.make_add(self.states, engine.new_rows)
        """Count one entry: ``add(kind, moment, hour, session_id, data)``, ``moment`` in
        UTC, ``hour`` its first 13 characters in ISO form (``YYYY-MM-DDTHH``)."""

    def __getstate__(self) -> dict[str, Any]:  # worker processes send totals back
        return {"figures": self.figures, "states": self.states}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.figures, self.states = state["figures"], state["states"]
        engine = _engine(self.figures)
        self.add = engine.make_add(self.states, engine.new_rows)

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
        return results


# -- SQL engines -----------------------------------------------------------------------


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


class DuckDB(Dialect):
    """DuckDB's spelling."""

    _NUMBER = "('DOUBLE', 'UBIGINT', 'BIGINT')"

    def column(self, name: str) -> str:
        return {
            "timestamp": "epoch_us(timestamp)",
            "hour": "epoch_us(timestamp) // 3600000000",
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
