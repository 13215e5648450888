"""The time span of a compressed file's entries, kept in its gzip header: written
and read back exactly, invisible to gzip readers, and unknown rather than wrong."""

from __future__ import annotations

import gzip
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import MetricEntry
from analytics._bounds import (
    EntrySpan,
    TimeBounds,
    epoch_us,
    from_epoch_us,
    gzip_header,
    parse_bounds,
    read_bounds,
)

from .helpers import T0, write_gz_with_bounds
from .strategies import aware_datetimes, entries

moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


class TestTimeBounds:
    @given(moment=moments)
    def test_epoch_microseconds_round_trip(self, moment: datetime) -> None:
        assert from_epoch_us(epoch_us(moment)) == moment

    def test_widen_takes_the_earliest_and_the_latest(self) -> None:
        a = TimeBounds.of(T0, T0 + timedelta(seconds=10))
        b = TimeBounds.of(T0 - timedelta(seconds=5), T0 + timedelta(seconds=1))
        assert a.widen(b) == TimeBounds.of(T0 - timedelta(seconds=5), T0 + timedelta(seconds=10))
        assert a.widen(None) == a

    def test_overlaps_a_half_open_window(self) -> None:
        bounds = TimeBounds.of(T0, T0 + timedelta(seconds=10))
        assert bounds.overlaps(None, None)
        assert bounds.overlaps(T0 + timedelta(seconds=10), None)  # the last entry is in
        assert not bounds.overlaps(T0 + timedelta(seconds=10, microseconds=1), None)
        assert not bounds.overlaps(None, T0)  # until is exclusive
        assert bounds.overlaps(None, T0 + timedelta(microseconds=1))


class TestHeader:
    @given(first=moments, span=st.integers(0, 10**12))
    def test_bounds_written_in_the_header_read_back_equal(self, first: datetime, span: int) -> None:
        bounds = TimeBounds.of(first, first + timedelta(microseconds=span))
        assert parse_bounds(gzip_header(bounds, level=6)) == bounds

    @pytest.mark.parametrize("level", [1, 6, 9])
    def test_a_file_with_bounds_is_an_ordinary_gzip_file(self, tmp_path: Path, level: int) -> None:
        data = b'{"a": 1}\n' * 1000
        bounds = TimeBounds.of(T0, T0 + timedelta(hours=1))
        path = write_gz_with_bounds(tmp_path / "f.jsonl.gz", data, bounds, level)
        assert gzip.decompress(path.read_bytes()) == data
        assert read_bounds(path) == bounds

    def test_unknown_bounds_are_none_not_a_guess(self, tmp_path: Path) -> None:
        plain = tmp_path / "plain.jsonl.gz"
        plain.write_bytes(gzip.compress(b"{}\n"))  # another tool's gzip: no bounds
        assert read_bounds(plain) is None
        assert read_bounds(write_gz_with_bounds(tmp_path / "none.jsonl.gz", b"{}\n", None)) is None
        assert read_bounds(tmp_path / "missing.jsonl.gz") is None
        assert parse_bounds(b"not gzip at all") is None
        assert parse_bounds(gzip_header(TimeBounds.of(T0, T0), level=6)[:14]) is None  # cut

    def test_bounds_whose_first_is_after_last_are_refused(self) -> None:
        backwards = TimeBounds(epoch_us(T0), epoch_us(T0) - 1)
        assert parse_bounds(gzip_header(backwards, level=6)) is None


class TestEntrySpan:
    """The writer's span of a file, read from the lines it writes: exactly the
    earliest and latest entry time, or unknown, never wrong."""

    @given(
        st.lists(
            st.tuples(entries, st.text(min_size=1), aware_datetimes, st.booleans()),
            min_size=1,
            max_size=30,
        ),
        st.lists(st.integers(0, 30), max_size=5),
    )
    def test_is_the_earliest_and_latest_entry_time_however_batched(
        self, made: list[tuple[MetricEntry, str, datetime, bool]], cuts: list[int]
    ) -> None:
        """Any id (quotes, backslashes, newlines), nested "id" and "timestamp" keys in
        the data, times in any order and zone, and any split into batches."""
        lines = []
        times = []
        for entry, entry_id, moment, decoy in made:
            data = {"id": "zzz", "timestamp": "9999-12-31T23:59:59+00:00"} if decoy else {}
            fields = entry.model_dump()
            fields.update(id=entry_id, timestamp=moment, data={**entry.data, **data})
            line = MetricEntry.model_validate(fields).to_json_line()  # as the writer gets it
            lines.append(line)
            times.append(epoch_us(MetricEntry.from_json_line(line).timestamp))
        span = EntrySpan()
        edges = sorted({0, len(lines), *(c for c in cuts if c < len(lines))})
        for start, end in itertools.pairwise(edges):
            span.add(b"".join(lines[start:end]), end - start)
        assert span.bounds() == TimeBounds(min(times), max(times))

    def test_a_line_not_in_the_writers_form_makes_it_unknown_for_good(self) -> None:
        ours = MetricEntry(type="tool_use", session_id="s", timestamp=T0).to_json_line()
        span = EntrySpan()
        span.add(ours, 1)
        assert span.bounds() == TimeBounds.of(T0, T0)
        span.add(ours + b'{"timestamp": "2026-01-01T00:00:00+00:00", "id": "x"}\n', 2)
        assert span.bounds() is None
        span.add(ours, 1)
        assert span.bounds() is None

    def test_a_count_that_does_not_match_the_lines_makes_it_unknown(self) -> None:
        line = MetricEntry(type="tool_use", session_id="s", timestamp=T0).to_json_line()
        span = EntrySpan()
        span.add(line + line, 3)
        assert span.bounds() is None

    def test_a_file_with_lines_it_never_saw_has_no_span(self) -> None:
        span = EntrySpan(complete=False)
        span.add(MetricEntry(type="tool_use", session_id="s", timestamp=T0).to_json_line(), 1)
        assert span.bounds() is None

    def test_nothing_taken_in_is_no_span(self) -> None:
        assert EntrySpan().bounds() is None
