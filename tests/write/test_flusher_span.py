"""The entry-time span a batch carries from the buffer to its files: kept when a
batch goes back to the buffer after a failed write, and unknown (never wrong) when an
entry's time cannot be taken."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricType,
    SerializationError,
    WriteError,
    _fileops,
)
from analytics._bounds import TimeBounds, epoch_us, read_bounds

from ..helpers import entry, gz_files, lines_of

DAY1 = datetime(2026, 2, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def dated(seq: int, moment: datetime, size: int = 0) -> MetricEntry:
    return entry(seq, size=size).model_copy(update={"timestamp": moment})


def entry_times(path: Path) -> list[int]:
    return [epoch_us(MetricEntry.from_json_line(line).timestamp) for line in lines_of(path)]


class BrokenDisk:
    """While ``on``: a write lands 37 bytes and then fails with EIO, and cutting the
    file back fails too (a disk going bad), so the writer must leave that file."""

    def __init__(self) -> None:
        self.on = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.on:
            os.write(fd, bytes(data[:37]))
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.write(fd, data)

    def ftruncate(self, fd: int, length: int) -> None:
        if self.on:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.ftruncate(fd, length)


async def test_a_batch_put_back_after_a_failed_write_keeps_its_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day-1 entries fail to be written, in a file that then has to be left; they go
    back to the buffer, day-2 entries join them, and all land in a new file, whose
    span must reach back to day 1."""
    disk = BrokenDisk()
    monkeypatch.setattr(_fileops, "_os_write", disk.write)
    monkeypatch.setattr(_fileops, "_os_ftruncate", disk.ftruncate)
    async with JSONLWriter(
        tmp_path, buffer_size=1000, flush_interval=60, max_file_size=4000, max_files=100
    ) as writer:
        await writer.write(dated(0, DAY2))
        await writer.flush()
        left = writer.current_file
        disk.on = True
        await writer.write_batch([dated(i, DAY1 + timedelta(seconds=i)) for i in range(1, 4)])
        with pytest.raises(WriteError):
            await writer.flush()
        disk.on = False
        await writer.write_batch([dated(i, DAY2 + timedelta(seconds=i)) for i in range(4, 7)])
        await writer.flush()
        assert writer.current_file != left
        await writer.write(dated(7, DAY2, size=4000))  # too big for the file: it rotates
        await writer.flush()
    (retried,) = [p for p in gz_files(writer.metrics_dir) if len(lines_of(p)) == 6]
    times = entry_times(retried)
    assert min(times) == epoch_us(DAY1 + timedelta(seconds=1))
    assert read_bounds(retried) == TimeBounds(min(times), max(times))


async def test_an_entry_built_without_validation_costs_its_files_their_span_only(
    tmp_path: Path,
) -> None:
    """``model_construct`` skips validation: a naive time cannot be compared with the
    others. Nothing fails and nothing is lost; only the file it went to has no span."""
    odd = MetricEntry.model_construct(
        type=MetricType.TOOL_USE, timestamp=datetime(2026, 2, 1, 12), data={"seq": 3}
    )
    async with JSONLWriter(
        tmp_path, buffer_size=1000, flush_interval=60, max_file_size=700, max_files=100
    ) as writer:
        for i in range(3):
            await writer.write(dated(i, DAY1 + timedelta(seconds=i), size=200))
            await writer.flush()
        await writer.write(dated(4, DAY1, size=200))
        await writer.write(odd)  # compared with an aware time in the same buffer
        await writer.flush()
        await writer.write_batch([odd, dated(5, DAY1, size=200)])  # in the same batch
        await writer.flush()
        for i in range(6, 12):
            await writer.write(dated(i, DAY1 + timedelta(seconds=i), size=200))
            await writer.flush()
    files = sorted(writer.metrics_dir.glob("metrics_*"))
    assert sum(len(lines_of(path)) for path in files) == 13  # every entry written
    spans = {path: read_bounds(path) for path in gz_files(writer.metrics_dir)}
    for path, bounds in spans.items():
        holds_odd = any(b'"seq":3' in line for line in lines_of(path))
        if holds_odd:
            assert bounds is None, path.name
        else:
            times = entry_times(path)
            assert bounds == TimeBounds(min(times), max(times)), path.name
    assert any(bounds is None for bounds in spans.values())
    assert any(bounds is not None for bounds in spans.values())


async def test_refused_entries_do_not_widen_the_span(tmp_path: Path) -> None:
    """``write_batch`` accepts the entries it can serialize; the span is theirs."""
    bad = dated(1, DAY1 - timedelta(days=30))
    bad.data["x"] = {1, 2}  # type: ignore[assignment]  # a set: not JSON, refused
    async with JSONLWriter(
        tmp_path, buffer_size=1000, flush_interval=60, max_file_size=3000, max_files=100
    ) as writer:
        with pytest.raises(SerializationError):
            await writer.write_batch([dated(0, DAY1), bad, dated(2, DAY1 + timedelta(hours=1))])
        await writer.flush()
        await writer.write(dated(3, DAY1 + timedelta(hours=1), size=3000))  # rotates
    (first,) = [p for p in gz_files(writer.metrics_dir) if len(lines_of(p)) == 2]
    assert read_bounds(first) == TimeBounds.of(DAY1, DAY1 + timedelta(hours=1))
