"""The files: size rotation, compression, retention by count, and names that never overwrite."""

from __future__ import annotations

import gzip
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from analytics import JSONLWriter, MetricEntry
from analytics._bounds import TimeBounds, epoch_us, read_bounds
from analytics._policy import format_name, parse_name
from analytics.testing import write_data_file

from ..helpers import active_files, entry, gz_files, ids_of, lines_of, our_files, read_all


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


def shuffled_in_time(count: int) -> list[MetricEntry]:
    """Entries whose times jump back and forth over 101 seconds."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        entry(i, size=60).model_copy(
            update={"timestamp": start + timedelta(seconds=(i * 37) % 101, microseconds=i)}
        )
        for i in range(count)
    ]


def entry_times(path: Path) -> list[int]:
    return [epoch_us(MetricEntry.from_json_line(line).timestamp) for line in lines_of(path)]


class TestCompression:
    @pytest.mark.parametrize("compressor", ["zlib", "isal"])
    async def test_rotated_files_are_gzipped_and_the_active_one_is_not(
        self, tmp_path: Path, compressor: Literal["zlib", "isal"]
    ) -> None:
        """With either compressor: standard gzip files, which the stdlib reads."""
        async with JSONLWriter(
            tmp_path, max_file_size=3000, max_files=1000, compressor=compressor
        ) as writer:
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

    @pytest.mark.parametrize("compressor", ["zlib", "isal"])
    async def test_each_gz_records_the_time_span_of_its_entries(
        self, tmp_path: Path, compressor: Literal["zlib", "isal"]
    ) -> None:
        """Entries in any time order (back-dated, from other clocks), each its own
        batch: each rotated file's header holds exactly its earliest and latest entry
        time, so readers can skip it by time without opening it."""
        async with JSONLWriter(
            tmp_path, max_file_size=3000, max_files=1000, buffer_size=1, compressor=compressor
        ) as writer:
            for entry_ in shuffled_in_time(120):
                await writer.write(entry_)
        zipped = gz_files(writer.metrics_dir)
        assert len(zipped) >= 5
        for path in zipped:
            times = entry_times(path)
            assert read_bounds(path) == TimeBounds(min(times), max(times)), path.name

    async def test_a_batch_over_two_files_gives_both_its_span(self, tmp_path: Path) -> None:
        """A span may be wider than a file's own entries (a batch split by a rotation
        counts whole in both files), never narrower."""
        written = shuffled_in_time(200)
        async with JSONLWriter(tmp_path, max_file_size=3000, max_files=1000) as writer:
            for start in range(0, 200, 7):
                await writer.write_batch(written[start : start + 7])
        everything = [epoch_us(e.timestamp) for e in written]
        zipped = gz_files(writer.metrics_dir)
        assert len(zipped) >= 5
        for path in zipped:
            times = entry_times(path)
            bounds = read_bounds(path)
            assert bounds is not None
            assert bounds.first_us <= min(times)  # covers the file's entries
            assert max(times) <= bounds.last_us
            assert min(everything) <= bounds.first_us  # and no more than was written
            assert bounds.last_us <= max(everything)

    async def test_a_file_continued_from_an_earlier_process_gets_no_span(
        self, tmp_path: Path
    ) -> None:
        """Its first lines were written by another process: the span this writer saw
        would be too narrow, so none is claimed (readers read such a file)."""
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        name = format_name("metrics", time.time_ns() - 10**9, 999_999, "deadbeef")
        (metrics_dir / name).write_bytes(entry(0).to_json_line())
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=1000) as writer:
            assert writer.current_file == metrics_dir / name
            await writer.write_batch([entry(i, size=100) for i in range(1, 30)])
        spans = {p.name: read_bounds(p) for p in gz_files(writer.metrics_dir)}
        assert spans[name + ".gz"] is None
        assert len(spans) >= 2
        assert all(bounds is not None for other, bounds in spans.items() if other != name + ".gz")

    async def test_an_empty_file_continued_from_an_earlier_process_gets_its_span(
        self, tmp_path: Path
    ) -> None:
        """Nothing in it was written by the other process: every line is seen."""
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        name = format_name("metrics", time.time_ns() - 10**9, 999_999, "deadbeef")
        (metrics_dir / name).write_bytes(b"")
        async with JSONLWriter(
            tmp_path, max_file_size=1000, max_files=1000, buffer_size=1
        ) as writer:
            assert writer.current_file == metrics_dir / name
            for entry_ in shuffled_in_time(20):
                await writer.write(entry_)
        times = entry_times(metrics_dir / (name + ".gz"))
        assert read_bounds(metrics_dir / (name + ".gz")) == TimeBounds(min(times), max(times))

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
        old = datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)  # 1_600_000_000 s
        old_names = []
        for i in range(3):
            path = write_data_file(
                metrics_dir,
                [entry()],
                created=old + timedelta(seconds=i),
                pid=1,
                tag="0badcafe",
                compressed=True,
            )
            old_names.append(path.name)
            future = 4_000_000_000
            os.utime(path, (future, future))  # newest by mtime, oldest by name
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=4) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(20)])
        remaining = {p.name for p in our_files(metrics_dir)}
        assert not any(name in remaining for name in old_names)
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
