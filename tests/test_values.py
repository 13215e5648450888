"""Values are written exactly or refused; typed track_* arguments are never coerced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics import JSONLWriter, MetricEntry, MetricsWriter, MetricType, SerializationError

from .helpers import entry, read_all


class _Sink:
    def __init__(self) -> None:
        self.entries: list[MetricEntry] = []

    async def write(self, e: MetricEntry) -> None:
        self.entries.append(e)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class TestSerializationNeverCoerces:
    @pytest.mark.parametrize(
        "bad", [{1, 2}, (1, 2), float("nan"), float("inf"), -float("inf"), b"x", object()]
    )
    def test_a_value_put_in_after_validation_is_refused(self, bad: Any) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": 1})
        e.data["late"] = bad
        with pytest.raises(SerializationError, match=r"data\.late"):
            e.to_json_line()

    def test_a_nested_value_put_in_after_validation_is_refused(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, metadata={"a": [1, {"b": 2}]})
        e.metadata["a"][1]["b"] = {3}  # type: ignore[index,assignment,call-overload]
        with pytest.raises(SerializationError, match=r"metadata\.a\[1\]\.b is a set"):
            e.to_json_line()

    def test_a_non_string_key_put_in_after_validation_is_refused(self) -> None:
        e = MetricEntry(type=MetricType.TOOL_USE, data={"a": {"b": 1}})
        e.data["a"][2] = 3  # type: ignore[index]
        with pytest.raises(SerializationError, match="int key"):
            e.to_json_line()

    def test_valid_nested_values_are_written_unchanged(self) -> None:
        data: dict[str, Any] = {"a": [1, 2.5, None, True, "x", {"b": []}]}
        e = MetricEntry(type=MetricType.TOOL_USE, data=data)
        assert json.loads(e.to_json_line())["data"] == data

    async def test_write_batch_refuses_only_the_bad_entries(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            bad = entry(1)
            bad.data["oops"] = {1}  # type: ignore[assignment]
            nan = entry(3)
            nan.data["x"] = float("nan")
            with pytest.raises(SerializationError) as info:
                await writer.write_batch([entry(0), bad, entry(2), nan, entry(4)])
            message = str(info.value)
            assert "#1" in message
            assert bad.id in message
            assert "#3" in message
            assert nan.id in message
            assert "#0" not in message
            assert isinstance(info.value.__cause__, SerializationError)
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 2, 4]


def _call(method: str, **kwargs: Any) -> Any:
    metrics = MetricsWriter(_Sink())
    return getattr(metrics, method)(**kwargs)


GOOD: dict[str, dict[str, Any]] = {
    "track_tool_use": {"session_id": "s", "tool_name": "t", "success": True, "duration_ms": 1},
    "track_agent_execution": {
        "session_id": "s",
        "agent_name": "a",
        "success": False,
        "duration_ms": 2.5,
        "task": "x",
    },
    "track_performance": {"operation": "op", "duration_ms": 3, "success": True},
    "track_hook_triggered": {
        "session_id": "s",
        "hook_name": "h",
        "event": "e",
        "success": True,
        "duration_ms": 1.0,
    },
    "track_command_executed": {
        "session_id": "s",
        "command": "ls",
        "exit_code": 0,
        "duration_ms": 1.0,
        "success": True,
    },
    "track_token_usage": {
        "session_id": "s",
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_read_tokens": 3,
        "cache_write_tokens": 4,
        "cost_usd": 1,
    },
    "track_checkpoint_created": {
        "session_id": "s",
        "checkpoint_id": "c",
        "description": "d",
        "files_changed": 2,
    },
    "track_error": {
        "session_id": "s",
        "error_type": "E",
        "error_message": "m",
        "stack_trace": "st",
    },
    "track_session_start": {"session_id": "s", "project_path": "/p", "model": "m"},
    "track_session_end": {"session_id": "s", "duration_seconds": 1, "token_count": 5},
}

BAD: list[tuple[str, str, Any]] = [
    (m, "success", v)
    for m in ("track_tool_use", "track_agent_execution", "track_performance")
    for v in ("yes", "false", 0, 1, None)
] + [
    ("track_hook_triggered", "success", "yes"),
    ("track_command_executed", "success", 0),
    ("track_tool_use", "duration_ms", "12.5"),
    ("track_tool_use", "duration_ms", True),
    ("track_tool_use", "tool_name", 123),
    ("track_agent_execution", "agent_name", 1),
    ("track_agent_execution", "duration_ms", "1"),
    ("track_agent_execution", "task", 3),
    ("track_performance", "duration_ms", "1"),
    ("track_performance", "operation", 1),
    ("track_hook_triggered", "hook_name", 1),
    ("track_hook_triggered", "event", 1),
    ("track_hook_triggered", "duration_ms", "1"),
    ("track_command_executed", "command", 1),
    ("track_command_executed", "exit_code", "0"),
    ("track_command_executed", "exit_code", True),
    ("track_command_executed", "exit_code", 1.0),
    ("track_command_executed", "duration_ms", "1"),
    ("track_token_usage", "input_tokens", "100"),
    ("track_token_usage", "output_tokens", True),
    ("track_token_usage", "cache_read_tokens", 1.5),
    ("track_token_usage", "cache_write_tokens", "1"),
    ("track_token_usage", "cost_usd", "0.1"),
    ("track_token_usage", "model", 1),
    ("track_checkpoint_created", "checkpoint_id", 1),
    ("track_checkpoint_created", "description", 1),
    ("track_checkpoint_created", "files_changed", "2"),
    ("track_error", "error_type", 1),
    ("track_error", "error_message", 1),
    ("track_error", "stack_trace", 1),
    ("track_session_start", "project_path", 1),
    ("track_session_start", "model", 1),
    ("track_session_end", "duration_seconds", "1"),
    ("track_session_end", "token_count", 1.0),
]


class TestTypedArguments:
    @pytest.mark.parametrize("method", sorted(GOOD))
    async def test_good_arguments_are_accepted(self, method: str) -> None:
        e = await _call(method, **GOOD[method])
        assert isinstance(e, MetricEntry)

    @pytest.mark.parametrize(("method", "name", "value"), BAD)
    async def test_a_wrong_type_is_refused_naming_the_parameter(
        self, method: str, name: str, value: Any
    ) -> None:
        kwargs = {**GOOD[method], name: value}
        if value is None and name == "success":
            kwargs[name] = None
        with pytest.raises(TypeError, match=rf"^{name} must be .*, not {type(value).__name__}"):
            await _call(method, **kwargs)
