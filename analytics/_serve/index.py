"""An in-memory index of a directory's entries, brought up to date by reading only
what was written since the last refresh, and the summary of any window of it.

Progress is kept per file *stem* in uncompressed bytes (as ``tail`` and the shipper
keep it): a ``.jsonl`` compressed between two refreshes is read on from its ``.gz``
where reading stopped, so every entry is indexed once across rotations and
compressions; a file that retention deleted drops out with its entries. Entries are
kept in the read path's compact form (the fields :func:`fields_from_line` gives, not
``MetricEntry`` objects), and summaries are computed by the read path's own
accumulator (``Totals`` of ``FIGURES``, then ``build_summary``): the dashboard counts
exactly as ``summarize`` does. Everything here is blocking: call it from a worker
thread.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .._fileops import data_file_names, gunzip
from .._models import MetricType
from .._policy import FileName
from .._read.files import READ_CHUNK
from .._read.filter import Filter
from .._read.rows import fields_from_line
from .._read.summary import Summary, build_summary
from .._read.totals import AddFunction, Totals

__all__ = ["DirectoryIndex", "Facets", "IndexStats", "Query", "Row", "View"]

logger = logging.getLogger("analytics")

Row = tuple[str, datetime, str, "str | None", "str | None", dict[str, Any]]
"""An indexed entry: type, timestamp (UTC), its hour, session_id, user_id, data (the
fields of ``PlainFields`` that a summary and the filters use)."""

State = Literal["missing", "empty", "ready"]

SESSIONS_SHOWN = 200
"""How many session ids (the most recently seen) the controls offer."""


@dataclass(frozen=True)
class Query:
    """What the dashboard shows: a window of time and the filters.

    Attributes:
        since: only entries at or after this aware datetime.
        until: only entries before this aware datetime.
        types: only entries of these types (empty: every type).
        tool: only entries whose ``data.tool_name`` is this.
        session_id: only entries of this session.
    """

    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    tool: str | None = None
    session_id: str | None = None

    def filter(self) -> Filter:
        """The read path's filter of this query (everything but ``tool``).

        Raises:
            ValueError: ``since`` or ``until`` is naive, or a type is unknown.
        """
        return Filter(
            since=self.since,
            until=self.until,
            types=self.types or None,
            session_id=self.session_id,
        )


@dataclass
class IndexStats:
    """What the index has done since it was made (``/healthz`` shows it)."""

    refreshes: int = 0
    bytes_read: int = 0
    """Uncompressed bytes taken past the files' offsets: each byte of a file once."""
    bytes_skipped: int = 0
    """Uncompressed bytes decompressed only to reach an offset, in a file compressed
    after part of it had been read (never parsed again)."""
    files: int = 0
    """Files (stems) in the index now."""
    files_dropped: int = 0
    """Files that disappeared (retention) and took their entries with them."""
    entries: int = 0
    """Entries in the index now."""
    bad_lines: int = 0
    """Lines in the index's files that are not valid entries (skipped)."""


@dataclass(frozen=True)
class Facets:
    """What the controls offer: the types, tools and sessions present in the index."""

    types: list[str]
    tools: list[str]
    sessions: list[str]
    """The ``SESSIONS_SHOWN`` most recently seen, newest first."""


@dataclass(frozen=True)
class View:
    """One answer: the summary of a query, with what the page shows around it."""

    state: State
    """``missing``: no directory; ``empty``: no entries at all; ``ready``: entries."""
    directory: str
    summary: Summary
    facets: Facets
    total_entries: int
    """Entries in the index, whatever the query."""


class _Shrank(Exception):
    """A ``.jsonl`` holds fewer bytes than were read from it."""


@dataclass(eq=False)
class _File:
    """One stem's indexed entries and how far it has been read."""

    offset: int = 0
    """Uncompressed bytes read (up to the last complete line)."""
    done: bool = False
    """Read to the end of its complete ``.gz``: nothing more can come."""
    rows: list[Row] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    bad_lines: int = 0
    types: set[str] = field(default_factory=set)
    tools: set[str] = field(default_factory=set)
    sessions: dict[str, datetime] = field(default_factory=dict)

    def forget(self) -> None:
        """Back to nothing read."""
        self.offset, self.done, self.first, self.last, self.bad_lines = 0, False, None, None, 0
        self.rows, self.types, self.tools, self.sessions = [], set(), set(), {}


