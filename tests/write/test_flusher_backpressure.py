"""The full-buffer rule (``max_pending``/``on_full``): drop, raise or wait, and memory
stays bounded while the disk fails."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from analytics import (
    AnalyticsError,
    BufferFullError,
    JSONLWriter,
)

from ..helpers import Failing, entry, read_all


class TestBackpressure:
    async def test_drop_newest_discards_and_counts(self, tmp_path: Path, disk: Failing) -> None:
        async with JSONLWriter(
            tmp_path, buffer_size=2, max_pending=5, on_full="drop_newest"
        ) as writer:
            disk.on = True
            kept = [entry(i) for i in range(5)]
            for e in kept:
                await writer.write(e)
            for i in range(5, 20):
                await writer.write(entry(i))
            assert writer.pending == 5
            assert writer.stats().dropped == 15
            disk.on = False
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in kept]

    async def test_raise_raises_buffer_full_and_accepts_nothing_more(
        self, tmp_path: Path, disk: Failing
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=2, max_pending=5, on_full="raise") as writer:
            disk.on = True
            kept = [entry(i) for i in range(5)]
            await writer.write_batch(kept)
            with pytest.raises(BufferFullError, match="max_pending=5") as info:
                await writer.write(entry(5))
            assert isinstance(info.value, AnalyticsError)
            with pytest.raises(BufferFullError):
                await writer.write_batch([entry(6)])
            assert writer.pending == 5
            disk.on = False
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in kept]

    async def test_wait_blocks_until_the_backlog_drains(
        self, tmp_path: Path, disk: Failing
    ) -> None:
        async with JSONLWriter(
            tmp_path, buffer_size=2, max_pending=5, flush_interval=0.01
        ) as writer:
            disk.on = True
            first = [entry(i) for i in range(5)]
            await writer.write_batch(first)
            blocked = entry(5)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(writer.write(blocked), 0.2)
            assert writer.pending == 5  # the timed-out write was not accepted
            late = entry(6)
            waiting = asyncio.ensure_future(writer.write(late))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            disk.on = False
            await asyncio.wait_for(waiting, 10)
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in [*first, late]]

    async def test_a_large_batch_waits_for_room_in_steps(
        self, tmp_path: Path, disk: Failing
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=3, max_pending=4) as writer:
            batch = [entry(i) for i in range(30)]
            await writer.write_batch(batch)
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in batch]

    async def test_memory_stays_bounded_while_the_disk_fails(
        self, tmp_path: Path, disk: Failing
    ) -> None:
        payload = "x" * 300
        async with JSONLWriter(
            tmp_path, buffer_size=50, max_pending=1000, on_full="drop_newest"
        ) as writer:
            disk.on = True
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                for i in range(20_000):
                    await writer.write(entry(i, arg=payload))
                grown = tracemalloc.get_traced_memory()[0] - baseline
            finally:
                tracemalloc.stop()
            assert writer.pending == 1000
            assert writer.stats().dropped == 19_000
            # 1000 pending lines of ~450 bytes; 20,000 unbounded ones would be ~9 MB.
            assert grown < 2_000_000, grown
            disk.on = False
        assert len(read_all(writer.metrics_dir)) == 1000
