"""The dashboard's index: each entry once across appends, rotation, compression and
deletion; only new bytes read; summaries equal to ``summarize``'s."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    iter_entries,
    summarize,
)
from analytics._read.summary import summarize_entries
from analytics._serve.index import SESSIONS_SHOWN, DirectoryIndex, Query

from ..helpers import T0, at, line_of, number, write_file


def mixed(start: float, count: int, session: str = "s1") -> list[MetricEntry]:
    """Entries of several kinds, one second apart from ``start``."""
    made = []
    for i in range(count):
        moment = start + i
        if i % 3 == 0:
            made.append(
                at(
                    moment,
                    session_id=session,
                    data={
                        "tool_name": "grep" if i % 2 else "edit",
                        "success": i % 5 != 0,
                        "duration_ms": float(i),
                    },
                )
            )
        elif i % 3 == 1:
            made.append(
                at(
                    moment,
                    MetricType.TOKEN_USAGE,
                    session_id=session,
                    data={"model": "m", "input_tokens": i, "output_tokens": 2},
                )
            )
        else:
            made.append(
                at(
                    moment,
                    MetricType.ERROR_OCCURRED,
                    session_id=session,
                    data={"error_type": "Timeout", "error_message": f"m{i}"},
                )
            )
    return made


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    """Two writers, compressed and active files, two sessions, an hour of entries."""
    metrics = tmp_path / "metrics"
    write_file(metrics, T0, 1, mixed(0, 60, "a"), compressed=True)
    write_file(metrics, T0 + timedelta(seconds=60), 1, mixed(60, 60, "a"))
    write_file(metrics, T0, 2, mixed(30, 3000, "b")[::25], tag="abcdef02", compressed=True)
    write_file(metrics, T0 + timedelta(seconds=40), 2, mixed(3000, 40, "b"), tag="abcdef02")
    return tmp_path


QUERIES: list[dict[str, object]] = [
    {},
    {"since": T0 + timedelta(seconds=50)},
    {"until": T0 + timedelta(seconds=100)},
    {"since": T0 + timedelta(seconds=20), "until": T0 + timedelta(seconds=3010)},
    {"types": ("tool_use",)},
    {"types": ("token_usage", "error_occurred"), "since": T0 + timedelta(seconds=61)},
    {"session_id": "b"},
    {"since": T0 + timedelta(days=1)},
]


class TestSummaries:
    @pytest.mark.parametrize("keywords", QUERIES)
    def test_a_window_and_filters_give_summarizes_numbers(
        self, directory: Path, keywords: dict[str, object]
    ) -> None:
        """Every query's summary equals ``summarize`` with the same keywords."""
        index = DirectoryIndex(directory)
        index.refresh()
        got = index.summary(Query(**keywords))  # type: ignore[arg-type]
        want = summarize(directory, **keywords)  # type: ignore[arg-type]
        assert got == want
        assert keywords or got.entries == 60 + 60 + 120 + 40

    def test_a_tool_keeps_only_that_tools_entries(self, directory: Path) -> None:
        """``tool`` keeps the entries whose ``data.tool_name`` is that tool."""
        index = DirectoryIndex(directory)
        index.refresh()
        since = T0 + timedelta(seconds=10)
        got = index.summary(Query(tool="grep", since=since))
        kept = [
            e for e in iter_entries(directory, since=since) if e.data.get("tool_name") == "grep"
        ]
        assert got == summarize_entries(kept)
        assert list(got.tools) == ["grep"]
        assert got.entries == len(kept) > 0

    def test_facets_name_the_types_tools_and_newest_sessions(self, directory: Path) -> None:
        index = DirectoryIndex(directory)
        view = index.view(Query(types=("token_usage",)))
        present = {"tool_use", "token_usage", "error_occurred"}
        assert view.facets.types == [t.value for t in MetricType if t.value in present]
        assert view.facets.tools == ["edit", "grep"]
        assert view.facets.sessions == ["b", "a"]  # b's last entry is the newest
        assert view.total_entries == 280
        assert view.summary.by_type == {"token_usage": view.summary.entries}

    def test_sessions_offered_are_bounded(self, tmp_path: Path) -> None:
        entries = [at(i, session_id=f"s{i}") for i in range(SESSIONS_SHOWN + 20)]
        write_file(tmp_path, T0, 1, entries)
        view = DirectoryIndex(tmp_path).view(Query())
        assert len(view.facets.sessions) == SESSIONS_SHOWN
        assert view.facets.sessions[0] == f"s{SESSIONS_SHOWN + 19}"

    def test_a_bad_query_is_refused_before_reading(self, directory: Path) -> None:
        index = DirectoryIndex(directory)
        with pytest.raises(ValueError, match="unknown entry type"):
            index.view(Query(types=("nope",)))
        assert index.stats.refreshes == 0


