"""The time span each rotated file carries to its ``.gz`` header: it covers every entry
in the file, whatever the batches, the times and the rotations (a property), and it
reaches the header through the compression."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import MetricEntry, MetricType, WriterConfig
from analytics._bounds import TimeBounds, epoch_us, read_bounds
from analytics._write.storage import Storage

from ..helpers import lines_of

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def line_at(moment: datetime, pad: int) -> bytes:
    return MetricEntry(
        type=MetricType.TOOL_USE, session_id="s", timestamp=moment, data={"pad": "x" * pad}
    ).to_json_line()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(moments, st.integers(0, 400)), min_size=1, max_size=12), max_size=15
    )
)
def test_each_rotated_file_spans_all_of_its_entries(
    batches: list[list[tuple[datetime, int]]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config = WriterConfig(base_path=Path(directory), max_file_size=1500)
        storage = Storage(Path(directory), config)
        storage.open()
        rotated = []
        try:
            for batch in batches:
                times = [moment for moment, _ in batch]
                outcome = storage.write(
                    [line_at(moment, pad) for moment, pad in batch], (min(times), max(times))
                )
                assert outcome.error is None
                rotated += outcome.rotated
            for job in rotated:
                held = [
                    epoch_us(MetricEntry.from_json_line(line).timestamp)
                    for line in lines_of(job.path)
                ]
                assert job.bounds is not None
                assert job.bounds.first_us <= min(held)
                assert max(held) <= job.bounds.last_us
        finally:
            for job in rotated:
                Storage.release(job)
            storage.close()


def test_the_span_reaches_the_gz_header(tmp_path: Path) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    storage = Storage(tmp_path, WriterConfig(base_path=tmp_path, max_file_size=1000))
    storage.open()
    try:
        later, earlier = start + timedelta(hours=2), start - timedelta(days=3)
        outcome = storage.write([line_at(later, 600), line_at(earlier, 600)], (earlier, later))
        (job,) = outcome.rotated
        assert job.bounds == TimeBounds.of(earlier, later)
        assert storage.compress(job)
    finally:
        storage.close()
    assert read_bounds(job.path.with_name(job.path.name + ".gz")) == TimeBounds.of(earlier, later)
