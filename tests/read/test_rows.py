"""Decoding lines: the fast paths accept and reject exactly the lines the model does,
and build the same entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from pydantic import ValidationError

from analytics import (
    MetricEntry,
    ReadStats,
    iter_entries,
    summarize,
)
from analytics._policy import format_name
from analytics._read.rows import entry_from_line, fields_from_line, hour_of
from analytics._read.summary import summarize_entries

from ..helpers import T0, at
from ..strategies import entries

UNUSUAL_BUT_VALID = [
    b'{"type": "tool_use", "timestamp": "2026-11-01T17:30:00+05:30", "data": {}}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:09Z", "id": "x"}',
    b'{"type": "error_occurred", "timestamp": 1793534410, "id": "y"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01 12:00:11+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01 12:00:00.123456+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01t12:00:00.123456+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00.123456-00:00", "id": "z"}',
]


INVALID = [
    b'{"type": "nope", "timestamp": "2026-11-01T12:00:00+00:00", "id": "a"}',
    # Shaped like the writer's timestamps; datetime.fromisoformat takes the first
    # two, MetricEntry none of them.
    b'{"type": "tool_use", "timestamp": "2026-11-01X12:00:00.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-W44-1T12:00:00.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:60.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-02-30T12:00:00.123456+00:00", "id": "a"}',
    "2026-11-01T12:00:00.12345\uff16+00:00".join(
        ['{"type": "tool_use", "id": "a", "timestamp": "', '"}']
    ).encode(),
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": "b", "x": 1}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": "c",'
    b' "data": {"n": NaN}}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "session_id": 5}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": ""}',
    b"[1, 2]",
]


def test_summaries_accept_and_reject_exactly_the_lines_entries_do(tmp_path: Path) -> None:
    """summarize() reads rows on a fast path; it must agree with MetricEntry itself."""
    good = [
        at(i, session_id="s", data={"tool_name": "t", "duration_ms": 1.0 + i}) for i in range(3)
    ]
    unusual_but_valid, invalid = UNUSUAL_BUT_VALID, INVALID
    lines = [e.to_json_line() for e in good] + [
        line + b"\n" for line in unusual_but_valid + invalid
    ]
    (tmp_path / "metrics").mkdir()
    name = format_name("metrics", int(T0.timestamp() * 1e9) - 10**9, 1, "abcdef01")
    (tmp_path / "metrics" / name).write_bytes(b"".join(lines))
    stats = ReadStats()
    by_entries = summarize_entries(iter_entries(tmp_path, stats=stats))
    by_entries.bad_lines = stats.bad_lines
    fast = summarize(tmp_path)
    assert stats.bad_lines == len(invalid)
    assert fast.model_dump(exclude={"first", "last", "timeline"}) == by_entries.model_dump(
        exclude={"first", "last", "timeline"}
    )
    assert fast.entries == len(good) + len(unusual_but_valid)


@pytest.mark.parametrize("line", UNUSUAL_BUT_VALID + INVALID)
def test_the_reader_accepts_and_rejects_exactly_the_lines_entries_do(line: bytes) -> None:
    """iter_entries builds entries on a fast path; it must agree with MetricEntry."""
    try:
        expected: MetricEntry | None = MetricEntry.from_json_line(line)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match=r"(?i)valid|json|expected|eof"):
            entry_from_line(line)
        return
    got = entry_from_line(line)
    if b'"id"' not in line:  # each parse draws a new random id
        expected.id = got.id
    assert got == expected


@pytest.mark.parametrize("line", UNUSUAL_BUT_VALID + INVALID)
def test_the_summary_decodes_exactly_the_lines_entries_do(line: bytes) -> None:
    """summarize decodes a line's fields without an entry; it must agree with it."""
    try:
        expected: MetricEntry | None = entry_from_line(line)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match=r"(?i)valid|json|expected|eof"):
            fields_from_line(line)
        return
    kind, moment, hour, ident, sid, uid, data, meta = fields_from_line(line)
    if b'"id"' not in line:  # each parse draws a new random id
        expected.id = ident
    assert (kind, moment, hour, ident, sid, uid, data, meta) == (
        expected.type.value,
        expected.timestamp,
        hour_of(expected.timestamp),
        expected.id,
        expected.session_id,
        expected.user_id,
        expected.data,
        expected.metadata,
    )


@given(entries)
def test_the_reader_builds_the_same_entry_as_the_model(entry: MetricEntry) -> None:
    line = entry.to_json_line()
    got = entry_from_line(line)
    assert got == MetricEntry.from_json_line(line) == entry
    assert fields_from_line(line) == (
        entry.type.value,
        entry.timestamp,
        hour_of(entry.timestamp),
        entry.id,
        entry.session_id,
        entry.user_id,
        entry.data,
        entry.metadata,
    )
    assert got.model_fields_set == MetricEntry.from_json_line(line).model_fields_set
    assert got.to_json_line() == line
    with pytest.raises(ValidationError):  # a full model: assignment is validated
        got.session_id = 5  # type: ignore[assignment]
