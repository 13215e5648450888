"""Operations on the files: time rotation, age retention, the file name prefix and the
compression level."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from analytics import ConfigError, JSONLWriter, MetricEntry
from analytics._policy import parse_name

from ..helpers import entry, lines_of, our_files, read_all, wait_for, write_aged_file


def gz_names(metrics_dir: Path, prefix: str = "metrics") -> list[str]:
    return sorted(p.name for p in metrics_dir.glob(f"{prefix}_*.jsonl.gz"))


class TestTimeRotation:
    async def test_a_quiet_service_still_rotates_and_compresses_on_time(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, rotate_interval=0.3, flush_interval=0.05) as writer:
            await writer.write(entry(0))
            first = writer.current_file
            # No more writes: the timer alone must rotate and compress.
            await wait_for(lambda: gz_names(writer.metrics_dir))
            assert writer.current_file != first
            assert writer.stats().rotations >= 1
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0]

    async def test_boundaries_are_multiples_of_the_interval_in_utc(self, tmp_path: Path) -> None:
        interval = 0.25
        async with JSONLWriter(tmp_path, rotate_interval=interval, flush_interval=0.02) as writer:
            for i in range(12):
                await writer.write(entry(i))
                await asyncio.sleep(0.07)
        files = our_files(writer.metrics_dir)
        assert len(files) >= 3
        seen: dict[int, int] = {}
        for path in files:
            info = parse_name(path.name, "metrics")
            assert info is not None
            bucket = int(info.created_ns // (interval * 1e9))
            for e in map(MetricEntry.from_json_line, lines_of(path)):
                # Every entry was written in the interval its file was created in (or
                # just after its boundary, before the timer fired).
                written = e.timestamp.timestamp()
                assert written >= info.created_ns / 1e9 - 0.05
                seq = e.data["seq"]
                assert isinstance(seq, int)
                seen[seq] = bucket
        assert sorted(seen) == list(range(12))
        assert len(set(seen.values())) >= 3

    async def test_an_idle_writer_makes_no_files_at_the_boundaries(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, rotate_interval=0.1) as writer:
            first = writer.current_file
            await asyncio.sleep(0.45)  # four boundaries, nothing written
            assert writer.stats().rotations == 0
            assert writer.current_file == first
            assert list(writer.metrics_dir.iterdir()) == [first]

    async def test_restart_continues_only_a_file_of_the_current_interval(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, rotate_interval="1d") as first:
            await first.write(entry(0))
        async with JSONLWriter(tmp_path, rotate_interval="1d") as second:
            assert second.current_file == first.current_file
        async with JSONLWriter(tmp_path, rotate_interval=0.2) as third:
            pass
        time.sleep(0.25)  # the file now belongs to a past interval
        async with JSONLWriter(tmp_path, rotate_interval=0.2) as fourth:
            assert fourth.current_file != third.current_file

    @pytest.mark.parametrize("value", ["1h", 3600, 3600.0, timedelta(hours=1)])
    def test_accepts_strings_seconds_and_timedeltas(self, tmp_path: Path, value: object) -> None:
        assert JSONLWriter(tmp_path, rotate_interval=value).config.rotate_interval == 3600.0  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", ["1 hour", 0, -5, "soon"])
    def test_bad_intervals_are_rejected(self, tmp_path: Path, value: object) -> None:
        with pytest.raises(ConfigError, match="rotate_interval"):
            JSONLWriter(tmp_path, rotate_interval=value)  # type: ignore[arg-type]


def make_old_files(metrics_dir: Path, ages_s: list[float], prefix: str = "metrics") -> list[str]:
    names = []
    for i, age in enumerate(ages_s):
        path = write_aged_file(
            metrics_dir, age, [entry(i)], pid=424242, tag=f"0000000{i}", prefix=prefix
        )
        os.utime(path)  # fresh mtime: only the name may tell the age
        names.append(path.name)
    return names


class TestAgeRetention:
    async def test_files_older_than_max_age_by_their_names_are_deleted(
        self, tmp_path: Path
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        old = make_old_files(metrics_dir, [7200, 5400])
        young = make_old_files(metrics_dir, [60])
        (metrics_dir / "notes.txt").write_text("not ours")
        async with JSONLWriter(tmp_path, max_age="1h") as writer:
            await wait_for(lambda: not (metrics_dir / old[0]).exists())
            assert writer.stats().files_deleted == 2
        names = {p.name for p in metrics_dir.iterdir()}
        assert not names & set(old)
        assert set(young) <= names
        assert "notes.txt" in names

    async def test_a_quiet_service_ages_its_own_files_out_on_a_timer(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, rotate_interval=0.1, max_age=0.5) as writer:
            await writer.write(entry(0))
            await writer.flush()
            await wait_for(lambda: gz_names(writer.metrics_dir))
            first_gz = gz_names(writer.metrics_dir)[0]
            await wait_for(lambda: not (writer.metrics_dir / first_gz).exists())
            assert writer.current_file is not None
            assert writer.current_file.exists()

    async def test_max_age_and_max_files_each_remove_what_they_say(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        old = make_old_files(metrics_dir, [10_000])
        recent = make_old_files(metrics_dir, [50, 40, 30, 20], prefix="metrics")
        async with JSONLWriter(tmp_path, max_age="1h", max_files=3):
            pass
        names = {p.name for p in metrics_dir.iterdir()}
        assert old[0] not in names  # too old
        # max_files=3 counts the active file: the two newest old ones stay.
        assert {n for n in names if n in recent} == set(recent[2:])

    async def test_the_active_file_is_never_aged_out(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_age=0.2) as writer:
            await writer.write(entry(0))
            await asyncio.sleep(0.5)
            assert writer.current_file is not None
            assert writer.current_file.exists()
        assert len(read_all(writer.metrics_dir)) == 1


class TestNamingAndCompression:
    async def test_filename_prefix_names_files_and_scopes_retention(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        others = make_old_files(metrics_dir, [10, 9, 8])  # "metrics_" files: not ours now
        async with JSONLWriter(
            tmp_path, filename_prefix="audit", max_file_size=600, max_files=2
        ) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(12)])
        ours = sorted(p.name for p in metrics_dir.glob("audit_*"))
        assert len(ours) == 2
        assert all(parse_name(n, "audit") for n in ours)
        assert all((metrics_dir / n).exists() for n in others)

    @pytest.mark.parametrize(("level", "xfl"), [(1, 4), (9, 2)])
    async def test_compress_level_is_applied(self, tmp_path: Path, level: int, xfl: int) -> None:
        async with JSONLWriter(tmp_path, max_file_size=800, compress_level=level) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(8)])
        gz = next(writer.metrics_dir.glob("*.jsonl.gz"))
        assert gz.read_bytes()[8] == xfl  # the gzip header's "extra flags": 2 = best, 4 = fastest
