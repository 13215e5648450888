"""A long outage never kills the flusher, never spins, and floods no log (real faults)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from analytics import JSONLWriter, MetricEntry
from analytics._write import flusher as _flusher

from ..helpers import entry, read_all, small_tmpfs


async def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def fill_bytes(path: Path) -> None:
    """Fill the filesystem of ``path`` to the last byte."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def fill_inodes(directory: Path) -> list[Path]:
    """Create empty files until the filesystem has no inode left."""
    made: list[Path] = []
    while True:
        path = directory / f"filler-{len(made)}"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return made
        made.append(path)


def analytics_records(
    caplog: pytest.LogCaptureFixture, level: int, text: str
) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "analytics" and r.levelno == level and text in r.getMessage()
    ]


async def test_thousands_of_failed_flushes_in_a_row_then_the_disk_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk for thousands of attempts (the backoff shortened so that they fit
    in seconds): the flusher lives on, one ERROR line, then everything is written."""
    monkeypatch.setattr(_flusher, "RETRY_FIRST", 0.0001)
    monkeypatch.setattr(_flusher, "RETRY_MAX", 0.0005)
    caplog.set_level(logging.WARNING, logger="analytics")
    with small_tmpfs(tmp_path / "small", "256k") as mount:
        async with JSONLWriter(mount, flush_interval=0.01, compress_old=False) as writer:
            filler = mount / "filler.bin"
            await asyncio.to_thread(fill_bytes, filler)
            written = [entry(i, size=200) for i in range(50)]
            await writer.write_batch(written)
            await wait_for(lambda: writer.stats().errors >= 3000, timeout=120)
            assert writer.pending == 50
            assert len(analytics_records(caplog, logging.ERROR, "cannot write")) == 1
            await asyncio.to_thread(filler.unlink)
            # No flush() here: only a flusher that outlived the failures writes them.
            await wait_for(lambda: writer.pending == 0)
            assert len(analytics_records(caplog, logging.WARNING, "recovered")) == 1
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]


async def test_a_failing_disk_is_retried_with_backoff_not_in_a_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="analytics")
    with small_tmpfs(tmp_path / "small", "256k") as mount:
        async with JSONLWriter(mount, flush_interval=0.01, compress_old=False) as writer:
            filler = mount / "filler.bin"
            await asyncio.to_thread(fill_bytes, filler)
            await writer.write_batch([entry(i, size=200) for i in range(50)])
            await asyncio.sleep(1.0)
            # 50 ms, doubling (less up to 25% jitter): at most 6 attempts in a second.
            assert 1 <= writer.stats().errors <= 8
            await asyncio.to_thread(filler.unlink)
            await writer.flush()
            assert writer.pending == 0


async def test_a_timed_rotation_that_cannot_create_its_file_backs_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No inode left: the new file of each boundary cannot be created. Entries still
    go to the active file; the rotation is retried with backoff, logged once, and
    done when the filesystem has room again."""
    caplog.set_level(logging.DEBUG, logger="analytics")
    with small_tmpfs(tmp_path / "small", "1m,nr_inodes=64") as mount:
        async with JSONLWriter(mount, rotate_interval=0.2, flush_interval=0.02) as writer:
            written: list[MetricEntry] = [entry(0)]
            await writer.write(written[0])
            await writer.flush()
            fillers = await asyncio.to_thread(fill_inodes, mount)
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                e = entry(len(written))
                written.append(e)
                await writer.write(e)
                await asyncio.sleep(0.01)
            errors = writer.stats().errors
            assert 1 <= errors <= 10  # several boundaries, backed off: no busy loop
            assert writer.stats().rotations == 0
            assert len(analytics_records(caplog, logging.ERROR, "rotate")) == 1
            assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
            await writer.flush()  # the entries themselves are written meanwhile
            assert writer.pending == 0

            for path in fillers[:4]:
                await asyncio.to_thread(path.unlink)
            # Only the living flusher's timer rotates now: nothing else is written.
            await wait_for(lambda: list(writer.metrics_dir.glob("*.jsonl.gz")))
            assert writer.stats().rotations >= 1
            assert len(analytics_records(caplog, logging.WARNING, "recovered")) == 1
        found = read_all(writer.metrics_dir)
        assert sorted(e.id for e in found) == sorted(e.id for e in written)


async def test_an_idle_file_that_cannot_be_replaced_takes_the_entries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After an idle boundary the next entry starts a new file; with no inode left, it
    goes to the old file instead (rotated later), and is not refused."""
    caplog.set_level(logging.WARNING, logger="analytics")
    with small_tmpfs(tmp_path / "small", "1m,nr_inodes=64") as mount:
        async with JSONLWriter(mount, rotate_interval=0.2, flush_interval=0.02) as writer:
            idle = writer.current_file
            fillers = await asyncio.to_thread(fill_inodes, mount)
            await asyncio.sleep(0.3)  # a boundary passes; the file is empty
            e = entry(1)
            await writer.write(e)
            await writer.flush()  # no WriteError: the entry is on disk
            assert writer.current_file == idle
            assert writer.pending == 0
            assert len(analytics_records(caplog, logging.ERROR, "rotate")) == 1
            for path in fillers[:4]:
                await asyncio.to_thread(path.unlink)
            await wait_for(lambda: list(writer.metrics_dir.glob("*.jsonl.gz")))
        assert [x.id for x in read_all(writer.metrics_dir)] == [e.id]
