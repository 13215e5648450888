"""What the event loop was waiting behind when it woke up late.

    python benchmarks/lateness.py            # 100,000 events, as benchmarks/run.py
    python benchmarks/lateness.py --n 50000

Runs the `analytics` contender of ``benchmarks/run.py`` (4 producers yielding every 4
events, 1 MiB rotation, gzip) with the 1 ms lateness probe, records when each flush,
each gzip (with the retention after it) and each garbage collection ran, and counts,
for every wake-up later than ``--threshold`` ms, which of them overlapped it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import ARGUMENT, PRODUCERS, TOOLS, YIELD_EVERY, Lateness, percentile

from analytics import JSONLWriter, MetricsWriter
from analytics._write.storage import Storage

Span = tuple[float, float, str]


def record(spans: list[Span], method: str, label: str) -> None:
    """Wrap ``Storage.<method>`` to note when it ran (it runs in worker threads)."""
    original: Callable[..., Any] = getattr(Storage, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append((started, time.perf_counter(), label))

    setattr(Storage, method, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threshold", type=float, default=2.0, help="ms")
    args = parser.parse_args()

    spans: list[Span] = []
    record(spans, "write", "flush")
    record(spans, "compress_and_retain", "gzip")
    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        else:
            spans.append((gc_started, time.perf_counter(), f"gc{info['generation']}"))

    gc.callbacks.append(on_gc)
    directory = Path(tempfile.mkdtemp(prefix="bench-lateness-"))
    try:
        marks, started, ended = asyncio.run(produce(args.n, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    during = [(at, late) for at, late in marks if started <= at <= ended]
    lateness = [late for _, late in during]
    print(
        f"{len(lateness)} wake-ups: p50 {percentile(lateness, 0.5) * 1000:.2f} ms,"
        f" p99 {percentile(lateness, 0.99) * 1000:.2f} ms, max {max(lateness) * 1000:.2f} ms"
    )
    threshold = args.threshold / 1000
    overlaps: Counter[str] = Counter()
    late_ones = 0
    for at, late in during:
        if late < threshold:
            continue
        late_ones += 1
        slept_from = at - late - 0.001
        labels = {label for start, end, label in spans if start < at and end > slept_from}
        overlaps.update(labels or {"nothing of ours"})
    print(f"{late_ones} later than {args.threshold:g} ms; what ran meanwhile (each counted):")
    for label, count in overlaps.most_common():
        print(f"  {label:<16} {count}")
    return 0


async def produce(n: int, directory: Path) -> tuple[list[tuple[float, float]], float, float]:
    writer = JSONLWriter(directory, max_file_size=1024 * 1024, max_files=1_000_000)
    await writer.initialize()
    metrics = MetricsWriter(writer)
    probe = Lateness()
    probe.start()
    await asyncio.sleep(0.01)

    async def producer(k: int) -> None:
        for count, i in enumerate(range(k, n, PRODUCERS)):
            await metrics.track_tool_use(
                session_id=f"session-{i % PRODUCERS}",
                tool_name=TOOLS[i % 4],
                success=i % 17 != 0,
                duration_ms=(i % 1000) * 0.731,
                argument=ARGUMENT,
            )
            if count % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(producer(k) for k in range(PRODUCERS)))
    ended = time.perf_counter()
    await writer.close()
    await probe.stop()
    return probe.marks, started, ended


if __name__ == "__main__":
    sys.exit(main())
