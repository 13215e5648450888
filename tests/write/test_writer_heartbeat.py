"""The event loop keeps ticking while files of a few MiB rotate and compress."""

from __future__ import annotations

import asyncio
import os
import time
import zlib
from pathlib import Path

from analytics import JSONLWriter, MetricEntry, MetricType

from ..helpers import Heartbeat, read_all

FILE_SIZE = 3 * 1024 * 1024


def _payloads(count: int) -> list[str]:
    # Random hex compresses slowly enough that one gzip of a file takes a while.
    return [os.urandom(300).hex() for _ in range(count)]


def _gzip_seconds(data: bytes) -> float:
    started = time.perf_counter()
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    deflate.compress(data)
    deflate.flush()
    return time.perf_counter() - started


async def test_loop_is_never_stalled_by_rotation_or_gzip(tmp_path: Path) -> None:
    payloads = _payloads(500)
    entries = [
        MetricEntry(type=MetricType.TOOL_USE, data={"seq": i, "arg": payloads[i % 500]})
        for i in range(15_000)  # about 10 MiB: three rotations and compressions
    ]
    sample = b"".join(e.to_json_line() for e in entries[:5000])[:FILE_SIZE]
    one_gzip = min(_gzip_seconds(sample) for _ in range(2))

    heartbeat = Heartbeat(interval=0.001)
    heartbeat.start()
    async with JSONLWriter(
        tmp_path, max_file_size=FILE_SIZE, max_files=100, buffer_size=200
    ) as writer:
        for i in range(0, len(entries), 50):
            await writer.write_batch(entries[i : i + 50])
            await asyncio.sleep(0)
    await heartbeat.stop()

    assert writer.stats().compressions >= 3
    assert len(read_all(writer.metrics_dir)) == len(entries)
    assert len(heartbeat.lateness) > 100
    # Generous bound for a noisy 2-core machine; a gzip on the loop would blow it.
    assert heartbeat.worst < 0.25, f"loop stalled {heartbeat.worst * 1000:.1f} ms"
    assert heartbeat.worst < one_gzip, (
        f"loop stalled {heartbeat.worst * 1000:.1f} ms, as long as a whole gzip"
        f" ({one_gzip * 1000:.1f} ms)"
    )
