"""``analytics archive``: one-line errors, a summary line with ``--once``, JSON log lines
off a terminal, a clean stop on SIGTERM; ``report s3://…`` prints what the local
report prints; ``ship --archive`` archives while it ships."""

from __future__ import annotations

import functools
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from ..helpers import run_main
from ..ship.central import ship_command, write_mixed
from ..ship.pg_server import PgDatabase
from ..ship.s3_server import S3Bucket


def write(directory: Path, count: int, max_file_size: str) -> list[str]:
    """``count`` entries through a real writer that rotates at ``max_file_size``."""
    return anyio.run(functools.partial(write_mixed, directory, count, max_file_size=max_file_size))


def archive_command(directory: Path, bucket: S3Bucket, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "analytics",
        "archive",
        str(directory),
        "--to",
        bucket.url,
        "--s3-endpoint",
        bucket.server.endpoint,
        *extra,
    ]


def gz_names(directory: Path) -> set[str]:
    return {p.name for p in (directory / "metrics").glob("metrics_*.jsonl.gz")}


def archived_names(bucket: S3Bucket) -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in bucket.objects()}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/prefix", "not an archive URL: 'http://bucket/prefix'"),
        ("s3://Bad_Bucket/p", "bad bucket name 'Bad_Bucket'"),
        ("s3://bucket/a/../b", "bad prefix 'a/../b'"),
    ],
)
def test_a_bad_url_is_a_one_line_error(
    tmp_path: Path, url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["archive", str(tmp_path), "--to", url, "--once"], capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_a_bad_source_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["archive", str(tmp_path), "--to", "s3://bucket/p", "--source", "a/b", "--once"]
    code, _, err = run_main(argv, capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "bad archive source 'a/b'" in err


def test_once_archives_everything_and_says_so(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    write(tmp_path, 2000, "64 KiB")
    run = subprocess.run(archive_command(tmp_path, s3_bucket, "--once"), capture_output=True)
    assert run.returncode == 0, run.stderr
    files = gz_names(tmp_path)
    assert f"archived {len(files)} files" in run.stderr.decode()
    assert archived_names(s3_bucket) == files
    again = subprocess.run(archive_command(tmp_path, s3_bucket, "--once"), capture_output=True)
    assert again.returncode == 0
    assert "archived 0 files" in again.stderr.decode()


def test_wrong_credentials_are_one_line_and_not_retried(
    tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 500, "32 KiB")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOBODY")
    began = time.monotonic()
    run = subprocess.run(
        archive_command(tmp_path, s3_bucket, "--once"), capture_output=True, text=True
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("analytics: error:")]
    assert len(errors) == 1
    assert s3_bucket.name in errors[0] or "s3://" in errors[0]
    assert time.monotonic() - began < 60  # not retried for --give-up-after (5 minutes)


@pytest.mark.slow
def test_sigterm_stops_cleanly_after_the_upload_in_flight(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    write(tmp_path, 3000, "64 KiB")
    files = gz_names(tmp_path)
    process = subprocess.Popen(
        archive_command(tmp_path, s3_bucket, "--poll-interval", "0.1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while archived_names(s3_bucket) != files:
        assert time.monotonic() < deadline
        assert process.poll() is None
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    log = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {r["key"].rsplit("/", 1)[-1] for r in log if "key" in r} == files


def test_the_report_of_the_archive_is_the_report_of_the_files(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    write(tmp_path, 2000, "64 KiB")
    for active in (tmp_path / "metrics").glob("metrics_*.jsonl"):
        active.unlink()  # the archive holds completed files only
    subprocess.run(archive_command(tmp_path, s3_bucket, "--once"), check=True)
    report = [sys.executable, "-m", "analytics", "report", "--format", "json"]
    local = subprocess.run([*report, str(tmp_path)], capture_output=True, text=True, check=True)
    endpoint = ["--s3-endpoint", s3_bucket.server.endpoint]
    for engine in ("duckdb", "python"):
        remote = subprocess.run(
            [*report, s3_bucket.url, "--engine", engine, *endpoint],
            capture_output=True,
            text=True,
        )
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout) == json.loads(local.stdout), engine
    source = (tmp_path / "metrics" / ".analytics-id").read_text().strip()
    mine = subprocess.run(
        [*report, s3_bucket.url, "--source", source, *endpoint], capture_output=True, text=True
    )
    assert json.loads(mine.stdout) == json.loads(local.stdout)
    other = subprocess.run(
        [*report, s3_bucket.url, "--source", "someone-else", *endpoint],
        capture_output=True,
        text=True,
    )
    assert json.loads(other.stdout)["entries"] == 0


def test_report_options_for_an_archive_need_an_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["report", str(tmp_path), "--source", "x"], capsys)
    assert code == 1
    assert "go with an s3://BUCKET/PREFIX archive" in err
    code, _, err = run_main(["report", "s3://bucket/p", "--engine", "clickhouse"], capsys)
    assert code == 1
    assert "reads a central table, not an archive" in err


@pytest.mark.slow
async def test_ship_with_archive_does_both(
    tmp_path: Path, pg_database: PgDatabase, s3_bucket: S3Bucket
) -> None:
    written = await write_mixed(tmp_path, 2000, max_file_size="64 KiB")
    endpoint = s3_bucket.server.endpoint
    command = ship_command(
        tmp_path, pg_database.url, "--once", "--archive", s3_bucket.url, "--s3-endpoint", endpoint
    )
    run = await anyio.run_process(command, check=False)
    assert run.returncode == 0, run.stderr
    rows = await pg_database.fetch("SELECT id FROM entries")
    assert sorted(str(row[0]) for row in rows) == sorted(written)
    assert archived_names(s3_bucket) == gz_names(tmp_path)
    assert f"archived {len(gz_names(tmp_path))} files" in run.stderr.decode()


def test_once_with_a_conflict_exits_1_and_leaves_the_object_alone(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    write(tmp_path, 1000, "64 KiB")
    first = min(gz_names(tmp_path))
    source = "mine"
    day = f"{first[8:12]}-{first[12:14]}-{first[14:16]}"
    key = f"archive/source={source}/date={day}/{first}"
    s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key=key, Body=b"theirs")
    run = subprocess.run(
        archive_command(tmp_path, s3_bucket, "--once", "--source", source),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "1 conflicts" in run.stderr
    assert f"another object is already at {key}" in run.stderr
    assert s3_bucket.objects()[key] == b"theirs"
    assert archived_names(s3_bucket) == gz_names(tmp_path)


def test_a_terminal_gets_one_progress_line(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    write(tmp_path, 1000, "64 KiB")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execv(sys.executable, archive_command(tmp_path, s3_bucket, "--once"))
    output = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, output
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    text = output.decode()
    assert f"archived {len(gz_names(tmp_path))} files" in text
    assert "caught up" in text
    assert "{" not in text  # no JSON log lines on a terminal
