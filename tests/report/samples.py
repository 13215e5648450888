"""Summaries the report tests render: every kind over several days, and one kind alone."""

from __future__ import annotations

import random
from typing import Any

from analytics import MetricType, Summary
from analytics._read.summary import summarize_entries

from ..helpers import foreign_at

_TOOLS = ("read_file", "edit", "bash", "grep", "web_search_with_a_rather_long_name")
_MODELS = ("small-model", "large-model")


def _every_kind(rng: random.Random, seconds: float) -> list[tuple[MetricType, dict[str, Any]]]:
    tool = rng.choice(_TOOLS)
    slow = 80.0 if tool == "web_search_with_a_rather_long_name" else 1.0
    return [
        (
            MetricType.TOOL_USE,
            {
                "tool_name": tool,
                "success": rng.random() > 0.05,
                "duration_ms": rng.lognormvariate(0, 1) * slow,
            },
        ),
        (
            MetricType.PERFORMANCE,
            {"operation": rng.choice(("GET /items", "POST /items")), "duration_ms": rng.random()},
        ),
        (
            MetricType.TOKEN_USAGE,
            {
                "model": rng.choice(_MODELS),
                "input_tokens": rng.randrange(100, 4000),
                "output_tokens": rng.randrange(10, 900),
            },
        ),
        (MetricType.ERROR_OCCURRED, {"error_type": rng.choice(("Timeout", "ValueError"))}),
        (MetricType.AGENT_EXECUTION, {"agent_name": "planner", "duration_ms": 40.0 + seconds % 7}),
        (MetricType.COMMAND_EXECUTED, {"command": "pytest -q", "exit_code": int(seconds) % 2}),
        (MetricType.HOOK_TRIGGERED, {"hook_name": "pre-commit", "duration_ms": 3.0}),
        (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c", "files_changed": 3}),
    ]


def every_kind_over(days: float, count: int = 400) -> Summary:
    """Entries of every kind spread over ``days`` (day buckets beyond three days)."""
    rng = random.Random(7)
    entries = []
    for i in range(count):
        seconds = days * 86400 * i / count
        sid = f"s{i % 9}"
        for kind, data in _every_kind(rng, seconds):
            if kind is MetricType.TOOL_USE or rng.random() < 0.3:
                entries.append(foreign_at(seconds, kind, data, sid))
    return summarize_entries(entries)


def only(kind: MetricType, data: dict[str, Any], count: int = 20) -> Summary:
    """``count`` entries of one kind, a minute apart."""
    return summarize_entries([foreign_at(60.0 * i, kind, data) for i in range(count)])
