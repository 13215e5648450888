"""JSONLWriter: lifecycle, buffering, rotation, compression, retention, restart."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
from pathlib import Path

import pytest

from analytics import (
    AnalyticsError,
    JSONLWriter,
    MetricEntry,
    MetricType,
    SerializationError,
    WriterClosedError,
    WriterStateError,
)
from analytics._policy import format_name, parse_name

from ..helpers import entry, ids_of, lines_of, our_files, read_all


def active_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl"))


def gz_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl.gz"))


class TestLifecycle:
    def test_constructor_does_no_io(self, tmp_path: Path) -> None:
        base = tmp_path / "not" / "yet"
        writer = JSONLWriter(base)
        assert not base.exists()
        assert writer.metrics_dir == base / "metrics"
        assert writer.current_file is None

    async def test_initialize_creates_the_directory_and_active_file(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path / "data")
        await writer.initialize()
        try:
            assert writer.metrics_dir == tmp_path / "data" / "metrics"
            assert writer.metrics_dir.is_dir()
            assert writer.current_file is not None
            assert writer.current_file.parent == writer.metrics_dir
            assert writer.current_file in active_files(writer.metrics_dir)
        finally:
            await writer.close()

    async def test_async_with_initializes_and_closes(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await writer.write(entry())
            assert not writer.closed
        assert writer.closed
        assert len(read_all(writer.metrics_dir)) == 1

    async def test_close_is_idempotent(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path)
        await writer.initialize()
        await writer.write(entry())
        await writer.close()
        await writer.close()
        assert len(read_all(writer.metrics_dir)) == 1

    async def test_close_without_initialize_is_harmless(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path / "x")
        await writer.close()
        assert not (tmp_path / "x").exists()

    async def test_initialize_twice_does_nothing_more(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            first = writer.current_file
            await writer.initialize()
            assert writer.current_file == first
            assert len(active_files(writer.metrics_dir)) == 1

    async def test_write_after_close_raises_a_clear_error(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path)
        await writer.initialize()
        await writer.close()
        with pytest.raises(WriterClosedError, match="closed") as info:
            await writer.write(entry())
        assert isinstance(info.value, AnalyticsError)
        with pytest.raises(WriterClosedError):
            await writer.write_batch([entry()])
        with pytest.raises(WriterClosedError):
            await writer.initialize()

    async def test_write_before_initialize_says_what_to_do(self, tmp_path: Path) -> None:
        writer = JSONLWriter(tmp_path)
        with pytest.raises(WriterStateError, match="initialize"):
            await writer.write(entry())

    async def test_close_leaves_the_active_file_uncompressed(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await writer.write(entry())
        assert writer.current_file is not None
        assert writer.current_file.exists()
        assert writer.current_file.name.endswith(".jsonl")
        assert gz_files(writer.metrics_dir) == []


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


class TestBadInput:
    async def test_a_bad_entry_fails_alone_at_its_caller(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, buffer_size=3) as writer:
            await writer.write(entry(0))
            bad = entry(1)
            bad.data["oops"] = object()  # type: ignore[assignment]  # mutated after validation
            with pytest.raises(SerializationError):
                await writer.write(bad)
            await writer.write(entry(2))
            assert writer.pending == 2
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 2]

    async def test_write_rejects_what_is_not_an_entry(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            with pytest.raises(TypeError, match="MetricEntry"):
                await writer.write({"type": "tool_use"})  # type: ignore[arg-type]
            assert writer.pending == 0

    async def test_write_batch_refuses_only_the_bad_entry(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            bad = entry(1)
            bad.data["oops"] = object()  # type: ignore[assignment]
            with pytest.raises(SerializationError, match="refused 1 of 3"):
                await writer.write_batch([entry(0), bad, entry(2)])
            assert writer.pending == 2
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 2]


class TestRotation:
    async def test_files_rotate_at_max_file_size_without_splitting_lines(
        self, tmp_path: Path
    ) -> None:
        limit = 2000
        async with JSONLWriter(
            tmp_path, max_file_size=limit, max_files=1000, compress_old=False, buffer_size=7
        ) as writer:
            written = [entry(i, size=50) for i in range(300)]
            for e in written:
                await writer.write(e)
        files = our_files(writer.metrics_dir)
        assert len(files) > 10
        for path in files:
            assert path.stat().st_size <= limit
            assert path.read_bytes().endswith(b"\n")
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]

    async def test_an_entry_larger_than_max_file_size_is_written_alone(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(
            tmp_path, max_file_size=500, compress_old=False, buffer_size=1
        ) as writer:
            await writer.write(entry(0))
            big = entry(1, size=2000)
            await writer.write(big)
            await writer.write(entry(2))
        files = our_files(writer.metrics_dir)
        holding_big = [p for p in files if big.id.encode() in p.read_bytes()]
        assert len(holding_big) == 1
        assert len(lines_of(holding_big[0])) == 1
        assert len(read_all(writer.metrics_dir)) == 3

    async def test_restart_continues_the_newest_file_below_the_limit(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as first:
            await first.write(entry(0))
        async with JSONLWriter(tmp_path) as second:
            assert second.current_file == first.current_file
            await second.write(entry(1))
        assert len(our_files(second.metrics_dir)) == 1
        assert [e.data["seq"] for e in read_all(second.metrics_dir)] == [0, 1]

    async def test_restart_starts_a_new_file_when_the_newest_is_full(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=300, compress_old=False) as first:
            await first.write(entry(0, size=400))  # one entry, alone, over the limit
        async with JSONLWriter(tmp_path, max_file_size=300, compress_old=False) as second:
            assert second.current_file != first.current_file
        assert len(read_all(second.metrics_dir)) == 1


class TestCompression:
    async def test_rotated_files_are_gzipped_and_the_active_one_is_not(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, max_file_size=3000, max_files=1000) as writer:
            written = [entry(i, size=60) for i in range(200)]
            await writer.write_batch(written)
        assert active_files(writer.metrics_dir) == [writer.current_file]
        zipped = gz_files(writer.metrics_dir)
        assert len(zipped) >= 5
        for path in zipped:
            with gzip.open(path) as f:
                assert f.read().endswith(b"\n")
        assert not list(writer.metrics_dir.glob("*.tmp"))
        assert sorted(e.id for e in read_all(writer.metrics_dir)) == sorted(e.id for e in written)

    async def test_names_of_compressed_files_keep_the_creation_time(self, tmp_path: Path) -> None:
        active_names: list[str] = []
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=1000, buffer_size=1) as w:
            for i in range(30):
                await w.write(entry(i, size=100))
                assert w.current_file is not None
                if w.current_file.name not in active_names:
                    active_names.append(w.current_file.name)
        zipped = [p.name for p in gz_files(w.metrics_dir)]
        assert len(zipped) >= 3
        # Each .gz is named after the active file it was: same creation time, same tag.
        assert [name.removesuffix(".gz") for name in zipped] == active_names[:-1]
        for name in zipped:
            info = parse_name(name, "metrics")
            assert info is not None
            assert info.compressed
        # Name order is still data order, and the active file sorts last.
        assert [e.data["seq"] for e in read_all(w.metrics_dir)] == list(range(30))
        assert [p.name for p in our_files(w.metrics_dir)][-1] == active_names[-1]

    async def test_compress_old_false_keeps_plain_files(self, tmp_path: Path) -> None:
        async with JSONLWriter(
            tmp_path, max_file_size=1000, max_files=1000, compress_old=False
        ) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(30)])
        assert gz_files(writer.metrics_dir) == []
        assert len(active_files(writer.metrics_dir)) > 3

    async def test_close_waits_for_compressions_in_progress(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from analytics import _fileops

        real = _fileops.compress_to

        def slow_compress(*args: object, **kwargs: bool) -> None:
            import time

            time.sleep(0.2)
            real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(_fileops, "compress_to", slow_compress)
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=1000) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(12)])
            await writer.flush()
        assert len(gz_files(writer.metrics_dir)) >= 1
        assert active_files(writer.metrics_dir) == [writer.current_file]
        assert not list(writer.metrics_dir.glob("*.tmp"))


class TestRetention:
    async def test_at_most_max_files_are_kept_newest_first(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=3) as writer:
            written = [entry(i, size=100) for i in range(60)]
            await writer.write_batch(written)
        files = our_files(writer.metrics_dir)
        assert len(files) == 3
        assert writer.current_file in files
        assert writer.stats().files_deleted > 0
        # What survives is the newest data, in order.
        kept = [e.data["seq"] for e in read_all(writer.metrics_dir)]
        assert kept == list(range(60 - len(kept), 60))

    async def test_max_files_counts_plain_and_compressed_together(self, tmp_path: Path) -> None:
        async with JSONLWriter(
            tmp_path, max_file_size=1000, max_files=4, compress_old=False
        ) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(60)])
        assert len(our_files(writer.metrics_dir)) == 4

    async def test_foreign_files_are_never_deleted(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        foreign = ["notes.txt", "metrics.jsonl", "metrics_old.jsonl", "other_1.jsonl.gz"]
        for name in foreign:
            (metrics_dir / name).write_text("keep me\n")
        (metrics_dir / "subdir").mkdir()
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=2) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(40)])
        for name in foreign:
            assert (metrics_dir / name).read_text() == "keep me\n"
        assert (metrics_dir / "subdir").is_dir()
        assert len([p for p in our_files(metrics_dir) if parse_name(p.name, "metrics")]) == 2

    async def test_oldest_by_the_time_in_the_name_not_by_mtime(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        old_ns = 1_600_000_000 * 10**9
        old_names = [format_name("metrics", old_ns + i * 10**9, 1, "0badcafe") for i in range(3)]
        for name in old_names:
            path = metrics_dir / (name + ".gz")
            path.write_bytes(gzip.compress(entry().to_json_line()))
            future = 4_000_000_000
            os.utime(path, (future, future))  # newest by mtime, oldest by name
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=4) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(20)])
        remaining = {p.name for p in our_files(metrics_dir)}
        assert not any(name + ".gz" in remaining for name in old_names)
        assert len(remaining) == 4

    async def test_the_active_file_is_never_deleted(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=500, max_files=1) as writer:
            for i in range(30):
                await writer.write(entry(i, size=100))
                assert writer.current_file is not None
                if writer.stats().rotations:
                    assert writer.current_file.exists()
        assert our_files(writer.metrics_dir) == [writer.current_file]


class TestNaming:
    async def test_names_never_overwrite_an_existing_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from analytics._policy import NameAllocator

        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        taken = NameAllocator("metrics", os.getpid(), tag="00000000").next()
        precious = b"precious\n" * 20  # full, so a new writer will not continue it
        (metrics_dir / taken.name).write_bytes(precious)
        real_next = NameAllocator.next
        handed: list[str] = []

        def colliding_next(self: NameAllocator, now_ns: int | None = None) -> object:
            if not handed:
                handed.append(taken.name)
                return taken
            return real_next(self, now_ns)

        monkeypatch.setattr(NameAllocator, "next", colliding_next)
        async with JSONLWriter(tmp_path, max_file_size=100, compress_old=False) as writer:
            await writer.write(entry())
        assert handed == [taken.name]
        assert (metrics_dir / taken.name).read_bytes() == precious
        assert writer.current_file != metrics_dir / taken.name

    async def test_two_writers_on_one_directory_use_different_files(self, tmp_path: Path) -> None:
        async with (
            JSONLWriter(tmp_path, max_file_size=800, max_files=1000) as a,
            JSONLWriter(tmp_path, max_file_size=800, max_files=1000) as b,
        ):
            assert a.current_file != b.current_file
            for i in range(40):
                await a.write(entry(i, task="a", size=50))
                await b.write(entry(i, task="b", size=50))
        entries = read_all(a.metrics_dir)
        assert len(entries) == 80
        assert len(ids_of(entries)) == 80


class TestStats:
    async def test_counts_what_happened(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=1000) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(20)])
            await writer.flush()
            stats = writer.stats()
            assert stats.entries_written == 20
            assert stats.pending == 0
            assert stats.rotations >= 2
            assert stats.bytes_written == sum(
                len(line) for p in our_files(writer.metrics_dir) for line in lines_of(p)
            )
        assert writer.stats().compressions == writer.stats().rotations


class TestLogging:
    async def test_the_library_logs_under_analytics_and_never_prints(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        name = format_name("metrics", 1_600_000_000 * 10**9, 1, "0badcafe")
        (metrics_dir / name).write_bytes(entry().to_json_line() + b'{"torn')
        with caplog.at_level(logging.DEBUG, logger="analytics"):
            async with JSONLWriter(tmp_path) as writer:
                await writer.write(entry())
        assert any(r.name == "analytics" and "torn" in r.getMessage() for r in caplog.records)
        out = capsys.readouterr()
        assert out.out == ""
        assert out.err == ""


async def test_every_type_can_be_written(tmp_path: Path) -> None:
    async with JSONLWriter(tmp_path) as writer:
        for t in MetricType:
            await writer.write(MetricEntry(type=t))
    assert {e.type for e in read_all(writer.metrics_dir)} == set(MetricType)
