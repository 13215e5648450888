"""RequestTimingMiddleware: one performance entry per HTTP request of any ASGI app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics import (
    JSONLWriter,
    MetricsWriter,
    MetricType,
    RequestTimingMiddleware,
)
from analytics.testing import MemorySink

from ..helpers import read_all

Message = dict[str, Any]


async def hello_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status = 503 if scope["path"] == "/down" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def call(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": headers or []}
    await app(scope, receive, send)
    return sent


class TestRequestTimingMiddleware:
    async def test_records_one_performance_entry_per_request(self) -> None:
        sink = MemorySink()
        app = RequestTimingMiddleware(hello_app, MetricsWriter(sink), session_header="X-Session")
        sent = await call(app, "/hello", [(b"x-session", b"s-42")])
        assert sent[0]["status"] == 200  # the response passes through untouched
        (e,) = sink.entries
        assert e.type is MetricType.PERFORMANCE
        assert e.session_id == "s-42"
        assert e.data["operation"] == "http.request"
        assert e.data["method"] == "GET"
        assert e.data["path"] == "/hello"
        assert e.data["status"] == 200
        assert e.data["success"] is True
        assert isinstance(e.data["duration_ms"], float)

    async def test_server_errors_and_exceptions_are_failures(self) -> None:
        sink = MemorySink()
        app = RequestTimingMiddleware(hello_app, MetricsWriter(sink), operation="api")
        await call(app, "/down")
        with pytest.raises(RuntimeError, match="boom"):
            await call(app, "/boom")
        down, boom = sink.entries
        assert (down.data["status"], down.data["success"]) == (503, False)
        assert boom.data["success"] is False
        assert boom.data["error_type"] == "RuntimeError"
        assert boom.data["operation"] == "api"

    async def test_other_scopes_pass_through(self) -> None:
        sink = MemorySink()
        seen: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        await RequestTimingMiddleware(app, MetricsWriter(sink))({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
        assert seen == ["lifespan"]
        assert sink.entries == []

    async def test_with_a_real_writer(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            app = RequestTimingMiddleware(hello_app, MetricsWriter(writer))
            for _ in range(5):
                await call(app, "/hello")
        entries = read_all(writer.metrics_dir)
        assert len(entries) == 5
        assert all(e.data["status"] == 200 for e in entries)
