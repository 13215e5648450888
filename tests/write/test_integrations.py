"""Sinks and fan-out, LoggingSink, and the plain-ASGI request timing middleware."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from analytics import (
    BufferFullError,
    JSONLWriter,
    LoggingSink,
    MetricEntry,
    MetricsWriter,
    MetricType,
    RequestTimingMiddleware,
    Sink,
)

from ..helpers import read_all


class Collector:
    def __init__(self) -> None:
        self.entries: list[MetricEntry] = []
        self.flushes = 0
        self.closes = 0

    async def write(self, entry: MetricEntry) -> None:
        self.entries.append(entry)

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closes += 1


class Broken(Collector):
    async def write(self, entry: MetricEntry) -> None:
        raise ConnectionError("endpoint down")

    async def flush(self) -> None:
        raise ConnectionError("endpoint down")


class TestFanOut:
    async def test_each_entry_goes_to_every_sink(self) -> None:
        a, b = Collector(), Collector()
        metrics = MetricsWriter(a, b)
        e = await metrics.track_tool_use("s1", "grep", True)
        assert a.entries == [e]
        assert b.entries == [e]
        assert metrics.sinks == (a, b)

    async def test_a_failing_sink_does_not_stop_the_others(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        good = Collector()
        metrics = MetricsWriter(Broken(), good)
        for i in range(3):
            await metrics.track_performance(None, "op", True, float(i))
        assert len(good.entries) == 3
        assert metrics.sink_errors == 3
        logged = [
            r for r in caplog.records if r.name == "analytics" and "endpoint down" in r.message
        ]
        assert len(logged) == 1  # rate-limited
        await metrics.flush()
        assert good.flushes == 1
        assert metrics.sink_errors == 4

    async def test_with_one_sink_errors_reach_the_caller_as_before(self) -> None:
        metrics = MetricsWriter(Broken())
        with pytest.raises(ConnectionError):
            await metrics.track_tool_use("s1", "grep", True)
        assert metrics.sink_errors == 0

    async def test_with_one_writer_its_own_errors_are_unchanged(self, tmp_path: Path) -> None:
        async with JSONLWriter(
            tmp_path, buffer_size=100, max_pending=1, on_full="raise", flush_interval=60
        ) as writer:
            metrics = MetricsWriter(writer)
            await metrics.track_tool_use("s1", "grep", True)
            with pytest.raises(BufferFullError):
                await metrics.track_tool_use("s1", "grep", True)

    async def test_flush_and_close_reach_every_sink(self) -> None:
        a, b = Collector(), Collector()
        metrics = MetricsWriter(a, b)
        await metrics.flush()
        await metrics.close()
        assert (a.flushes, a.closes, b.flushes, b.closes) == (1, 1, 1, 1)

    def test_at_least_one_sink_is_required(self) -> None:
        with pytest.raises(TypeError, match="at least one sink"):
            MetricsWriter()

    def test_the_writer_and_logging_sink_are_sinks(self, tmp_path: Path) -> None:
        assert isinstance(JSONLWriter(tmp_path), Sink)
        assert isinstance(LoggingSink(), Sink)
        assert isinstance(Collector(), Sink)

    async def test_a_file_and_a_console_together(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        console = logging.getLogger("test.console")
        with caplog.at_level(logging.INFO, logger="test.console"):
            async with JSONLWriter(tmp_path) as writer:
                metrics = MetricsWriter(writer, LoggingSink(console))
                e = await metrics.track_tool_use("s1", "grep", True, 1.5)
        assert read_all(writer.metrics_dir) == [e]
        (record,) = [r for r in caplog.records if r.name == "test.console"]
        assert MetricEntry.from_json_line(record.getMessage()) == e


class TestLoggingSink:
    async def test_writes_one_json_line_per_entry_at_its_level(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        logger = logging.getLogger("test.sink")
        sink = LoggingSink(logger, level=logging.WARNING)
        entry = MetricEntry(type=MetricType.TOKEN_USAGE, data={"text": "a\nb"})
        with caplog.at_level(logging.DEBUG, logger="test.sink"):
            await sink.write(entry)
            await sink.flush()
            await sink.close()
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        message = record.getMessage()
        assert "\n" not in message
        assert json.loads(message) == entry.to_dict()
        assert record.analytics_entry == entry.to_dict()  # type: ignore[attr-defined]

    async def test_a_disabled_level_costs_nothing(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A disabled level must not even serialize the entry (the logger would drop
        the record anyway, so only the work not done can show it)."""
        logger = logging.getLogger("test.quiet")
        monkeypatch.setattr(logger, "level", logging.ERROR)
        serialized: list[str] = []

        def counting(method: str) -> Any:
            real = getattr(MetricEntry, method)

            def spy(self: MetricEntry, *args: Any, **kwargs: Any) -> Any:
                serialized.append(method)
                return real(self, *args, **kwargs)

            return spy

        for method in ("to_json_line", "to_dict"):
            monkeypatch.setattr(MetricEntry, method, counting(method))
        sink = LoggingSink(logger)
        await sink.write(MetricEntry(type=MetricType.TOOL_USE))
        assert serialized == []
        assert caplog.records == []
        # The same sink at an enabled level does serialize: the spy does see it.
        monkeypatch.setattr(logger, "level", logging.DEBUG)
        with caplog.at_level(logging.DEBUG, logger="test.quiet"):
            await sink.write(MetricEntry(type=MetricType.TOOL_USE))
        assert sorted(serialized) == ["to_dict", "to_json_line"]
        assert len(caplog.records) == 1


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
        sink = Collector()
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
        sink = Collector()
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
        sink = Collector()
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
