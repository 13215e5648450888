"""``analytics ship``: the DDL it would run, one-line errors for a bad target, log
lines as JSON off a terminal and one progress line on one, a clean stop, and the
report on the server."""

from __future__ import annotations

import json
import logging
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

from analytics import read_entries
from analytics._cli.ship import JsonFormatter

from ..helpers import run_main
from ..ship.central import Central, reports_on_server, ship_command, write_mixed
from ..ship.pg_server import PgServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("clickhouse://localhost:1/db?table=t", "CREATE TABLE IF NOT EXISTS `db`.`t`"),
        ("postgresql://u@localhost:1/db", 'CREATE TABLE IF NOT EXISTS "analytics_entries"'),
    ],
)
def test_print_ddl_shows_the_table_and_connects_to_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, expected: str
) -> None:
    """Port 1 has no server: the DDL comes out all the same."""
    code, out, err = run_main(["ship", str(tmp_path), "--to", url, "--print-ddl"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(expected)
    assert out.endswith("\n")
    assert not out.endswith("\n\n")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/db", "unknown scheme 'mysql'"),
        ("clickhouse://localhost:8123/", "database"),
    ],
)
def test_a_bad_target_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    code, out, err = run_main(["ship", str(tmp_path), "--to", url, "--once"], capsys)
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("analytics: error:")
    assert message in line


def test_log_lines_off_a_terminal_are_json_objects_with_their_extras() -> None:
    record = logging.makeLogRecord(
        {"msg": "shipped %d entries", "args": (3,), "levelname": "INFO", "lag_bytes": 12}
    )
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "shipped 3 entries"
    assert document["level"] == "info"
    assert document["lag_bytes"] == 12
    assert "args" not in document
    assert "msg" not in document


@pytest.mark.slow
async def test_sigterm_stops_cleanly_after_the_batch_in_flight(
    tmp_path: Path, central: Central
) -> None:
    written = await write_mixed(tmp_path, 3_000)
    process = subprocess.Popen(
        ship_command(tmp_path, central.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(await central.ids()) < len(written):
        assert time.monotonic() < deadline
        assert process.poll() is None
        await anyio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    log = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("entries") for r in log)  # structured lines off a terminal
    # The checkpoint has it all: a new run ships nothing.
    again = subprocess.run(
        ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True
    )
    assert again.returncode == 0
    assert "shipped 0 entries" in again.stderr


@pytest.mark.slow
def test_the_report_on_the_server_prints_what_the_python_report_prints(
    tmp_path: Path, central: Central
) -> None:
    anyio.run(write_mixed, tmp_path, 2_000)
    run = subprocess.run(
        ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    report = [sys.executable, "-m", "analytics", "report", str(tmp_path), "--format", "json"]
    local = subprocess.run(report, capture_output=True, text=True, check=True).stdout
    engine = "postgres" if central.engine == "postgresql" else "clickhouse"
    remote = subprocess.run(
        [*report, "--engine", engine, "--url", central.url], capture_output=True, text=True
    )
    if not anyio.run(reports_on_server, central):
        assert remote.returncode == 1
        assert remote.stderr.count("\n") == 1
        assert "cannot compute the report" in remote.stderr
        return
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local)
    assert read_entries(tmp_path)  # the directory is untouched by shipping and reporting


@pytest.mark.slow
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db?table=t", "unknown scheme 'mysql'"),
        ("postgresql://h:99999/db", "bad port"),
        ("clickhouse://h:8123/?table=t", "no database"),
        ("postgresql://h/db?table=1x", "bad table name '1x'"),
    ],
)
def test_bad_urls_are_one_line(tmp_path: Path, url: str, message: str) -> None:
    tmp_path.joinpath("metrics").mkdir()
    run = subprocess.run(ship_command(tmp_path, url, "--once"), capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_an_unreachable_server_at_start_is_one_line(tmp_path: Path) -> None:
    tmp_path.joinpath("metrics").mkdir()
    for url in ("postgresql://u@127.0.0.1:9/db?table=t", "clickhouse://127.0.0.1:9/db?table=t"):
        run = subprocess.run(
            ship_command(tmp_path, url, "--once"), capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1, run.stderr
        assert "127.0.0.1:9" in run.stderr


@pytest.mark.slow
def test_a_wrong_password_is_one_line_and_not_retried(tmp_path: Path, pg_server: PgServer) -> None:
    (tmp_path / "metrics").mkdir()
    url = pg_server.url("postgres", password="not-the-password")
    began = time.monotonic()
    run = subprocess.run(ship_command(tmp_path, url), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1  # without --once too: it stops at once
    assert run.stderr.count("\n") == 1, run.stderr
    assert "not-the-password" not in run.stderr
    assert "password" in run.stderr.lower()
    assert time.monotonic() - began < 30


@pytest.mark.slow
def test_a_terminal_gets_one_progress_line(tmp_path: Path, central: Central) -> None:
    anyio.run(write_mixed, tmp_path, 500)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execv(sys.executable, ship_command(tmp_path, central.url, "--once"))
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
    assert "\rshipped" in text or "shipped 500 entries" in text
    assert "caught up" in text
    assert "{" not in text  # no JSON log lines on a terminal
