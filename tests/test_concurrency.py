"""Any interleaving of writes, batches, flushes and rotations loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from analytics import JSONLWriter, MetricEntry

from .helpers import entry, read_all

ops = st.one_of(
    st.tuples(st.just("write"), st.integers(min_value=1, max_value=6)),
    st.tuples(st.just("batch"), st.integers(min_value=0, max_value=12)),
    st.tuples(st.just("flush"), st.just(0)),
    st.tuples(st.just("yield"), st.integers(min_value=0, max_value=3)),
)
schedules = st.lists(st.lists(ops, max_size=12), min_size=1, max_size=5)


async def _run_schedule(
    base: Path, schedule: list[list[tuple[str, int]]], writer: JSONLWriter
) -> list[MetricEntry]:
    written: list[MetricEntry] = []

    async def task(name: str, steps: list[tuple[str, int]]) -> None:
        seq = 0
        for op, n in steps:
            if op == "write":
                for _ in range(n):
                    e = entry(seq, task=name, size=seq % 40)
                    seq += 1
                    written.append(e)
                    await writer.write(e)
            elif op == "batch":
                batch = [entry(seq + i, task=name) for i in range(n)]
                seq += n
                written.extend(batch)
                await writer.write_batch(batch)
            elif op == "flush":
                await writer.flush()
            else:
                for _ in range(n):
                    await asyncio.sleep(0)

    async with writer:
        await asyncio.gather(*(task(f"t{i}", steps) for i, steps in enumerate(schedule)))
    return written


@given(
    schedule=schedules,
    max_file_size=st.integers(min_value=150, max_value=3000),
    buffer_size=st.integers(min_value=1, max_value=8),
    compress_old=st.booleans(),
)
def test_no_entry_is_lost_or_duplicated_and_each_task_keeps_its_order(
    schedule: list[list[tuple[str, int]]],
    max_file_size: int,
    buffer_size: int,
    compress_old: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        writer = JSONLWriter(
            base,
            max_file_size=max_file_size,
            buffer_size=buffer_size,
            compress_old=compress_old,
            max_files=100_000,
            flush_interval=0.01,
        )
        written = asyncio.run(_run_schedule(base, schedule, writer))
        found = read_all(writer.metrics_dir)

        assert sorted(e.id for e in found) == sorted(e.id for e in written)
        assert {e.id: e for e in found} == {e.id: e for e in written}
        per_task: dict[str, list[int]] = defaultdict(list)
        for e in found:
            per_task[str(e.data["task"])].append(int(str(e.data["seq"])))
        for seqs in per_task.values():
            assert seqs == sorted(seqs)
        for path in writer.metrics_dir.iterdir():
            if path.name.endswith(".jsonl"):
                assert path.stat().st_size <= max_file_size or path.read_bytes().count(b"\n") == 1
