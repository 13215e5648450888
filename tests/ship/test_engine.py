"""Choosing an engine's client for a URL; a missing client names its extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analytics._ship.engine import open_engine
from analytics._ship.target import parse_target


@pytest.mark.parametrize(
    ("url", "name"),
    [("clickhouse://h/db", "ClickHouse"), ("postgresql://h/db", "PostgreSQL")],
)
def test_each_scheme_gets_its_engine_unconnected(url: str, name: str) -> None:
    engine = open_engine(parse_target(url))
    assert type(engine).__name__ == name
    assert engine.target == parse_target(url)
    assert "CREATE TABLE IF NOT EXISTS" in engine.ddl()


@pytest.mark.parametrize(
    ("url", "client", "extra"),
    [("clickhouse://h/db", "httpx", "clickhouse"), ("postgresql://h/db", "asyncpg", "postgresql")],
)
def test_a_missing_client_names_the_extra_to_install(url: str, client: str, extra: str) -> None:
    code = (
        "import sys\n"
        f"sys.modules[{client!r}] = None  # as if it were not installed\n"
        "from analytics import MissingDependencyError\n"
        "from analytics._ship.engine import open_engine\n"
        "from analytics._ship.target import parse_target\n"
        "try:\n"
        f"    open_engine(parse_target({url!r}))\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc, exc.name)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'asyncio-jsonl-analytics[{extra}]'" in run.stdout
    assert run.stdout.strip().endswith(client)
