"""Reading back: iter_entries, read_entries, summarize, and the report commands."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    ReadStats,
    iter_entries,
    read_entries,
    summarize,
)
from analytics.__main__ import main
from analytics._policy import format_name
from analytics._read.rows import entry_from_line, fields_from_line, hour_of
from analytics._read.summary import Quantiles, summarize_entries

from ..strategies import entries

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(seconds: float, type: MetricType = MetricType.TOOL_USE, **fields: object) -> MetricEntry:
    return MetricEntry(type=type, timestamp=T0 + timedelta(seconds=seconds), **fields)


def write_file(
    metrics_dir: Path,
    created: datetime,
    pid: int,
    entries: list[MetricEntry],
    compressed: bool = False,
    tag: str = "abcdef01",
    tail: bytes = b"",
) -> Path:
    metrics_dir.mkdir(parents=True, exist_ok=True)
    name = format_name("metrics", int(created.timestamp() * 1e9), pid, tag)
    data = b"".join(e.to_json_line() for e in entries) + tail
    path = metrics_dir / (name + (".gz" if compressed else ""))
    path.write_bytes(gzip.compress(data) if compressed else data)
    return path


@pytest.fixture
def two_processes(tmp_path: Path) -> list[MetricEntry]:
    """Two writers' files, interleaved in time, compressed and not, with damage."""
    metrics_dir = tmp_path / "metrics"
    a = [
        at(
            i * 2,
            session_id="a",
            data={"tool_name": "grep", "success": True, "duration_ms": float(i)},
        )
        for i in range(50)
    ]
    b = [
        at(
            i * 2 + 1,
            session_id="b",
            data={"tool_name": "edit", "success": i % 5 != 0, "duration_ms": 10.0 + i},
        )
        for i in range(50)
    ]
    write_file(metrics_dir, T0, 1, a[:25], compressed=True)
    write_file(metrics_dir, T0 + timedelta(seconds=50), 1, a[25:], tail=b'{"torn')
    write_file(
        metrics_dir, T0, 2, b[:30], compressed=True, tag="abcdef02", tail=b"not json at all\n"
    )
    write_file(metrics_dir, T0 + timedelta(seconds=60), 2, b[30:], tag="abcdef02")
    (metrics_dir / "notes.txt").write_text("not ours\n")
    return sorted(a + b, key=lambda e: e.timestamp)


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


class TestSummarize:
    def test_counts_tools_sessions_errors_and_tokens(self, tmp_path: Path) -> None:
        entries = [
            at(0, MetricType.SESSION_START, session_id="s1"),
            *[
                at(
                    1 + i,
                    session_id="s1",
                    data={"tool_name": "grep", "success": i != 3, "duration_ms": float(i + 1)},
                )
                for i in range(10)
            ],
            at(
                20,
                MetricType.TOKEN_USAGE,
                session_id="s1",
                data={"model": "m", "input_tokens": 100, "output_tokens": 20},
            ),
            at(
                21,
                MetricType.ERROR_OCCURRED,
                session_id="s1",
                data={"error_type": "Timeout", "error_message": "slow"},
            ),
            at(22, MetricType.ERROR_OCCURRED, data={"error_type": "Timeout", "error_message": "x"}),
            at(30, MetricType.SESSION_END, session_id="s1", data={"duration_seconds": 30.0}),
        ]
        write_file(tmp_path / "metrics", T0, 1, entries, tail=b"garbage\n")
        s = summarize(tmp_path)
        assert s.entries == 15
        assert s.first == T0
        assert s.last == T0 + timedelta(seconds=30)
        assert s.by_type == {
            "error_occurred": 2,
            "session_end": 1,
            "session_start": 1,
            "token_usage": 1,
            "tool_use": 10,
        }
        grep = s.tools["grep"]
        assert (grep.calls, grep.failures, grep.success_rate) == (10, 1, 0.9)
        assert (grep.duration_ms_p50, grep.duration_ms_p95, grep.duration_ms_max) == (5, 10, 10)
        assert s.sessions.count == 1
        assert s.sessions.duration_s_p50 == 30.0
        assert s.sessions.tokens_total == 120
        assert s.errors["Timeout"].count == 2
        assert s.errors["Timeout"].example == "slow"
        assert s.tokens_by_model["m"].total_tokens == 120
        assert s.bucket == "hour"
        assert s.timeline == {"2026-11-01T12:00:00+00:00": 15}
        assert s.bad_lines == 1
        assert s.percentiles_exact

    def test_session_duration_falls_back_to_start_and_end_times(self) -> None:
        s = summarize_entries(
            [
                at(0, MetricType.SESSION_START, session_id="x"),
                at(42, MetricType.SESSION_END, session_id="x"),
            ]
        )
        assert s.sessions.duration_s_p50 == 42.0

    def test_a_long_span_is_bucketed_by_day(self) -> None:
        s = summarize_entries([at(0), at(5 * 86400)])
        assert s.bucket == "day"
        assert list(s.timeline) == ["2026-11-01T00:00:00+00:00", "2026-11-06T00:00:00+00:00"]


