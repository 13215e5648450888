"""The writer's durability: cancellation, several processes, loop ownership, shutdown,
a full disk, and the fsync policy."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import (
    JSONLWriter,
    MetricEntry,
    WriteError,
    WriterStateError,
    _fileops,
)

from ..helpers import entry, read_all, small_tmpfs

ops = st.lists(st.sampled_from(["write", "batch", "flush", "yield"]), min_size=1, max_size=15)


@given(
    plans=st.lists(st.tuples(ops, st.integers(min_value=0, max_value=40)), min_size=1, max_size=5),
    cancel_close_after=st.none() | st.integers(min_value=0, max_value=10),
    buffer_size=st.integers(min_value=1, max_value=6),
    max_file_size=st.integers(min_value=300, max_value=3000),
)
def test_cancellation_anywhere_loses_doubles_and_tears_nothing(
    plans: list[tuple[list[str], int]],
    cancel_close_after: int | None,
    buffer_size: int,
    max_file_size: int,
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        accepted: set[str] = set()
        attempted: dict[str, tuple[str, int]] = {}

        async def producer(name: str, steps: list[str]) -> None:
            seq = 0
            for step in steps:
                if step == "write":
                    e = entry(seq, task=name)
                    attempted[e.id] = (name, seq)
                    seq += 1
                    await writer.write(e)
                    accepted.add(e.id)
                elif step == "batch":
                    batch = [entry(seq + k, task=name) for k in range(3)]
                    attempted.update({e.id: (name, seq + k) for k, e in enumerate(batch)})
                    seq += 3
                    await writer.write_batch(batch)
                    accepted.update(e.id for e in batch)
                elif step == "flush":
                    await writer.flush()
                else:
                    await asyncio.sleep(0)

        async def cancel_later(task: asyncio.Future[Any], after: int) -> None:
            for _ in range(after):
                await asyncio.sleep(0)
            task.cancel()

        async def scenario() -> None:
            await writer.initialize()
            tasks = [
                asyncio.ensure_future(producer(f"t{i}", steps))
                for i, (steps, _) in enumerate(plans)
            ]
            cancellers = [
                asyncio.ensure_future(cancel_later(t, after))
                for t, (_, after) in zip(tasks, plans, strict=True)
            ]
            await asyncio.gather(*tasks, *cancellers, return_exceptions=True)
            # Not wedged: it still takes entries and flushes.
            after = entry(0, task="after")
            await asyncio.wait_for(writer.write(after), 10)
            accepted.add(after.id)
            attempted[after.id] = ("after", 0)
            await asyncio.wait_for(writer.flush(), 10)
            if cancel_close_after is not None:
                closing = asyncio.ensure_future(writer.close())
                await cancel_later(closing, cancel_close_after)
                with contextlib.suppress(asyncio.CancelledError):
                    await closing
            await asyncio.wait_for(writer.close(), 10)
            assert writer.closed

        writer = JSONLWriter(
            base,
            buffer_size=buffer_size,
            max_file_size=max_file_size,
            max_files=10**6,
            flush_interval=0.005,
        )
        asyncio.run(scenario())
        found = read_all(writer.metrics_dir)  # strict: no torn line anywhere
        counts = Counter(e.id for e in found)
        assert all(n == 1 for n in counts.values()), "an entry was written twice"
        assert set(counts) <= set(attempted)
        assert accepted <= set(counts), "an accepted entry was lost"
        order: dict[str, list[int]] = defaultdict(list)
        for e in found:
            name, seq = attempted[e.id]
            order[name].append(seq)
        assert all(seqs == sorted(seqs) for seqs in order.values())


class TestCancelledClose:
    async def test_a_cancelled_close_keeps_closing_and_close_again_waits(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = _fileops.compress_to

        def slow(*args: object, **kwargs: bool) -> None:
            import time

            time.sleep(0.2)
            real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(_fileops, "compress_to", slow)
        writer = JSONLWriter(tmp_path, max_file_size=600, buffer_size=1000)
        await writer.initialize()
        written = [entry(i, size=100) for i in range(8)]
        await writer.write_batch(written)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(writer.close(), 0.05)
        assert not writer.closed
        await writer.close()
        assert writer.closed
        assert not list(writer.metrics_dir.glob("*.tmp"))
        assert [e.id for e in read_all(writer.metrics_dir)] == [e.id for e in written]


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from analytics import JSONLWriter, MetricEntry, MetricType

    async def main(base, proc, count, max_files):
        async with JSONLWriter(base, max_file_size=32_000, max_files=max_files,
                               buffer_size=50) as writer:
            for start in range(0, count, 100):
                await writer.write_batch([
                    MetricEntry(type=MetricType.TOOL_USE,
                                data={"proc": proc, "seq": i, "pad": "y" * (i % 50)})
                    for i in range(start, min(start + 100, count))
                ])
                # The file this process writes is never deleted by another one.
                if not writer.current_file.exists():
                    sys.exit(f"{writer.current_file} vanished while in use")
                await asyncio.sleep(0)
        print(writer.current_file)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    """
)