class TestStates:
    def test_a_missing_directory_is_empty_then_fills_in(self, tmp_path: Path) -> None:
        """No directory: state ``missing`` and an empty summary, not an error; once a
        writer creates it (``metrics`` inside the base), entries appear."""
        base = tmp_path / "not-yet"
        index = DirectoryIndex(base)
        view = index.view(Query())
        assert (view.state, view.summary.entries, view.total_entries) == ("missing", 0, 0)
        (base / "metrics").mkdir(parents=True)
        assert index.view(Query()).state == "empty"
        write_file(base / "metrics", T0, 1, [at(0), at(1)])
        view = index.view(Query())
        assert (view.state, view.summary.entries) == ("ready", 2)
        assert view.directory == str(base / "metrics")

    def test_a_directory_that_goes_away_empties_the_index(self, tmp_path: Path) -> None:
        path = write_file(tmp_path / "metrics", T0, 1, [at(0)])
        index = DirectoryIndex(tmp_path)
        assert index.refresh() == 1
        path.unlink()
        (tmp_path / "metrics").rmdir()
        view = index.view(Query())
        assert (view.state, view.total_entries) == ("empty", 0)  # the base itself is left


class TestIncremental:
    def test_a_refresh_reads_only_the_bytes_written_since(self, tmp_path: Path) -> None:
        path = write_file(tmp_path, T0, 1, [at(i) for i in range(100)])
        index = DirectoryIndex(tmp_path)
        assert index.refresh() == 100
        assert index.stats.bytes_read == path.stat().st_size
        assert index.refresh() == 0
        assert index.stats.bytes_read == path.stat().st_size  # nothing new, nothing read
        more = b"".join(line_of(at(100 + i)) for i in range(7))
        with open(path, "ab") as f:
            f.write(more)
        before = index.stats.bytes_read
        assert index.refresh() == 7
        assert index.stats.bytes_read - before == len(more)
        assert index.stats.bytes_skipped == 0
        assert index.summary(Query()).entries == 107

    def test_a_line_being_written_waits_for_its_newline(self, tmp_path: Path) -> None:
        path = write_file(tmp_path, T0, 1, [at(0)])
        index = DirectoryIndex(tmp_path)
        index.refresh()
        line = line_of(at(1))
        with open(path, "ab") as f:
            f.write(line[:20])
        assert index.refresh() == 0
        assert index.stats.bad_lines == 0
        with open(path, "ab") as f:
            f.write(line[20:])
        assert index.refresh() == 1
        assert index.summary(Query()).entries == 2

    def test_a_file_rolled_back_below_what_was_read_is_read_again(self, tmp_path: Path) -> None:
        """A writer that rolls a failed batch back leaves fewer bytes than were read:
        the index forgets that file and reads it again, so it counts what it holds."""
        path = write_file(tmp_path, T0, 1, [at(i) for i in range(10)])
        index = DirectoryIndex(tmp_path)
        index.refresh()
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:4]))
        assert index.refresh() == 4
        assert index.summary(Query()) == summarize(tmp_path)
        assert index.summary(Query()).entries == 4

    def test_a_file_compressed_between_refreshes_is_read_on_from_its_gz(
        self, tmp_path: Path
    ) -> None:
        """Half read as ``.jsonl``, the rest written, then compressed and removed: the
        next refresh takes only the rest, from the ``.gz``, each entry once."""
        path = write_file(tmp_path, T0, 1, [at(i) for i in range(50)])
        index = DirectoryIndex(tmp_path)
        index.refresh()
        first_part = path.stat().st_size
        with open(path, "ab") as f:
            f.write(b"".join(line_of(at(50 + i)) for i in range(30)))
        data = path.read_bytes()
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
        path.unlink()
        assert index.refresh() == 30
        assert index.stats.bytes_read == len(data)  # every byte once
        assert index.stats.bytes_skipped == first_part  # decompressed, not parsed again
        assert index.refresh() == 0  # finished: the .gz is not opened again
        assert index.stats.bytes_skipped == first_part
        assert index.summary(Query()).entries == 80

    def test_a_source_next_to_its_gz_is_not_read_twice(self, tmp_path: Path) -> None:
        """A crash between a compression's last steps leaves both: only the ``.gz``."""
        entries = [at(i) for i in range(10)]
        gz = write_file(tmp_path, T0, 1, entries, compressed=True)
        gz.with_name(gz.name.removesuffix(".gz")).write_bytes(gzip.decompress(gz.read_bytes()))
        index = DirectoryIndex(tmp_path)
        assert index.refresh() == 10

    def test_deleted_files_drop_out_with_their_entries(self, tmp_path: Path) -> None:
        old = write_file(tmp_path, T0, 1, [at(i) for i in range(10)], compressed=True)
        write_file(tmp_path, T0 + timedelta(seconds=10), 1, [at(10 + i) for i in range(5)])
        index = DirectoryIndex(tmp_path)
        index.refresh()
        assert index.stats.entries == 15
        old.unlink()
        view = index.view(Query())
        assert (view.summary.entries, index.stats.files, index.stats.files_dropped) == (5, 1, 1)
        assert view.summary == summarize(tmp_path)

    def test_bad_lines_are_counted_once_and_skipped(self, tmp_path: Path) -> None:
        write_file(tmp_path, T0, 1, [at(0), at(1)], tail=b"garbage\n")
        index = DirectoryIndex(tmp_path)
        index.refresh()
        index.refresh()
        summary = index.summary(Query())
        assert (summary.entries, summary.bad_lines) == (2, 1)
        assert summary == summarize(tmp_path)

    def test_the_index_never_writes_to_the_directory(self, directory: Path) -> None:
        before = {p: p.stat().st_mtime_ns for p in directory.rglob("*")}
        index = DirectoryIndex(directory)
        index.view(Query())
        index.view(Query(since=T0))
        assert {p: p.stat().st_mtime_ns for p in directory.rglob("*")} == before


