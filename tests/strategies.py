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
