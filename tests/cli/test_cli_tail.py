"""``tail``: the last N entries without reading the whole directory, and ``--follow``
printing every entry exactly once across rotations and compressions."""

from __future__ import annotations

import asyncio
import gzip
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics import JSONLWriter, MetricEntry, MetricType, iter_entries
from analytics._policy import format_name
from analytics._read.tail import DirectoryTail

WRITER = """
import asyncio, sys
from analytics import JSONLWriter, MetricsWriter

async def main(base, count):
    async with JSONLWriter(base, max_file_size=2048, max_files=100_000,
                           flush_interval=0.01, buffer_size=5) as w:
        m = MetricsWriter(w)
        for i in range(count):
            await m.track_tool_use("s", "grep", True, 1.0, number=i)
            if i % 10 == 0:
                await asyncio.sleep(0.01)
    print("done", flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def number(e: MetricEntry) -> int:
    value = e.data["number"]
    assert isinstance(value, int)
    return value


def numbers(out: str) -> Counter[int]:
    return Counter(number(MetricEntry.from_json_line(line)) for line in out.splitlines())


class TestFollow:
    def test_started_while_a_writer_is_busy_every_entry_once(self, tmp_path: Path) -> None:
        """A writer in a child process rotates and gzips many times while tail -f runs
        (started mid-way, with -n covering everything before it); stopped by SIGTERM
        right after the writer ends, tail has printed every number exactly once."""
        count = 3000
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(count)],
            stdout=subprocess.PIPE,
            text=True,
        )
        metrics = tmp_path / "metrics"
        deadline = time.monotonic() + 30
        while len(list(metrics.glob("*.gz")) if metrics.is_dir() else []) < 3:
            assert time.monotonic() < deadline, "the writer did not rotate"
            time.sleep(0.01)
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "analytics",
                "tail",
                str(tmp_path),
                "-f",
                "-n",
                str(count),
                "--interval",
                "0.02",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.communicate(timeout=60)[0].strip() == "done"
            assert writer.returncode == 0
        finally:
            follower.send_signal(signal.SIGTERM)
            out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        assert err == ""
        seen = numbers(out)
        assert set(seen) == set(range(count))
        assert max(seen.values()) == 1
        gz = len(list(metrics.glob("*.gz")))
        assert gz > 10  # it did rotate and compress, many times, while tail ran

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


def write_file(metrics: Path, created: datetime, tag: str, times: list[datetime]) -> Path:
    """A .jsonl.gz without recorded bounds (as another tool might leave)."""

    metrics.mkdir(parents=True, exist_ok=True)
    name = format_name("metrics", int(created.timestamp() * 1e9), 4242, tag, True)
    data = b"".join(
        MetricEntry(type=MetricType.TOOL_USE, timestamp=t).to_json_line() for t in times
    )
    path = metrics / name
    path.write_bytes(gzip.compress(data))
    return path


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class TestLast:
    def test_reads_from_the_newest_file_backwards_only(self, tmp_path: Path) -> None:
        """tail -n 3 never opens the older files: damaged ones make no warning."""
        metrics = tmp_path / "metrics"
        files = [
            write_file(
                metrics,
                T0 + timedelta(minutes=k),
                "aaaaaaaa",
                [T0 + timedelta(minutes=k, seconds=s) for s in range(5)],
            )
            for k in range(6)
        ]
        for old in files[:4]:
            old.write_bytes(b"\x1f\x8b damaged beyond repair")
        done = subprocess.run(
            [sys.executable, "-m", "analytics", "tail", str(tmp_path), "-n", "7"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        got = [MetricEntry.from_json_line(line).timestamp for line in done.stdout.splitlines()]
        expected = [T0 + timedelta(minutes=k, seconds=s) for k in (4, 5) for s in range(5)]
        assert got == expected[-7:]

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
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        name = format_name("metrics", int(T0.timestamp() * 1e9), 1, "bbbbbbbb")
        kinds = [MetricType.TOOL_USE, MetricType.ERROR_OCCURRED] * 5
        (metrics / name).write_bytes(
            b"".join(
                MetricEntry(type=k, timestamp=T0 + timedelta(seconds=i)).to_json_line()
                for i, k in enumerate(kinds)
            )
        )
        last = DirectoryTail(tmp_path, types=["error_occurred"]).last(2)
        assert [e.type for e in last] == [MetricType.ERROR_OCCURRED] * 2
        assert [e.timestamp for e in last] == [T0 + timedelta(seconds=s) for s in (7, 9)]
