"""Reading entries back: a streaming, chronological k-way merge over every file.

Works on a directory that is still being written: rotated ``.jsonl.gz`` files, active
``.jsonl`` files, files of several processes, a torn last line, and lines that are
corrupt or not ours (skipped, counted and logged, never raised).
"""

from __future__ import annotations

import bisect
import errno
import gzip
import heapq
import logging
import os
import re
import zlib
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic_core import from_json

from ._bounds import TimeBounds, read_bounds
from ._fileops import data_file_names
from ._models import READING, MetricEntry, MetricType
from ._policy import FileName

__all__ = [
    "DirectoryTail",
    "FileScan",
    "ReadStats",
    "data_files",
    "iter_entries",
    "read_entries",
    "resolve_metrics_dir",
    "scan_directory",
    "scan_file",
]

logger = logging.getLogger("analytics")

_READ_CHUNK = 1024 * 1024
"""Bytes read per blocking call: large, but bounded."""

_BATCH = 2000
"""Entries handed from the reading thread to the event loop per hop."""


@dataclass
class ReadStats:
    """What a read went through."""

    files: int = 0
    files_skipped: int = 0
    """Files not opened because their names put them outside ``since``/``until``."""
    entries: int = 0
    """Entries yielded (after filters)."""
    bad_lines: int = 0
    """Lines skipped: torn, corrupt, or not an entry."""


def resolve_metrics_dir(base_path: str | os.PathLike[str]) -> Path:
    """``<base_path>/metrics`` if it exists, else ``base_path`` itself (so both the
    writer's base path and its ``metrics_dir`` work).

    Raises:
        FileNotFoundError: neither exists.
        NotADirectoryError: ``base_path`` is a file.
    """
    base = Path(base_path)
    if (base / "metrics").is_dir():
        return base / "metrics"
    if base.is_dir():
        return base
    if base.exists():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(base))
    raise FileNotFoundError(errno.ENOENT, "no such directory", str(base))


def data_files(metrics_dir: Path, prefix: str = "metrics") -> list[Path]:
    """The files to read in ``metrics_dir``, oldest first.

    A crash between a compression's last two steps can leave a source next to its
    complete ``.gz``; the ``.gz`` is complete by construction, so only it is read.
    """
    return [path for _, path in _named_files(metrics_dir, prefix)]


def _named_files(metrics_dir: Path, prefix: str) -> list[tuple[FileName, Path]]:
    ours, strangers = data_file_names(metrics_dir, prefix)
    for name in strangers:
        logger.warning("%s: named like a data file but not a regular file; ignored", name)
    compressed = {info.stem for info in ours if info.compressed}
    return sorted(
        (info, metrics_dir / info.name)
        for info in ours
        if info.compressed or info.name not in compressed
    )


def _chunks(path: Path) -> Iterator[bytes]:
    """The bytes of ``path``, uncompressed. A ``.jsonl`` that vanishes before or while
    it is read (the writer compressed it, then removed it) is read on from its
    ``.gz``, whose uncompressed bytes are the same, from where reading stopped."""
    if path.name.endswith(".gz"):
        yield from _gunzip(path)
        return
    done = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_READ_CHUNK):
                done += len(chunk)
                yield chunk
        return
    except FileNotFoundError:
        pass
    compressed = path.with_name(path.name + ".gz")
    logger.info("%s disappeared while reading; reading on from %s", path.name, compressed.name)
    yield from _gunzip(compressed, skip=done)


_RAW_CHUNK = 256 * 1024
"""Compressed bytes read per blocking call."""


def _gunzip(path: Path, skip: int = 0) -> Iterator[bytes]:
    """The uncompressed bytes of a gzip file (all its members), after the first
    ``skip``, yielded as they come: at a damaged or truncated stream, everything
    before the damage has been yielded when ``EOFError`` or ``zlib.error`` is raised.
    """
    with open(path, "rb") as f:
        inflate = zlib.decompressobj(wbits=31)
        started = False
        while raw := f.read(_RAW_CHUNK):
            while raw:
                started = True
                out = inflate.decompress(raw)
                raw = b""
                if inflate.eof:  # another member may follow
                    raw = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    started = bool(raw)
                if skip:
                    cut = min(skip, len(out))
                    out, skip = out[cut:], skip - cut
                if out:
                    yield out
        if started:
            raise EOFError("compressed file ended before the end-of-stream marker")


