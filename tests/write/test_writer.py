"""JSONLWriter: lifecycle, bad input, stats and logging (buffering is the flusher's,
the files are the storage's: see test_flusher*.py and test_storage*.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
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
from analytics.testing import write_data_file

from ..helpers import active_files, entry, gz_files, lines_of, our_files, read_all


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
        write_data_file(
            tmp_path / "metrics",
            [entry()],
            created=datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC),
            pid=1,
            tag="0badcafe",
            torn_tail=b'{"torn',
        )
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
