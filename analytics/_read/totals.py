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
    FIGURES,
    QUANTILES,
    Aggregate,
    Figure,
    Results,
    Spread,
    as_count,
    as_number,
    as_text,
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
    if len({figure.name for figure in figures}) < len(figures):
        raise ValueError("two figures have the same name")
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
