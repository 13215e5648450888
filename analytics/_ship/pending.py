"""What is not shipped yet: whole lines past each file's offset, oldest file first.

A file is known by its stem, so a ``.jsonl`` compressed into a ``.gz`` mid-read is the
same file at the same offset: reading goes on from the ``.gz``. Only whole lines are
taken; a tail without its newline waits (the writer may be finishing it) and is never
shipped once the file is complete (a torn tail left by a crash). A file is complete
when its ``.gz`` exists. A file that is not compressed is never taken as complete,
because a restarted writer may continue it (it continues the newest unlocked
``.jsonl``): it is shipped up to its offset, and again whenever it grows.

Everything here is blocking: the shipper calls it from a worker thread, one hop per
batch.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._checkpoint import FileProgress
from .._fileops import data_file_names, gunzip
from .._policy import FileName

__all__ = ["PendingReader", "Segment", "Snapshot"]

logger = logging.getLogger("analytics")

_READ = 1024 * 1024


@dataclass
class Segment:
    """Whole lines of one file, from ``start`` to ``end`` (uncompressed offsets)."""

    stem: str
    start: int
    end: int
    lines: list[bytes]
    """Without their newlines; empty lines included (they count for offsets only)."""
    complete: bool = False
    """Nothing of the file remains to ship after ``end``."""
    more: bool = False
    """Whole lines of the file wait past ``end`` (a limit stopped the read)."""


@dataclass
class Snapshot:
    """One read of the directory."""

    segments: list[Segment] = field(default_factory=list)
    full: bool = False
    """A limit stopped the read: more is waiting."""
    lag_bytes: int = 0
    """Uncompressed bytes not shipped, after these segments (torn tails included)."""
    lag_files: int = 0
    """Files with something not shipped, after these segments."""
    stems: set[str] = field(default_factory=set)
    """Every stem in the directory now."""


@dataclass
class _Stem:
    name: FileName
    plain: bool = False
    compressed: bool = False


class _GzCursor:
    """An open ``.gz`` being read, so that a big file shipped over many batches is
    decompressed once, not once per batch."""

    def __init__(self, path: Path, offset: int) -> None:
        self.position = offset
        self._chunks: Iterator[bytes] = gunzip(path, skip=offset)
        self._rest = b""
        self._error: EOFError | zlib.error | None = None

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end). Raises ``EOFError`` or
        ``zlib.error`` at damage, after what precedes it was returned by earlier calls."""
        if self._error is not None and not self._rest:
            raise self._error
        parts, have = [self._rest], len(self._rest)
        while have < size and self._error is None:
            try:
                chunk = next(self._chunks, None)
            except (EOFError, zlib.error) as exc:
                self._error = exc  # raised once what precedes it is read
                break
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        data, self._rest = data[:size], data[size:]
        self.position += len(data)
        return data

    def push_back(self, data: bytes) -> None:
        """Give back bytes read but not used: the next read starts with them."""
        self._rest = data + self._rest
        self.position -= len(data)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class PendingReader:
    """Reads one directory's unshipped lines. Blocking; one thread at a time."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory = directory
        self.prefix = prefix
        self._cursors: dict[str, _GzCursor] = {}
        self.damaged: set[str] = set()
        """Stems whose ``.gz`` is damaged: shipped up to the damage, then complete."""

    def close(self) -> None:
        for cursor in self._cursors.values():
            cursor.close()
        self._cursors.clear()

    def read(self, progress: dict[str, FileProgress], max_lines: int, max_bytes: int) -> Snapshot:
        """The next lines to ship, oldest file first, up to ``max_lines`` lines and
        about ``max_bytes`` bytes (a single longer line is still taken whole).

        ``progress`` is not changed: the shipper advances it once the engine has the
        lines.
        """
        snapshot = Snapshot()
        stems = self._stems()
        snapshot.stems = set(stems)
        order = sorted(stems.values(), key=lambda s: s.name)
        lines_left, bytes_left = max_lines, max_bytes
        for item in order:
            stem = item.name.name
            done = progress.get(stem, FileProgress())
            if done.complete:
                continue
            if lines_left <= 0 or bytes_left <= 0:
                snapshot.full = True
                snapshot.lag_bytes += max(self._size(item) - done.offset, 0)
                snapshot.lag_files += 1
                continue
            segment = self._read_lines(item, done.offset, lines_left, bytes_left)
            if segment is None:  # gone (retention): the shipper records the loss
                continue
            segment.complete = item.compressed and segment.complete
            lines_left -= len(segment.lines)
            bytes_left -= segment.end - segment.start
            if segment.more:  # oldest first: the next file waits for this one
                lines_left = bytes_left = 0
            if segment.lines or segment.complete:
                snapshot.segments.append(segment)
            left = self._size(item) - segment.end
            if left > 0 and not segment.complete:
                snapshot.lag_bytes += left
                snapshot.lag_files += 1
        return snapshot

    def _stems(self) -> dict[str, _Stem]:
        ours, _ = data_file_names(self.directory, self.prefix)
        stems: dict[str, _Stem] = {}
        for name in ours:
            stem = name.stem
            item = stems.get(stem)
            if item is None:
                plain = FileName(name.created_ns, name.pid, name.tag, name.prefix, False)
                item = stems[stem] = _Stem(plain)
            if name.compressed:
                item.compressed = True
            else:
                item.plain = True
        for stem in list(self._cursors):
            if stem not in stems:
                self._cursors.pop(stem).close()
        return stems

    def _size(self, item: _Stem) -> int:
        """The file's uncompressed size now (a ``.gz``: from its trailer)."""
        path = self.directory / item.name.name
        if item.plain:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                pass
        try:
            with open(path.with_name(path.name + ".gz"), "rb") as f:
                f.seek(-4, os.SEEK_END)
                return int.from_bytes(f.read(4), "little")
        except OSError:
            return 0

    def _read_lines(
        self, item: _Stem, offset: int, max_lines: int, max_bytes: int
    ) -> Segment | None:
        stem = item.name.name
        data, at_end = self._read_bytes(item, offset, max_bytes)
        if data is None:
            return None
        cut = data.rfind(b"\n")
        lines = data[:cut].split(b"\n") if cut >= 0 else []
        complete = at_end  # nothing follows but, at most, a torn tail (no newline)
        more = not at_end
        if len(lines) > max_lines:
            lines, complete, more = lines[:max_lines], False, True
        end = offset + sum(len(line) + 1 for line in lines)
        cursor = self._cursors.get(stem)
        if cursor is not None:
            cursor.push_back(data[end - offset :])
        return Segment(stem, offset, end, lines, complete=complete, more=more)

    def _read_bytes(self, item: _Stem, offset: int, max_bytes: int) -> tuple[bytes | None, bool]:
        """Bytes from ``offset``: at least ``max_bytes`` when there are that many, and
        then on to the next newline; and whether the file's end was reached."""
        stem = item.name.name
        if item.plain and stem not in self._cursors:
            try:
                return self._read_plain(self.directory / stem, offset, max_bytes)
            except FileNotFoundError:
                if not item.compressed and not (self.directory / f"{stem}.gz").exists():
                    return None, True
        cursor = self._cursors.get(stem)
        if cursor is None or cursor.position != offset:
            if cursor is not None:
                cursor.close()
            cursor = self._cursors[stem] = _GzCursor(self.directory / f"{stem}.gz", offset)
        parts: list[bytes] = []
        try:
            while True:
                chunk = cursor.read(max(max_bytes, _READ) if not parts else _READ)
                parts.append(chunk)
                if len(chunk) == 0:
                    self._cursors.pop(stem).close()
                    return b"".join(parts), True
                if sum(map(len, parts)) >= max_bytes and b"\n" in chunk:
                    return b"".join(parts), False
        except FileNotFoundError:
            self._cursors.pop(stem, None)
            return None, True
        except (EOFError, zlib.error) as exc:
            self._cursors.pop(stem).close()
            if stem not in self.damaged:
                self.damaged.add(stem)
                logger.error(
                    "%s.gz is damaged (%s): shipping the lines before the damage only",
                    stem,
                    exc,
                )
            return b"".join(parts), True

    @staticmethod
    def _read_plain(path: Path, offset: int, max_bytes: int) -> tuple[bytes, bool]:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(max_bytes)
            while data and b"\n" not in data:  # one line longer than max_bytes
                more = f.read(_READ)
                if not more:
                    break
                data += more
            at_end = f.read(1) == b""
        return data, at_end
