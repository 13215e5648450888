"""MetricsWriter's fan-out to several sinks: each gets every entry, and one failing
sink does not stop the others."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from analytics import (
    BufferFullError,
    JSONLWriter,
    LoggingSink,
    MetricEntry,
    MetricsWriter,
    Sink,
)
from analytics.testing import MemorySink

from ..helpers import read_all


class CountingSink(MemorySink):
    """A MemorySink that also counts its closes."""

    closes = 0

    async def close(self) -> None:
        self.closes += 1
        await super().close()


class Broken(MemorySink):
    async def write(self, entry: MetricEntry) -> None:
        raise ConnectionError("endpoint down")

    async def flush(self) -> None:
        raise ConnectionError("endpoint down")


class TestFanOut:
    async def test_each_entry_goes_to_every_sink(self) -> None:
        a, b = CountingSink(), CountingSink()
        metrics = MetricsWriter(a, b)
        e = await metrics.track_tool_use("s1", "grep", True)
        assert a.entries == [e]
        assert b.entries == [e]
        assert metrics.sinks == (a, b)

    async def test_a_failing_sink_does_not_stop_the_others(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        good = CountingSink()
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
        a, b = CountingSink(), CountingSink()
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
        assert isinstance(CountingSink(), Sink)

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
