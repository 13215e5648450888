"""Any interleaving of writes, batches, flushes and rotations loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import JSONLWriter, MetricEntry, WriterClosedError

from ..helpers import entry, read_all

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


def open_files_under(directory: Path) -> list[str]:
    """What this process holds open in ``directory``, as the kernel sees it."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(f"{directory}/"):
            held.append(target)
    return held


def analytics_tasks() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("analytics-") and not t.done()
    ]


class TestConcurrentLifecycle:
    async def test_concurrent_initialize_opens_one_file_and_one_flusher(
        self, tmp_path: Path
    ) -> None:
        writer = JSONLWriter(tmp_path)
        await asyncio.gather(*(writer.initialize() for _ in range(10)))
        assert len(list(writer.metrics_dir.iterdir())) == 1
        flushers = [t for t in analytics_tasks() if t.get_name() == "analytics-flusher"]
        assert len(flushers) == 1
        await writer.write(entry(0))
        await writer.close()
        assert analytics_tasks() == []
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0]

    async def test_close_racing_an_initialize_in_progress_stops_everything(
        self, tmp_path: Path
    ) -> None:
        writer = JSONLWriter(tmp_path)
        opening = asyncio.create_task(writer.initialize())
        await asyncio.sleep(0)  # the opening has started its thread hop
        await writer.close()
        await opening  # it finished opening; the writer is closed all the same
        assert writer.closed
        assert analytics_tasks() == []
        assert open_files_under(writer.metrics_dir) == []  # the file it opened is released
        with pytest.raises(WriterClosedError):
            await writer.write(entry(0))
        with pytest.raises(WriterClosedError):
            await writer.initialize()

    async def test_a_cancelled_initialize_keeps_opening_and_a_later_one_waits(
        self, tmp_path: Path
    ) -> None:
        writer = JSONLWriter(tmp_path)
        first = asyncio.create_task(writer.initialize())
        await asyncio.sleep(0)
        first.cancel()
        await writer.initialize()
        assert len(list(writer.metrics_dir.iterdir())) == 1
        await writer.write(entry(0))
        await writer.close()
        assert analytics_tasks() == []

    async def test_a_failed_initialize_may_be_tried_again(self, tmp_path: Path) -> None:
        (tmp_path / "metrics").write_text("a file where the directory should be")
        writer = JSONLWriter(tmp_path)
        results = await asyncio.gather(
            writer.initialize(), writer.initialize(), return_exceptions=True
        )
        assert all(isinstance(r, OSError) for r in results)
        assert analytics_tasks() == []
        (tmp_path / "metrics").unlink()
        await writer.initialize()
        await writer.close()
        assert analytics_tasks() == []
