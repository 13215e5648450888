"""One definition per figure (``analytics._read.figures``): the Python engine
(``analytics._read.totals``) and the SQL engines (``analytics._read.sql``) compute it alike.

A figure defined once here (every aggregate, every kind of value) is computed by the
Python engine's ``Totals`` (generated ``add``, ``merge``) and by DuckDB through its
``Dialect``; both must give the same ``Results``.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings

from ..helpers import (
    FIGURES_T0,
    Row,
    python_results,
    sql_results,
)
from ..strategies import figure_rows


@settings(max_examples=40, deadline=None)
@given(rows=figure_rows)
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
        "first": FIGURES_T0,
        "last": FIGURES_T0 + timedelta(seconds=7201),
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
