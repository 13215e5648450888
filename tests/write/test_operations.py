"""Operations: time rotation, age retention, configuration sources, stats and health."""

from __future__ import annotations

import asyncio
import errno
import gzip
import json
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from analytics import ArgumentTypeError, ConfigError, JSONLWriter, WriterConfig, _fileops
from analytics._policy import format_name, parse_name

from ..helpers import entry, our_files, read_all


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


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
            for e in read_all_file(path):
                # Every entry was written in the interval its file was created in (or
                # just after its boundary, before the timer fired).
                written = e.timestamp.timestamp()
                assert written >= info.created_ns / 1e9 - 0.05
                seen[e.data["seq"]] = bucket
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


def read_all_file(path: Path) -> list:  # type: ignore[type-arg]
    from analytics import MetricEntry

    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return [MetricEntry.from_json_line(line) for line in raw.splitlines()]


def make_old_files(metrics_dir: Path, ages_s: list[float], prefix: str = "metrics") -> list[str]:
    metrics_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, age in enumerate(ages_s):
        name = format_name(prefix, time.time_ns() - int(age * 1e9), 424242, f"0000000{i}") + ".gz"
        (metrics_dir / name).write_bytes(gzip.compress(entry(i).to_json_line()))
        os.utime(metrics_dir / name)  # fresh mtime: only the name may tell the age
        names.append(name)
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

    @pytest.mark.parametrize("chunks", [0, 0.5, 1, 1.25, 3])
    def test_compress_to_round_trips_any_size(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: float
    ) -> None:
        """One chunk or several, a file ending exactly on a chunk boundary or not:
        one valid gzip member holding exactly the source bytes."""
        monkeypatch.setattr(_fileops, "CHUNK_SIZE", 4096)
        lines = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(2000))
        data = lines[: int(4096 * chunks)]
        source = tmp_path / "source.jsonl"
        source.write_bytes(data)
        fd = os.open(source, os.O_RDONLY)
        try:
            _fileops.compress_to(fd, tmp_path / "out.gz", 6, sync=False)
        finally:
            os.close(fd)
        packed = (tmp_path / "out.gz").read_bytes()
        assert gzip.decompress(packed) == data
        with gzip.open(tmp_path / "out.gz") as f:
            assert f.read() == data


