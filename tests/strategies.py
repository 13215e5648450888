"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from analytics import MetricEntry, MetricType

# Text may hold newlines, U+2028 and friends: none of them may break a line.
texts = st.text(max_size=30)

json_scalars: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | texts
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

json_objects = st.dictionaries(texts, json_values, max_size=5)

aware_datetimes = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)

entries = st.builds(
    MetricEntry,
    type=st.sampled_from(list(MetricType)),
    timestamp=aware_datetimes,
    session_id=st.none() | texts,
    user_id=st.none() | texts,
    data=json_objects,
    metadata=json_objects,
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


figure_rows = st.lists(
    st.tuples(
        st.integers(0, 400_000),  # seconds after a start: distinct (SQL orders no ties)
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["s1", "s2", "it's", None]),
        _data,
    ),
    max_size=30,
    unique_by=lambda row: row[0],
)
