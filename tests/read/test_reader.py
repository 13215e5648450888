"""Reading back: iter_entries and read_entries merge every file in timestamp order."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    ReadStats,
    iter_entries,
    read_entries,
)

from ..helpers import T0, at, gz_files, lines_of, write_file


class TestIterEntries:
    def test_merges_every_file_in_timestamp_order(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        stats = ReadStats()
        found = list(iter_entries(tmp_path, stats=stats))
        assert found == two_processes
        assert stats.bad_lines == 2  # the torn tail and the corrupt line
        assert stats.entries == 100

    def test_the_metrics_dir_itself_works_too(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        assert len(list(iter_entries(tmp_path / "metrics"))) == 100

    def test_bad_lines_are_logged_with_file_and_line(
        self, tmp_path: Path, two_processes: list[MetricEntry], caplog: pytest.LogCaptureFixture
    ) -> None:
        list(iter_entries(tmp_path))
        messages = [r.getMessage() for r in caplog.records if r.name == "analytics"]
        assert any(":31: skipped" in m for m in messages)  # the corrupt line of file b1
        assert any(":26: skipped" in m for m in messages)  # the torn tail of file a2

    def test_filters(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)
        window = list(iter_entries(tmp_path, since=since, until=until))
        assert [e.timestamp for e in window] == [
            e.timestamp for e in two_processes if since <= e.timestamp < until
        ]
        assert {e.session_id for e in iter_entries(tmp_path, session_id="b")} == {"b"}
        assert list(iter_entries(tmp_path, user_id="nobody")) == []
        assert list(iter_entries(tmp_path, types=["session_end"])) == []
        assert len(list(iter_entries(tmp_path, types=[MetricType.TOOL_USE]))) == 100

    def test_files_outside_the_window_are_not_opened(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        old = [at(-86400 + i) for i in range(3)]
        write_file(metrics_dir, T0 - timedelta(days=1), 3, old, tag="abcdef03")
        write_file(metrics_dir, T0 - timedelta(days=1, seconds=-10), 3, [], tag="abcdef03")
        stats = ReadStats()
        found = list(iter_entries(tmp_path, since=T0, stats=stats))
        assert len(found) == 100
        assert stats.files_skipped >= 1
        late = ReadStats()
        assert list(iter_entries(tmp_path, until=T0 - timedelta(hours=1), stats=late)) == old
        assert late.files_skipped >= 4

    async def test_files_the_writer_compressed_are_skipped_by_their_span(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """End to end: the spans the writer records are the ones the reader prunes by
        (entries dated a day apart, as an import of older data would be). The older
        files are cut to their header afterwards: had the reader opened one, it would
        have found the damage and said so."""
        older = [at(-86400 + i, data={"pad": "x" * 80}) for i in range(60)]
        newer = [at(i, data={"pad": "x" * 80}) for i in range(60)]
        async with JSONLWriter(tmp_path, max_file_size=2000, max_files=1000) as writer:
            await writer.write_batch(older)
            await writer.flush()
            await writer.write_batch(newer)
        old_files = [
            path
            for path in gz_files(writer.metrics_dir)
            if all(MetricEntry.from_json_line(line).timestamp < T0 for line in lines_of(path))
        ]
        assert len(old_files) >= 3
        for path in old_files:
            path.write_bytes(path.read_bytes()[:40])  # the header, and a torn stream
        stats = ReadStats()
        with caplog.at_level("WARNING", logger="analytics"):
            found = [e.id for e in iter_entries(tmp_path, since=T0, stats=stats)]
        assert found == [e.id for e in newer]
        assert stats.files_skipped >= len(old_files)
        assert [r.getMessage() for r in caplog.records if r.name == "analytics"] == []

    def test_a_slightly_unordered_file_still_comes_out_in_order(self, tmp_path: Path) -> None:
        entries = [at(i) for i in range(100)]
        shuffled = entries[:]
        for i in range(0, 100, 2):
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
        write_file(tmp_path / "metrics", T0, 1, shuffled)
        assert list(iter_entries(tmp_path)) == entries

    def test_naive_bounds_and_missing_directories_are_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            list(iter_entries(tmp_path, since=datetime(2026, 1, 1)))
        with pytest.raises(FileNotFoundError):
            list(iter_entries(tmp_path / "missing"))

    async def test_a_directory_being_written_reads_cleanly(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=2000, max_files=1000) as writer:
            metrics = MetricsWriter(writer)
            written = [await metrics.track_tool_use("s", "grep", True, float(i)) for i in range(60)]
            await writer.flush()
            mid = [e async for e in read_entries(tmp_path)]
            assert [e.id for e in mid] == [e.id for e in written]
        assert [e.id for e in iter_entries(tmp_path)] == [e.id for e in written]


class TestReadEntries:
    async def test_async_iteration_matches_the_sync_one(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        stats = ReadStats()
        found = [e async for e in read_entries(tmp_path, stats=stats)]
        assert found == two_processes
        assert stats.bad_lines == 2

    async def test_stopping_early_closes_the_files(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        reader = read_entries(tmp_path)
        first = []
        async for e in reader:
            first.append(e)
            if len(first) == 3:
                break
        await reader.aclose()  # type: ignore[attr-defined]
        assert first == two_processes[:3]
