"""Buffering: when the buffer is written (full, on the interval, on flush and close),
in one write of the joined bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from analytics import (
    JSONLWriter,
)

from ..helpers import entry, lines_of, read_all


class TestBuffering:
    async def test_buffer_is_written_when_it_holds_buffer_size_entries(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=5, flush_interval=60) as writer:
            assert writer.current_file is not None
            for i in range(4):
                await writer.write(entry(i))
            assert writer.current_file.read_bytes() == b""
            await writer.write(entry(4))
            assert len(lines_of(writer.current_file)) == 5
            assert writer.pending == 0

    async def test_flush_writes_everything_accepted(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
            for i in range(7):
                await writer.write(entry(i))
            assert writer.pending == 7
            await writer.flush()
            assert writer.pending == 0
            assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == list(range(7))

    async def test_flush_with_nothing_pending_is_a_no_op(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await writer.flush()
            assert writer.stats().flushes == 0

    async def test_flush_interval_writes_a_quiet_buffer(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=0.05) as writer:
            await writer.write(entry())
            assert writer.current_file is not None
            for _ in range(100):
                await asyncio.sleep(0.02)
                if writer.current_file.read_bytes():
                    break
            assert len(lines_of(writer.current_file)) == 1

    async def test_interval_counts_from_the_oldest_unwritten_entry(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=0.6) as writer:
            await writer.write(entry(0))
            await asyncio.sleep(0.4)
            await writer.write(entry(1))  # must not restart the clock
            # The clock still counts from entry 0: a restarted one would say ~0 s here,
            # and would not fall due before 0.4 + 0.6 s.
            status = await writer.health()
            assert status.oldest_pending_age is not None
            assert status.oldest_pending_age >= 0.35
            assert writer.current_file is not None
            assert writer.current_file.read_bytes() == b""
            await asyncio.sleep(0.45)  # 0.85 s after entry 0: due by it, not by entry 1
            assert writer.pending == 0
            assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 1]

    async def test_close_writes_what_is_buffered(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60)
        await writer.initialize()
        for i in range(3):
            await writer.write(entry(i))
        await writer.close()
        assert len(read_all(writer.metrics_dir)) == 3

    async def test_write_batch_keeps_order(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=10) as writer:
            await writer.write_batch([entry(i) for i in range(25)])
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == list(range(25))

    async def test_one_flush_is_one_write_of_the_joined_bytes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from analytics import _fileops

        calls: list[int] = []
        real_append = _fileops.append

        def counting_append(fd: int, data: bytes, size_before: int) -> None:
            calls.append(data.count(b"\n"))
            real_append(fd, data, size_before)

        monkeypatch.setattr(_fileops, "append", counting_append)
        async with JSONLWriter(tmp_path, buffer_size=50, flush_interval=60) as writer:
            for i in range(200):
                await writer.write(entry(i))
        assert calls == [50, 50, 50, 50]
