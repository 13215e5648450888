"""Every figure of a report, defined once, for every engine.

A figure is a small table of named aggregates (count, sum, min, max, percentiles,
distinct count...) over named values of the entries of some kinds, optionally grouped
by one value (a tool's name, a session id...). :data:`FIGURES` lists them all. From
that one list:

- the Python engine's ``analytics._read.totals.Totals`` adds entries one at a time (a
  specialised ``add`` function is generated from the list, so the per-entry path stays
  flat), merges the totals of worker processes, and gives the :data:`Results`;
- a SQL engine renders one ``SELECT`` per figure with an ``analytics._read.sql.Dialect``
  (DuckDB's is ``DUCKDB``; another database needs a dialect, not new queries) and
  reads its rows into the same :data:`Results`.

``analytics._read.summary.build_summary`` turns :data:`Results` into a ``Summary``, whichever
engine produced them. To add a figure: add a :class:`Figure` here, then read it in
``build_summary`` (and give it a field in the ``Summary`` models).

Rows whose group value is null (entries without a session id, for a figure grouped by
session) are left out of that figure. Values an aggregate cannot use (a missing or
non-numeric duration) are skipped by it, in both engines alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic_core import to_json

if TYPE_CHECKING:
    from .sql import Dialect

__all__ = [
    "BUCKET_SECONDS",
    "COUNT_LIMIT",
    "FIGURES",
    "HOUR",
    "KIND",
    "MAX_BUCKETS",
    "QUANTILES",
    "SERIES",
    "SESSION",
    "TIMESTAMP",
    "Aggregate",
    "AllOf",
    "AnyOf",
    "Column",
    "Count",
    "Figure",
    "IsFalse",
    "NonZero",
    "NotBoolean",
    "Number",
    "Results",
    "Series",
    "Spread",
    "Text",
    "Value",
    "as_count",
    "as_number",
    "as_text",
    "bucket_seconds",
    "epoch_seconds",
    "series_width",
    "text_keys",
]

# -- How a JSON value becomes a figure's value (the Python side of each rule) ---------

COUNT_LIMIT = 2**63
"""A count (tokens, files changed) is used when its magnitude is below this; larger
values are skipped, as SQL engines' 64-bit integers would overflow."""


_EXACT_INT = 2**53
"""Integers up to this magnitude are floats exactly."""


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
        # as_number, inlined for finite floats and for integers any float holds
        return (
            f"(_v if (_t := type(_v := data.get({self.key!r}))) is float and _v - _v == 0.0"
            f" else float(_v) if _t is int and {-COUNT_LIMIT} < _v < {COUNT_LIMIT}"
            " else as_number(_v))"
        )

    def sql(self, dialect: Dialect) -> str:
        return dialect.number(self.key)


@dataclass(frozen=True)
class Count(Value):
    """``data[key]`` as a count (:func:`as_count`), else null."""

    key: str

    def python(self) -> str:
        # as_count, inlined for integers a float holds exactly (as_count goes through
        # a float)
        return (
            f"(_v if type(_v := data.get({self.key!r})) is int"
            f" and {-_EXACT_INT} <= _v <= {_EXACT_INT} else as_count(_v))"
        )

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


# -- Series: amounts over time, per bucket of an adaptive width -----------------------

BUCKET_SECONDS = (1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 28 * 86400, 364 * 86400)
"""The widths a series' buckets can have, in seconds; each divides the next, so the
buckets of a width are unions of those of the widths before it. Buckets start at
multiples of their width since the Unix epoch (UTC)."""

MAX_BUCKETS = 180
"""A series has at most this many buckets (but for spans beyond 180 * 364 days)."""


def bucket_seconds(first: int, last: int) -> int:
    """The width of the buckets of a span from ``first`` to ``last`` (epoch seconds):
    the smallest of :data:`BUCKET_SECONDS` giving at most :data:`MAX_BUCKETS` buckets."""
    for width in BUCKET_SECONDS:
        if last // width - first // width < MAX_BUCKETS:
            return width
    return BUCKET_SECONDS[-1]


def epoch_seconds(moment: datetime) -> int:
    """``moment``'s whole seconds since the epoch (floored, exactly)."""
    delta = moment - _EPOCH
    return delta.days * 86400 + delta.seconds


def series_width(results: Results) -> int:
    """The bucket width of every series, from the span of all entries (1 when none)."""
    entries = results["entries"][None]
    first, last = entries["first"], entries["last"]
    if first is None or last is None:
        return BUCKET_SECONDS[0]
    return bucket_seconds(epoch_seconds(first), epoch_seconds(last))


@dataclass(frozen=True)
class Series:
    """The entries of ``kinds`` (all kinds when ``None``) over time: per bucket (of
    the width :func:`series_width` gives) and per ``key`` value (null: left out), the
    number of entries, or when ``amounts`` are given the sum of their non-null values.

    Its part of :data:`Results` is keyed by ``(bucket start in epoch seconds, key)``,
    each row ``{"amount": n}``. An engine may give finer buckets (of an earlier width):
    ``build_summary`` merges them into buckets of the final width.
    """

    name: str
    kinds: tuple[str, ...] | None
    key: Value
    amounts: tuple[Value, ...] = ()


SERIES: tuple[Series, ...] = (
    Series("series", None, KIND),
    Series("errors_series", ("error_occurred",), Text("error_type")),
    Series(
        "tokens_series",
        ("token_usage",),
        Text("model"),
        (Count("input_tokens"), Count("output_tokens")),
    ),
)
"""Every series a ``Summary`` is built from: entries by type, errors by type, tokens
(input and output) by model."""


def text_keys(
    figures: tuple[Figure, ...] = FIGURES, series: tuple[Series, ...] = SERIES
) -> dict[str | None, frozenset[str]]:
    """The keys of ``data`` read as names (:class:`Text`), per entry kind (``None``:
    by the figures of every kind, which each kind's set includes)."""
    keys: dict[str | None, set[str]] = {None: set()}
    parts: list[tuple[tuple[str, ...] | None, list[Value | None]]] = [
        (f.kinds, [f.group, *(a.value for a in f.aggregates.values())]) for f in figures
    ]
    parts += [(one.kinds, [one.key, *one.amounts]) for one in series]
    for kinds, values in parts:
        found = {v.key for v in _walk(values) if isinstance(v, Text)}
        for kind in kinds or (None,):
            keys.setdefault(kind, set()).update(found)
    return {
        kind: frozenset(found | (keys[None] if kind is not None else set()))
        for kind, found in keys.items()
    }


def _walk(values: list[Value | None]) -> list[Value]:
    found: list[Value] = []
    for value in values:
        if value is None:
            continue
        found.append(value)
        if isinstance(value, NonZero):
            found += _walk([value.value])
        elif isinstance(value, (AnyOf, AllOf)):
            found += _walk(list(value.conditions))
    return found
