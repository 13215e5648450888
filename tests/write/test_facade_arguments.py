"""The track_* methods' typed arguments: good ones accepted, wrong types refused naming
the parameter, never coerced."""

from __future__ import annotations

from typing import Any

import pytest

from analytics import (
    MetricEntry,
)

from ..helpers import GOOD_TRACK_ARGUMENTS, call_track

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
    @pytest.mark.parametrize("method", sorted(GOOD_TRACK_ARGUMENTS))
    async def test_good_arguments_are_accepted(self, method: str) -> None:
        e = await call_track(method, **GOOD_TRACK_ARGUMENTS[method])
        assert isinstance(e, MetricEntry)

    @pytest.mark.parametrize(("method", "name", "value"), BAD)
    async def test_a_wrong_type_is_refused_naming_the_parameter(
        self, method: str, name: str, value: Any
    ) -> None:
        kwargs = {**GOOD_TRACK_ARGUMENTS[method], name: value}
        if value is None and name == "success":
            kwargs[name] = None
        with pytest.raises(TypeError, match=rf"^{name} must be .*, not {type(value).__name__}"):
            await call_track(method, **kwargs)
