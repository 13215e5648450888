"""The archive against a real S3 server (SeaweedFS): every completed file arrives once,
unchanged, through retries, a restarted server, a restarted archiver and retention;
nothing is ever overwritten; and the archive reads back to the same report."""

from __future__ import annotations

import functools
import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from analytics import (
    Archiver,
    JSONLWriter,
    MetricsWriter,
    ShipFatalError,
    ShipperLockedError,
    summarize,
    summarize_archive,
)
from analytics._checkpoint import load_checkpoint, read_losses

from .central import write_mixed
from .s3_server import S3Bucket, SeaweedServer

FAST: dict[str, Any] = {"poll_interval": 0.05, "max_retry_delay": 0.3}


def completed(metrics: Path) -> dict[str, bytes]:
    """Every completed file of the directory, by name, as bytes."""
    return {p.name: p.read_bytes() for p in sorted(metrics.glob("metrics_*.jsonl.gz"))}


def by_name(objects: dict[str, bytes]) -> dict[str, bytes]:
    return {key.rsplit("/", 1)[-1]: body for key, body in objects.items()}


def archiver(base: Path, bucket: S3Bucket, **options: Any) -> Archiver:
    return Archiver(base, bucket.url, endpoint_url=bucket.server.endpoint, **(FAST | options))


class TestArchiving:
    async def test_each_completed_file_is_uploaded_once_unchanged_under_its_key(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        await write_mixed(tmp_path, 3000, max_file_size="64 KiB")
        metrics = tmp_path / "metrics"
        (metrics / "metrics_20261101T120000.000000Z_p1_0000abcd.jsonl").write_bytes(b"{}\n")
        files = completed(metrics)
        assert len(files) >= 5
        async with archiver(tmp_path, s3_bucket) as archive:
            await archive.archive_once()
            source = archive.source
        objects = s3_bucket.objects()
        assert by_name(objects) == files  # the .gz only, byte for byte; no .jsonl
        for key in objects:
            prefix, part, day, name = key.split("/")
            assert (prefix, part) == ("archive", f"source={source}")
            assert day == f"date={name[8:12]}-{name[12:14]}-{name[14:16]}"
        assert source == (metrics / ".analytics-id").read_text().strip()
        checkpoint = load_checkpoint(archive.checkpoint_file)
        assert checkpoint is not None
        assert checkpoint.files.keys() == {n.removesuffix(".gz") for n in files}
        assert all(p.complete for p in checkpoint.files.values())
        assert archive.stats().files_archived == len(files)

    async def test_a_restarted_archiver_sends_nothing_again(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        await write_mixed(tmp_path, 2000, max_file_size="64 KiB")
        async with archiver(tmp_path, s3_bucket) as first:
            assert await first.archive_once() == len(completed(tmp_path / "metrics"))
        s3_bucket.server.client().put_object(  # a marker that a re-upload would trip on
            Bucket=s3_bucket.name, Key="marker", Body=b""
        )
        async with archiver(tmp_path, s3_bucket) as second:
            assert await second.archive_once() == 0
            assert second.stats().already_there == 0
        await write_mixed(tmp_path, 1000, max_file_size="64 KiB")
        async with archiver(tmp_path, s3_bucket) as third:
            assert await third.archive_once() >= 1
        assert by_name(s3_bucket.objects()) == completed(tmp_path / "metrics") | {"marker": b""}

    async def test_runs_in_the_background_beside_a_writer(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        async with archiver(tmp_path, s3_bucket) as archive:
            await write_mixed(tmp_path, 2000, max_file_size="64 KiB")
            files = completed(tmp_path / "metrics")
            deadline = time.monotonic() + 30
            while archive.stats().files_archived < len(files):
                assert time.monotonic() < deadline, archive.stats()
                await anyio.sleep(0.05)
        assert by_name(s3_bucket.objects()) == files


class TestNeverOverwrites:
    async def test_the_server_refuses_a_second_put_to_a_key(self, s3_bucket: S3Bucket) -> None:
        """What the archive rests on: SeaweedFS honours ``If-None-Match: *``."""
        client = s3_bucket.server.client()
        client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"one", IfNoneMatch="*")
        with pytest.raises(Exception, match="PreconditionFailed"):
            client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"two", IfNoneMatch="*")
        assert s3_bucket.objects() == {"k": b"one"}

    async def test_a_different_object_at_the_key_is_left_alone_and_reported(
        self, tmp_path: Path, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
    ) -> None:
        await write_mixed(tmp_path, 1500, max_file_size="64 KiB")
        files = completed(tmp_path / "metrics")
        first = next(iter(files))
        async with archiver(tmp_path, s3_bucket) as archive:
            key = archive.target.key(archive.source, _name(first))
            s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"theirs")
            await archive.archive_once()
            stats = archive.stats()
        assert stats.conflicts == 1
        assert stats.files_archived == len(files) - 1
        objects = s3_bucket.objects()
        assert objects[key] == b"theirs"  # never overwritten
        assert by_name(objects) == files | {first: b"theirs"}
        checkpoint = load_checkpoint(archive.checkpoint_file)
        assert checkpoint is not None
        assert first.removesuffix(".gz") not in checkpoint.files  # not archived
        assert any("another object is already at" in r.getMessage() for r in caplog.records)

    async def test_the_same_bytes_already_at_the_key_count_as_archived(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        """An upload that succeeded just before a crash (no checkpoint yet) is found
        there on the retry, and is not an error."""
        await write_mixed(tmp_path, 1500, max_file_size="64 KiB")
        files = completed(tmp_path / "metrics")
        first = next(iter(files))
        async with archiver(tmp_path, s3_bucket) as archive:
            key = archive.target.key(archive.source, _name(first))
            s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key=key, Body=files[first])
            await archive.archive_once()
            stats = archive.stats()
        assert (stats.already_there, stats.conflicts) == (1, 0)
        assert stats.files_archived == len(files)
        assert by_name(s3_bucket.objects()) == files


