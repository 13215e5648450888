"""Start-up repair (``remove_leftovers``): what an interrupted writer left is cut,
redone or removed, and a live writer's files are not touched."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analytics import JSONLWriter, _fileops
from analytics._policy import format_name
from analytics._write.storage import remove_leftovers

from ..helpers import entry, lines_of, read_all


class TestRepairOnStart:
    async def test_torn_tail_of_the_continued_file_is_cut_and_logged(
        self, tmp_path: Path, caplog: object
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        name = format_name("metrics", time.time_ns() - 10**9, 999_999, "deadbeef")
        good = entry(0).to_json_line()
        (metrics_dir / name).write_bytes(
            good + b'{"id": "torn',
        )
        async with JSONLWriter(tmp_path) as writer:
            assert writer.current_file == metrics_dir / name
            await writer.write(entry(1))
        assert lines_of(metrics_dir / name)[0] == good
        assert [e.data["seq"] for e in read_all(metrics_dir)] == [0, 1]

    async def test_leftovers_of_an_interrupted_compression_are_redone(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        old = format_name("metrics", time.time_ns() - 5 * 10**9, 999_999, "deadbeef")
        new = format_name("metrics", time.time_ns() - 10**9, 999_999, "deadbeef")
        old_entries = [entry(i) for i in range(3)]
        (metrics_dir / old).write_bytes(b"".join(e.to_json_line() for e in old_entries))
        (metrics_dir / (old + ".gz.tmp")).write_bytes(b"\x1f\x8b truncated")
        (metrics_dir / new).write_bytes(entry(3).to_json_line())
        async with JSONLWriter(tmp_path) as writer:
            assert writer.current_file == metrics_dir / new
        names = sorted(p.name for p in metrics_dir.iterdir())
        assert names == sorted([old + ".gz", new])
        assert [e.id for e in read_all(metrics_dir)][:3] == [e.id for e in old_entries]

    async def test_a_source_whose_complete_gz_exists_is_removed(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        old = format_name("metrics", time.time_ns() - 5 * 10**9, 999_999, "deadbeef")
        data = entry(0).to_json_line()
        (metrics_dir / old).write_bytes(data)
        (metrics_dir / (old + ".gz")).write_bytes(gzip.compress(data))
        async with JSONLWriter(tmp_path):
            pass
        assert not (metrics_dir / old).exists()
        assert gzip.decompress((metrics_dir / (old + ".gz")).read_bytes()) == data

    async def test_a_crash_between_naming_the_gz_and_cleaning_up_is_repaired(
        self, tmp_path: Path
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        old = format_name("metrics", time.time_ns() - 5 * 10**9, 999_999, "deadbeef")
        data = entry(0).to_json_line()
        (metrics_dir / old).write_bytes(data)
        (metrics_dir / (old + ".gz")).write_bytes(gzip.compress(data))
        os.link(metrics_dir / (old + ".gz"), metrics_dir / (old + ".gz.tmp"))
        async with JSONLWriter(tmp_path) as writer:
            pass
        names = {p.name for p in metrics_dir.iterdir()}
        assert names == {old + ".gz", writer.current_file.name if writer.current_file else ""}

    async def test_a_dead_writers_files_are_repaired_and_compressed(self, tmp_path: Path) -> None:
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        older = format_name("metrics", time.time_ns() - 9 * 10**9, 999_998, "0ddba11a")
        newer = format_name("metrics", time.time_ns() - 10**9, 999_999, "deadbeef")
        (metrics_dir / older).write_bytes(entry(0).to_json_line() + b'{"torn')
        (metrics_dir / newer).write_bytes(entry(1).to_json_line())
        async with JSONLWriter(tmp_path) as writer:
            assert writer.current_file == metrics_dir / newer  # continued, not compressed
        assert (metrics_dir / (older + ".gz")).exists()
        assert not (metrics_dir / older).exists()
        assert [e.data["seq"] for e in read_all(metrics_dir)] == [0, 1]

    async def test_a_full_leftover_file_is_compressed_and_a_new_one_started(
        self, tmp_path: Path
    ) -> None:
        async with JSONLWriter(tmp_path, max_file_size=300) as first:
            await first.write(entry(0, size=400))
        async with JSONLWriter(tmp_path, max_file_size=300) as second:
            assert second.current_file != first.current_file
        assert first.current_file is not None
        assert Path(str(first.current_file) + ".gz").exists()

    async def test_files_of_a_live_writer_are_not_touched(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, flush_interval=60, buffer_size=1000) as live:
            assert live.current_file is not None
            # A torn tail mid-write must not be "repaired" by a second writer.
            with open(live.current_file, "ab") as f:
                f.write(b'{"partial')
            async with JSONLWriter(tmp_path) as other:
                assert other.current_file != live.current_file
            assert live.current_file.read_bytes() == b'{"partial'
            live.current_file.write_bytes(b"")  # clean up for the strict read below
            await live.write(entry(0))
        assert len(read_all(tmp_path / "metrics")) == 1


class TestCreationRacesAnotherProcessesRepair:
    """A file being created is ``<name>.new`` for a moment before it is locked; another
    process starting up in that moment takes it for a crash's leftover and removes it.
    The creator must notice and start over, not fail (found by four processes starting
    on one directory at once)."""

    def test_a_staging_file_removed_before_its_lock_is_made_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_lock = _fileops.lock_exclusive
        repairs = 0

        def repair_runs_first(fd: int, *, wait: bool = True) -> bool:
            nonlocal repairs
            if repairs < 2:  # twice in a row: the second attempt is raced too
                repairs += 1
                remove_leftovers(tmp_path, "metrics")
            return real_lock(fd, wait=wait)

        monkeypatch.setattr(_fileops, "lock_exclusive", repair_runs_first)
        path = tmp_path / format_name("metrics", time.time_ns(), 999_999, "deadbeef")
        fd = _fileops.open_new(path)
        try:
            assert repairs == 2
            assert _fileops.same_file(path, fd)
            other = os.open(path, os.O_RDONLY)
            try:
                assert not _fileops.lock_exclusive(other, wait=False)  # still locked
            finally:
                os.close(other)
            assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
        finally:
            os.close(fd)

    def test_a_locked_staging_file_is_left_alone_by_repair(self, tmp_path: Path) -> None:
        """The other half of the rule: once locked, repair cannot remove it."""
        staging = tmp_path / (format_name("metrics", time.time_ns(), 999_999, "deadbeef") + ".new")
        fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            assert _fileops.lock_exclusive(fd)
            remove_leftovers(tmp_path, "metrics")
            assert _fileops.same_file(staging, fd)
        finally:
            os.close(fd)
        remove_leftovers(tmp_path, "metrics")  # now nobody holds it: a crash's leftover
        assert not staging.exists()

    @pytest.mark.slow
    def test_creating_files_while_another_process_repairs_in_a_loop(self, tmp_path: Path) -> None:
        """The real race, with a real second process doing nothing but start-up repair."""
        created = 0
        with subprocess.Popen(
            [sys.executable, "-c", REPAIR_LOOP, str(tmp_path)], stdout=subprocess.PIPE, text=True
        ) as repairer:
            try:
                assert repairer.stdout is not None
                assert repairer.stdout.readline() == "ready\n"
                for k in range(10_000):
                    path = tmp_path / format_name("metrics", time.time_ns(), 999_999, f"{k:08x}")
                    fd = _fileops.open_new(path)
                    assert _fileops.same_file(path, fd)
                    os.close(fd)
                    path.unlink()  # a small directory: the repairer goes round fast
                    created += 1
            finally:
                repairer.kill()
        assert created == 10_000
        assert list(tmp_path.iterdir()) == []


REPAIR_LOOP = """
import sys
from pathlib import Path
from analytics._write.storage import remove_leftovers
directory = Path(sys.argv[1])
print("ready", flush=True)
while True:
    remove_leftovers(directory, "metrics")
"""