WRITES = 4000


async def _write(base: Path, done: threading.Event, max_files: int = 100_000) -> None:
    try:
        async with JSONLWriter(
            base,
            max_file_size="64KiB",
            max_files=max_files,
            compress_old=True,
            flush_interval=0.005,
            buffer_size=50,
        ) as writer:
            m = MetricsWriter(writer)
            for i in range(WRITES):
                await m.track_tool_use("s", "grep", True, 1.0, number=i)
                if i % 50 == 0:
                    await asyncio.sleep(0.002)
    finally:
        done.set()


class TestWhileAWriterWrites:
    def test_each_entry_once_across_rotation_and_compression(self, tmp_path: Path) -> None:
        """A real writer rotates at 64 KiB and gzips while the index refreshes over
        and over in another thread: at the end every number is indexed exactly once,
        every byte was read once, and the summary is ``summarize``'s."""
        done = threading.Event()
        writer = threading.Thread(target=asyncio.run, args=(_write(tmp_path, done),))
        index = DirectoryIndex(tmp_path)
        refreshes = 0
        writer.start()
        try:
            while not done.is_set():
                index.refresh()
                refreshes += 1
        finally:
            writer.join(timeout=60)
        index.refresh()
        metrics = tmp_path / "metrics"
        gz = sorted(metrics.glob("*.jsonl.gz"))
        assert len(gz) >= 3, "the writer did not rotate and compress"
        assert refreshes > len(gz)  # refreshes happened across the rotations
        numbers = Counter(row[5]["number"] for row in index.rows())
        assert numbers == Counter(range(WRITES))
        total = sum(len(gzip.decompress(p.read_bytes())) for p in gz) + sum(
            p.stat().st_size for p in metrics.glob("*.jsonl")
        )
        assert index.stats.bytes_read == total
        assert index.summary(Query()) == summarize(tmp_path)

    def test_files_retention_deletes_drop_out_while_it_writes(self, tmp_path: Path) -> None:
        """With ``max_files=3`` retention deletes old files as the writer goes: the
        index ends up holding exactly what the remaining files hold, each entry once."""
        done = threading.Event()
        writer = threading.Thread(target=asyncio.run, args=(_write(tmp_path, done, 3),))
        index = DirectoryIndex(tmp_path)
        writer.start()
        try:
            while not done.is_set():
                index.refresh()
        finally:
            writer.join(timeout=60)
        index.refresh()
        assert index.stats.files_dropped > 0, "retention deleted nothing"
        left = Counter(number(e) for e in iter_entries(tmp_path))
        assert 0 < sum(left.values()) < WRITES
        assert Counter(row[5]["number"] for row in index.rows()) == left
        assert index.summary(Query()) == summarize(tmp_path)