@pytest.fixture
def own_s3(
    s3_server: SeaweedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Bucket]:
    """A bucket on a server of the test's own, which it may kill."""
    server = SeaweedServer(s3_server.weed, tmp_path_factory.mktemp("seaweedfs-own"))
    server.start()
    try:
        server.client().create_bucket(Bucket="crash")
        yield S3Bucket(server, "crash")
    finally:
        server.kill()


class TestFaults:
    async def test_the_server_killed_mid_upload_and_restarted_every_file_arrives_once(
        self, tmp_path: Path, own_s3: S3Bucket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _credentials(monkeypatch)
        await write_mixed(tmp_path, 30_000, max_file_size="64 KiB", compress_level=1)
        files = completed(tmp_path / "metrics")
        assert len(files) >= 40
        server = own_s3.server
        archive = archiver(tmp_path, own_s3)
        crashed = threading.Event()
        at_crash: list[int] = []

        async def crash_once_some_are_in() -> None:
            while archive.stats().files_archived < 5:
                await anyio.sleep(0.01)
            await anyio.to_thread.run_sync(server.kill)  # kill -9, by pid
            at_crash.append(archive.stats().files_archived)
            crashed.set()
            await anyio.sleep(3.0)  # longer than boto3's own retry waits
            await anyio.to_thread.run_sync(server.start)  # same ports, same data

        async with anyio.create_task_group() as tasks:
            await archive.open()
            try:
                tasks.start_soon(crash_once_some_are_in)
                archived = await archive.archive_once(give_up_after=60)
            finally:
                await archive.aclose()
        stats = archive.stats()
        assert crashed.is_set()
        assert at_crash[0] < len(files)  # mid-upload
        assert stats.retries >= 1, stats  # the crash was felt
        assert stats.files_archived == archived == len(files) > 5
        assert by_name(own_s3.objects()) == files  # every file, once, unchanged

    async def test_wrong_credentials_stop_it_with_one_clear_error(
        self, tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await write_mixed(tmp_path, 500, max_file_size="32 KiB")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
        async with archiver(tmp_path, s3_bucket) as archive:
            with pytest.raises(ShipFatalError, match="SignatureDoesNotMatch"):
                await archive.archive_once()
        assert s3_bucket.objects() == {}

    async def test_one_archiver_per_directory_and_archive(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        (tmp_path / "metrics").mkdir()
        async with archiver(tmp_path, s3_bucket):
            with pytest.raises(ShipperLockedError, match="another archiver"):
                await archiver(tmp_path, s3_bucket).open()
            other = Archiver(tmp_path, f"s3://{s3_bucket.name}/elsewhere", **FAST)
            await other.open()  # another prefix: another archive, side by side
            await other.aclose()


class TestRetentionGuard:
    async def test_retention_keeps_the_files_not_archived_yet(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        async with archiver(tmp_path, s3_bucket):
            pass  # its checkpoint now tells the writer what to keep
        await write_mixed(tmp_path, 3000, max_file_size="32 KiB", max_files=3)
        kept = completed(tmp_path / "metrics")
        assert len(kept) > 3  # retention would have left 3
        async with archiver(tmp_path, s3_bucket) as archive:
            await archive.archive_once()
        assert by_name(s3_bucket.objects()) == kept
        await write_mixed(tmp_path, 600, max_file_size="32 KiB", max_files=3)  # rotates
        remaining = {p.name for p in (tmp_path / "metrics").glob("metrics_*")}
        assert len(remaining & kept.keys()) <= 3  # archived: now retention takes them

    async def test_past_the_cap_the_files_lost_are_recorded_for_the_archive(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        async with archiver(tmp_path, s3_bucket) as archive:
            sink = archive.target.sink_id
        await write_mixed(
            tmp_path, 3000, max_file_size="32 KiB", max_files=3, max_unshipped_bytes="40 KiB"
        )
        metrics = tmp_path / "metrics"
        lost = read_losses(metrics / f".ship-{sink}.lost.jsonl")
        assert lost
        assert all(loss.lines > 0 for loss in lost)
        async with archiver(tmp_path, s3_bucket) as archive:
            await archive.archive_once()
            assert archive.stats().lost_files == len(lost)
        checkpoint = load_checkpoint(archive.checkpoint_file)
        assert checkpoint is not None
        assert {loss.stem for loss in checkpoint.lost} == {loss.stem for loss in lost}
        archived = {name.removesuffix(".gz") for name in by_name(s3_bucket.objects())}
        assert archived.isdisjoint(loss.stem for loss in lost)


class TestReadingBack:
    async def test_the_archive_reports_the_same_numbers_as_the_files(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        base = tmp_path / "data"
        async with JSONLWriter(base, max_file_size="32 KiB") as writer:
            metrics = MetricsWriter(writer)
            for i in range(1500):
                await metrics.track_tool_use(f"s{i % 9}", f"t{i % 4}", i % 7 != 0, float(i % 90))
                if i % 5 == 0:
                    await metrics.track_token_usage(f"s{i % 9}", "m", i, i // 2)
        for active in (base / "metrics").glob("metrics_*.jsonl"):
            active.unlink()  # the archive holds completed files only
        async with archiver(base, s3_bucket) as archive:
            await archive.archive_once()
        local = summarize(base)
        assert local.entries > 1000
        endpoint = s3_bucket.server.endpoint
        for engine in ("python", "duckdb"):
            remote = await anyio.to_thread.run_sync(
                functools.partial(
                    summarize_archive, s3_bucket.url, engine=engine, endpoint_url=endpoint
                )
            )
            assert remote.model_dump() == local.model_dump(), engine

    async def test_a_time_window_skips_the_files_outside_it(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        await write_mixed(tmp_path, 1500, max_file_size="32 KiB")
        for active in (tmp_path / "metrics").glob("metrics_*.jsonl"):
            active.unlink()
        async with archiver(tmp_path, s3_bucket) as archive:
            await archive.archive_once()
        last = max((tmp_path / "metrics").glob("*.gz"))
        with gzip.open(last) as f:
            first_time = json.loads(f.readline())["timestamp"]
        endpoint = s3_bucket.server.endpoint
        since = _parse(first_time)
        remote = summarize_archive(s3_bucket.url, endpoint_url=endpoint, since=since)
        assert remote == summarize(tmp_path, since=since)
        assert 0 < remote.entries < summarize(tmp_path).entries


def _name(name: str) -> Any:
    from analytics._policy import parse_name

    parsed = parse_name(name, "metrics")
    assert parsed is not None
    return parsed


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from .s3_server import ACCESS_KEY, SECRET_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
