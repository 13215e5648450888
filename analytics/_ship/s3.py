"""The S3 side of the archive: its URL, and the few blocking calls the archiver and the
report make, through boto3 (``pip install 'asyncio-jsonl-analytics[s3]'``).

Everything here blocks: call it from a worker thread. Credentials, region and endpoint
come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, the
config files), unless an endpoint is given. Errors are translated once, here:

- ``ShipRetryableError``: the server cannot be reached, timed out, answered 5xx or
  "slow down";
- ``ShipFatalError``: no credentials, a bad key or signature, access denied, no such
  bucket (trying again cannot help);
- ``ShipRejectedError``: a *different* object already has the key (never overwritten).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .._exceptions import (
    MissingDependencyError,
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
)
from .._policy import FileName

__all__ = ["ArchiveTarget", "S3Store", "parse_archive_url"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RETRYABLE_CODES = {
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
}
_READ = 1024 * 1024


@dataclass(frozen=True)
class ArchiveTarget:
    """A parsed ``s3://BUCKET/PREFIX`` URL, with where to reach it."""

    bucket: str
    prefix: str
    """Without leading or trailing ``/``; may be empty."""
    endpoint_url: str | None = None
    """``None``: boto3's own (AWS, or ``AWS_ENDPOINT_URL``)."""
    region: str | None = None

    @property
    def sink_id(self) -> str:
        """The archive's name among a directory's checkpoints: ``s3-<hash>`` of the
        bucket and prefix (``.ship-s3-….json``)."""
        digest = hashlib.sha256(f"{self.bucket}/{self.prefix}".encode()).hexdigest()[:12]
        return f"s3-{digest}"

    def display(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, source: str, name: FileName) -> str:
        """``PREFIX/source=SOURCE/date=YYYY-MM-DD/NAME.jsonl.gz``: the date the file
        was created (UTC, from its name)."""
        day = name.created.strftime("%Y-%m-%d")
        return self.under(f"source={source}/date={day}/{name.name}")

    def under(self, rest: str) -> str:
        return f"{self.prefix}/{rest}" if self.prefix else rest


def parse_archive_url(
    url: str, *, endpoint_url: str | None = None, region: str | None = None
) -> ArchiveTarget:
    """Parse ``s3://BUCKET[/PREFIX]``.

    Raises:
        TargetError: the URL cannot be used; the message names what is wrong.
    """
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise TargetError(f"not an archive URL: {url!r} (expected s3://BUCKET/PREFIX)")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise TargetError(
            f"bad bucket name {bucket!r} in {url}: 3 to 63 lowercase letters, digits, '.' or '-'"
        )
    prefix = prefix.strip("/")
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise TargetError(f"bad prefix {prefix!r} in {url}")
    if endpoint_url is not None and not re.match(r"https?://[^/]+", endpoint_url):
        raise TargetError(f"bad S3 endpoint {endpoint_url!r}: expected http(s)://HOST[:PORT]")
    return ArchiveTarget(bucket, prefix, endpoint_url, region)


def check_source(source: str) -> str:
    """A ``source=`` value: letters, digits, ``.``, ``_``, ``-``.

    Raises:
        ValueError: it is not one.
    """
    if not _SOURCE.fullmatch(source):
        raise ValueError(
            f"bad archive source {source!r}: letters, digits, '.', '_' or '-' (at most 128)"
        )
    return source


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "the S3 archive needs boto3: pip install 'asyncio-jsonl-analytics[s3]'",
            name="boto3",
        ) from exc


def file_digest(path: Path) -> tuple[int, str]:
    """``(size, MD5 hex)`` of a file: what a single-part upload's ETag is."""
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            md5.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest()