class TestQuantiles:
    def test_exact_for_modest_data(self) -> None:
        q = Quantiles()
        for v in range(1, 101):
            q.add(float(v))
        assert (q.quantile(0.5), q.quantile(0.95), q.quantile(0.99)) == (50, 95, 99)
        assert q.exact

    def test_approximate_within_the_stated_error_beyond_the_limit(self) -> None:
        import random

        rng = random.Random(7)
        values = [rng.lognormvariate(3, 1.5) for _ in range(20_000)]
        q = Quantiles(exact_limit=1000)
        for v in values:
            q.add(v)
        assert not q.exact
        ordered = sorted(values)
        for p in (0.5, 0.9, 0.95, 0.99):
            exact = ordered[max(1, int(-(-p * len(values) // 1))) - 1]
            estimate = q.quantile(p)
            assert estimate is not None
            assert abs(estimate - exact) <= 0.011 * exact

    @given(
        st.lists(st.floats(0, 1e6), max_size=60),
        st.lists(st.floats(0, 1e6), max_size=60),
        st.integers(1, 80),
    )
    def test_merging_two_streams_is_adding_them_all(
        self, first: list[float], second: list[float], limit: int
    ) -> None:
        whole, left, right = (Quantiles(exact_limit=limit) for _ in range(3))
        for v in first + second:
            whole.add(v)
        for v in first:
            left.add(v)
        for v in second:
            right.add(v)
        left.merge(right)
        assert (left.count, left.exact) == (whole.count, whole.exact)
        assert left.maximum == whole.maximum
        for p in (0.01, 0.5, 0.95, 0.99, 1.0):
            assert left.quantile(p) == whole.quantile(p)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCommands:
    def test_report_formats(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        text = run_cli("report", str(tmp_path))
        assert text.returncode == 0, text.stderr
        assert "100 entries" in text.stdout
        assert "grep" in text.stdout
        as_json = json.loads(run_cli("report", str(tmp_path), "--format", "json").stdout)
        assert as_json["entries"] == 100
        assert as_json["tools"]["edit"]["failures"] == 10
        assert as_json["bad_lines"] == 2
        markdown = run_cli("report", str(tmp_path), "--format", "markdown").stdout
        assert "| tool | calls |" in markdown
        rows = list(
            csv.reader(run_cli("report", str(tmp_path), "--format", "csv").stdout.splitlines())
        )
        assert rows[0][0] == "tool"
        assert {r[0] for r in rows[1 : rows.index([])]} == {"edit", "grep"}  # the first table

    def test_report_filters_and_output_file(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        out = tmp_path / "r.json"
        done = run_cli(
            "report",
            str(tmp_path),
            "--session",
            "a",
            "--format",
            "json",
            "--output",
            str(out),
            "--since",
            "2026-11-01T12:00:10Z",
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(out.read_text())
        assert data["entries"] == 45
        assert list(data["tools"]) == ["grep"]

    def test_html_report_is_self_contained_with_svg_charts(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        out = tmp_path / "report.html"
        assert main(["report", str(tmp_path), "--format", "html", "--output", str(out)]) == 0

        class Collect(HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.tags: list[tuple[str, dict[str, str | None]]] = []

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                self.tags.append((tag, dict(attrs)))

        parser = Collect()
        parser.feed(out.read_text())
        tags = [t for t, _ in parser.tags]
        assert tags[0] == "html"
        assert tags.count("svg") == 2
        assert tags.count("rect") > 10
        assert "script" not in tags
        for _, attrs in parser.tags:
            for key in ("src", "href"):
                value = attrs.get(key) or ""
                assert not value.startswith(("http", "//")), value
        assert "link" not in tags

    def test_export_jsonl_and_csv(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        out = tmp_path / "out.jsonl"
        assert run_cli("export", str(tmp_path), str(out), "--type", "tool_use").returncode == 0
        exported = [MetricEntry.from_json_line(line) for line in out.read_bytes().splitlines()]
        assert exported == two_processes
        out_csv = tmp_path / "out.csv"
        done = run_cli(
            "export",
            str(tmp_path),
            str(out_csv),
            "--format",
            "csv",
            "--until",
            "2026-11-01T12:00:04+00:00",
        )
        assert done.returncode == 0, done.stderr
        with out_csv.open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 4
        assert json.loads(rows[0]["data"])["tool_name"] == "grep"

    def test_export_parquet(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        duckdb = pytest.importorskip("duckdb")
        out = tmp_path / "out.parquet"
        done = run_cli("export", str(tmp_path), str(out), "--format", "parquet", "--session", "b")
        assert done.returncode == 0, done.stderr
        assert not list(tmp_path.glob("*.tmp"))  # the staging file is gone
        con = duckdb.connect()
        rows = con.execute(  # epoch_us: fetching a TIMESTAMPTZ would need pytz
            "SELECT id, epoch_us(timestamp), type, session_id, user_id, data, metadata,"
            " typeof(timestamp) FROM read_parquet(?)",
            [str(out)],
        ).fetchall()
        expected = [e for e in two_processes if e.session_id == "b"]
        assert [row[0] for row in rows] == [e.id for e in expected]  # merged order
        for (_, micros, kind, sid, uid, data, metadata, sql_type), e in zip(
            rows, expected, strict=True
        ):
            assert sql_type == "TIMESTAMP WITH TIME ZONE"
            assert micros == round(e.timestamp.timestamp() * 1_000_000)
            assert (kind, sid, uid) == (e.type.value, e.session_id, e.user_id)
            assert json.loads(data) == e.data
            assert json.loads(metadata) == e.metadata

    def test_export_parquet_without_entries_is_an_empty_file(self, tmp_path: Path) -> None:
        duckdb = pytest.importorskip("duckdb")
        (tmp_path / "metrics").mkdir()
        out = tmp_path / "out.parquet"
        done = run_cli("export", str(tmp_path), str(out))
        assert done.returncode == 0, done.stderr
        assert "exported 0 entries" in done.stderr
        assert not list(tmp_path.glob("*.tmp"))
        con = duckdb.connect()
        columns = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(out)]).fetchall()
        assert [c[0] for c in columns] == [
            "id",
            "timestamp",
            "type",
            "session_id",
            "user_id",
            "data",
            "metadata",
        ]
        count = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()
        assert count == (0,)

    def test_files_lists_sizes_ratios_and_spans(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        done = run_cli("files", str(tmp_path))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split()[:3] == ["file", "bytes", "ratio"]
        assert len([line for line in lines if line.startswith("metrics_")]) == 4
        assert "4 files" in lines[-1]
        assert "x overall" in lines[-1]

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

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["report", "{missing}"], "no such directory"),
            (["report", "{empty}", "--since", "yesterday"], "not an ISO-8601 time"),
            (["report", "{empty}", "--type", "nope"], "unknown type"),
        ],
    )
    def test_errors_are_one_line_without_a_traceback(
        self, tmp_path: Path, args: list[str], message: str
    ) -> None:
        (tmp_path / "empty").mkdir()
        argv = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
        done = run_cli(*argv)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("analytics")
        assert message in line


def test_python_engine_streams_fast_enough_to_measure(tmp_path: Path) -> None:
    """Not a speed assertion: the figure is published from benchmarks/read_bench.py."""
    entries = [at(i * 0.001, data={"tool_name": "t", "success": True}) for i in range(2000)]
    write_file(tmp_path / "metrics", T0, os.getpid(), entries, compressed=True)
    assert sum(1 for _ in iter_entries(tmp_path)) == 2000


UNUSUAL_BUT_VALID = [
    b'{"type": "tool_use", "timestamp": "2026-11-01T17:30:00+05:30", "data": {}}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:09Z", "id": "x"}',
    b'{"type": "error_occurred", "timestamp": 1793534410, "id": "y"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01 12:00:11+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01 12:00:00.123456+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01t12:00:00.123456+00:00", "id": "z"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00.123456-00:00", "id": "z"}',
]
INVALID = [
    b'{"type": "nope", "timestamp": "2026-11-01T12:00:00+00:00", "id": "a"}',
    # Shaped like the writer's timestamps; datetime.fromisoformat takes the first
    # two, MetricEntry none of them.
    b'{"type": "tool_use", "timestamp": "2026-11-01X12:00:00.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-W44-1T12:00:00.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:60.123456+00:00", "id": "a"}',
    b'{"type": "tool_use", "timestamp": "2026-02-30T12:00:00.123456+00:00", "id": "a"}',
    "2026-11-01T12:00:00.12345\uff16+00:00".join(
        ['{"type": "tool_use", "id": "a", "timestamp": "', '"}']
    ).encode(),
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": "b", "x": 1}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": "c",'
    b' "data": {"n": NaN}}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "session_id": 5}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00"}',
    b'{"type": "tool_use", "timestamp": "2026-11-01T12:00:00+00:00", "id": ""}',
    b"[1, 2]",
]


def test_summaries_accept_and_reject_exactly_the_lines_entries_do(tmp_path: Path) -> None:
    """summarize() reads rows on a fast path; it must agree with MetricEntry itself."""
    good = [
        at(i, session_id="s", data={"tool_name": "t", "duration_ms": 1.0 + i}) for i in range(3)
    ]
    unusual_but_valid, invalid = UNUSUAL_BUT_VALID, INVALID
    lines = [e.to_json_line() for e in good] + [
        line + b"\n" for line in unusual_but_valid + invalid
    ]
    (tmp_path / "metrics").mkdir()
    name = format_name("metrics", int(T0.timestamp() * 1e9) - 10**9, 1, "abcdef01")
    (tmp_path / "metrics" / name).write_bytes(b"".join(lines))
    stats = ReadStats()
    by_entries = summarize_entries(iter_entries(tmp_path, stats=stats))
    by_entries.bad_lines = stats.bad_lines
    fast = summarize(tmp_path)
    assert stats.bad_lines == len(invalid)
    assert fast.model_dump(exclude={"first", "last", "timeline"}) == by_entries.model_dump(
        exclude={"first", "last", "timeline"}
    )
    assert fast.entries == len(good) + len(unusual_but_valid)


@pytest.mark.parametrize("line", UNUSUAL_BUT_VALID + INVALID)
def test_the_reader_accepts_and_rejects_exactly_the_lines_entries_do(line: bytes) -> None:
    """iter_entries builds entries on a fast path; it must agree with MetricEntry."""
    try:
        expected: MetricEntry | None = MetricEntry.from_json_line(line)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match=r"(?i)valid|json|expected|eof"):
            entry_from_line(line)
        return
    got = entry_from_line(line)
    if b'"id"' not in line:  # each parse draws a new random id
        expected.id = got.id
    assert got == expected


@pytest.mark.parametrize("line", UNUSUAL_BUT_VALID + INVALID)
def test_the_summary_decodes_exactly_the_lines_entries_do(line: bytes) -> None:
    """summarize decodes a line's fields without an entry; it must agree with it."""
    try:
        expected: MetricEntry | None = entry_from_line(line)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match=r"(?i)valid|json|expected|eof"):
            fields_from_line(line)
        return
    kind, moment, hour, ident, sid, uid, data, meta = fields_from_line(line)
    if b'"id"' not in line:  # each parse draws a new random id
        expected.id = ident
    assert (kind, moment, hour, ident, sid, uid, data, meta) == (
        expected.type.value,
        expected.timestamp,
        hour_of(expected.timestamp),
        expected.id,
        expected.session_id,
        expected.user_id,
        expected.data,
        expected.metadata,
    )


@given(entries)
def test_the_reader_builds_the_same_entry_as_the_model(entry: MetricEntry) -> None:
    line = entry.to_json_line()
    got = entry_from_line(line)
    assert got == MetricEntry.from_json_line(line) == entry
    assert fields_from_line(line) == (
        entry.type.value,
        entry.timestamp,
        hour_of(entry.timestamp),
        entry.id,
        entry.session_id,
        entry.user_id,
        entry.data,
        entry.metadata,
    )
    assert got.model_fields_set == MetricEntry.from_json_line(line).model_fields_set
    assert got.to_json_line() == line
    with pytest.raises(ValidationError):  # a full model: assignment is validated
        got.session_id = 5  # type: ignore[assignment]


_kinds = st.sampled_from(
    [
        (MetricType.TOOL_USE, {"tool_name": "grep", "success": False, "duration_ms": 3.5}),
        (MetricType.TOOL_USE, {"tool_name": "edit", "success": True, "duration_ms": 7}),
        (MetricType.SESSION_START, {}),
        (MetricType.SESSION_END, {}),
        (MetricType.SESSION_END, {"duration_seconds": 12.5}),
        (MetricType.ERROR_OCCURRED, {"error_type": "Timeout", "error_message": "m"}),
        (MetricType.ERROR_OCCURRED, {"error_type": "KeyError", "error_message": "k"}),
        (MetricType.TOKEN_USAGE, {"model": "m1", "input_tokens": 5, "output_tokens": 2}),
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 20_000), _kinds, st.sampled_from(["s1", "s2", None])),
        min_size=1,
        max_size=60,
        unique_by=lambda event: event[0],
    ),
    files=st.integers(1, 4),
    order=st.randoms(use_true_random=False),
)
def test_a_summary_does_not_depend_on_files_or_order(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[int, tuple[MetricType, dict[str, Any]], str | None]],
    files: int,
    order: Any,
) -> None:
    """summarize() reads files one by one, unmerged: the earliest error message, the
    first start and last end of a session must still win, whatever the layout."""
    entries = [
        at(second, kind, session_id=sid, data={**data, "error_message": f"at {second}"})
        if kind is MetricType.ERROR_OCCURRED
        else at(second, kind, session_id=sid, data=data)
        for second, (kind, data), sid in events
    ]
    shuffled = list(entries)
    order.shuffle(shuffled)
    base = tmp_path_factory.mktemp("layout")
    for n in range(files):
        write_file(base / "metrics", T0, 100 + n, shuffled[n::files], compressed=n % 2 == 1)
    chronological = summarize_entries(sorted(entries, key=lambda e: e.timestamp))
    got = summarize(base)
    assert got.model_dump(exclude={"sessions"}) == chronological.model_dump(exclude={"sessions"})
    assert got.sessions.model_dump(exclude={"duration_s_mean"}) == (
        chronological.sessions.model_dump(exclude={"duration_s_mean"})
    )
    assert got.sessions.duration_s_mean == pytest.approx(chronological.sessions.duration_s_mean)
    for kind, error in got.errors.items():
        earliest = min(
            (e for e in entries if e.data.get("error_type") == kind), key=lambda e: e.timestamp
        )
        assert error.example == earliest.data["error_message"]


def test_summarize_reports_progress_and_fills_stats(
    tmp_path: Path, two_processes: list[MetricEntry]
) -> None:
    seen: list[int] = []
    stats = ReadStats()
    summary = summarize(tmp_path, stats=stats, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == summary.entries == stats.entries == len(two_processes)
    assert stats.files == 4  # notes.txt is not ours
    assert stats.bad_lines == summary.bad_lines == 2


class TestWorkerProcesses:
    def test_several_processes_give_the_same_summary_and_log_bad_lines_here(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        kinds: list[tuple[MetricType, dict[str, Any]]] = [
            (MetricType.TOOL_USE, {"tool_name": "grep", "success": False, "duration_ms": 3.5}),
            (MetricType.SESSION_START, {}),
            (MetricType.SESSION_END, {"duration_seconds": 4.0}),
            (MetricType.ERROR_OCCURRED, {"error_type": "Timeout", "error_message": "x"}),
            (MetricType.TOKEN_USAGE, {"model": "m", "input_tokens": 3, "output_tokens": 4}),
        ]
        for n in range(9):  # more files than one task takes
            entries = [
                at(
                    n * 100 + i,
                    kinds[i % len(kinds)][0],
                    session_id=f"s{i % 3}",
                    data={
                        **kinds[i % len(kinds)][1],
                        "error_message": f"m{n}.{i}",
                        **({"duration_seconds": float(n * 10 + i)} if i % 10 == 2 else {}),
                    },
                )
                for i in range(40)
            ]
            write_file(
                metrics_dir,
                T0 + timedelta(seconds=n * 100),
                200 + n % 3,
                entries,
                compressed=n % 2 == 0,
                tag=f"abcdef{n:02d}",
                tail=b"not json\n" if n == 4 else b"",
            )
        one = summarize(tmp_path)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="analytics"):
            stats = ReadStats()
            several = summarize(tmp_path, workers=2, stats=stats)
        assert several == one
        assert several.entries == 360
        assert stats.files == 9
        assert stats.bad_lines == several.bad_lines == 1
        messages = [r.getMessage() for r in caplog.records if r.name == "analytics"]
        assert any(":41: skipped a line" in m for m in messages), messages

    def test_workers_none_uses_processes_only_for_large_directories(self, tmp_path: Path) -> None:
        from analytics._read import summary as _summary

        small = tmp_path / "small.jsonl"
        small.write_bytes(b"x" * 1000)
        assert _summary._auto_workers([small]) == 1
        if (os.cpu_count() or 1) > 1:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(_summary, "PARALLEL_MIN_BYTES", 500)
                assert _summary._auto_workers([small]) == os.cpu_count()


@given(
    events=st.lists(
        st.tuples(st.integers(0, 20_000), _kinds, st.sampled_from(["s1", "s2", None])),
        max_size=40,
        unique_by=lambda event: event[0],
    ),
    cut=st.integers(0, 40),
)
def test_merged_totals_are_the_totals_of_everything_in_either_order(
    events: list[tuple[int, tuple[MetricType, dict[str, Any]], str | None]], cut: int
) -> None:
    from analytics._read.summary import _Totals

    entries = [
        at(second, kind, session_id=sid, data={**data, "error_message": f"at {second}"})
        for second, (kind, data), sid in events
    ]
    expected = summarize_entries(entries)
    for first, second in ((entries[:cut], entries[cut:]), (entries[cut:], entries[:cut])):
        left, right = _Totals(), _Totals()
        for e in first:
            left.add_entry(e)
        for e in second:
            right.add_entry(e)
        left.merge(right)
        got = left.summary()
        assert got.model_dump(exclude={"sessions"}) == expected.model_dump(exclude={"sessions"})
        assert got.sessions.model_dump(exclude={"duration_s_mean"}) == (
            expected.sessions.model_dump(exclude={"duration_s_mean"})
        )
