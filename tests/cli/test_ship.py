"""``analytics ship``, without a server: the DDL it would run, one-line errors for a
bad target, and log lines as JSON off a terminal. (Shipping into real servers:
tests/ship/.)"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from analytics._cli.ship import JsonFormatter

from ..helpers import run_main


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