class S3Store:
    """One bucket, through one boto3 client (thread-safe: the archiver and the report
    call it from worker threads)."""

    def __init__(self, target: ArchiveTarget, *, connect_timeout: float = 5.0) -> None:
        boto3 = _import("boto3")
        botocore_config = _import("botocore.config")
        self._errors = _import("botocore.exceptions")
        self.target = target
        options: dict[str, Any] = {
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": connect_timeout,
            "read_timeout": 60,
        }
        if target.endpoint_url is not None:
            options["s3"] = {"addressing_style": "path"}  # what S3-compatible servers take
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=target.endpoint_url,
            region_name=target.region,
            config=botocore_config.Config(**options),
        )

    # -- writing ---------------------------------------------------------------------

    def put_new(self, key: str, path: Path) -> tuple[bool, int]:
        """Upload ``path`` unchanged to ``key`` unless the key exists
        (``If-None-Match: *``), with its MD5 (``Content-MD5``) for the server to
        check.

        Returns:
            ``(created, size)``: ``created`` is ``False`` when the very same bytes were
            already there (a retry of an upload that had succeeded).

        Raises:
            ShipRejectedError: a different object has the key; it is left alone.
            ShipRetryableError, ShipFatalError: see the module.
            FileNotFoundError: the file is gone.
        """
        size, md5 = file_digest(path)
        try:
            with open(path, "rb") as body:
                self.client.put_object(
                    Bucket=self.target.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=size,
                    ContentMD5=base64.b64encode(bytes.fromhex(md5)).decode(),
                    ContentType="application/gzip",
                    IfNoneMatch="*",
                )
        except Exception as exc:
            if self._code(exc) not in ("PreconditionFailed", "412"):
                raise self._translate(exc, key) from exc
            there = self.head(key)
            if there is not None and self._same(key, there, size, md5):
                return False, size
            raise ShipRejectedError(
                f"{self.target.display()}: another object is already at {key}"
                f" ({there[0] if there else '?'} bytes, not these {size}); left alone"
            ) from None
        return True, size

    def _same(self, key: str, there: tuple[int, str | None], size: int, md5: str) -> bool:
        """Whether the object at ``key`` holds the file's bytes: by size and ETag, or,
        when the ETag is not an MD5 (multipart, SSE-KMS), by reading it back."""
        if there[0] != size:
            return False
        if there[1] == md5:
            return True
        digest = hashlib.md5(usedforsecurity=False)
        try:
            answer = self.client.get_object(Bucket=self.target.bucket, Key=key)
            for chunk in answer["Body"].iter_chunks(_READ):
                digest.update(chunk)
        except Exception as exc:
            raise self._translate(exc, key) from exc
        return digest.hexdigest() == md5

    def head(self, key: str) -> tuple[int, str | None] | None:
        """``(size, MD5 hex or None)`` of the object at ``key``, or ``None``."""
        try:
            answer = self.client.head_object(Bucket=self.target.bucket, Key=key)
        except Exception as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._translate(exc, key) from exc
        etag = str(answer.get("ETag", "")).strip('"')
        md5 = etag if len(etag) == 32 and "-" not in etag else None
        return int(answer["ContentLength"]), md5

    # -- reading ---------------------------------------------------------------------

    def list(self, under: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object whose key starts with ``under``."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.target.bucket, Prefix=under):
                for item in page.get("Contents", ()):
                    yield str(item["Key"]), int(item["Size"])
        except Exception as exc:
            raise self._translate(exc, under) from exc

    def download(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.target.bucket, key, str(path))
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def head_bytes(self, key: str, count: int) -> bytes:
        """The first ``count`` bytes of an object (fewer if it is shorter)."""
        try:
            answer = self.client.get_object(
                Bucket=self.target.bucket, Key=key, Range=f"bytes=0-{count - 1}"
            )
            data: bytes = answer["Body"].read()
            return data
        except Exception as exc:
            raise self._translate(exc, key) from exc

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    # -- errors ----------------------------------------------------------------------

    def _code(self, exc: Exception) -> str | None:
        if isinstance(exc, self._errors.ClientError):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return None

    def _translate(self, exc: Exception, key: str) -> Exception:
        """One of our errors for a boto3/botocore error; anything else as it is."""
        where = self.target.display()
        errors = self._errors
        if isinstance(exc, errors.NoCredentialsError | errors.PartialCredentialsError):
            return ShipFatalError(
                f"{where}: no S3 credentials (set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            )
        if isinstance(exc, errors.ClientError):
            code = self._code(exc) or "?"
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            message = exc.response.get("Error", {}).get("Message") or code
            if status >= 500 or code in _RETRYABLE_CODES:
                return ShipRetryableError(f"{where}: {code} ({message})")
            if code == "NoSuchBucket":
                return ShipFatalError(f"{where}: no such bucket {self.target.bucket!r}")
            return ShipFatalError(f"{where}: {code} at {key} ({message})")
        if isinstance(exc, errors.BotoCoreError):  # connection refused, reset, timeouts
            return ShipRetryableError(f"{where}: {exc}")
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            return ShipRetryableError(f"{where}: {exc}")
        return exc
