"""DirectoryTail: the last entries by time across writers and filters, and polling
across a compression."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from analytics import JSONLWriter, MetricEntry, MetricType, iter_entries
from analytics._read.tail import DirectoryTail
from analytics.testing import write_data_file

from ..helpers import T0, number


class TestFollow:
    def test_poll_finishes_a_file_compressed_between_polls_from_its_gz(
        self, tmp_path: Path
    ) -> None:
        """What was read of a .jsonl is not read again from its .gz, and the rest is."""

        async def write(base: Path, start: int, stop: int) -> None:
            async with JSONLWriter(base, max_file_size=1500, max_files=1000) as w:
                for i in range(start, stop):
                    await w.write(
                        MetricEntry(type=MetricType.TOOL_USE, session_id="s", data={"number": i})
                    )

        asyncio.run(write(tmp_path, 0, 3))  # one active .jsonl, continued below
        tail = DirectoryTail(tmp_path)
        assert [number(e) for e in tail.last(10)] == [0, 1, 2]
        asyncio.run(write(tmp_path, 3, 60))  # continues it, rotates and compresses it
        got = [number(e) for e in tail.poll()]
        assert sorted(got) == list(range(3, 60))
        assert tail.poll() == []


class TestLast:
    def test_the_last_entries_of_writers_whose_files_interleave(self, tmp_path: Path) -> None:
        """Two writers at once: the last N by time, whatever file they are in."""

        async def two_writers() -> None:
            async with (
                JSONLWriter(tmp_path, max_file_size=900, max_files=1000) as a,
                JSONLWriter(tmp_path, max_file_size=2500, max_files=1000) as b,
            ):
                for i in range(120):
                    w = a if i % 3 else b
                    await w.write(MetricEntry(type=MetricType.TOOL_USE, data={"number": i}))
                    await asyncio.sleep(0)

        asyncio.run(two_writers())
        everything = list(iter_entries(tmp_path))
        assert len(everything) == 120
        for n in (0, 1, 5, 17, 60, 119, 120, 500):
            last = DirectoryTail(tmp_path).last(n)
            assert [e.id for e in last] == [e.id for e in everything[-n:]] if n else last == []

    def test_type_filter_counts_after_filtering(self, tmp_path: Path) -> None:
        kinds = [MetricType.TOOL_USE, MetricType.ERROR_OCCURRED] * 5
        write_data_file(
            tmp_path / "metrics",
            [MetricEntry(type=k, timestamp=T0 + timedelta(seconds=i)) for i, k in enumerate(kinds)],
            created=T0,
            pid=1,
            tag="bbbbbbbb",
        )
        last = DirectoryTail(tmp_path, types=["error_occurred"]).last(2)
        assert [e.type for e in last] == [MetricType.ERROR_OCCURRED] * 2
        assert [e.timestamp for e in last] == [T0 + timedelta(seconds=s) for s in (7, 9)]
