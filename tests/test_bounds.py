"""The time span of a compressed file's entries, kept in its gzip header: written
and read back exactly, invisible to gzip readers, and unknown rather than wrong."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics._bounds import (
    EntrySpan,
    TimeBounds,
    epoch_us,
    from_epoch_us,
    gzip_header,
    is_aware,
    parse_bounds,
    read_bounds,
    widen,
)

from .helpers import T0, write_gz_with_bounds

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
    """A file's span, grown batch by batch: never narrower than its entries, and
    unknown rather than wrong."""

    def test_is_the_union_of_the_spans_taken_in(self) -> None:
        span = EntrySpan()
        span.add((T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)))
        span.add((T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)))
        span.add((T0 + timedelta(seconds=3), T0 + timedelta(seconds=4)))
        assert span.bounds() == TimeBounds.of(T0 + timedelta(seconds=1), T0 + timedelta(seconds=9))

    def test_lines_without_a_span_make_it_unknown_for_good(self) -> None:
        span = EntrySpan()
        span.add((T0, T0))
        span.add(None)
        span.add((T0, T0))
        assert span.bounds() is None

    def test_a_file_with_lines_it_never_saw_has_no_span(self) -> None:
        span = EntrySpan(complete=False)
        span.add((T0, T0))
        assert span.bounds() is None

    def test_nothing_taken_in_is_no_span(self) -> None:
        assert EntrySpan().bounds() is None

    @given(st.lists(st.tuples(moments, moments), min_size=1, max_size=10))
    def test_widen_covers_every_span(self, spans: list[tuple[datetime, datetime]]) -> None:
        total = None
        for first, last in spans:
            total = widen(total, (min(first, last), max(first, last)))
        assert total is not None
        assert total[0] == min(min(pair) for pair in spans)
        assert total[1] == max(max(pair) for pair in spans)


class BrokenZone(tzinfo):
    """A tzinfo whose offset cannot be computed (only an unvalidated entry holds one)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset here")

    def dst(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset here")

    def tzname(self, dt: datetime | None) -> str:
        return "broken"


def test_is_aware_takes_only_aware_datetimes_and_never_raises() -> None:
    assert is_aware(T0)
    assert not is_aware(T0.replace(tzinfo=None))
    assert not is_aware(T0.replace(tzinfo=BrokenZone()))
    assert not is_aware("2026-01-01T00:00:00+00:00")
    assert not is_aware(None)