def _run_processes(base: Path, procs: int, count: int, max_files: int) -> list[str]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(base), str(k), str(count), str(max_files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(procs)
    ]
    outputs = []
    try:
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outputs.append(out.strip())
    finally:  # one failing child must not leave the others running into later tests
        for child in children:
            with child:
                child.kill()
    return outputs


@pytest.mark.slow
def test_four_processes_share_a_directory_without_loss_or_corruption(tmp_path: Path) -> None:
    _run_processes(tmp_path, procs=4, count=20_000, max_files=10**6)
    found = read_all(tmp_path / "metrics")  # strict: every line parses
    assert len(found) == 80_000
    assert len({e.id for e in found}) == 80_000
    assert Counter((e.data["proc"], e.data["seq"]) for e in found) == Counter(
        (k, i) for k in range(4) for i in range(20_000)
    )
    per_file_procs: dict[str, set[object]] = defaultdict(set)
    for path in (tmp_path / "metrics").iterdir():
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            import gzip

            data = gzip.decompress(data)
        for line in data.splitlines():
            per_file_procs[path.name].add(MetricEntry.from_json_line(line).data["proc"])
    assert all(len(p) == 1 for p in per_file_procs.values()), "a file written by two processes"
    pids = {name.split("_p")[1].split("_")[0] for name in per_file_procs}
    assert len(pids) == 4


@pytest.mark.slow
def test_retention_across_processes_never_deletes_a_live_file(tmp_path: Path) -> None:
    _run_processes(tmp_path, procs=3, count=4_000, max_files=4)
    files = [p for p in (tmp_path / "metrics").iterdir()]
    assert len(files) <= 4 + 3
    read_all(tmp_path / "metrics")


