"""The service examples in docs/integrations.md run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from analytics import MetricType, iter_entries

DOC = Path(__file__).parent.parent / "docs" / "integrations.md"


def example(heading: str, tmp_path: Path) -> dict[str, Any]:
    """Run the first Python block under ``heading``, writing into ``tmp_path``."""
    text = DOC.read_text()
    section = text.split(f"## {heading}", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, heading
    source = code.group(1).replace('"./data"', repr(str(tmp_path)))
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(source, f"{DOC.name}:{heading}", "exec"), namespace)
    return namespace


def test_fastapi_lifespan_example(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    app = example("FastAPI (lifespan)", tmp_path)["app"]
    with TestClient(app) as client:
        response = client.post("/tools/grep", headers={"x-session-id": "s-1"})
        assert response.json() == {"result": "done"}
    # Leaving the client ran the lifespan's exit: the writer is closed, all written.
    (entry,) = list(iter_entries(tmp_path))
    assert entry.type is MetricType.TOOL_USE
    assert entry.session_id == "s-1"
    assert entry.data["tool_name"] == "grep"
    assert entry.data["success"] is True


async def test_aiohttp_startup_and_cleanup_example(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    app = example("aiohttp (startup and cleanup)", tmp_path)["app"]
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        assert await response.text() == "hello"
    (entry,) = list(iter_entries(tmp_path))
    assert entry.type is MetricType.PERFORMANCE
    assert entry.data["operation"] == "hello"
