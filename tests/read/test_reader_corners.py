"""Reading corners: entry times that disagree with file names, a writer rotating
under the reader, damaged .gz files, and strangers named like data files."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib.util
import logging
import os
import random
import threading
import zlib
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricType,
    ReadStats,
    iter_entries,
    read_entries,
    summarize,
    summarize_duckdb,
)
from analytics._read.reader import scan_file
from analytics.testing import data_file_name, truncate_gzip

from ..helpers import T0, times, tool, write_entries_file


def back_dated_directory(base: Path) -> tuple[list[MetricEntry], list[MetricEntry]]:
    """Live files, plus imports whose entries are weeks older than their file names,
    shuffled, in every kind of file. Returns (all entries, the back-dated ones)."""
    rng = random.Random(7)
    metrics = base / "metrics"
    live = [tool(T0 + timedelta(seconds=i), i) for i in range(300)]
    write_entries_file(metrics, T0, live[:150], pid=1)
    write_entries_file(metrics, T0 + timedelta(seconds=150), live[150:], kind="plain", pid=1)
    old: list[MetricEntry] = []
    for number, (kind, days) in enumerate((("bounds", 30), ("plain", 20), ("legacy", 10))):
        batch = [tool(T0 - timedelta(days=days, seconds=-i * 7), i) for i in range(710)]
        rng.shuffle(batch)
        write_entries_file(
            metrics, T0 + timedelta(hours=1 + number), batch, kind=kind, pid=2 + number
        )
        old.extend(batch)
    return live + old, old


class TestEntryTimesNotFileNames:
    def test_a_back_dated_window_returns_every_entry_in_order(self, tmp_path: Path) -> None:
        _, old = back_dated_directory(tmp_path)
        since, until = T0 - timedelta(days=31), T0 - timedelta(days=1)
        found = list(iter_entries(tmp_path, since=since, until=until))
        assert len(found) == len(old) == 2130
        assert times(found) == sorted(times(old))
        assert Counter(e.id for e in found) == Counter(e.id for e in old)

    def test_everything_comes_out_in_timestamp_order(self, tmp_path: Path) -> None:
        everything, _ = back_dated_directory(tmp_path)
        found = list(iter_entries(tmp_path))
        assert times(found) == sorted(times(everything))
        assert len(found) == len(everything)

    async def test_read_entries_too(self, tmp_path: Path) -> None:
        _, old = back_dated_directory(tmp_path)
        since, until = T0 - timedelta(days=21), T0 - timedelta(days=9)
        found = [e async for e in read_entries(tmp_path, since=since, until=until)]
        expected = sorted(times(e for e in old if since <= e.timestamp < until))  # type: ignore[arg-type]
        assert expected
        assert times(found) == expected

    def test_summaries_agree(self, tmp_path: Path) -> None:
        _, old = back_dated_directory(tmp_path)
        since, until = T0 - timedelta(days=31), T0 - timedelta(days=15)
        python = summarize(tmp_path, since=since, until=until)
        assert python.entries == sum(since <= e.timestamp < until for e in old) > 0
        pytest.importorskip("duckdb")
        sql = summarize_duckdb(tmp_path, since=since, until=until)
        assert sql.model_dump() == python.model_dump()

    def test_header_bounds_prune_without_reading(self, tmp_path: Path) -> None:
        metrics = tmp_path / "metrics"
        inside = [tool(T0 + timedelta(seconds=i), i) for i in range(10)]
        outside = [tool(T0 - timedelta(days=3, seconds=-i), i) for i in range(10)]
        write_entries_file(metrics, T0, inside, pid=1)
        # Named inside the window, holding entries outside it: the header says so.
        pruned = write_entries_file(metrics, T0 + timedelta(seconds=5), outside, pid=2)
        stats = ReadStats()
        found = list(iter_entries(tmp_path, since=T0 - timedelta(hours=1), stats=stats))
        assert times(found) == times(inside)
        assert (stats.files, stats.files_skipped) == (1, 1)
        # The header is trusted: a file whose header excludes the window is not read.
        pruned.write_bytes(pruned.read_bytes()[:40])  # a read would log a damaged stream
        assert list(iter_entries(tmp_path, since=T0 - timedelta(hours=1))) == found
        s = ReadStats()
        assert summarize(tmp_path, since=T0 - timedelta(hours=1), stats=s).entries == 10
        assert s.files_skipped == 1

    def test_a_file_in_reverse_order(self, tmp_path: Path) -> None:
        entries = [tool(T0 + timedelta(milliseconds=i), i) for i in range(20_000)]
        write_entries_file(tmp_path / "metrics", T0, entries[::-1], kind="plain")
        assert times(list(iter_entries(tmp_path))) == times(entries)


def test_entry_times_in_other_offsets_count_for_the_bounds(tmp_path: Path) -> None:
    """Times not written as this library writes them (another offset, ``Z``) are
    parsed, not compared as text, when a file's bounds are learned from its lines."""
    metrics = tmp_path / "metrics"
    live = [tool(T0 + timedelta(seconds=i), i) for i in range(100)]
    write_entries_file(metrics, T0, live, pid=1)
    imported = [tool(T0 + timedelta(seconds=50 + i), i) for i in range(5)]
    lines = b"".join(e.to_json_line() for e in imported)
    early = tool(T0 - timedelta(hours=1), 99)  # 11:00 UTC, written as 16:30+05:30
    line = early.to_json_line().replace(
        early.timestamp.isoformat().encode(), b"2026-11-01T16:30:00+05:30"
    )
    late = tool(T0 + timedelta(hours=2), 98)
    zulu = late.to_json_line().replace(late.timestamp.isoformat().encode(), b"2026-11-01T14:00:00Z")
    (metrics / data_file_name(T0, pid=2, tag="abcdef01")).write_bytes(lines + line + zulu)
    found = list(iter_entries(tmp_path))
    assert times(found) == sorted(times([*live, *imported, early, late]))
    assert found[0].id == early.id
    assert [e.id for e in iter_entries(tmp_path, until=T0)] == [early.id]
    assert [e.id for e in iter_entries(tmp_path, since=T0 + timedelta(hours=1))] == [late.id]


