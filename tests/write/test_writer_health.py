"""JSONLWriter.stats() and health(): counts from the directory, and the reasons a
writer is unhealthy."""

from __future__ import annotations

import asyncio
import errno
import shutil
from pathlib import Path

import pytest

from analytics import JSONLWriter, _fileops

from ..helpers import entry, our_files, wait_for


class TestStats:
    async def test_counts_files_and_bytes_in_the_directory(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=100) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(20)])
            await writer.flush()
            # Every rotated file compressed (in the background): the directory is still.
            await wait_for(lambda: writer.stats().compressions == writer.stats().rotations)
            stats = writer.stats()
            files = our_files(writer.metrics_dir)
            assert stats.files == len(files)
            assert stats.total_bytes == sum(p.stat().st_size for p in files)
            assert stats.current_file == writer.current_file
            assert stats.current_file_size == writer.current_file.stat().st_size  # type: ignore[union-attr]


class TestHealth:
    async def test_a_working_writer_is_healthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await writer.write(entry())
            status = await writer.health()
            assert status.healthy
            assert status.reasons == ()
            assert status.writable
            assert status.free_bytes is not None
            assert status.free_bytes > 0
            assert status.errors_since_success == 0

    async def test_low_free_space_is_unhealthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            status = await writer.health(min_free_bytes=2**62)
            assert not status.healthy
            assert any("free" in r for r in status.reasons)

    async def test_failing_writes_and_old_pending_entries_are_unhealthy(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def fail(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        async with JSONLWriter(tmp_path, buffer_size=1, flush_interval=0.01) as writer:
            monkeypatch.setattr(_fileops, "_os_write", fail)
            await writer.write(entry())
            await wait_for(lambda: writer.stats().errors > 0)
            await asyncio.sleep(0.1)
            status = await writer.health(max_pending_age=0.05)
            assert not status.healthy
            assert status.errors_since_success >= 1
            assert status.oldest_pending_age is not None
            assert status.oldest_pending_age >= 0.05
            assert any("failed write" in r for r in status.reasons)
            assert any("waited" in r for r in status.reasons)
            monkeypatch.undo()
            await writer.flush()
            assert (await writer.health()).healthy

    async def test_an_unwritable_directory_is_unhealthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await asyncio.to_thread(shutil.rmtree, writer.metrics_dir)
            writer.metrics_dir.write_text("a file where the directory was")
            status = await writer.health()
            assert not status.writable
            assert not status.healthy
            writer.metrics_dir.unlink()