class TestLoopOwnership:
    async def test_using_the_writer_from_another_loop_raises(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            errors: list[BaseException] = []

            def other_thread() -> None:
                async def write() -> None:
                    await writer.write(entry())

                for call in (write, writer.flush, writer.close):
                    try:
                        asyncio.run(call())
                    except BaseException as exc:
                        errors.append(exc)

            thread = threading.Thread(target=other_thread)
            thread.start()
            await asyncio.to_thread(thread.join)
            assert len(errors) == 3
            assert all(isinstance(e, WriterStateError) for e in errors)
            assert "another event loop" in str(errors[0])
            await writer.write(entry())
        assert len(read_all(writer.metrics_dir)) == 1


def test_using_the_writer_from_a_later_loop_of_the_same_thread_raises(tmp_path: Path) -> None:
    """The hot path's check (same thread, and the writer's loop is running) also
    refuses a second loop that runs, later, in the thread the first one ran in."""

    def use_from_two_loops() -> Path:
        writer = JSONLWriter(tmp_path)

        async def first() -> None:
            await writer.initialize()
            await writer.write(entry())
            await writer.flush()

        async def second() -> None:
            await writer.write(entry())

        asyncio.run(first())
        with pytest.raises(WriterStateError, match="another event loop"):
            asyncio.run(second())
        return writer.metrics_dir

    def run_and_collect() -> Path:
        metrics_dir = use_from_two_loops()
        gc.collect()
        return metrics_dir

    # Its loop is gone, so it cannot be closed: it says so when collected (here, not
    # in a later test).
    with pytest.warns(ResourceWarning, match="0 unwritten entries"):
        metrics_dir = run_and_collect()
    assert len(read_all(metrics_dir)) == 1


def test_a_writer_collected_while_open_warns_with_the_unwritten_count(tmp_path: Path) -> None:
    async def forget() -> None:
        writer = JSONLWriter(tmp_path, buffer_size=1000, flush_interval=60)
        await writer.initialize()
        await writer.write_batch([entry(i) for i in range(3)])

    def run_and_collect() -> None:
        asyncio.run(forget())
        gc.collect()

    with pytest.warns(ResourceWarning, match="3 unwritten entries"):
        run_and_collect()


async def test_a_full_tmpfs_keeps_entries_and_writes_them_once_space_returns(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "small", "256k") as mount:
        filler = mount / "filler.bin"
        filler.write_bytes(b"\0" * 150_000)
        async with JSONLWriter(
            mount, buffer_size=20, flush_interval=0.01, compress_old=False, max_file_size="1 MiB"
        ) as writer:
            written: list[MetricEntry] = []
            while writer.stats().errors == 0 and len(written) < 5000:
                batch = [entry(len(written) + k, size=200) for k in range(20)]
                written += batch
                await writer.write_batch(batch)  # implicit flushes: never raise here
            assert writer.stats().errors >= 1
            assert "No space left" in str(writer.stats().last_error)
            with pytest.raises(WriteError) as info:
                await writer.flush()
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.__cause__.errno == errno.ENOSPC
            assert info.value.pending > 0
            # No half line on disk while full.
            assert writer.current_file is not None
            assert writer.current_file.read_bytes().endswith(b"\n")
            await asyncio.to_thread(filler.unlink)
            await writer.flush()
        found = read_all(writer.metrics_dir)
        assert [e.id for e in found] == [e.id for e in written]


class TestFsyncPolicy:
    @staticmethod
    def _count(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
        calls: Counter[str] = Counter()
        real_fsync, real_dir = _fileops.fsync, _fileops.fsync_dir

        def fsync(fd: int) -> None:
            calls["file"] += 1
            real_fsync(fd)

        def fsync_dir(path: Path) -> None:
            calls["dir"] += 1
            real_dir(path)

        monkeypatch.setattr(_fileops, "fsync", fsync)
        monkeypatch.setattr(_fileops, "fsync_dir", fsync_dir)
        return calls

    async def _run(
        self, tmp_path: Path, policy: Literal["never", "rotate", "always"]
    ) -> JSONLWriter:
        async with JSONLWriter(
            tmp_path, fsync=policy, max_file_size=3000, buffer_size=5, max_files=100
        ) as writer:
            for i in range(2):  # two flushes, no rotation yet
                await writer.write_batch([entry(i * 5 + k) for k in range(5)])
                await writer.flush()
            assert writer.stats().rotations == 0
            self.before_rotation = Counter(self.calls)
            await writer.write_batch([entry(100 + k, size=100) for k in range(20)])
        return writer

    async def test_never_syncs_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.calls = self._count(monkeypatch)
        await self._run(tmp_path, "never")
        assert self.calls == Counter()

    async def test_rotate_syncs_at_rotation_compression_and_close(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.calls = self._count(monkeypatch)
        writer = await self._run(tmp_path, "rotate")
        assert self.before_rotation["file"] == 0  # plain flushes are not synced
        rotations = writer.stats().rotations
        assert rotations >= 2
        # Each rotation: the old file; each compression: the .gz, then the directory
        # once the .gz has its name; close: the active file.
        assert self.calls["file"] >= 2 * rotations + 1
        assert self.calls["dir"] >= rotations

    async def test_always_syncs_every_flush(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.calls = self._count(monkeypatch)
        await self._run(tmp_path, "always")
        assert self.before_rotation["file"] >= 2

    async def test_a_failed_directory_sync_leaves_no_new_file_nor_its_descriptor(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With ``fsync="always"`` a new file's name is synced before it is used; when
        that fails, the empty file is removed and its descriptor closed, and the
        entries are kept until a new file can be made."""
        failing = [False]
        real_dir = _fileops.fsync_dir

        def fsync_dir(path: Path) -> None:
            if failing[0]:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_dir(path)

        monkeypatch.setattr(_fileops, "fsync_dir", fsync_dir)
        async with JSONLWriter(
            tmp_path, fsync="always", max_file_size=1000, max_files=100, buffer_size=1
        ) as writer:
            await writer.write(entry(0, size=100))
            descriptors = len(os.listdir("/proc/self/fd"))
            files = sorted(p.name for p in writer.metrics_dir.iterdir())
            failing[0] = True
            for i in range(1, 4):  # each rotation fails: the name could not be synced
                with contextlib.suppress(WriteError):
                    await writer.write(entry(i, size=400))
            assert len(os.listdir("/proc/self/fd")) <= descriptors
            assert sorted(p.name for p in writer.metrics_dir.iterdir()) == files
            failing[0] = False
            await writer.write(entry(4, size=400))
            await writer.flush()
        assert [e.data["seq"] for e in read_all(writer.metrics_dir)] == [0, 1, 2, 3, 4]


async def test_an_interrupted_file_creation_is_cleaned_up(tmp_path: Path) -> None:
    from analytics._policy import format_name

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    staging = metrics_dir / (format_name("metrics", 10**18, 999_999, "deadbeef") + ".new")
    staging.write_bytes(b"")
    (metrics_dir / "unrelated.new").write_bytes(b"keep")
    async with JSONLWriter(tmp_path):
        pass
    assert not staging.exists()
    assert (metrics_dir / "unrelated.new").read_bytes() == b"keep"
