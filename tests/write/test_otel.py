"""OTelSink: entries as OpenTelemetry log records and metrics, sent over OTLP/HTTP to a
real collector (rotel) that the test starts, stops and starts again."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analytics import (
    ConfigError,
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    MissingDependencyError,
    OTelSink,
)

from ..helpers import Heartbeat, read_all, wait_for
from .otlp_receiver import OtlpReceiver

FAST: dict[str, Any] = {"schedule_delay": 0.05, "metrics_interval": 0.2, "timeout": 2.0}


async def record_kinds(metrics: MetricsWriter) -> list[MetricEntry]:
    return [
        await metrics.track_session_start("sess-1", user_id="user-1", model="m1"),
        await metrics.track_tool_use(
            "sess-1", "grep", True, 20.5, pattern="a\nb", args={"k": [1, 2]}, big=2**70
        ),
        await metrics.track_error("sess-1", "ValueError", "it broke"),
        await metrics.track_token_usage("sess-1", "m1", 100, 40, cost_usd=0.5),
        await metrics.track_performance(None, "http.request", False, 7.0),
        await metrics.track_session_end("sess-1", duration_seconds=3.0),
    ]


class TestWithARealCollector:
    async def test_every_record_arrives_with_its_attributes(
        self, otlp_receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=a")
        sink = OTelSink(otlp_receiver.endpoint, resource_attributes={"team": "b"}, **FAST)
        async with JSONLWriter(tmp_path) as writer:
            metrics = MetricsWriter(writer, sink, metadata={"region": "eu"})
            entries = await record_kinds(metrics)
            await metrics.flush()
        records = await asyncio.to_thread(otlp_receiver.wait_for, len(entries))
        await sink.close()
        by_id = {r.attributes["analytics.id"]: r for r in records}
        assert set(by_id) == {e.id for e in entries}
        for entry in entries:
            seen = by_id[entry.id]
            assert seen.event_name == f"analytics.{entry.type.value}"
            assert json.loads(seen.body) == entry.to_dict()
            assert seen.attributes["analytics.type"] == entry.type.value
            assert seen.attributes["metadata.region"] == "eu"
            assert seen.timestamp == round(entry.timestamp.timestamp() * 1e6) * 1000
            assert seen.resource["service.name"] == "checkout"
            assert seen.resource["deployment.environment"] == "test"
            assert seen.resource["team"] == "b"  # given here: over the environment
            assert seen.resource["host.name"]
        start, tool, error = (by_id[entries[i].id] for i in range(3))
        assert start.attributes["session.id"] == "sess-1"
        assert start.attributes["user.id"] == "user-1"
        assert tool.attributes["tool_name"] == "grep"
        assert tool.attributes["success"] is True
        assert tool.attributes["duration_ms"] == 20.5
        assert tool.attributes["args"] == '{"k":[1,2]}'
        assert tool.attributes["big"] == str(2**70)
        assert "ERROR" in error.severity
        assert "INFO" in start.severity
        assert "session.id" not in by_id[entries[4].id].attributes
        stats = sink.stats()
        assert (stats.records, stats.exported, stats.dropped) == (6, 6, 0)
        assert stats.metric_exports >= 1
        assert {
            "analytics.entries",
            "analytics.tool.calls",
            "analytics.tool.duration",
            "analytics.errors",
            "analytics.tokens",
            "analytics.cost",
            "analytics.sessions.started",
            "analytics.sessions.ended",
            "analytics.operation.duration",
        } <= otlp_receiver.metric_names()
        assert len(read_all(tmp_path / "metrics")) == 6

    async def test_with_logs_false_only_the_metrics_are_sent(
        self, otlp_receiver: OtlpReceiver, tmp_path: Path
    ) -> None:
        sink = OTelSink(otlp_receiver.endpoint, logs=False, **FAST)
        async with JSONLWriter(tmp_path) as writer:
            metrics = MetricsWriter(writer, sink)
            await record_kinds(metrics)
            await metrics.flush()
        await wait_for(lambda: "analytics.tool.calls" in otlp_receiver.metric_names())
        await sink.close()
        assert {"analytics.entries", "analytics.tool.duration"} <= otlp_receiver.metric_names()
        assert otlp_receiver.log_records() == []
        stats = sink.stats()
        assert (stats.records, stats.exported, stats.dropped, stats.queue_full) == (0, 0, 0, 0)
        assert stats.metric_exports >= 1
        assert len(read_all(tmp_path / "metrics")) == 6

    async def test_while_the_collector_is_down_the_files_go_on_and_drops_are_counted(
        self, otlp_receiver: OtlpReceiver, tmp_path: Path
    ) -> None:
        sink = OTelSink(
            otlp_receiver.endpoint,
            max_queue_size=50,
            schedule_delay=0.05,
            timeout=0.5,
            metrics_interval=0.2,
            close_timeout=5.0,
        )
        heartbeat = Heartbeat()
        async with JSONLWriter(tmp_path, flush_interval=0.05) as writer:
            metrics = MetricsWriter(writer, sink)
            await asyncio.to_thread(otlp_receiver.stop)
            heartbeat.start()
            for i in range(500):
                await metrics.track_tool_use("s", "grep", True, float(i))
                if i % 10 == 9:
                    await asyncio.sleep(0.001)
            await writer.flush()
            await heartbeat.stop()
            assert len(read_all(tmp_path / "metrics")) == 500
            assert metrics.sink_errors == 0
            down = sink.stats()
            assert down.exported == 0
            assert down.records + down.queue_full == 500
            assert down.dropped + down.in_flight == 500
            assert down.in_flight <= 50  # never more than the queue holds
            # Back up: what is written now arrives, and the counters add up.
            await asyncio.to_thread(otlp_receiver.start)
            # What was queued during the outage is exported or given up (timeout 0.5 s).
            await wait_for(lambda: sink.stats().in_flight == 0, timeout=15)
            later = [await metrics.track_tool_use("s", "edit", True, 1.0) for _ in range(5)]
            await metrics.flush()
        later_ids = {e.id for e in later}

        def arrived_ids() -> set[object]:
            return {r.attributes["analytics.id"] for r in otlp_receiver.log_records()}

        await wait_for(lambda: later_ids <= arrived_ids(), timeout=15)
        await sink.close()
        arrived = arrived_ids()
        stats = sink.stats()
        assert stats.records + stats.queue_full == 505
        assert stats.exported + stats.dropped == 505
        assert stats.exported == len(arrived)
        assert stats.in_flight == 0
        assert len(read_all(tmp_path / "metrics")) == 505
        # The sink's waiting never ran on the loop: the heartbeat kept ticking.
        assert heartbeat.worst < 0.25, f"loop stalled {heartbeat.worst * 1000:.1f} ms"

    async def test_close_gives_up_on_a_dead_collector_and_counts_what_it_left(
        self, otlp_receiver: OtlpReceiver
    ) -> None:
        await asyncio.to_thread(otlp_receiver.stop)
        sink = OTelSink(otlp_receiver.endpoint, timeout=30.0, close_timeout=0.3, metrics=False)
        for _ in range(3):
            await sink.write(MetricEntry(type=MetricType.SESSION_START))
        await sink.close()
        stats = sink.stats()
        assert stats.records == 3
        assert stats.dropped == 3
        assert stats.in_flight == 0
        await sink.write(MetricEntry(type=MetricType.SESSION_START))  # ignored once closed
        await sink.close()
        assert sink.stats().records == 3


class TestRecords:
    def test_attributes_are_what_otlp_can_carry(self) -> None:
        sink = OTelSink("http://127.0.0.1:9", metrics=False)
        entry = MetricEntry(
            type=MetricType.TOOL_USE,
            data={"n": 2**63, "m": -(2**63), "l": [1, "a"], "d": {"x": None}, "gone": None},
            metadata={"ok": 1.5},
        )
        record = sink.record(entry)
        assert record.attributes["n"] == str(2**63)
        assert record.attributes["m"] == -(2**63)
        assert record.attributes["l"] == '[1,"a"]'
        assert record.attributes["d"] == '{"x":null}'
        assert "gone" not in record.attributes
        assert record.attributes["metadata.ok"] == 1.5
        assert record.event_name == "analytics.tool_use"

    def test_without_metrics_no_instrument_is_touched(self) -> None:
        sink = OTelSink("http://127.0.0.1:9", metrics=False)
        assert sink.stats().metric_exports == 0
        assert "127.0.0.1:9" in repr(sink)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("option", "bad"),
        [("max_queue_size", 0), ("max_queue_size", 1.5), ("schedule_delay", 0),
         ("metrics_interval", -1), ("close_timeout", True), ("timeout", 0),
         ("max_label_values", 0), ("logs", False)],
    )  # fmt: skip
    def test_bad_values_are_refused(self, option: str, bad: Any) -> None:
        expected = {"max_label_values": "max_values", "logs": "sends nothing"}.get(option, option)
        options = {option: bad, "metrics": False} if option == "logs" else {option: bad}
        with pytest.raises(ConfigError, match=expected):
            OTelSink("http://127.0.0.1:9", **options)

    def test_the_package_imports_without_either_extra(self) -> None:
        blocked = (
            "import sys; sys.modules['opentelemetry'] = sys.modules['prometheus_client'] = None"
        )
        code = f"{blocked}; import analytics; print(analytics.OTelSink.__name__)"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert (result.returncode, result.stdout.strip()) == (0, "OTelSink"), result.stderr

    def test_without_the_sdk_it_says_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "opentelemetry.sdk._logs", None)
        with pytest.raises(MissingDependencyError, match=r"\[otel\]"):
            OTelSink()
