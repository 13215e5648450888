"""Every Python block in README.md and docs/*.md runs as written.

Each ```python block is one test case, with id ``file:line`` (the line of its opening
fence). It is written to a file in a fresh temporary directory and run there by a new
interpreter (so: a fresh namespace and a fresh event loop), with a timeout. A block
preceded by the line ``<!-- fragment -->`` is deliberately incomplete and is skipped;
it is the only kind that is. A ``postgresql://`` or ``clickhouse://`` URL in a block is
pointed at a real server the test starts (a fresh database each time), and an
``s3://BUCKET/...`` URL at a fresh bucket of a real S3 server (SeaweedFS), through the
usual ``AWS_*`` variables.
"""

from __future__ import annotations

import ast
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import BLOCKS, Block

TIMEOUT = 30.0
# The only third-party packages the docs may import (all in the test extra).
ALLOWED_THIRD_PARTY = {"analytics", "fastapi", "aiohttp", "httpx", "duckdb"}

SERVER_URL = re.compile(r"(postgresql|clickhouse)://[^\s\"']+")
S3_BUCKET = re.compile(r"s3://([a-z0-9.-]+)")


def imported_top_level(code: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_blocks_found() -> None:
    assert len(BLOCKS) >= 10
    assert all(not block.fragment for block in BLOCKS if block.path.name == "README.md")


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_runs(block: Block, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if block.fragment:
        pytest.skip("marked <!-- fragment -->")
    cleanups: list[Callable[[], object]] = []
    code = SERVER_URL.sub(lambda m: server_url(m.group(1), request, cleanups), block.code)
    if S3_BUCKET.search(code):
        code = S3_BUCKET.sub(f"s3://{s3_bucket(request)}", code)
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    try:
        run_block(block, script, tmp_path)
    finally:
        for cleanup in cleanups:
            cleanup()


def server_url(
    engine: str, request: pytest.FixtureRequest, cleanups: list[Callable[[], object]]
) -> str:
    """A fresh database on the session's real server of ``engine``, and its URL."""
    name = f"docs_{secrets.token_hex(4)}"
    if engine == "postgresql":
        pg = request.getfixturevalue("pg_server")
        pg.psql(f"CREATE DATABASE {name} OWNER shipper")
        cleanups.append(lambda: pg.psql(f"DROP DATABASE {name} WITH (FORCE)"))
        return str(pg.url(name))
    ch = request.getfixturevalue("clickhouse_server")
    ch.query(f"CREATE DATABASE {name}")
    cleanups.append(lambda: ch.query(f"DROP DATABASE {name}"))
    return str(ch.url(name))


def s3_bucket(request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the session's S3 server; the subprocess finds the server
    and its key in the ``AWS_*`` variables, as a user's program would."""
    bucket = request.getfixturevalue("s3_bucket")
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("AWS_ENDPOINT_URL", bucket.server.endpoint)
    return str(bucket.name)


def run_block(block: Block, script: Path, tmp_path: Path) -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-X", "dev", str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.id} did not finish in {TIMEOUT} s")
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_block_imports_only_known_packages(block: Block) -> None:
    third_party = imported_top_level(block.code) - set(sys.stdlib_module_names)
    assert third_party <= ALLOWED_THIRD_PARTY, f"{block.id} imports {third_party}"