def damaged_prefix(path: Path) -> bytes | None:
    """What a damaged or truncated ``.gz`` holds before the damage (a warning is
    logged); ``None`` when it is intact. Blocking."""
    parts: list[bytes] = []
    try:
        for chunk in _gunzip(path):
            parts.append(chunk)
    except (EOFError, zlib.error) as exc:
        logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
        return b"".join(parts)
    return None


def _line_batches(path: Path) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(number of the first line, lines)`` per chunk read; a last line without
    its newline is yielded too (it fails to parse if torn, and is counted)."""
    rest = b""
    number = 1
    try:
        for chunk in _chunks(path):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield number, lines
            number += len(lines)
    except FileNotFoundError:
        logger.info("%s disappeared while reading (compressed or deleted)", path.name)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a truncated .gz
        logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
    if rest:
        yield number, [rest]


_TYPES = {t.value: t for t in MetricType}
_KEYS = frozenset(MetricEntry.model_fields)
_EMPTY: dict[str, Any] = {}
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_parse_time = datetime.fromisoformat

PlainFields = tuple[
    str, datetime, str, str, "str | None", "str | None", dict[str, Any], dict[str, Any]
]
"""type, timestamp (UTC), its hour ("YYYY-MM-DDTHH"), id, session_id, user_id, data,
metadata."""


def plain_fields(d: Any) -> PlainFields | None:
    """The fields of a parsed line, if it is plainly a valid entry; else ``None``.

    Lines as this library writes them are recognised with a few exact type checks and
    one timestamp parse. ``None`` does not mean invalid: it means "unusual", and
    ``MetricEntry`` itself must decide. (A JSON parse with ``allow_inf_nan=False``
    gives only JSON values, so ``data`` and ``metadata`` need no deeper look.)
    """
    if type(d) is not dict or not d.keys() <= _KEYS:
        return None
    kind, ts, ident = d.get("type"), d.get("timestamp"), d.get("id")
    sid, uid = d.get("session_id"), d.get("user_id")
    data, meta = d.get("data", _EMPTY), d.get("metadata", _EMPTY)
    if not (
        type(kind) is str
        and kind in _TYPES
        and type(ts) is str
        and type(ident) is str
        and ident
        and (sid is None or type(sid) is str)
        and (uid is None or type(uid) is str)
        and type(data) is dict
        and type(meta) is dict
    ):
        return None
    if (
        len(ts) == 32
        and ts[10] == "T"
        and ts[19] == "."
        and ts[4] == ts[7] == "-"
        and ts[13] == ts[16] == ":"
        and ts.endswith("+00:00")
    ):
        # As this library writes it. fromisoformat checks the rest (ASCII digits,
        # separators, ranges); what it refuses, MetricEntry decides.
        try:
            return kind, _parse_time(ts), ts[:13], ident, sid, uid, data, meta
        except ValueError:
            return None
    if _TIMESTAMP.fullmatch(ts):
        moment = _parse_time(ts).astimezone(UTC)
        return kind, moment, hour_of(moment), ident, sid, uid, data, meta
    return None


def hour_of(moment: datetime) -> str:
    """The hour of a UTC ``moment`` as ``YYYY-MM-DDTHH``."""
    return moment.isoformat()[:13]


_new_object = object.__new__
_set_slot = object.__setattr__


def entry_from_line(line: bytes) -> MetricEntry:
    """Parse one line into a :class:`MetricEntry`, accepting exactly what
    :meth:`MetricEntry.from_json_line` accepts, at a fraction of its cost for lines as
    this library writes them (a test holds the two to the same answers).

    Raises:
        ValueError: the line is not a valid entry (pydantic's ValidationError included).
    """
    d = from_json(line, allow_inf_nan=False)
    fields = plain_fields(d)
    if fields is None:
        return MetricEntry.model_validate(d, context=READING)
    kind, moment, _, ident, sid, uid, data, meta = fields
    entry = _new_object(MetricEntry)
    _set_slot(
        entry,
        "__dict__",
        {
            "id": ident,
            "timestamp": moment,
            "type": _TYPES[kind],
            "session_id": sid,
            "user_id": uid,
            "data": data,
            "metadata": meta,
        },
    )
    _set_slot(entry, "__pydantic_fields_set__", set(d))
    _set_slot(entry, "__pydantic_extra__", None)
    _set_slot(entry, "__pydantic_private__", None)
    return entry


def _parse_batches(
    path: Path, stats: ReadStats, parse: Callable[[bytes], Any] = entry_from_line
) -> Iterator[list[Any]]:
    """Parsed lines, one list per chunk read: no per-line generator hop."""
    for first, lines in _line_batches(path):
        entries: list[Any] = []
        append = entries.append
        for offset, line in enumerate(lines):
            if not line:
                continue
            try:
                append(parse(line))
            except ValueError:  # pydantic's ValidationError included
                stats.bad_lines += 1
                logger.warning(
                    "%s:%d: skipped a line that is not a valid entry", path.name, first + offset
                )
        yield entries


def _parse(path: Path, stats: ReadStats) -> Iterator[MetricEntry]:
    for batch in _parse_batches(path, stats):
        yield from batch


def _timestamp(e: MetricEntry) -> datetime:
    return e.timestamp


class _Filter:
    def __init__(
        self,
        since: datetime | None,
        until: datetime | None,
        types: Iterable[MetricType | str] | None,
        session_id: str | None,
        user_id: str | None,
    ) -> None:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got {value!r}")
        self.since, self.until = since, until
        self.types = {MetricType(t) for t in types} if types else None
        self.type_names = {t.value for t in self.types} if self.types else None
        self.session_id, self.user_id = session_id, user_id
        self.active = any(v is not None for v in (since, until, self.types, session_id, user_id))

    def matches(
        self, kind: str, moment: datetime, session_id: str | None, user_id: str | None
    ) -> bool:
        """:meth:`__call__` for a line read without building an entry."""
        return (
            (self.since is None or moment >= self.since)
            and (self.until is None or moment < self.until)
            and (self.type_names is None or kind in self.type_names)
            and (self.session_id is None or session_id == self.session_id)
            and (self.user_id is None or user_id == self.user_id)
        )

    def __call__(self, e: MetricEntry) -> bool:
        return (
            (self.since is None or e.timestamp >= self.since)
            and (self.until is None or e.timestamp < self.until)
            and (self.types is None or e.type in self.types)
            and (self.session_id is None or e.session_id == self.session_id)
            and (self.user_id is None or e.user_id == self.user_id)
        )


def iter_entries(
    base_path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Iterable[MetricType | str] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    prefix: str = "metrics",
    stats: ReadStats | None = None,
) -> Generator[MetricEntry, None, None]:
    """Every entry under ``base_path``, in timestamp order (blocking; for scripts).

    Files of several processes are merged by a streaming k-way merge: a file is opened
    only when the merge reaches its creation time, so memory depends on how many
    files overlap in time, not on how many there are. Files whose names put them
    outside ``since``/``until`` are not opened at all.

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        since: only entries at or after this aware datetime.
        until: only entries before this aware datetime.
        types: only these types.
        session_id: only this session.
        user_id: only this user.
        prefix: the writer's ``filename_prefix``.
        stats: filled in as reading goes (files, skipped files, bad lines).

    Raises:
        FileNotFoundError: the directory does not exist.
        ValueError: ``since`` or ``until`` is naive, or a type is unknown.
    """
    return _iter(
        base_path,
        entry_from_line,
        since=since,
        until=until,
        types=types,
        session_id=session_id,
        user_id=user_id,
        prefix=prefix,
        stats=stats,
    )


def _iter(
    base_path: str | os.PathLike[str],
    parse: Callable[[bytes], Any],
    *,
    since: datetime | None,
    until: datetime | None,
    types: Iterable[MetricType | str] | None,
    session_id: str | None,
    user_id: str | None,
    prefix: str,
    stats: ReadStats | None,
) -> Generator[Any, None, None]:
    keep = _Filter(since, until, types, session_id, user_id)
    stats = stats if stats is not None else ReadStats()
    directory = resolve_metrics_dir(base_path)
    files: list[tuple[datetime | None, int, Path]] = []
    for number, (_, path, bounds) in enumerate(
        _select(_named_files(directory, prefix), since, until, stats)
    ):
        if bounds is None:  # unknown: learn them from the entry times themselves
            bounds = scan_bounds(path)
            if bounds is not None and not bounds.overlaps(since, until):
                stats.files_skipped += 1
                continue
        files.append((bounds.first if bounds is not None else None, number, path))

    def load(path: Path) -> list[MetricEntry]:
        """A whole file (files are bounded by ``max_file_size``), filtered, in order."""
        stats.files += 1
        entries = [e for batch in _parse_batches(path, stats, parse) for e in batch]
        if keep.active:
            entries = [e for e in entries if keep(e)]
        entries.sort(key=_timestamp)  # close to linear when already in order
        return entries

    for batch in _merge(files, load):
        stats.entries += len(batch)
        yield from batch


_ENTRY_TIME = re.compile(rb'"timestamp"\s*:\s*"([^"\\]*)"')


def scan_bounds(path: Path) -> TimeBounds | None:
    """The entry-time span of a file whose header does not record it, found by
    looking at its lines' ``timestamp`` values only (no full parse); ``None`` when a
    line's time cannot be found that way (the file is then read first of all)."""
    low: datetime | None = None
    high: datetime | None = None
    rest = b""
    try:
        for chunk in _chunks(path):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest, data = data[cut:], data[:cut]
            lines = data.count(b"\n") - data.count(b"\n\n")
            found = _ENTRY_TIME.findall(data)
            if len(found) < lines and _hides_a_time(data):
                return None
            plain = [t for t in found if len(t) == 32 and t.endswith(b"+00:00")]
            odd = {t for t in found if len(t) != 32 or not t.endswith(b"+00:00")}
            # Times as this library writes them sort as text: parse two of them.
            for text in {min(plain, default=b""), max(plain, default=b"")} | odd:
                if not text:
                    continue
                try:
                    moment = _parse_time(text.decode()).astimezone(UTC)
                except (ValueError, UnicodeDecodeError):
                    continue  # not a valid entry time: the line will not be read either
                if moment.utcoffset() is None:
                    continue
                low = moment if low is None or moment < low else low
                high = moment if high is None or moment > high else high
    except (OSError, EOFError, zlib.error):
        return None
    if rest.strip():
        tail = _ENTRY_TIME.search(rest)
        if tail is None:
            if _hides_a_time(rest):
                return None
        else:
            try:
                moment = _parse_time(tail.group(1).decode()).astimezone(UTC)
                low = moment if low is None or moment < low else low
                high = moment if high is None or moment > high else high
            except (ValueError, UnicodeDecodeError):
                pass
    if low is None or high is None:
        return None
    return TimeBounds.of(low, high)


def _hides_a_time(data: bytes) -> bool:
    """Whether a line without a plain ``"timestamp":"..."`` may still be a valid entry
    (its key or time written with JSON escapes); without escapes, it cannot be."""
    return any(b"\\" in line and not _ENTRY_TIME.search(line) for line in data.split(b"\n"))


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


def _select(
    files: list[tuple[FileName, Path]],
    since: datetime | None,
    until: datetime | None,
    stats: ReadStats,
) -> list[tuple[FileName, Path, TimeBounds | None]]:
    """Drop files that cannot hold entries in ``[since, until)``, by the entry-time
    bounds in their gzip header. A file name tells when the file was created, not
    which entry times it holds, so a file whose bounds are unknown is kept."""
    filtering = since is not None or until is not None
    chosen = []
    for info, path in files:
        bounds = read_bounds(path) if info.compressed else None
        if filtering and bounds is not None and not bounds.overlaps(since, until):
            stats.files_skipped += 1
        else:
            chosen.append((info, path, bounds))
    return chosen


async def read_entries(
    base_path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Iterable[MetricType | str] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    prefix: str = "metrics",
    stats: ReadStats | None = None,
) -> AsyncIterator[MetricEntry]:
    """:func:`iter_entries` for async code: the reading runs in a worker thread,
    one hop per batch of entries, never one per line.
    """
    entries = iter_entries(
        base_path,
        since=since,
        until=until,
        types=types,
        session_id=session_id,
        user_id=user_id,
        prefix=prefix,
        stats=stats,
    )
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
    result.entries.extend(_parse(path, stats))
    result.bad_lines += stats.bad_lines
    return result


def scan_directory(metrics_dir: Path, prefix: str = "metrics") -> FileScan:
    """Read every file this library wrote in ``metrics_dir``, in name order."""
    result = FileScan()
    for path in data_files(metrics_dir, prefix):
        scan_file(path, result)
    return result


# -- following a directory (``tail``) --------------------------------------------------

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
        self._keep = _Filter(None, None, types, None, None)
        self._offsets: dict[str, int] = {}
        self._snapshot: list[tuple[FileName, Path, int | None]] = []
        for info, path in _named_files(self.directory, prefix):
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
        for info, path in _named_files(self.directory, self.prefix):
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
                start = max(0, end - _RAW_CHUNK)
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
                    want = _READ_CHUNK if end is None else min(_READ_CHUNK, end - start - got)
                    chunk = f.read(want)
                    if not chunk:
                        break
                    parts.append(chunk)
                    got += len(chunk)
        except FileNotFoundError:
            path, finished = path.with_name(path.name + ".gz"), True
    if finished:
        try:
            for chunk in _gunzip(path, skip=start + got):
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