class TestConfigSources:
    def test_from_env_reads_every_option(self, tmp_path: Path) -> None:
        env = {
            "ANALYTICS_BASE_PATH": str(tmp_path),
            "ANALYTICS_MAX_FILE_SIZE": "64 MiB",
            "ANALYTICS_MAX_FILES": "7",
            "ANALYTICS_MAX_AGE": "7d",
            "ANALYTICS_ROTATE_INTERVAL": "1h",
            "ANALYTICS_COMPRESS_OLD": "false",
            "ANALYTICS_COMPRESS_LEVEL": "9",
            "ANALYTICS_BUFFER_SIZE": "50",
            "ANALYTICS_FLUSH_INTERVAL": "500ms",
            "ANALYTICS_FSYNC": "always",
            "ANALYTICS_MAX_PENDING": "999",
            "ANALYTICS_ON_FULL": "drop_newest",
            "ANALYTICS_FILENAME_PREFIX": "events",
            "UNRELATED": "x",
        }
        config = WriterConfig.from_env(environ=env)
        assert config == WriterConfig(
            base_path=tmp_path,
            max_file_size=64 * 2**20,
            max_files=7,
            max_age=7 * 86400,
            rotate_interval=3600,
            compress_old=False,
            compress_level=9,
            buffer_size=50,
            flush_interval=0.5,
            fsync="always",
            max_pending=999,
            on_full="drop_newest",
            filename_prefix="events",
        )

    def test_from_env_uses_os_environ_and_a_custom_prefix(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MYAPP_MAX_FILES", "3")
        assert WriterConfig.from_env(prefix="MYAPP_").max_files == 3
        assert WriterConfig.from_env(environ={}) == WriterConfig()

    @pytest.mark.parametrize(
        ("variable", "value", "forms"),
        [
            ("ANALYTICS_MAX_FILE_SIZE", "10 mb", "'100 MiB'"),
            ("ANALYTICS_FLUSH_INTERVAL", "soon", "'30s'"),
            ("ANALYTICS_FSYNC", "sometimes", "never, rotate, always"),
            ("ANALYTICS_MAX_FILES", "many", "whole number"),
            ("ANALYTICS_COMPRESS_OLD", "perhaps", "true or false"),
        ],
    )
    def test_an_invalid_variable_is_named_with_the_accepted_forms(
        self, variable: str, value: str, forms: str
    ) -> None:
        with pytest.raises(ConfigError) as info:
            WriterConfig.from_env(environ={variable: value})
        message = str(info.value)
        assert variable in message
        assert repr(value) in message
        assert forms in message

    def test_from_file_toml_and_json(self, tmp_path: Path) -> None:
        toml = tmp_path / "a.toml"
        toml.write_text('[analytics]\nmax_file_size = "1 MiB"\nrotate_interval = "1h"\n')
        plain = tmp_path / "b.toml"
        plain.write_text("max_files = 4\n")
        js = tmp_path / "c.json"
        js.write_text(json.dumps({"analytics": {"max_age": "30d", "fsync": "never"}}))
        assert WriterConfig.from_file(toml) == WriterConfig(
            max_file_size=2**20, rotate_interval=3600
        )
        assert WriterConfig.from_file(plain).max_files == 4
        assert WriterConfig.from_file(js) == WriterConfig(max_age=30 * 86400, fsync="never")

    @pytest.mark.parametrize(
        ("name", "text", "match"),
        [
            ("bad.toml", "max_file_size = '10 mb'\n", "max_file_size"),
            ("unknown.toml", "colour = 'red'\n", "colour"),
            ("broken.json", "{not json", "cannot load"),
            ("settings.yaml", "a: 1", ".toml or .json"),
        ],
    )
    def test_from_file_errors_name_the_file_and_option(
        self, tmp_path: Path, name: str, text: str, match: str
    ) -> None:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigError, match=match) as info:
            WriterConfig.from_file(path)
        assert name in str(info.value)

    async def test_from_config_takes_the_base_path_from_the_config(self, tmp_path: Path) -> None:
        config = WriterConfig(base_path=tmp_path / "a", max_files=3)
        writer = JSONLWriter.from_config(config)
        assert writer.metrics_dir == tmp_path / "a" / "metrics"
        assert writer.config.max_files == 3
        other = JSONLWriter.from_config(config, tmp_path / "b")
        assert other.metrics_dir == tmp_path / "b" / "metrics"
        async with writer:
            await writer.write(entry())
        assert len(read_all(writer.metrics_dir)) == 1

    def test_from_config_takes_one_argument_order(self, tmp_path: Path) -> None:
        config = WriterConfig(max_files=2)
        with pytest.raises(ArgumentTypeError, match=r"from_config\(config, base_path=None\)"):
            JSONLWriter.from_config(tmp_path, config)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="WriterConfig"):  # still a TypeError
            JSONLWriter.from_config({"max_files": 2})  # type: ignore[arg-type]

    def test_from_config_without_a_base_path_says_so(self) -> None:
        with pytest.raises(ConfigError, match="base_path"):
            JSONLWriter.from_config(WriterConfig())


class TestStats:
    async def test_counts_files_and_bytes_in_the_directory(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path, max_file_size=1000, max_files=100) as writer:
            await writer.write_batch([entry(i, size=100) for i in range(20)])
            await writer.flush()
            # Every rotated file compressed (in the background): the directory is still.
            await wait_for(lambda: writer.stats().compressions == writer.stats().rotations)
            stats = writer.stats()
            files = our_files(writer.metrics_dir)
            assert stats.files == len(files)
            assert stats.total_bytes == sum(p.stat().st_size for p in files)
            assert stats.current_file == writer.current_file
            assert stats.current_file_size == writer.current_file.stat().st_size  # type: ignore[union-attr]


class TestHealth:
    async def test_a_working_writer_is_healthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await writer.write(entry())
            status = await writer.health()
            assert status.healthy
            assert status.reasons == ()
            assert status.writable
            assert status.free_bytes is not None
            assert status.free_bytes > 0
            assert status.errors_since_success == 0

    async def test_low_free_space_is_unhealthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            status = await writer.health(min_free_bytes=2**62)
            assert not status.healthy
            assert any("free" in r for r in status.reasons)

    async def test_failing_writes_and_old_pending_entries_are_unhealthy(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def fail(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        async with JSONLWriter(tmp_path, buffer_size=1, flush_interval=0.01) as writer:
            monkeypatch.setattr(_fileops, "_os_write", fail)
            await writer.write(entry())
            await wait_for(lambda: writer.stats().errors > 0)
            await asyncio.sleep(0.1)
            status = await writer.health(max_pending_age=0.05)
            assert not status.healthy
            assert status.errors_since_success >= 1
            assert status.oldest_pending_age is not None
            assert status.oldest_pending_age >= 0.05
            assert any("failed write" in r for r in status.reasons)
            assert any("waited" in r for r in status.reasons)
            monkeypatch.undo()
            await writer.flush()
            assert (await writer.health()).healthy

    async def test_an_unwritable_directory_is_unhealthy(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            await asyncio.to_thread(shutil.rmtree, writer.metrics_dir)
            writer.metrics_dir.write_text("a file where the directory was")
            status = await writer.health()
            assert not status.writable
            assert not status.healthy
            writer.metrics_dir.unlink()