class DirectoryIndex:
    """The entries of a writer's directory, in memory, refreshed incrementally.

    The constructor does no I/O; :meth:`refresh` reads (blocking). The directory may
    not exist yet (the index is then empty, and its state ``missing``), and may be
    rotated, compressed and trimmed by a writer meanwhile. Nothing here writes to it.
    Thread-safe: one lock guards the index.

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        prefix: the writer's ``filename_prefix``.
    """

    def __init__(self, base_path: str | os.PathLike[str], *, prefix: str = "metrics") -> None:
        self.base = Path(base_path)
        self.prefix = prefix
        self.stats = IndexStats()
        self._directory: Path | None = None
        self._files: dict[str, _File] = {}
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._everything: Totals | None = Totals()
        """The totals of every indexed entry, kept as entries are indexed (the
        unfiltered view then costs nothing to refresh); ``None`` after files dropped
        out, until the next unfiltered summary adds everything up again."""

    @property
    def directory(self) -> Path | None:
        """The directory read (``<base>/metrics`` or the base), ``None`` while missing."""
        return self._directory

    def refresh(self) -> int:
        """Read what was written since the last refresh; drop deleted files.

        Returns:
            how many entries were added.
        """
        with self._lock:
            self.stats.refreshes += 1
            directory = self._locate()
            if directory != self._directory:
                self._drop_all()
                self._directory = directory
            added = 0
            listing = self._list(directory) if directory is not None else None
            if listing is None:
                self._drop_all()
            else:
                for stem in self._files.keys() - listing.keys():
                    del self._files[stem]
                    self.stats.files_dropped += 1
                    self._everything = None
                for stem, info in sorted(listing.items(), key=lambda item: item[1]):
                    known = self._files.get(stem)
                    if known is None:
                        known = self._files[stem] = _File()
                    if not known.done:
                        assert directory is not None
                        with _collector_paused():
                            added += self._read_on(known, directory / info.name)
            self.stats.files = len(self._files)
            self.stats.entries = sum(len(f.rows) for f in self._files.values())
            self.stats.bad_lines = sum(f.bad_lines for f in self._files.values())
            return added

    def view(self, query: Query) -> View:
        """Refresh, then the :class:`View` of ``query``: one call, one thread hop.

        Raises:
            ValueError: ``query`` holds a naive time or an unknown type.
        """
        with self._lock:
            keep = query.filter()  # before reading: a bad query reads nothing
            self.refresh()
            return View(
                state=self.state,
                directory=str(self._directory or self.base),
                summary=self._summary(keep, query.tool),
                facets=self._facets(),
                total_entries=self.stats.entries,
            )

    def summary(self, query: Query) -> Summary:
        """The summary of the indexed entries that ``query`` keeps (no refresh).

        Raises:
            ValueError: ``query`` holds a naive time or an unknown type.
        """
        with self._lock:
            return self._summary(query.filter(), query.tool)

    def rows(self) -> list[Row]:
        """Every indexed entry, file by file (oldest file first)."""
        with self._lock:
            return [row for known in self._files.values() for row in known.rows]

    @property
    def state(self) -> State:
        if self._directory is None:
            return "missing"
        return "ready" if self.stats.entries else "empty"

    def _locate(self) -> Path | None:
        nested = self.base / "metrics"
        if nested.is_dir():
            return nested
        return self.base if self.base.is_dir() else None

    def _list(self, directory: Path) -> dict[str, FileName] | None:
        """Our files by stem (the ``.gz`` when both exist: it is complete by
        construction); ``None`` when the directory cannot be listed."""
        try:
            ours, strangers = data_file_names(directory, self.prefix)
        except (FileNotFoundError, NotADirectoryError):
            return None
        for name in set(strangers) - self._warned:
            self._warned.add(name)
            logger.warning("%s: named like a data file but not a regular file; ignored", name)
        listing: dict[str, FileName] = {}
        for info in ours:
            if info.compressed or info.stem not in listing:
                listing[info.stem] = info
        return listing

    def _read_on(self, known: _File, path: Path) -> int:
        """Index the complete lines of ``path`` past ``known.offset``."""
        try:
            data, finished = self._bytes_past(path, known.offset)
        except _Shrank:
            # The writer rolled a failed batch back below what was read: read the file
            # again from its start rather than count lines it no longer holds.
            logger.info("%s is shorter than when it was read; reading it again", path.name)
            known.forget()
            self._everything = None
            data, finished = self._bytes_past(path, 0)
        cut = len(data) if finished else data.rfind(b"\n") + 1
        known.offset += cut
        known.done = finished
        self.stats.bytes_read += cut
        if not cut:
            return 0
        everything = self._everything
        add = everything.add if everything is not None else None
        return _index_lines(known, data[:cut].split(b"\n"), path.name, add)

    def _bytes_past(self, path: Path, start: int) -> tuple[bytes, bool]:
        """The uncompressed bytes of a file from ``start``, read on from its ``.gz``
        when the ``.jsonl`` is gone; and whether the file is finished (read from its
        complete ``.gz``, or gone altogether)."""
        parts: list[bytes] = []
        got = 0
        finished = path.name.endswith(".gz")
        if not finished:
            try:
                with open(path, "rb") as f:  # an open file reads on even if compressed away
                    if os.fstat(f.fileno()).st_size < start:
                        raise _Shrank(path.name)
                    f.seek(start)
                    while chunk := f.read(READ_CHUNK):
                        parts.append(chunk)
                        got += len(chunk)
            except FileNotFoundError:
                path, finished = path.with_name(path.name + ".gz"), True
        if finished:
            self.stats.bytes_skipped += start + got
            try:
                for chunk in gunzip(path, skip=start + got):
                    parts.append(chunk)
            except FileNotFoundError:
                logger.info("%s disappeared while reading (deleted)", path.name)
            except (EOFError, zlib.error) as exc:
                logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
        return b"".join(parts), finished

    def _drop_all(self) -> None:
        self.stats.files_dropped += len(self._files)
        self._files.clear()
        self._everything = Totals()

    def _summary(self, keep: Filter, tool: str | None) -> Summary:
        if not keep.active and tool is None:
            if self._everything is None:
                self._everything = everything = Totals()
                add = everything.add
                for known in self._files.values():
                    for kind, moment, hour, sid, _, data in known.rows:
                        add(kind, moment, hour, sid, data)
            bad_lines = sum(known.bad_lines for known in self._files.values())
            return build_summary(self._everything.results(), bad_lines)
        totals = Totals()
        add = totals.add
        since, until = keep.since, keep.until
        filtering = keep.active
        bad_lines = 0
        for known in self._files.values():
            if (
                known.first is not None
                and known.last is not None
                and (
                    (since is not None and known.last < since)
                    or (until is not None and known.first >= until)
                )
            ):
                continue  # wholly outside the window
            bad_lines += known.bad_lines
            if tool is not None and tool not in known.tools:
                continue
            matches = keep.matches
            for kind, moment, hour, sid, uid, data in known.rows:
                if filtering and not matches(kind, moment, sid, uid):
                    continue
                if tool is not None and data.get("tool_name") != tool:
                    continue
                add(kind, moment, hour, sid, data)
        return build_summary(totals.results(), bad_lines)

    def _facets(self) -> Facets:
        types: set[str] = set()
        tools: set[str] = set()
        sessions: dict[str, datetime] = {}
        for known in self._files.values():
            types |= known.types
            tools |= known.tools
            for sid, moment in known.sessions.items():
                seen = sessions.get(sid)
                if seen is None or moment > seen:
                    sessions[sid] = moment
        newest = sorted(sessions, key=lambda sid: sessions[sid], reverse=True)
        order = [t.value for t in MetricType]
        return Facets(
            types=sorted(types, key=order.index),
            tools=sorted(tools),
            sessions=newest[:SESSIONS_SHOWN],
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a file's entries are indexed: they are
    many small acyclic objects that live on, which it would only walk over and over
    (a third of the first view's time). Reference counting still frees garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _index_lines(known: _File, lines: list[bytes], name: str, add: AddFunction | None) -> int:
    """Parse lines into ``known`` (bad ones counted and logged), each also counted by
    ``add`` when given; returns how many entries were added. This loop is the first
    view's speed: keep it flat."""
    rows: list[Row] = []
    append = rows.append
    for line in lines:
        if not line:
            continue
        try:
            kind, moment, hour, _, sid, uid, data, _ = fields_from_line(line)
        except ValueError:  # pydantic's ValidationError included
            known.bad_lines += 1
            logger.warning("%s: skipped a line that is not a valid entry", name)
            continue
        append((kind, moment, hour, sid, uid, data))
        if add is not None:
            add(kind, moment, hour, sid, data)
    if not rows:
        return 0
    known.rows += rows
    known.types.update({row[0] for row in rows})
    tools = {row[5].get("tool_name") for row in rows if row[0] == "tool_use"}
    known.tools.update(tool for tool in tools if type(tool) is str)
    sessions = known.sessions
    for row in rows:  # entries come about in time order: the last one seen is the newest
        if row[3] is not None:
            sessions[row[3]] = row[1]
    low = min(row[1] for row in rows)
    high = max(row[1] for row in rows)
    known.first = low if known.first is None or low < known.first else known.first
    known.last = high if known.last is None or high > known.last else known.last
    return len(rows)
