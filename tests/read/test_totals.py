"""The Python engine's Totals: generated from the figures, merged across worker
processes, and still counting after a trip through pickle."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics._read.totals import Totals, python_source

from ..helpers import TEST_FIGURES, Row, add, python_results
from ..strategies import figure_rows


@settings(max_examples=40, deadline=None)
@given(rows=figure_rows, cut=st.integers(0, 30))
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
