"""analytics.testing: the in-memory sink and the fabricated files behave as the real
ones do, so that users' tests (and ours) can rely on them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import (
    MetricEntry,
    MetricsWriter,
    MetricType,
    Sink,
    WriterClosedError,
    read_entries,
    summarize,
)
from analytics._policy import parse_name
from analytics.testing import (
    MemorySink,
    data_file_name,
    foreign_line,
    truncate_gzip,
    write_data_file,
    write_foreign_file,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def entries(n: int) -> list[MetricEntry]:
    return [
        MetricEntry(
            type=MetricType.TOOL_USE, session_id=f"s{i}", timestamp=T0 + timedelta(seconds=i)
        )
        for i in range(n)
    ]


class TestMemorySink:
    async def test_keeps_every_entry_in_order_behind_a_metrics_writer(self) -> None:
        sink = MemorySink()
        assert isinstance(sink, Sink)
        metrics = MetricsWriter(sink)
        await metrics.track_tool_use("s1", "grep", success=True)
        await metrics.track_error("s1", "Boom", "it broke")
        await metrics.flush()
        assert [e.type for e in sink.entries] == [MetricType.TOOL_USE, MetricType.ERROR_OCCURRED]
        assert sink.flushes == 1

    async def test_refuses_entries_after_close(self) -> None:
        sink = MemorySink()
        await sink.close()
        with pytest.raises(WriterClosedError):
            await sink.write(entries(1)[0])


class TestDataFiles:
    async def test_a_good_file_reads_back_whole(self, tmp_path: Path) -> None:
        path = write_data_file(tmp_path / "metrics", entries(5))
        assert path.parent == tmp_path / "metrics"
        info = parse_name(path.name, "metrics")
        assert info is not None
        assert [e.session_id async for e in read_entries(tmp_path)] == [f"s{i}" for i in range(5)]

    @pytest.mark.parametrize("compressed", [False, True])
    async def test_damage_is_skipped_and_counted(self, tmp_path: Path, compressed: bool) -> None:
        write_data_file(
            tmp_path / "metrics",
            entries(3),
            compressed=compressed,
            garbage=[b"{not json", foreign_line({"hello": "world"})],
            torn_tail=b'{"id":"half',
        )
        summary = summarize(tmp_path)
        assert (summary.entries, summary.bad_lines) == (3, 3)

    def test_a_truncated_gzip_keeps_what_precedes_the_damage(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        many = [
            MetricEntry(type=MetricType.TOOL_USE, session_id=f"s{i}", data={"pad": f"{i:08d}" * 50})
            for i in range(2000)
        ]
        path = truncate_gzip(write_data_file(tmp_path / "metrics", many, compressed=True))
        with caplog.at_level(logging.WARNING, logger="analytics"):
            summary = summarize(tmp_path)
        assert 0 < summary.entries < 2000
        assert path.name in caplog.text

    def test_foreign_files_are_left_out(self, tmp_path: Path) -> None:
        write_data_file(tmp_path / "metrics", entries(2))
        write_foreign_file(tmp_path / "metrics", "metrics_backup.jsonl")
        write_foreign_file(tmp_path / "metrics", data_file_name(T0) + ".gz.tmp")
        assert summarize(tmp_path).entries == 2

    def test_names_sort_by_creation_time(self) -> None:
        names = [data_file_name(T0 + timedelta(hours=h)) for h in (2, 0, 1)]
        assert sorted(names) == [data_file_name(T0 + timedelta(hours=h)) for h in (0, 1, 2)]
