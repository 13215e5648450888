"""Every Python block in README.md and docs/*.md runs as written.

Each ```python block is one test case, with id ``file:line`` (the line of its opening
fence). It is written to a file in a fresh temporary directory and run there by a new
interpreter (so: a fresh namespace and a fresh event loop), with a timeout. A block
preceded by the line ``<!-- fragment -->`` is deliberately incomplete and is skipped;
it is the only kind that is.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import BLOCKS, Block

TIMEOUT = 30.0
# The only third-party packages the docs may import (all in the test extra).
ALLOWED_THIRD_PARTY = {"analytics", "fastapi", "aiohttp", "httpx", "duckdb"}


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
def test_block_runs(block: Block, tmp_path: Path) -> None:
    if block.fragment:
        pytest.skip("marked <!-- fragment -->")
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
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
