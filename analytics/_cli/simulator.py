"""The demo's simulated service: concurrent sessions calling tools, failing now and
then, and spending tokens, all recorded through a ``MetricsWriter``."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from .._write.facade import MetricsWriter
from .._write.writer import JSONLWriter

TOOLS = ("read_file", "grep", "edit", "bash", "web_search", "list_dir")
MODELS = ("small-model", "large-model")
SEED = 2026
"""The same run of choices every time: demo output differs only by timing."""


class ToolTimeout(Exception):
    """The demo's simulated tool failure."""


async def session(metrics: MetricsWriter, number: int, until: float, rng: random.Random) -> None:
    """One user's session: tool calls (2% fail) and model calls until ``until``."""
    session_id = f"demo-session-{number:04d}"
    user_id = f"user-{number % 7}"
    started = time.monotonic()
    await metrics.track_session_start(session_id, user_id=user_id, model=rng.choice(MODELS))
    tokens = 0
    while time.monotonic() < until:
        tool = rng.choice(TOOLS)
        fails = rng.random() < 0.02
        try:
            # A tool that fails is recorded as a failure (success false, error_type),
            # and its error once more as an error_occurred entry.
            async with metrics.time_tool(session_id, tool, argument="x" * rng.randint(10, 120)):
                await asyncio.sleep(rng.uniform(0.0, 0.004))
                if fails:
                    raise ToolTimeout(f"{tool} took too long")
        except ToolTimeout as exc:
            await metrics.track_error(session_id, "ToolTimeout", str(exc), tool_name=tool)
        if rng.random() < 0.2:
            used_in, used_out = rng.randint(200, 4000), rng.randint(50, 800)
            tokens += used_in + used_out
            await metrics.track_token_usage(session_id, rng.choice(MODELS), used_in, used_out)
    await metrics.track_session_end(
        session_id,
        user_id=user_id,
        duration_seconds=round(time.monotonic() - started, 3),
        token_count=tokens,
    )


async def simulate(
    directory: Path, seconds: float, sessions: int, max_file_size: int
) -> JSONLWriter:
    """Run ``sessions`` concurrent sessions for ``seconds``; return the closed writer."""
    rng = random.Random(SEED)
    until = time.monotonic() + seconds
    async with JSONLWriter(
        directory, max_file_size=max_file_size, max_files=1_000_000, flush_interval=0.25
    ) as writer:
        metrics = MetricsWriter(writer)
        await asyncio.gather(*(session(metrics, n, until, rng) for n in range(sessions)))
    return writer
