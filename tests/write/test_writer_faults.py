"""Disk faults during flushes and compressions: nothing lost, doubled or torn."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from analytics import AnalyticsError, JSONLWriter, WriteError, WriterClosedError, _fileops
from analytics._bounds import Span, TimeBounds, read_bounds

from ..helpers import entry, ids_of, our_files, read_all


class FlakyWrite:
    """Replaces the write system call: the next ``failures`` calls write ``partial``
    bytes (if any) and then fail with ``errno``."""

    def __init__(self, code: int, failures: int, partial: int = 0) -> None:
        self.code = code
        self.failures = failures
        self.partial = partial
        self.calls = 0
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            if self.partial:
                self.real(fd, bytes(data[: self.partial]))
            raise OSError(self.code, os.strerror(self.code))
        return self.real(fd, data)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> FlakyWrite:
    fault = FlakyWrite(errno.EIO, failures=0)
    monkeypatch.setattr(_fileops, "_os_write", fault)
    return fault


class TestExplicitFlush:
    async def test_partial_write_is_rolled_back_and_nothing_is_doubled(
        self, tmp_path: Path, flaky: FlakyWrite
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
            first = [entry(i) for i in range(5)]
            await writer.write_batch(first)
            await writer.flush()
            assert writer.current_file is not None
            size_before = writer.current_file.stat().st_size

            second = [entry(i) for i in range(5, 10)]
            await writer.write_batch(second)
            flaky.code, flaky.failures, flaky.partial = errno.EIO, 2, 37
            with pytest.raises(WriteError) as info:
                await writer.flush()
            assert isinstance(info.value, AnalyticsError)
            assert info.value.pending == 5
            assert "5 entries are kept" in str(info.value)
            assert isinstance(info.value.__cause__, OSError)
            assert writer.current_file.stat().st_size == size_before  # no half line
            assert writer.pending == 5

            await writer.flush()  # the fault has passed
            assert writer.pending == 0
        found = read_all(writer.metrics_dir)
        assert [e.id for e in found] == [e.id for e in first + second]

    async def test_one_failure_is_retried_once_inside_the_same_flush(
        self, tmp_path: Path, flaky: FlakyWrite
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
            await writer.write_batch([entry(i) for i in range(3)])
            flaky.failures, flaky.partial = 1, 10
            await writer.flush()  # rolled back, retried, succeeded
            assert writer.stats().errors == 0
        assert len(read_all(writer.metrics_dir)) == 3

    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EACCES])
    async def test_each_disk_error_raises_write_error_and_keeps_the_entries(
        self, tmp_path: Path, flaky: FlakyWrite, code: int
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
            written = [entry(i) for i in range(4)]
            await writer.write_batch(written)
            flaky.code, flaky.failures = code, 2
            with pytest.raises(WriteError) as info:
                await writer.flush()
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == code
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]

    async def test_close_that_cannot_write_raises_and_can_be_retried(
        self, tmp_path: Path, flaky: FlakyWrite
    ) -> None:
        writer = JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60)
        await writer.initialize()
        written = [entry(i) for i in range(3)]
        await writer.write_batch(written)
        flaky.code, flaky.failures = errno.ENOSPC, 2
        with pytest.raises(WriteError) as info:
            await writer.close()
        assert info.value.pending == 3
        assert not writer.closed
        with pytest.raises(WriterClosedError):
            await writer.write(entry(99))  # closing: no new entries
        await writer.close()
        assert writer.closed
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]

    async def test_a_failed_rotation_keeps_the_batch_and_the_current_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_open_new = _fileops.open_new
        failures = [1]

        def failing_open_new(path: Path) -> int:
            if failures[0]:
                failures[0] -= 1
                raise OSError(errno.ENOSPC, "No space left on device (no inodes)")
            return real_open_new(path)

        async with JSONLWriter(
            tmp_path, max_file_size=600, buffer_size=1000, compress_old=False
        ) as writer:
            monkeypatch.setattr(_fileops, "open_new", failing_open_new)
            before = writer.current_file
            assert before is not None
            written = [entry(i, size=100) for i in range(6)]
            await writer.write_batch(written)
            with pytest.raises(WriteError) as info:
                await writer.flush()
            assert info.value.pending == writer.pending > 0
            assert writer.current_file == before  # still the active file, still there
            assert before.exists()
            kept_on_disk = len(read_all(writer.metrics_dir))
            assert kept_on_disk + writer.pending == len(written)  # nothing lost or doubled
            await writer.flush()
            assert writer.pending == 0
            assert writer.current_file != before
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]


class TestImplicitFlush:
    async def test_write_never_raises_io_errors_logs_once_and_recovers(
        self, tmp_path: Path, flaky: FlakyWrite, caplog: pytest.LogCaptureFixture
    ) -> None:
        errors: list[BaseException] = []
        written = [entry(i) for i in range(40)]
        with caplog.at_level(logging.ERROR, logger="analytics"):
            async with JSONLWriter(
                tmp_path, buffer_size=4, flush_interval=0.01, on_error=errors.append
            ) as writer:
                flaky.code, flaky.failures, flaky.partial = errno.ENOSPC, 8, 5
                for e in written:
                    await writer.write(e)  # buffer-full flushes fail: never raised here
                for _ in range(200):
                    if writer.pending == 0:
                        break
                    await asyncio.sleep(0.02)
                stats = writer.stats()
                assert stats.pending == 0
                assert stats.errors >= 1
                assert stats.last_error is not None
                assert "No space left" in stats.last_error
        assert errors
        assert all(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in errors)
        failure_logs = [r for r in caplog.records if "cannot write" in r.getMessage()]
        assert len(failure_logs) == 1  # rate-limited
        found = read_all(writer.metrics_dir)
        assert ids_of(found) == Counter(e.id for e in written)

    async def test_an_async_on_error_callback_is_awaited(
        self, tmp_path: Path, flaky: FlakyWrite
    ) -> None:
        seen: list[BaseException] = []

        async def on_error(exc: BaseException) -> None:
            await asyncio.sleep(0)
            seen.append(exc)

        async with JSONLWriter(tmp_path, buffer_size=2, on_error=on_error) as writer:
            flaky.failures = 2
            await writer.write_batch([entry(i) for i in range(2)])
        assert len(seen) == 1

    async def test_a_raising_on_error_callback_is_logged_not_raised(
        self, tmp_path: Path, flaky: FlakyWrite, caplog: pytest.LogCaptureFixture
    ) -> None:
        def on_error(exc: BaseException) -> None:
            raise RuntimeError("callback bug")

        async with JSONLWriter(tmp_path, buffer_size=2, on_error=on_error) as writer:
            flaky.failures = 2
            await writer.write_batch([entry(i) for i in range(2)])
        assert any("on_error" in r.getMessage() for r in caplog.records)
        assert len(read_all(writer.metrics_dir)) == 2


class TestDirectoryRemoved:
    async def test_metrics_dir_is_recreated_and_pending_entries_survive(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
            await writer.write(entry(0))
            await writer.flush()
            pending = [entry(i) for i in range(1, 4)]
            await writer.write_batch(pending)
            await asyncio.to_thread(shutil.rmtree, writer.metrics_dir)
            await writer.flush()
            assert writer.metrics_dir.is_dir()
            assert writer.current_file is not None
            assert writer.current_file.exists()
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in pending]


class TestCompressionFaults:
    async def test_failed_compression_keeps_the_source_and_is_retried(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("analytics._write.flusher.COMPRESS_RETRY", 0.05)
        real = _fileops.compress_to
        failures = [1]
        spans: list[tuple[str, TimeBounds | None]] = []

        def failing_compress(
            src_fd: int,
            tmp: Path,
            codec: _fileops.GzipCodec,
            *,
            sync: bool,
            bounds: TimeBounds | None = None,
        ) -> None:
            spans.append((tmp.name, bounds))
            if failures[0]:
                failures[0] -= 1
                tmp.write_bytes(b"\x1f\x8b half a gzip")  # a real partial output
                raise OSError(errno.ENOSPC, "No space left on device")
            real(src_fd, tmp, codec, sync=sync, bounds=bounds)

        monkeypatch.setattr(_fileops, "compress_to", failing_compress)
        async with JSONLWriter(tmp_path, max_file_size=600, max_files=100) as writer:
            written = [entry(i, size=100) for i in range(4)]
            await writer.write_batch(written)
            await writer.flush()
            for _ in range(100):
                if writer.stats().errors:
                    break
                await asyncio.sleep(0.01)
            assert writer.stats().errors == 1
            # The source is still there, and the final .gz name was never used.
            plain = sorted(writer.metrics_dir.glob("metrics_*.jsonl"))
            assert len(plain) >= 2
            for _ in range(100):
                if writer.stats().compressions:
                    break
                await asyncio.sleep(0.02)
            assert writer.stats().compressions >= 1
        assert not list(writer.metrics_dir.glob("*.tmp"))
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]
        # The first try knew the file's time span; the retry, of a file left unlocked
        # in between (another process may have continued it), does not claim one.
        failed = spans[0][0]
        assert spans[0][1] is not None
        assert [bounds for name, bounds in spans[1:] if name == failed] == [None]
        assert read_bounds(writer.metrics_dir / failed.removesuffix(".tmp")) is None


CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys
    from analytics import JSONLWriter, MetricEntry, MetricType, WriteError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death

    def make(i):
        return MetricEntry(type=MetricType.TOOL_USE, data={"seq": i, "pad": "x" * 200})

    async def main(base):
        report = {"ids": [], "errors": []}
        async with JSONLWriter(base, buffer_size=10_000, flush_interval=60,
                               compress_old=False) as writer:
            batch = [make(i) for i in range(20)]
            await writer.write_batch(batch)
            report["ids"] += [e.id for e in batch]
            await writer.flush()
            size = writer.current_file.stat().st_size

            limit = size + 1000  # the next flush writes 1000 bytes, then EFBIG
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            batch = [make(i) for i in range(20, 40)]
            await writer.write_batch(batch)
            report["ids"] += [e.id for e in batch]
            try:
                await writer.flush()
            except WriteError as exc:
                report["errors"].append({"errno": exc.__cause__.errno, "pending": exc.pending})
            report["size_after_failure"] = writer.current_file.stat().st_size
            report["size_before_failure"] = size

            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            await writer.flush()
        print(json.dumps(report))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_real_partial_write_under_rlimit_fsize_rolls_back_and_lands_once(
    tmp_path: Path,
) -> None:
    """A real file size limit: the kernel writes part of the batch, then says EFBIG."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == [{"errno": errno.EFBIG, "pending": 20}]
    assert report["size_after_failure"] == report["size_before_failure"]
    found = read_all(tmp_path / "metrics")
    assert [e.id for e in found] == report["ids"]
    assert len(our_files(tmp_path / "metrics")) == 1


async def test_an_unexpected_error_in_the_flusher_does_not_wedge_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from analytics._write import storage as _storage

    real = _storage.Storage.write
    calls = [0]

    def buggy(
        self: _storage.Storage, lines: list[bytes], span: Span | None = None
    ) -> _storage.WriteOutcome:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug")
        return real(self, lines, span)

    monkeypatch.setattr(_storage.Storage, "write", buggy)
    async with JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60) as writer:
        written = [entry(i) for i in range(3)]
        await writer.write_batch(written)
        with pytest.raises(WriteError, match="a bug"):
            await writer.flush()
        assert writer.pending == 3
        await writer.flush()
    assert any("flusher failed" in r.getMessage() for r in caplog.records)
    assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]
