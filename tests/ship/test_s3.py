"""The archive's URL, keys and S3 calls: parsed once with one clear error per mistake;
errors translated into retry, stop or leave-alone; uploads conditional and verified."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analytics import (
    MissingDependencyError,
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
)
from analytics._policy import FileName
from analytics._ship.s3 import (
    ArchiveTarget,
    S3Store,
    check_source,
    file_digest,
    parse_archive_url,
)

from .s3_server import S3Bucket


class TestUrl:
    def test_bucket_and_prefix(self) -> None:
        target = parse_archive_url("s3://my-bucket/a/b/", endpoint_url="http://127.0.0.1:1")
        assert (target.bucket, target.prefix) == ("my-bucket", "a/b")
        assert target.endpoint_url == "http://127.0.0.1:1"
        assert target.display() == "s3://my-bucket/a/b"
        assert parse_archive_url("s3://my-bucket").prefix == ""

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("my-bucket/p", "not an archive URL"),
            ("s3://", "bad bucket name ''"),
            ("s3://UPPER/p", "bad bucket name 'UPPER'"),
            ("s3://b_b/p", "bad bucket name 'b_b'"),
            ("s3://bucket/a//b", "bad prefix"),
            ("s3://bucket/./b", "bad prefix"),
        ],
    )
    def test_a_bad_url_says_what_is_wrong(self, url: str, message: str) -> None:
        with pytest.raises(TargetError, match=message):
            parse_archive_url(url)

    def test_a_bad_endpoint_is_refused(self) -> None:
        with pytest.raises(TargetError, match="bad S3 endpoint"):
            parse_archive_url("s3://bucket/p", endpoint_url="127.0.0.1:8333")

    def test_the_sink_id_names_bucket_and_prefix_only(self) -> None:
        a = parse_archive_url("s3://bucket/p", endpoint_url="http://127.0.0.1:1")
        b = parse_archive_url("s3://bucket/p/")
        c = parse_archive_url("s3://bucket/q")
        assert a.sink_id == b.sink_id != c.sink_id
        assert a.sink_id.startswith("s3-")

    def test_a_key_is_prefix_source_date_name(self) -> None:
        created = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
        ns = int(created.timestamp()) * 1_000_000_000 + 999_999_000
        name = FileName(ns, 7, "0123abcd", "metrics", True)
        key = ArchiveTarget("b", "x/y").key("host-1", name)
        assert key == (
            "x/y/source=host-1/date=2026-11-30/metrics_20261130T235959.999999Z_p7_0123abcd.jsonl.gz"
        )
        assert ArchiveTarget("b", "").key("s", name).startswith("source=s/date=")

    @pytest.mark.parametrize("source", ["a/b", "", "a b", "-x", "x" * 129])
    def test_a_source_is_one_safe_path_segment(self, source: str) -> None:
        with pytest.raises(ValueError, match="bad archive source"):
            check_source(source)


def test_the_digest_is_size_and_md5(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    assert file_digest(path) == (5, "5d41402abc4b2a76b9719d911017c592")


class TestStore:
    def test_put_new_creates_then_finds_the_same_bytes(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        store = S3Store(parse_archive_url(s3_bucket.url, endpoint_url=s3_bucket.server.endpoint))
        path = tmp_path / "a.gz"
        path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 100)
        assert store.put_new("k/a.gz", path) == (True, path.stat().st_size)
        assert store.put_new("k/a.gz", path) == (False, path.stat().st_size)
        path.write_bytes(b"other bytes")
        with pytest.raises(ShipRejectedError, match=r"another object is already at k/a\.gz"):
            store.put_new("k/a.gz", path)
        assert s3_bucket.objects()["k/a.gz"].startswith(b"\x1f\x8b")
        assert list(store.list("k/")) == [("k/a.gz", 2 + 25600)]
        assert store.head_bytes("k/a.gz", 4) == b"\x1f\x8b\x00\x01"
        assert store.head("missing") is None
        store.download("k/a.gz", tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == s3_bucket.objects()["k/a.gz"]
        store.close()

    def test_a_bad_key_is_fatal(
        self, tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        store = S3Store(parse_archive_url(s3_bucket.url, endpoint_url=s3_bucket.server.endpoint))
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(ShipFatalError, match="SignatureDoesNotMatch"):
            store.put_new("k", tmp_path / "f")

    def test_no_credentials_is_fatal_and_says_what_to_set(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytest.importorskip("boto3")
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        store = S3Store(
            parse_archive_url("s3://bucket/p", endpoint_url="http://127.0.0.1:9", region="x")
        )
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(ShipFatalError, match="AWS_ACCESS_KEY_ID"):
            store.put_new("k", tmp_path / "f")

    def test_a_server_that_is_not_there_is_worth_a_retry(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pytest.importorskip("boto3")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
        target = parse_archive_url("s3://bucket/p", endpoint_url="http://127.0.0.1:9", region="x")
        store = S3Store(target, connect_timeout=1)
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(ShipRetryableError, match="s3://bucket/p"):
            store.put_new("k", tmp_path / "f")


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"asyncio-jsonl-analytics\[s3\]"):
        S3Store(parse_archive_url("s3://bucket/p"))


class TestSameObject:
    def test_a_multipart_copy_of_the_same_bytes_is_recognised_by_reading_it_back(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        """A multipart ETag is not an MD5: the object is read back and compared."""
        path = tmp_path / "a.gz"
        path.write_bytes(bytes(range(256)) * 64)
        client = s3_bucket.server.client()
        upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="k")
        part = client.upload_part(
            Bucket=s3_bucket.name,
            Key="k",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=path.read_bytes(),
        )
        client.complete_multipart_upload(
            Bucket=s3_bucket.name,
            Key="k",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
        store = S3Store(parse_archive_url(s3_bucket.url, endpoint_url=s3_bucket.server.endpoint))
        assert store.head("k") == (path.stat().st_size, None)
        assert store.put_new("k", path) == (False, path.stat().st_size)

    def test_the_same_size_with_other_bytes_is_a_conflict(
        self, tmp_path: Path, s3_bucket: S3Bucket
    ) -> None:
        path = tmp_path / "a.gz"
        path.write_bytes(b"mine")
        s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key="k", Body=b"your")
        store = S3Store(parse_archive_url(s3_bucket.url, endpoint_url=s3_bucket.server.endpoint))
        with pytest.raises(ShipRejectedError, match="another object is already at k"):
            store.put_new("k", path)
        assert s3_bucket.objects() == {"k": b"your"}
