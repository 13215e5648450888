"""Reading entries back in timestamp order: a streaming k-way merge over every file.

Works on a directory that is still being written: rotated ``.jsonl.gz`` files, active
``.jsonl`` files, files of several processes, a torn last line, and lines that are
corrupt or not ours (skipped, counted and logged, never raised). Which files are read
comes from ``_files``, how a line becomes an entry from ``_rows``, which entries are
kept from ``_filter``; this module only merges.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Unpack

import anyio
import anyio.to_thread

from .._models import MetricEntry
from .files import ReadStats, data_files, resolve_metrics_dir, select_files
from .filter import Filter, FilterKeywords
from .rows import parse_batches

__all__ = [
    "FileScan",
    "iter_entries",
    "read_entries",
    "scan_directory",
    "scan_file",
]

_BATCH = 2000
"""Entries handed from the reading thread to the event loop per hop."""


def _timestamp(e: MetricEntry) -> datetime:
    return e.timestamp


def iter_entries(
    base_path: str | os.PathLike[str],
    *,
    stats: ReadStats | None = None,
    **filters: Unpack[FilterKeywords],
) -> Generator[MetricEntry, None, None]:
    """Every entry under ``base_path``, in timestamp order (blocking; for scripts).

    Files of several processes are merged by a streaming k-way merge: a file is opened
    only when the merge reaches the earliest entry time it may hold, so memory depends
    on how many files overlap in time, not on how many there are. Files whose
    entry-time bounds put them outside ``since``/``until`` are not read.

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        stats: filled in as reading goes (files, skipped files, entries, bad lines).
        **filters: ``since``, ``until``, ``types``, ``session_id``, ``user_id``,
            ``prefix`` (see :class:`~analytics._read.filter.FilterKeywords`).

    Raises:
        MetricsDirNotFoundError: the directory does not exist (a FileNotFoundError).
        FilterError: ``since`` or ``until`` is naive, or a type is unknown (a
            ValueError).
    """
    return _entries(base_path, filters, stats if stats is not None else ReadStats())


def _entries(
    base_path: str | os.PathLike[str], filters: FilterKeywords, stats: ReadStats
) -> Generator[MetricEntry, None, None]:
    keep = Filter(**filters)  # checked at the first entry, as a generator does
    directory = resolve_metrics_dir(base_path)
    files = [
        (bounds.first if bounds is not None else None, number, path)
        for number, (_, path, bounds) in enumerate(select_files(directory, keep, stats, scan=True))
    ]

    def load(path: Path) -> list[MetricEntry]:
        """A whole file (files are bounded by ``max_file_size``), filtered, in order."""
        stats.files += 1
        entries = [e for batch in parse_batches(path, stats) for e in batch]
        if keep.active:
            entries = [e for e in entries if keep(e)]
        entries.sort(key=_timestamp)  # close to linear when already in order
        return entries

    for batch in _merge(files, load):
        stats.entries += len(batch)
        yield from batch


def _merge(
    files: list[tuple[datetime | None, int, Path]],
    load: Callable[[Path], list[MetricEntry]],
) -> Iterator[list[MetricEntry]]:
    """A k-way merge of whole sorted files, a slice at a time.

    A file is loaded only when the merge reaches the earliest entry time it may hold
    (from its bounds; a file whose bounds are unknown is loaded first of all), so
    memory holds the files that overlap in entry time, not all of them. Everything
    up to the earliest "last entry" of the loaded files is final once no unloaded
    file may start before it: it is taken from every file at once and sorted
    together, which merges the runs in C rather than one entry at a time.
    """
    lowest = datetime.min.replace(tzinfo=UTC)
    pending = sorted((first or lowest, n, path) for first, n, path in files)
    pending.reverse()
    runs: list[_Run] = []
    while runs or pending:
        if not runs:
            runs.append(_Run(load(pending.pop()[2])))
        runs = [run for run in runs if run.ready()]
        if not runs:
            continue
        frontier = min(run.batch[-1].timestamp for run in runs)
        if pending and pending[-1][0] <= frontier:
            runs.append(_Run(load(pending.pop()[2])))
            continue  # it may hold earlier entries: look again
        if len(runs) == 1:
            run = runs[0]
            taken = run.batch[run.position :]
            run.position = len(run.batch)
            yield taken
            continue
        merged: list[MetricEntry] = []
        for run in runs:
            end = bisect.bisect_right(run.batch, frontier, lo=run.position, key=_timestamp)
            merged.extend(run.batch[run.position : end])
            run.position = end
        merged.sort(key=_timestamp)
        yield merged


class _Run:
    """One loaded file, and where the merge got to in it."""

    __slots__ = ("batch", "position")

    def __init__(self, entries: list[MetricEntry]) -> None:
        self.batch = entries
        self.position = 0

    def ready(self) -> bool:
        """Whether an unread entry is left."""
        return self.position < len(self.batch)


async def read_entries(
    base_path: str | os.PathLike[str],
    *,
    stats: ReadStats | None = None,
    **filters: Unpack[FilterKeywords],
) -> AsyncIterator[MetricEntry]:
    """:func:`iter_entries` for async code: the reading runs in a worker thread,
    one hop per batch of entries, never one per line.
    """
    entries = iter_entries(base_path, stats=stats, **filters)
    limiter = anyio.CapacityLimiter(1)
    try:
        while True:
            batch = await anyio.to_thread.run_sync(_take, entries, limiter=limiter)
            if not batch:
                return
            for e in batch:
                yield e
    finally:
        await anyio.to_thread.run_sync(entries.close, limiter=limiter)


def _take(entries: Iterator[MetricEntry]) -> list[MetricEntry]:
    batch = []
    for e in entries:
        batch.append(e)
        if len(batch) >= _BATCH:
            break
    return batch


# -- whole-directory scans (tests, the demo) ------------------------------------------


@dataclass
class FileScan:
    """Entries read from files, with the lines that could not be read."""

    entries: list[MetricEntry] = field(default_factory=list)
    bad_lines: int = 0
    files: int = 0


def scan_file(path: Path, result: FileScan | None = None) -> FileScan:
    """Read every valid entry of one file, in file order; bad lines are counted."""
    result = result if result is not None else FileScan()
    result.files += 1
    stats = ReadStats()
    for batch in parse_batches(path, stats):
        result.entries.extend(batch)
    result.bad_lines += stats.bad_lines
    return result


def scan_directory(metrics_dir: Path, prefix: str = "metrics") -> FileScan:
    """Read every file this library wrote in ``metrics_dir``, in name order."""
    result = FileScan()
    for path in data_files(metrics_dir, prefix):
        scan_file(path, result)
    return result