# Entry offsets in seconds from T0, per file; file name offsets; file kinds.
files_strategy = st.lists(
    st.tuples(
        st.integers(-10_000, 10_000),  # the file's name time
        st.lists(st.integers(-20_000, 20_000), max_size=30),  # its entries' times
        st.sampled_from(["bounds", "legacy", "plain"]),
    ),
    min_size=1,
    max_size=6,
)
window = st.none() | st.integers(-20_000, 20_000)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=files_strategy, since=window, until=window)
def test_any_files_any_window(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[tuple[int, list[int], str]],
    since: int | None,
    until: int | None,
) -> None:
    """Whatever the entry times, in whatever files: exactly the entries in the window,
    in timestamp order, and the Python summary counts the same."""
    base = tmp_path_factory.mktemp("any")
    everything: list[MetricEntry] = []
    for number, (created, offsets, kind) in enumerate(files):
        entries = [tool(T0 + timedelta(seconds=o), i) for i, o in enumerate(offsets)]
        write_entries_file(
            base / "metrics",
            T0 + timedelta(seconds=created),
            entries,
            kind=kind,
            pid=number,
            tag=f"{number:08x}",
        )
        everything.extend(entries)
    low = None if since is None else T0 + timedelta(seconds=since)
    high = None if until is None else T0 + timedelta(seconds=until)
    expected = [
        e
        for e in everything
        if (low is None or e.timestamp >= low) and (high is None or e.timestamp < high)
    ]
    found = list(iter_entries(base, since=low, until=high))
    assert times(found) == sorted(times(expected))
    assert Counter(e.id for e in found) == Counter(e.id for e in expected)
    assert summarize(base, since=low, until=high).entries == len(expected)


# -- a writer rotating under the reader -------------------------------------------------


def test_reading_while_a_real_writer_rotates(tmp_path: Path) -> None:
    """Reads taken while a writer rotates small files (and compresses and removes
    them) see, each, a gap-free prefix of what was written: nothing missed, nothing
    twice."""
    total = 6000
    started = threading.Event()

    async def produce() -> None:
        async with JSONLWriter(
            tmp_path, max_file_size="8KB", max_files=100_000, buffer_size=20, flush_interval=0.01
        ) as writer:
            for seq in range(total):
                await writer.write(
                    MetricEntry(type=MetricType.TOOL_USE, session_id="w", data={"seq": seq})
                )
                if seq % 50 == 0:
                    started.set()
                    await asyncio.sleep(0)

    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(produce())
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(30)
    reads = 0
    try:
        while thread.is_alive() or reads == 0:
            seqs = [e.data["seq"] for e in iter_entries(tmp_path)]
            assert seqs == list(range(len(seqs))), "an entry missed or read twice"
            reads += 1
    finally:
        thread.join(60)
    assert not failures
    assert reads > 1
    assert [e.data["seq"] for e in iter_entries(tmp_path)] == list(range(total))


