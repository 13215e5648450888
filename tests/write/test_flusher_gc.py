"""What waits for a flush is invisible to the cyclic garbage collector: serialized
lines (bytes), not live models or dicts. So thousands of pending entries add nothing
for a collection to traverse, and never push the collector into a full (generation
2) collection on the event loop, however long a flush takes to come."""

from __future__ import annotations

import gc
from pathlib import Path

from analytics import JSONLWriter, MetricsWriter
from analytics.testing import MemorySink


async def test_pending_entries_add_no_tracked_objects(tmp_path: Path) -> None:
    async with JSONLWriter(
        tmp_path, buffer_size=100_000, max_pending=100_000, flush_interval=3600
    ) as writer:
        metrics = MetricsWriter(writer)
        await metrics.track_tool_use("s", "warm-up", True, 1.0)
        gc.collect()
        before = len(gc.get_objects())
        for i in range(5000):
            await metrics.track_tool_use(
                "s", "grep", True, 1.0, argument={"pattern": f"p{i}", "flags": [1, 2]}
            )
        gc.collect()
        after = len(gc.get_objects())
        assert writer.pending == 5001  # nothing was flushed: all of them wait
        # A live model and its dicts would be several tracked objects per entry.
        assert after - before < 100, f"{after - before} tracked objects for 5000 entries"
    assert writer.stats().entries_written == 5001


async def test_the_count_sees_kept_objects(tmp_path: Path) -> None:
    """The measure can fail: the same entries kept alive as models are seen."""
    memory = MemorySink()  # keeps every entry, as the writer must not
    async with JSONLWriter(tmp_path, buffer_size=100_000, max_pending=100_000) as writer:
        metrics = MetricsWriter(writer, memory)
        await metrics.track_tool_use("s", "warm-up", True, 1.0)
        gc.collect()
        before = len(gc.get_objects())
        for i in range(5000):
            await metrics.track_tool_use("s", "grep", True, 1.0, argument={"p": i})
        gc.collect()
        assert len(gc.get_objects()) - before >= 5000
    assert len(memory.entries) == 5001
