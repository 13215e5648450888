"""Paced flushes: entries that arrive during a flush wait for the gap, and nothing is
lost under sustained load."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from analytics import JSONLWriter
from analytics._bounds import Span

from ..helpers import entry, read_all


class TestPacedFlushes:
    async def test_entries_that_arrive_during_a_flush_wait_for_the_gap(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from analytics._write import flusher as _flusher
        from analytics._write import storage as _storage

        monkeypatch.setattr(_flusher, "FLUSH_GAP", 5.0)
        first_flush = threading.Event()
        real_write = _storage.Storage.write

        def slow_first_write(
            self: _storage.Storage, lines: list[bytes], span: Span | None = None
        ) -> _storage.WriteOutcome:
            if not first_flush.is_set():
                first_flush.set()
                time.sleep(0.2)
            return real_write(self, lines, span)

        monkeypatch.setattr(_storage.Storage, "write", slow_first_write)
        async with JSONLWriter(tmp_path, buffer_size=10, flush_interval=60) as writer:
            first = asyncio.create_task(writer.write_batch([entry(i) for i in range(10)]))
            while not first_flush.is_set():
                await asyncio.sleep(0.001)
            for i in range(10, 35):  # arrive while the first flush is in flight
                await writer.write(entry(i))
            await first
            await asyncio.sleep(0.1)
            # More than buffer_size wait, but the last flush just ended: not yet.
            assert writer.pending == 25
            assert writer.stats().flushes == 1
            await writer.flush()  # someone waiting: no gap
            assert writer.pending == 0
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == list(range(35))

    async def test_under_sustained_load_nothing_is_lost(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=10, compress_old=False) as writer:

            async def producer(k: int) -> None:
                for i in range(500):
                    await writer.write(entry(k * 1000 + i))
                    if i % 4 == 3:
                        await asyncio.sleep(0)

            await asyncio.gather(*(producer(k) for k in range(4)))
        assert writer.stats().entries_written == 2000
        written = sorted(int(str(e.data["seq"])) for e in read_all(writer.metrics_dir))
        assert written == sorted(k * 1000 + i for k in range(4) for i in range(500))

    async def test_a_quiet_writer_flushes_each_full_buffer_at_once(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=10, flush_interval=60) as writer:
            for round_ in range(3):
                for i in range(10):
                    await writer.write(entry(round_ * 10 + i))
                # The write that filled the buffer waited for its flush.
                assert len(read_all(writer.metrics_dir)) == 10 * (round_ + 1)
                assert writer.pending == 0