def test_a_jsonl_gone_after_listing_is_read_from_its_gz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation race, made certain: the .jsonl is listed, then compressed and
    removed before the reader opens it."""
    entries = [tool(T0 + timedelta(seconds=i), i) for i in range(50)]
    source = write_entries_file(tmp_path / "metrics", T0, entries, kind="plain")
    real_scandir = os.scandir

    def list_then_rotate(directory: str | os.PathLike[str]) -> object:
        listed = list(real_scandir(directory))
        if source.exists():
            source.with_name(source.name + ".gz").write_bytes(gzip.compress(source.read_bytes()))
            source.unlink()
        return contextlib.nullcontext(listed)

    monkeypatch.setattr(os, "scandir", list_then_rotate)
    stats = ReadStats()
    assert times(list(iter_entries(tmp_path, stats=stats))) == times(entries)
    assert stats.bad_lines == 0


# -- damaged .gz ------------------------------------------------------------------------


def test_a_truncated_gz_yields_every_complete_line_before_the_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    entries = [tool(T0 + timedelta(milliseconds=i), i) for i in range(30_000)]
    path = write_entries_file(tmp_path / "metrics", T0, entries, kind="legacy")
    truncate_gzip(path, keep=2 / 3)  # really truncated, on disk
    # What a streaming decompressor can get out of it, as complete lines:
    inflate = zlib.decompressobj(wbits=31)
    readable = inflate.decompress(path.read_bytes())
    complete = readable.count(b"\n")
    assert 1000 < complete < len(entries)
    expected = times(entries[:complete])

    def warned() -> bool:
        hit = any("damaged gzip" in r.getMessage() for r in caplog.records)
        caplog.clear()
        return hit

    with caplog.at_level(logging.WARNING, logger="analytics"):
        assert times(list(iter_entries(tmp_path))) == expected
        assert warned()
        assert times(asyncio.run(_collect(tmp_path))) == expected
        assert warned()
        assert summarize(tmp_path).entries == complete
        assert warned()
        assert times(scan_file(path).entries) == expected
        assert warned()
        pytest.importorskip("duckdb")
        sql = summarize_duckdb(tmp_path)
        assert sql.model_dump() == summarize(tmp_path).model_dump()
        assert sql.entries == complete
        assert warned()


async def _collect(base: Path) -> list[MetricEntry]:
    return [e async for e in read_entries(base)]


# -- strangers --------------------------------------------------------------------------


def test_a_directory_or_fifo_named_like_a_data_file_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = tmp_path / "metrics"
    entries = [tool(T0 + timedelta(seconds=i), i) for i in range(10)]
    write_entries_file(metrics, T0, entries, kind="plain")
    (metrics / data_file_name(T0 + timedelta(seconds=1), pid=9, tag="abcdef01")).mkdir()
    (metrics / (data_file_name(T0 + timedelta(seconds=2), pid=9, tag="abcdef01") + ".gz")).mkdir()
    fifo = metrics / data_file_name(T0 + timedelta(seconds=3), pid=8, tag="abcdef01")
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    results: list[object] = []

    def read_all() -> None:
        results.append(times(list(iter_entries(tmp_path))))
        results.append(summarize(tmp_path).entries)
        if importlib.util.find_spec("duckdb"):
            results.append(summarize_duckdb(tmp_path).entries)

    with caplog.at_level(logging.WARNING, logger="analytics"):
        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        reader.join(30)
        if reader.is_alive():  # blocked on the FIFO: release it, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(30)
            pytest.fail("a reader opened the FIFO")
    assert results[:2] == [times(entries), 10]
    assert results[2:] in ([], [10])
    strangers = [r for r in caplog.records if "not a regular file" in r.getMessage()]
    assert len(strangers) >= 3
