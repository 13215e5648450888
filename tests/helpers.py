"""Shared test helpers: reading a directory back strictly, and timing the loop."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics import MetricEntry, MetricType, SerializationError
from analytics._models import READING
from analytics.testing import foreign_line


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
