"""Time rotation happens at the boundary, on a quiet writer too, without file churn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from analytics import JSONLWriter, MetricEntry
from analytics._policy import parse_name

from ..helpers import entry, lines_of, read_all

INTERVAL = 1.0


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def sleep_until_before_boundary(lead: float) -> float:
    """Sleep until ``lead`` seconds before the next multiple of INTERVAL (UTC); return
    that boundary as epoch seconds."""
    now = time.time()
    boundary = (now // INTERVAL + 1) * INTERVAL
    if boundary - now < lead + 0.1:
        boundary += INTERVAL
    await asyncio.sleep(boundary - lead - time.time())
    return boundary


def bucket_of(path: Path) -> int:
    info = parse_name(path.name, "metrics")
    assert info is not None
    return int(info.created_ns // int(INTERVAL * 1e9))


def names(metrics_dir: Path) -> set[str]:
    return {p.name for p in metrics_dir.iterdir()}


class TestBoundary:
    async def test_an_entry_just_before_the_boundary_lands_in_the_earlier_file(
        self, tmp_path: Path
    ) -> None:
        """With a long flush_interval and nothing written after it, the entry goes to
        the file of its interval, which is compressed shortly after the boundary."""
        async with JSONLWriter(
            tmp_path, rotate_interval=INTERVAL, flush_interval=60, buffer_size=1000
        ) as writer:
            boundary = await sleep_until_before_boundary(0.15)
            e = entry(0)
            await writer.write(e)
            assert time.time() < boundary
            # The count is taken once the compression's thread returns, after its .gz
            # appeared: wait for the count, not for the file.
            await wait_for(lambda: writer.stats().compressions == 1)
            [gz] = list(writer.metrics_dir.glob("*.jsonl.gz"))
            assert [line for line in lines_of(gz)] == [e.to_json_line()]
            # The file's name-time is in the interval the entry was written in.
            assert bucket_of(gz) == int(boundary // INTERVAL) - 1
            assert writer.pending == 0
            assert writer.stats().rotations == 1
            assert writer.stats().compressions == 1

    async def test_an_idle_writer_makes_no_files_and_no_compressions(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, rotate_interval=INTERVAL, flush_interval=60) as writer:
            await writer.write(entry(0))
            await wait_for(lambda: writer.stats().compressions == 1)
            before = names(writer.metrics_dir)
            stats = writer.stats()
            await asyncio.sleep(3.2 * INTERVAL)  # three boundaries, nothing written
            assert names(writer.metrics_dir) == before
            assert writer.stats().rotations == stats.rotations
            assert writer.stats().compressions == stats.compressions
            assert writer.stats().files_deleted == 0

    async def test_after_an_idle_interval_the_next_entry_starts_a_new_file(
        self, tmp_path: Path
    ) -> None:
        """The empty file of an interval that ended is replaced (never compressed) by
        a file of the interval the entry is written in: no entry lands in a file
        named after a different interval than its own."""
        async with JSONLWriter(tmp_path, rotate_interval=INTERVAL, flush_interval=0.02) as writer:
            idle = writer.current_file
            assert idle is not None
            boundary = await sleep_until_before_boundary(0.0)
            await asyncio.sleep(max(0.0, boundary - time.time()) + 0.2)
            e = entry(1)
            await writer.write(e)
            await writer.flush()
            assert writer.current_file != idle
            assert not idle.exists()
            assert writer.current_file is not None
            assert bucket_of(writer.current_file) == int(e.timestamp.timestamp() // INTERVAL)
            assert list(writer.metrics_dir.glob("*.gz")) == []
        assert [x.id for x in read_all(writer.metrics_dir)] == [e.id]

    async def test_entries_keep_flowing_across_boundaries_without_loss(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(
            tmp_path, rotate_interval=0.2, flush_interval=0.03, buffer_size=7
        ) as writer:
            written: list[MetricEntry] = []
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                e = entry(len(written))
                written.append(e)
                await writer.write(e)
                await asyncio.sleep(0.005)
            assert writer.stats().rotations >= 3
        found = read_all(writer.metrics_dir)
        assert sorted(x.id for x in found) == sorted(x.id for x in written)
        for path in writer.metrics_dir.iterdir():
            for line in lines_of(path):
                # No entry is in a file created after it was written (the entry's
                # time is taken a moment before write() is called).
                assert parse_entry_time(line) >= parse_created(path) - 0.05


def parse_entry_time(line: bytes) -> float:
    return MetricEntry.from_json_line(line).timestamp.timestamp()


def parse_created(path: Path) -> float:
    info = parse_name(path.name, "metrics")
    assert info is not None
    return info.created_ns / 1e9


class TestSealingAfterAnIdleInterval:
    async def test_the_entry_lands_in_a_file_of_its_interval_compressed_at_the_boundary(
        self, tmp_path: Path
    ) -> None:
        """The empty file went stale at an earlier boundary; the entry written just
        before the next one gets a file named in its own interval, which is closed and
        compressed at that boundary (not one interval later)."""
        async with JSONLWriter(
            tmp_path, rotate_interval=INTERVAL, flush_interval=60, buffer_size=1000
        ) as writer:
            idle = writer.current_file
            assert idle is not None
            first = await sleep_until_before_boundary(0.0)
            await asyncio.sleep(max(0.0, first - time.time()) + 0.1)  # the file is stale
            boundary = await sleep_until_before_boundary(0.15)
            e = entry(0)
            await writer.write(e)
            assert time.time() < boundary
            await wait_for(lambda: writer.stats().compressions == 1)
            [gz] = list(writer.metrics_dir.glob("*.jsonl.gz"))
            assert lines_of(gz) == [e.to_json_line()]
            assert bucket_of(gz) == int(boundary // INTERVAL) - 1
            assert parse_entry_time(e.to_json_line()) >= parse_created(gz)
            assert not idle.exists()  # the stale empty file was replaced, not compressed
            assert writer.stats().rotations == 1
