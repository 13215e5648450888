"""Following a directory (``tail``): the last entries, then every new one, each once,
across rotations and compressions. Blocking; for the CLI and scripts."""

from __future__ import annotations

import heapq
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from .._bounds import read_bounds
from .._models import MetricEntry, MetricType
from .._policy import FileName
from .files import RAW_CHUNK, READ_CHUNK, gunzip, named_files, resolve_metrics_dir
from .filter import Filter
from .rows import entry_from_line

__all__ = ["DirectoryTail"]

logger = logging.getLogger("analytics")


def _timestamp(e: MetricEntry) -> datetime:
    return e.timestamp


_DONE = -1
"""Offset of a file read to its end from its complete ``.gz``: nothing more can come."""


class DirectoryTail:
    """The last entries of a directory, then every entry written after them, each
    exactly once, across rotations and compressions. Blocking; for the CLI and scripts.

    Construction takes a snapshot: for every file, the uncompressed bytes up to its
    last complete line. :meth:`last` reads only what lies before the snapshot,
    :meth:`poll` only what lies after it. Progress is kept per file *stem* in
    uncompressed bytes, so a ``.jsonl`` compressed between two polls is finished from
    its ``.gz`` where reading stopped, never read again from its start.

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        prefix: the writer's ``filename_prefix``.
        types: only these types.

    Raises:
        FileNotFoundError: the directory does not exist.
        NotADirectoryError: ``base_path`` is a file.
    """

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        *,
        prefix: str = "metrics",
        types: Iterable[MetricType | str] | None = None,
    ) -> None:
        self._base = Path(base_path)
        self.directory = resolve_metrics_dir(base_path)
        self.prefix = prefix
        self._keep = Filter(prefix=prefix, types=types)
        self._offsets: dict[str, int] = {}
        self._snapshot: list[tuple[FileName, Path, int | None]] = []
        for info, path in named_files(self.directory, prefix):
            end = None if info.compressed else _complete_end(path)
            self._snapshot.append((info, path, end))
            self._offsets[info.stem] = _DONE if end is None else end

    def last(self, count: int) -> list[MetricEntry]:
        """The newest ``count`` entries before the snapshot, oldest first.

        Files are read from the newest backwards. An older file is skipped without
        being opened once ``count`` entries are in hand and it cannot hold a newer
        one: a writer's file holds no entry later than the creation of that writer's
        next file (from the names), and a compressed file records its span in its
        header. Memory holds ``count`` entries and one file's lines.
        """
        if count <= 0:
            return []
        newest: list[tuple[datetime, int, MetricEntry]] = []  # a min-heap of the kept
        following: dict[tuple[int, str], FileName] = {}
        number = 0
        for info, path, end in reversed(self._snapshot):
            writer = (info.pid, info.tag)
            later = following.get(writer)
            following[writer] = info
            if len(newest) >= count:
                bound = _latest_possible(info, path, later)
                if bound is not None and bound < newest[0][0]:
                    continue
            lines, _, _ = _complete_lines(path, 0, end)
            for e in self._parse(path, lines):
                number += 1
                item = (e.timestamp, number, e)
                if len(newest) < count:
                    heapq.heappush(newest, item)
                elif item > newest[0]:
                    heapq.heapreplace(newest, item)
        return [e for _, _, e in sorted(newest)]

    def poll(self) -> list[MetricEntry]:
        """Every entry written since the snapshot or the last poll, in timestamp order."""
        if self.directory == self._base and not self._offsets and (self._base / "metrics").is_dir():
            self.directory = self._base / "metrics"  # the writer has created it since
        found: list[MetricEntry] = []
        for info, path in named_files(self.directory, self.prefix):
            start = self._offsets.get(info.stem, 0)
            if start == _DONE:
                continue
            lines, end, finished = _complete_lines(path, start, None)
            found.extend(self._parse(path, lines))
            self._offsets[info.stem] = _DONE if finished else end
        found.sort(key=_timestamp)
        return found

    def _parse(self, path: Path, lines: list[bytes]) -> Iterator[MetricEntry]:
        for line in lines:
            try:
                e = entry_from_line(line)
            except ValueError:
                logger.warning("%s: skipped a line that is not a valid entry", path.name)
                continue
            if self._keep(e):
                yield e


def _latest_possible(info: FileName, path: Path, later: FileName | None) -> datetime | None:
    """The latest entry time a file can hold without reading it; ``None``: unknown."""
    if later is not None:  # entries are stamped before they are written, and this
        return later.created  # writer wrote nothing here after it rotated
    if info.compressed:
        bounds = read_bounds(path)
        if bounds is not None:
            return bounds.last
    return None


def _complete_end(path: Path) -> int | None:
    """Where the last complete line of a ``.jsonl`` ends, found from the end of the
    file; ``None`` when it has been compressed meanwhile (its ``.gz`` is complete)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            while end > 0:
                start = max(0, end - RAW_CHUNK)
                f.seek(start)
                chunk = f.read(end - start)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    return start + newline + 1
                end = start
            return 0
    except FileNotFoundError:
        return None


def _complete_lines(path: Path, start: int, end: int | None) -> tuple[list[bytes], int, bool]:
    """The complete lines of a file between uncompressed offsets ``start`` and ``end``
    (``None``: its end), read from its ``.gz`` when the ``.jsonl`` is gone.

    Returns:
        the lines (without newlines), the offset after the last of them, and whether
        the file is finished (read from its complete ``.gz``, or gone altogether);
        a finished file's torn last line is returned too, to be counted as bad.
    """
    parts: list[bytes] = []
    got = 0
    finished = path.name.endswith(".gz")
    if not finished:
        try:
            with open(path, "rb") as f:
                f.seek(start)
                while end is None or start + got < end:
                    want = READ_CHUNK if end is None else min(READ_CHUNK, end - start - got)
                    chunk = f.read(want)
                    if not chunk:
                        break
                    parts.append(chunk)
                    got += len(chunk)
        except FileNotFoundError:
            path, finished = path.with_name(path.name + ".gz"), True
    if finished:
        try:
            for chunk in gunzip(path, skip=start + got):
                if end is not None:
                    chunk = chunk[: end - start - got]
                parts.append(chunk)
                got += len(chunk)
                if end is not None and start + got >= end:
                    break
        except FileNotFoundError:
            logger.info("%s disappeared while reading (deleted)", path.name)
        except (EOFError, zlib.error) as exc:
            logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
    data = b"".join(parts)
    cut = len(data) if finished else data.rfind(b"\n") + 1
    lines = [line for line in data[:cut].split(b"\n") if line]
    return lines, start + cut, finished
