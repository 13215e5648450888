"""Shared test helpers: reading a directory back strictly, and timing the loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics import (
    MetricEntry,
    MetricType,
    SerializationError,
)
from analytics._bounds import TimeBounds, gzip_header, gzip_trailer
from analytics._models import READING
from analytics.testing import data_file_name, foreign_line, write_data_file


def lines_of(path: Path) -> list[bytes]:
    """Every line of a .jsonl or .jsonl.gz file, newline kept; the last may be torn."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return raw.splitlines(keepends=True)


def our_files(metrics_dir: Path) -> list[Path]:
    """Data files in the directory (.jsonl and .jsonl.gz), in name order.

    A source left next to its complete .gz (a crash between the last two steps of a
    compression) is skipped: the .gz holds the same lines.
    """
    files = sorted(p for p in metrics_dir.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    names = {p.name for p in files}
    return [p for p in files if p.name + ".gz" not in names]


def read_all(metrics_dir: Path) -> list[MetricEntry]:
    """Every entry in every data file, in name order then line order.

    Strict: every line must end with a newline and parse as an entry.
    """
    entries: list[MetricEntry] = []
    for path in our_files(metrics_dir):
        for line in lines_of(path):
            assert line.endswith(b"\n"), f"torn line in {path.name}: {line[:80]!r}"
            entries.append(MetricEntry.from_json_line(line))
    return entries


def foreign_entry(**fields: Any) -> MetricEntry:
    """An entry as a reader gets it from a line another writer (or an older version)
    wrote: not held to the limits an entry is built under (``10**400``, deep values)."""
    return MetricEntry.model_validate(fields, context=READING)


def line_of(entry: MetricEntry) -> bytes:
    """``entry``'s line as this library writes it, or, for a value it refuses to write
    (a foreign entry), as another writer would have written it."""
    try:
        return entry.to_json_line()
    except SerializationError:
        return foreign_line(entry.to_dict())


def ids_of(entries: list[MetricEntry]) -> Counter[str]:
    return Counter(e.id for e in entries)


def entry(seq: int = 0, task: str = "t", size: int = 0, **data: Any) -> MetricEntry:
    """A small tool_use entry that carries its producer and sequence number."""
    payload: dict[str, Any] = {"task": task, "seq": seq, **data}
    if size:
        payload["pad"] = "x" * size
    return MetricEntry(type=MetricType.TOOL_USE, session_id=task, data=payload)


def parse_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines_of(path)]


@dataclass
class Heartbeat:
    """A task that sleeps ``interval`` seconds in a loop and records how late it wakes."""

    interval: float = 0.001
    lateness: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lateness.append(time.perf_counter() - before - self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    @property
    def worst(self) -> float:
        return max(self.lateness, default=0.0)


class Failing:
    """Replaces the write system call; fails with ENOSPC while ``on`` is set."""

    def __init__(self) -> None:
        self.on = False
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if self.on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, data)


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def active_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl"))


def gz_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl.gz"))


class Collector:
    def __init__(self) -> None:
        self.entries: list[MetricEntry] = []
        self.flushes = 0
        self.closes = 0

    async def write(self, entry: MetricEntry) -> None:
        self.entries.append(entry)

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closes += 1


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(seconds: float, type: MetricType = MetricType.TOOL_USE, **fields: object) -> MetricEntry:
    return MetricEntry(type=type, timestamp=T0 + timedelta(seconds=seconds), **fields)


def write_file(
    metrics_dir: Path,
    created: datetime,
    pid: int,
    entries: list[MetricEntry],
    compressed: bool = False,
    tag: str = "abcdef01",
    tail: bytes = b"",
) -> Path:
    """``entries`` in a data file of writer ``pid``, named for ``created``; ``tail``
    (a torn or foreign line) appended."""
    return write_data_file(
        metrics_dir,
        entries,
        created=created,
        pid=pid,
        tag=tag,
        compressed=compressed,
        torn_tail=tail,
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def number(e: MetricEntry) -> int:
    value = e.data["number"]
    assert isinstance(value, int)
    return value


def tool(moment: datetime, n: int = 0) -> MetricEntry:
    """The ``n``-th of a stream of tool calls, at ``moment``."""
    return MetricEntry(
        type=MetricType.TOOL_USE,
        timestamp=moment,
        session_id=f"s{n % 5}",
        data={"tool_name": f"t{n % 3}", "success": n % 7 != 0, "duration_ms": float(n % 100)},
    )


def times(entries: list[MetricEntry]) -> list[datetime]:
    return [e.timestamp for e in entries]


def write_entries_file(
    metrics: Path,
    created: datetime,
    entries: list[MetricEntry],
    *,
    kind: str = "bounds",  # "bounds" (.gz with header bounds), "legacy" (.gz), "plain"
    pid: int = 1,
    tag: str = "abcdef01",
    tail: bytes = b"",
) -> Path:
    """A data file named for ``created``, holding ``entries`` in the given order: plain,
    gzipped as another tool would ("legacy"), or gzipped with the entry-time bounds in
    its header, as the writer compresses ("bounds")."""
    if kind != "bounds":
        return write_data_file(
            metrics,
            entries,
            created=created,
            pid=pid,
            tag=tag,
            compressed=kind == "legacy",
            torn_tail=tail,
        )
    metrics.mkdir(parents=True, exist_ok=True)
    data = b"".join(e.to_json_line() for e in entries) + tail
    path = metrics / data_file_name(created, pid=pid, tag=tag, compressed=True)
    bounds = (
        TimeBounds.of(min(e.timestamp for e in entries), max(e.timestamp for e in entries))
        if entries
        else None
    )
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    path.write_bytes(
        gzip_header(bounds, level=6) + body + gzip_trailer(zlib.crc32(data), len(data))
    )
    assert gzip.decompress(path.read_bytes()) == data  # a valid gzip file
    return path
