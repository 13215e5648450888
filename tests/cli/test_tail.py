"""``tail``: the last N entries without reading the whole directory, and ``--follow``
printing every entry exactly once across rotations and compressions."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from analytics import MetricEntry, MetricType
from analytics.testing import write_data_file

from ..helpers import T0, number, run_cli

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


def gz_without_bounds(metrics: Path, created: datetime, tag: str, times: list[datetime]) -> Path:
    """A .jsonl.gz without recorded bounds (as another tool might leave)."""
    entries = [MetricEntry(type=MetricType.TOOL_USE, timestamp=t) for t in times]
    return write_data_file(metrics, entries, created=created, tag=tag, compressed=True)


class TestLast:
    def test_reads_from_the_newest_file_backwards_only(self, tmp_path: Path) -> None:
        """tail -n 3 never opens the older files: damaged ones make no warning."""
        metrics = tmp_path / "metrics"
        files = [
            gz_without_bounds(
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


class TestCommands:
    def test_tail_prints_the_last_entries(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        done = run_cli("tail", str(tmp_path), "-n", "3")
        lines = done.stdout.splitlines()
        assert [MetricEntry.from_json_line(line) for line in lines] == two_processes[-3:]

    def test_tail_follow_sees_new_entries_across_rotation(self, tmp_path: Path) -> None:
        script = (
            "import asyncio, sys\n"
            "from analytics import JSONLWriter, MetricsWriter\n"
            "async def main():\n"
            "    async with JSONLWriter(sys.argv[1], max_file_size=600, flush_interval=0.05)"
            " as w:\n"
            "        m = MetricsWriter(w)\n"
            "        for i in range(12):\n"
            "            await m.track_tool_use('s', 'grep', True, float(i))\n"
            "            await asyncio.sleep(0.1)\n"
            "asyncio.run(main())\n"
        )
        (tmp_path / "metrics").mkdir()
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "analytics",
                "tail",
                str(tmp_path),
                "--follow",
                "--interval",
                "0.05",
                "--max-seconds",
                "4",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.8)
        subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
        out, _ = follower.communicate(timeout=30)
        seen = [MetricEntry.from_json_line(line).data["duration_ms"] for line in out.splitlines()]
        assert seen == [float(i) for i in range(12)]
        assert list((tmp_path / "metrics").glob("*.gz"))  # it did rotate and compress
