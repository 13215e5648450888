"""A shipper with an archive beside it: both done by ``ship_once`` and in the
background, stopped together, and a fatal archive error stops the shipper too."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from analytics import Archiver, ShipFatalError, Shipper

from .central import FAST, write_mixed
from .pg_server import PgDatabase
from .s3_server import S3Bucket


def archived(bucket: S3Bucket) -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in bucket.objects()}


def completed(base: Path) -> set[str]:
    return {p.name for p in (base / "metrics").glob("metrics_*.jsonl.gz")}


class TestShipperWithArchive:
    async def test_ship_once_ships_and_archives(
        self, tmp_path: Path, pg_database: PgDatabase, s3_bucket: S3Bucket
    ) -> None:
        written = await write_mixed(tmp_path, 2000, max_file_size="64 KiB")
        archive = Archiver(tmp_path, s3_bucket.url, endpoint_url=s3_bucket.server.endpoint)
        shipper = Shipper(tmp_path, to=pg_database.url, archive=archive, **FAST)
        await shipper.open()
        try:
            assert await shipper.ship_once() == len(written)
        finally:
            await shipper.aclose()
        rows = await pg_database.fetch("SELECT id FROM entries")
        assert sorted(str(row[0]) for row in rows) == sorted(written)
        assert archived(s3_bucket) == completed(tmp_path)
        assert shipper.archiver is archive
        assert archive.stats().files_archived == len(completed(tmp_path))

    async def test_both_run_in_the_background_until_the_block_ends(
        self, tmp_path: Path, pg_database: PgDatabase, s3_bucket: S3Bucket
    ) -> None:
        endpoint = s3_bucket.server.endpoint
        archive = Archiver(tmp_path, s3_bucket.url, endpoint_url=endpoint, poll_interval=0.05)
        async with Shipper(tmp_path, to=pg_database.url, archive=archive, **FAST) as shipper:
            written = await write_mixed(tmp_path, 2000, max_file_size="64 KiB")
            deadline = time.monotonic() + 60
            while shipper.stats().entries_shipped < len(
                written
            ) or archive.stats().files_archived < len(completed(tmp_path)):
                assert time.monotonic() < deadline, (shipper.stats(), archive.stats())
                await anyio.sleep(0.05)
        assert not archive.stats().running
        assert archived(s3_bucket) == completed(tmp_path)

    async def test_a_fatal_archive_error_stops_the_shipper(
        self,
        tmp_path: Path,
        pg_database: PgDatabase,
        s3_bucket: S3Bucket,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        await write_mixed(tmp_path, 500, max_file_size="32 KiB")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        url = s3_bucket.url
        shipper = Shipper(
            tmp_path,
            to=pg_database.url,
            archive=Archiver(tmp_path, url, endpoint_url=s3_bucket.server.endpoint),
            **FAST,
        )
        await shipper.open()
        try:
            with anyio.fail_after(60), pytest.raises(ShipFatalError, match="Signature"):
                await shipper.run()
        finally:
            await shipper.aclose()
        assert not shipper.stats().running
