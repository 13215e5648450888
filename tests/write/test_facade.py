"""MetricsWriter: track_* methods, the generic track(), and the timing helpers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from analytics import ArgumentTypeError, JSONLWriter, MetricsWriter, MetricType
from analytics.testing import MemorySink

from ..helpers import read_all


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def metrics(sink: MemorySink) -> MetricsWriter:
    return MetricsWriter(sink)


class TestTrackMethods:
    async def test_session_start(self, metrics: MetricsWriter, sink: MemorySink) -> None:
        e = await metrics.track_session_start(
            "s1", user_id="u1", project_path="/p", model="m", branch="main"
        )
        assert sink.entries == [e]
        assert e.type is MetricType.SESSION_START
        assert (e.session_id, e.user_id) == ("s1", "u1")
        assert e.data == {"project_path": "/p", "model": "m", "branch": "main"}

    async def test_session_end(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_session_end("s1", duration_seconds=12.5, token_count=300)
        assert e.type is MetricType.SESSION_END
        assert e.data == {"duration_seconds": 12.5, "token_count": 300}

    async def test_tool_use(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_tool_use(
            session_id="s1", tool_name="grep", success=True, duration_ms=12.5, pattern="x"
        )
        assert e.type is MetricType.TOOL_USE
        assert e.data == {"tool_name": "grep", "success": True, "duration_ms": 12.5, "pattern": "x"}

    async def test_error(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_error("s1", "ValueError", "bad", stack_trace="tb")
        assert e.type is MetricType.ERROR_OCCURRED
        assert e.data == {"error_type": "ValueError", "error_message": "bad", "stack_trace": "tb"}

    async def test_performance(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_performance("s1", "db.query", True, 3.5, rows=3)
        assert e.type is MetricType.PERFORMANCE
        assert e.session_id == "s1"
        assert e.data == {"operation": "db.query", "duration_ms": 3.5, "success": True, "rows": 3}

    async def test_agent_execution(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_agent_execution("s1", "planner", True, 40.0, task="plan")
        assert e.type is MetricType.AGENT_EXECUTION
        assert e.data == {
            "agent_name": "planner",
            "success": True,
            "duration_ms": 40.0,
            "task": "plan",
        }

    async def test_checkpoint_created(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_checkpoint_created("s1", "cp-1", "before edit", files_changed=2)
        assert e.type is MetricType.CHECKPOINT_CREATED
        assert e.data == {"checkpoint_id": "cp-1", "description": "before edit", "files_changed": 2}

    async def test_hook_triggered(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_hook_triggered("s1", "pre-commit", event="commit", success=False)
        assert e.type is MetricType.HOOK_TRIGGERED
        assert e.data == {"hook_name": "pre-commit", "event": "commit", "success": False}

    async def test_command_executed_derives_success_from_the_exit_code(
        self, metrics: MetricsWriter
    ) -> None:
        ok = await metrics.track_command_executed("s1", "make test", exit_code=0)
        bad = await metrics.track_command_executed("s1", "make test", exit_code=2)
        assert ok.type is MetricType.COMMAND_EXECUTED
        assert ok.data["success"] is True
        assert bad.data["success"] is False
        assert bad.data["exit_code"] == 2

    async def test_token_usage(self, metrics: MetricsWriter) -> None:
        e = await metrics.track_token_usage("s1", "large-model", 1000, 200, cost_usd=0.01)
        assert e.type is MetricType.TOKEN_USAGE
        assert e.data == {
            "model": "large-model",
            "input_tokens": 1000,
            "output_tokens": 200,
            "total_tokens": 1200,
            "cost_usd": 0.01,
        }

    async def test_every_type_has_a_track_method(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        calls: dict[MetricType, Any] = {
            MetricType.SESSION_START: metrics.track_session_start("s"),
            MetricType.SESSION_END: metrics.track_session_end("s"),
            MetricType.TOOL_USE: metrics.track_tool_use("s", "t", True),
            MetricType.AGENT_EXECUTION: metrics.track_agent_execution("s", "a", True),
            MetricType.CHECKPOINT_CREATED: metrics.track_checkpoint_created("s", "c"),
            MetricType.HOOK_TRIGGERED: metrics.track_hook_triggered("s", "h"),
            MetricType.COMMAND_EXECUTED: metrics.track_command_executed("s", "ls"),
            MetricType.ERROR_OCCURRED: metrics.track_error("s", "E", "m"),
            MetricType.TOKEN_USAGE: metrics.track_token_usage("s", "m", 1, 1),
            MetricType.PERFORMANCE: metrics.track_performance("s", "op", True, 1.0),
        }
        returned = [await call for call in calls.values()]
        assert [e.type for e in returned] == list(calls)
        # Each method writes what it returns, once: nothing only built, nothing doubled.
        assert sink.entries == returned

    async def test_bad_extra_value_raises_naming_it_and_writes_nothing(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        with pytest.raises(ValidationError) as info:
            await metrics.track_tool_use("s1", "grep", True, payload={1, 2})
        assert info.value.errors()[0]["loc"][:2] == ("data", "payload")
        assert sink.entries == []


class TestGenericTrack:
    async def test_track_any_type_with_data_and_metadata(self, metrics: MetricsWriter) -> None:
        e = await metrics.track(
            "performance", {"x": 1}, session_id="s", user_id="u", metadata={"host": "a"}
        )
        assert e.type is MetricType.PERFORMANCE
        assert (e.data, e.metadata, e.session_id, e.user_id) == ({"x": 1}, {"host": "a"}, "s", "u")

    async def test_defaults_from_the_constructor_apply(self, sink: MemorySink) -> None:
        metrics = MetricsWriter(sink, user_id="u0", metadata={"service": "api"})
        e = await metrics.track(MetricType.TOOL_USE, metadata={"extra": True})
        assert e.user_id == "u0"
        assert e.metadata == {"service": "api", "extra": True}


class TestTiming:
    async def test_time_tool_records_duration_and_success(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        async with metrics.time_tool("s1", "grep", pattern="x") as timing:
            await asyncio.sleep(0.02)
            timing.data["matches"] = 3
        (e,) = sink.entries
        assert timing.entry is e
        assert e.type is MetricType.TOOL_USE
        assert e.data["success"] is True
        assert e.data["tool_name"] == "grep"
        assert e.data["pattern"] == "x"
        assert e.data["matches"] == 3
        assert isinstance(e.data["duration_ms"], float)
        assert e.data["duration_ms"] >= 15

    async def test_time_tool_records_failure_and_reraises(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        with pytest.raises(KeyError):
            async with metrics.time_tool("s1", "lookup"):
                raise KeyError("missing")
        (e,) = sink.entries
        assert e.data["success"] is False
        assert e.data["error_type"] == "KeyError"

    async def test_time_operation_records_a_performance_entry(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        async with metrics.time_operation("s2", "render", page="home"):
            pass
        with pytest.raises(RuntimeError):
            async with metrics.time_operation(None, "render"):
                raise RuntimeError("boom")
        ok, failed = sink.entries
        assert ok.type is MetricType.PERFORMANCE
        assert ok.session_id == "s2"
        assert ok.data["operation"] == "render"
        assert ok.data["success"] is True
        assert ok.data["page"] == "home"
        assert failed.data["success"] is False
        assert failed.data["error_type"] == "RuntimeError"


class TestArgumentOrder:
    """0.x changed three signatures to the one order (session_id, subject, details,
    success, duration_ms): a call written for the old order fails at the call, and
    writes nothing, rather than meaning something else."""

    @pytest.mark.parametrize(
        "old_call",
        [
            ("s1", "make", 0, 12.5, True),  # exit_code, duration_ms, success
            ("s1", "make", 0, 12.5),
            ("s1", "make", 1, 0),  # an int duration of 0 is not a bool
            ("s1", "make", 0, None, True),  # a bool is not a duration
        ],
    )
    async def test_command_executed_rejects_the_old_order(
        self, metrics: MetricsWriter, sink: MemorySink, old_call: tuple[Any, ...]
    ) -> None:
        with pytest.raises(ArgumentTypeError, match=r"success|duration_ms"):
            await metrics.track_command_executed(*old_call)
        assert sink.entries == []

    async def test_command_executed_takes_success_then_duration(
        self, metrics: MetricsWriter
    ) -> None:
        e = await metrics.track_command_executed("s1", "make", 2, False, 12.5)
        assert e.data == {"command": "make", "exit_code": 2, "duration_ms": 12.5, "success": False}

    @pytest.mark.parametrize(
        ("old_call", "error", "match"),
        [
            # operation, duration_ms, success: one argument short now
            (("db.query", 3.5, True), TypeError, r"missing .* 'duration_ms'"),
            # ... session_id: a number where the operation belongs
            (("db.query", 3, True, "s1"), ArgumentTypeError, "operation must be a str"),
        ],
    )
    async def test_performance_rejects_the_old_order(
        self,
        metrics: MetricsWriter,
        sink: MemorySink,
        old_call: tuple[Any, ...],
        error: type[Exception],
        match: str,
    ) -> None:
        with pytest.raises(error, match=match):
            await metrics.track_performance(*old_call)
        assert sink.entries == []

    async def test_performance_rejects_the_old_keywords_without_a_session(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        with pytest.raises(TypeError, match="session_id"):
            await metrics.track_performance(  # type: ignore[call-arg]
                operation="db.query", duration_ms=3.5, success=True
            )
        assert sink.entries == []

    async def test_time_operation_rejects_the_old_order(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        with pytest.raises(TypeError, match="operation"):
            metrics.time_operation("render")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="session_id"):
            metrics.time_operation("render", session_id="s2")  # type: ignore[call-arg,misc]
        assert sink.entries == []

    async def test_time_operation_takes_the_session_first(
        self, metrics: MetricsWriter, sink: MemorySink
    ) -> None:
        async with metrics.time_operation("s2", "render"):
            pass
        (e,) = sink.entries
        assert (e.session_id, e.data["operation"]) == ("s2", "render")


async def test_through_a_real_writer_each_method_returns_what_was_written(tmp_path: Path) -> None:
    async with JSONLWriter(tmp_path) as writer:
        metrics = MetricsWriter(writer)
        returned = [
            await metrics.track_tool_use(
                session_id="s1", tool_name="grep", success=True, duration_ms=12.5
            ),
            await metrics.track_session_start("s1"),
        ]
    assert read_all(writer.metrics_dir) == returned
