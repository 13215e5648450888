"""Strangers in the directory, and files that cannot be deleted (real ones)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from analytics import JSONLWriter, _fileops, iter_entries
from analytics._policy import parse_name

from ..helpers import aged_name, entry, write_aged_file

PID = 424242


def old_name(age_s: float, i: int, *, gz: bool = True) -> str:
    return aged_name(age_s, pid=PID, tag=f"0000000{i}", compressed=gz)


def make_gz(metrics_dir: Path, age_s: float, i: int) -> Path:
    """Writer ``PID``'s i-th compressed file, ``age_s`` seconds old, holding entry ``i``."""
    return write_aged_file(metrics_dir, age_s, [entry(i)], pid=PID, tag=f"0000000{i}")


def regular_ours(metrics_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in metrics_dir.iterdir()
        if p.is_file() and parse_name(p.name, "metrics") is not None
    )


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "analytics" and r.levelno == logging.WARNING and text in r.getMessage()
    ]


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: not even root may delete the file."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


async def rotate_once(writer: JSONLWriter, seq: int) -> None:
    """Write two entries into a writer with a tiny max_file_size: one rotation, after
    which retention runs."""
    await writer.write(entry(seq, size=300))
    await writer.flush()
    await writer.write(entry(seq + 1, size=300))
    await writer.flush()


class TestAtStart:
    async def test_a_directory_and_a_fifo_named_like_data_files_are_ignored(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="analytics")
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        # A real file of a dead writer, whose ".gz" name is taken by a directory.
        real = metrics / old_name(30, 1, gz=False)
        first_line = entry(1).to_json_line()
        real.write_bytes(first_line)
        (metrics / (real.name + ".gz")).mkdir()
        # Newer names, taken by a directory and a FIFO: neither may be continued.
        newest_dir = metrics / old_name(10, 2, gz=False)
        newest_dir.mkdir()
        fifo = metrics / old_name(5, 3, gz=False)
        os.mkfifo(fifo)
        (metrics / (old_name(20, 4, gz=False) + ".new")).mkdir()
        (metrics / (old_name(20, 5, gz=False) + ".gz.tmp")).mkdir()

        async with JSONLWriter(tmp_path, max_files=100) as writer:
            assert writer.current_file not in (newest_dir, fifo)
            await writer.write(entry(2))
        assert newest_dir.is_dir()
        assert fifo.exists()
        assert (metrics / (real.name + ".gz")).is_dir()
        assert real.read_bytes().startswith(first_line)  # kept (here: continued)
        seqs = sorted(int(str(e.data["seq"])) for e in iter_entries(tmp_path))
        assert seqs == [1, 2]
        for stranger in (newest_dir.name, fifo.name, real.name + ".gz"):
            assert len(warnings_about(caplog, stranger)) >= 1


class TestRetention:
    async def test_a_directory_named_like_the_oldest_file_is_neither_deleted_nor_counted(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="analytics")
        metrics = tmp_path / "metrics"
        stranger = metrics / old_name(100, 0)
        stranger.mkdir(parents=True)
        for i in range(1, 5):
            make_gz(metrics, 100 - i, i)
        async with JSONLWriter(
            tmp_path, max_files=3, max_file_size=400, compress_old=False
        ) as writer:
            await rotate_once(writer, 10)
            await rotate_once(writer, 20)
        assert stranger.is_dir()
        assert len(regular_ours(metrics)) == 3
        # One warning for the stranger, however many retention passes saw it.
        assert len(warnings_about(caplog, stranger.name)) == 1

    async def test_a_file_that_cannot_be_deleted_is_skipped_and_retried(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="analytics")
        metrics = tmp_path / "metrics"
        stuck = make_gz(metrics, 100, 0)
        others = [make_gz(metrics, 100 - i, i) for i in range(1, 5)]
        with immutable(stuck):
            async with JSONLWriter(
                tmp_path, max_files=3, max_file_size=400, compress_old=False
            ) as writer:
                await rotate_once(writer, 10)
                # max_files holds for the rest: the stuck file counts, others went.
                assert stuck.exists()
                assert len(regular_ours(metrics)) == 3
                assert not any(p.exists() for p in others)
                assert warnings_about(caplog, "cannot delete")
        async with JSONLWriter(tmp_path, max_files=3, max_file_size=400) as writer:
            await rotate_once(writer, 20)
        assert not stuck.exists()  # retried at a later pass
        assert len(regular_ours(metrics)) == 3

    async def test_max_age_still_holds_for_the_others(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics"
        stuck = make_gz(metrics, 1000, 0)
        others = [make_gz(metrics, 1000 - i, i) for i in range(1, 4)]
        with immutable(stuck):
            async with JSONLWriter(tmp_path, max_age=0.4, max_files=100):
                deadline = time.monotonic() + 5
                while any(p.exists() for p in others):
                    assert time.monotonic() < deadline, "timed out"
                    await asyncio.sleep(0.02)
                assert stuck.exists()
                await asyncio.sleep(0.3)  # more passes of the timer: no harm done
                assert stuck.exists()
        async with JSONLWriter(tmp_path, max_age=0.4, max_files=100):
            deadline = time.monotonic() + 5
            while stuck.exists():  # the retention timer tries it again
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.02)

    async def test_a_file_removed_by_another_process_meanwhile_still_counts_as_gone(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Between the listing and the deletion, another process deletes the oldest
        file: it is gone, so retention deletes one file fewer, not one more."""
        metrics = tmp_path / "metrics"
        files = [make_gz(metrics, 100 - i, i) for i in range(4)]
        real_lock = _fileops.try_lock_path

        def racing_lock(path: Path, *, write: bool = False) -> int | None:
            if path == files[0]:
                os.unlink(path)  # what the other process did, just now
            return real_lock(path, write=write)

        monkeypatch.setattr(_fileops, "try_lock_path", racing_lock)
        async with JSONLWriter(
            tmp_path, max_files=3, max_file_size=400, compress_old=False
        ) as writer:
            await rotate_once(writer, 10)
            assert len(regular_ours(metrics)) == 3
            assert [p.exists() for p in files] == [False, False, False, True]
