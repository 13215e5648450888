"""JSONLWriter: buffer, flusher task, lifecycle. One thread hop per flush."""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.to_thread

from ._background import GilHandoff
from ._config import WriterConfig
from ._exceptions import (
    BufferFullError,
    ConfigError,
    WriteError,
    WriterClosedError,
    WriterStateError,
)
from ._models import MetricEntry
from ._policy import next_boundary_ns
from ._storage import CompressJob, Storage, WriteOutcome

__all__ = ["HealthStatus", "JSONLWriter", "WriterStats"]

logger = logging.getLogger("analytics")

ErrorCallback = Callable[[BaseException], Any]

_RETRY_FIRST = 0.05
"""Seconds before the first retry of a failed implicit flush; doubles per failure."""
_RETRY_MAX = 5.0
"""The longest wait between retries, so recovery is noticed within seconds."""
_LOG_EVERY = 30.0
"""While writes keep failing, log at most one line per this many seconds."""
_COMPRESS_RETRY = 5.0
"""Seconds before a failed compression is tried again."""
FLUSH_GAP = 0.01
"""Under sustained load, the least time between the end of one flush and the start
of the next (unless someone waits for it, or half of ``max_pending`` is waiting).
Each thread hop costs the event loop the same whatever the batch size, so while
entries keep arriving, fewer and larger batches cost less: on 2 cores with four busy
producers, back-to-back flushes ran 250 hops per 100,000 entries, and cost the loop
more than the writing itself."""


class _State(enum.Enum):
    UNOPENED = "unopened"  # constructed (or initialize() failed); no file is open
    OPENING = "opening"  # initialize() is opening the files; other callers wait for it
    OPEN = "open"  # initialize() finished: entries are accepted
    CLOSING = "closing"  # close() began: no new entries; draining (or failed to drain)
    CLOSED = "closed"  # close() finished: all written, files released


@dataclass(frozen=True)
class WriterStats:
    """A snapshot of what a writer has done so far."""

    entries_written: int
    bytes_written: int
    flushes: int
    rotations: int
    compressions: int
    files_deleted: int
    pending: int
    """Entries accepted but not yet written."""
    dropped: int
    """Entries discarded by ``on_full="drop_newest"``."""
    errors: int
    """Failed write and compression attempts."""
    last_error: str | None
    current_file: Path | None
    current_file_size: int
    files: int
    """Our files in the directory (all processes), as of the last rotation or scan."""
    total_bytes: int
    """Their total size, the active file's current size included."""


@dataclass(frozen=True)
class HealthStatus:
    """The answer of :meth:`JSONLWriter.health`."""

    healthy: bool
    reasons: tuple[str, ...]
    """Why it is unhealthy; empty when healthy."""
    writable: bool
    """A file could be created in ``metrics_dir`` just now."""
    free_bytes: int | None
    """Free space for unprivileged users on the filesystem of ``metrics_dir``."""
    errors_since_success: int
    """Failed write attempts since the last one that succeeded."""
    oldest_pending_age: float | None
    """Seconds the oldest unwritten entry has waited; ``None`` if nothing waits."""


class JSONLWriter:
    """Buffered, rotating, compressing JSON Lines writer for one asyncio event loop.

    Args:
        base_path: files go to ``<base_path>/metrics/``.
        max_file_size: rotate before the active file would grow past this size, in
            bytes or as a string such as ``"100 MiB"`` (KB = 1000, KiB = 1024).
        max_files: keep at most this many files, the active one included.
        compress_old: gzip rotated files in a worker thread.
        buffer_size: write once this many entries are buffered.
        flush_interval: seconds (or ``"500ms"``, a ``timedelta``...) an entry may wait
            in the buffer at most.
        compress_level: gzip level 1-9 for rotated files.
        fsync: ``"never"``, ``"rotate"`` (default) or ``"always"``; see docs/durability.md.
        max_pending: at most this many entries accepted but not yet written.
        on_full: ``"wait"`` (default), ``"drop_newest"`` or ``"raise"`` when
            ``max_pending`` entries are waiting.
        filename_prefix: the first part of every file name (default ``"metrics"``).
        rotate_interval: also rotate at every multiple of this interval in UTC
            (``"1h"``, ``"1d"``, seconds or a ``timedelta``), even when idle.
        max_age: delete our files created longer ago than this.
        on_error: called with the exception when a background write fails.

    Raises:
        ConfigError: an option has a value the writer cannot use.
    """

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        *,
        max_file_size: int | str = 100 * 1024 * 1024,
        max_files: int = 10,
        compress_old: bool = True,
        buffer_size: int = 100,
        flush_interval: float | str | timedelta = 1.0,
        compress_level: int = 6,
        fsync: Literal["never", "rotate", "always"] = "rotate",
        max_pending: int = 10_000,
        on_full: Literal["wait", "drop_newest", "raise"] = "wait",
        filename_prefix: str = "metrics",
        rotate_interval: float | str | timedelta | None = None,
        max_age: float | str | timedelta | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        try:
            config = WriterConfig(
                base_path=Path(base_path),
                max_file_size=max_file_size,
                max_files=max_files,
                compress_old=compress_old,
                buffer_size=buffer_size,
                flush_interval=flush_interval,
                compress_level=compress_level,
                fsync=fsync,
                max_pending=max_pending,
                on_full=on_full,
                filename_prefix=filename_prefix,
                rotate_interval=rotate_interval,
                max_age=max_age,
            )
        except ValueError as exc:  # pydantic's ValidationError, with every bad option
            raise ConfigError(f"invalid JSONLWriter options: {exc}") from exc
        self._setup(base_path, config, on_error)

    @classmethod
    def from_config(
        cls,
        config: WriterConfig,
        base_path: str | os.PathLike[str] | None = None,
        *,
        on_error: ErrorCallback | None = None,
    ) -> JSONLWriter:
        """Build a writer from an already validated :class:`WriterConfig`.

        Args:
            config: the options.
            base_path: where files go; defaults to ``config.base_path``.
            on_error: as for the constructor.

        Raises:
            ConfigError: neither ``base_path`` nor ``config.base_path`` is given.
        """
        if not isinstance(config, WriterConfig) and isinstance(base_path, WriterConfig):
            config, base_path = base_path, config  # from_config(base_path, config) reads well too
        if not isinstance(config, WriterConfig):
            raise TypeError(f"from_config() takes a WriterConfig, not {type(config).__name__}")
        path = base_path if base_path is not None else config.base_path
        if path is None:
            raise ConfigError(
                "no base_path: pass one to from_config() or set it in the WriterConfig"
                " (ANALYTICS_BASE_PATH in the environment)"
            )
        writer = cls.__new__(cls)
        writer._setup(path, config.model_copy(update={"base_path": Path(path)}), on_error)
        return writer

    def _setup(
        self,
        base_path: str | os.PathLike[str],
        config: WriterConfig,
        on_error: ErrorCallback | None,
    ) -> None:
        # No I/O here: the directory is created by initialize(), off the loop.
        self._config = config
        self._base_path = Path(base_path)
        self._metrics_dir = self._base_path / "metrics"
        self._on_error = on_error
        self._storage = Storage(self._metrics_dir, config)
        self._state = _State.UNOPENED
        self._accepting = False  # state is OPEN: the one check on the hot path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer_size = config.buffer_size
        self._max_pending = config.max_pending

        self._buffer: list[bytes] = []  # accepted, waiting for the next flush
        self._inflight: list[bytes] = []  # handed to the worker thread right now
        self._oldest_at: float | None = None  # loop time the oldest buffered entry came
        self._inflight_since: float | None = None  # the same, for the batch in flight
        self._last_flush_end = -math.inf  # loop time when the last flush ended
        self._waiters: list[tuple[asyncio.Future[None], bool]] = []  # (future, explicit)
        self._wake: asyncio.Event | None = None
        self._space: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        self._close_task: asyncio.Task[None] | None = None
        self._open_task: asyncio.Task[None] | None = None
        self._flush_limiter: anyio.CapacityLimiter | None = None
        self._compress_limiter: anyio.CapacityLimiter | None = None
        self._handoff = GilHandoff()
        self._compressions: set[asyncio.Task[None]] = set()
        self._compress_retry: dict[Path, float] = {}

        # Age retention also runs on a timer: a quarter of max_age, at most a minute.
        self._retention_period = min(config.max_age / 4, 60.0) if config.max_age else 0.0
        self._retention_at: float | None = None

        # The next rotate_interval boundary (epoch ns) the flusher has not handled yet.
        self._boundary_ns: int | None = None

        self._failures = 0  # consecutive failed flush attempts
        self._retry_at: float | None = None
        self._last_log = -_LOG_EVERY

        self._entries_written = 0
        self._bytes_written = 0
        self._flushes = 0
        self._rotations = 0
        self._compressed = 0
        self._files_deleted = 0
        self._dropped = 0
        self._errors = 0
        self._last_error: str | None = None

    # -- properties ----------------------------------------------------------------

    @property
    def config(self) -> WriterConfig:
        """The validated options."""
        return self._config

    @property
    def metrics_dir(self) -> Path:
        """The directory holding every file: ``<base_path>/metrics``."""
        return self._metrics_dir

    @property
    def current_file(self) -> Path | None:
        """The active file, or ``None`` before ``initialize()``."""
        return self._storage.path

    @property
    def pending(self) -> int:
        """Entries accepted but not yet written."""
        return len(self._buffer) + len(self._inflight)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has finished."""
        return self._state is _State.CLOSED

    def stats(self) -> WriterStats:
        """A snapshot of the counters. Does no I/O."""
        return WriterStats(
            entries_written=self._entries_written,
            bytes_written=self._bytes_written,
            flushes=self._flushes,
            rotations=self._rotations,
            compressions=self._compressed,
            files_deleted=self._files_deleted,
            pending=self.pending,
            dropped=self._dropped,
            errors=self._errors,
            last_error=self._last_error,
            current_file=self._storage.path,
            current_file_size=self._storage.size,
            files=self._storage.files,
            total_bytes=self._storage.files_bytes + self._storage.size,
        )

    async def health(
        self, *, min_free_bytes: int | None = None, max_pending_age: float | None = None
    ) -> HealthStatus:
        """Check that the writer can do its job; one thread hop.

        Args:
            min_free_bytes: unhealthy below this much free space; default twice
                ``max_file_size``, room for the active file and one compression.
            max_pending_age: unhealthy if an entry has waited longer than this many
                seconds; default ``2 * flush_interval + 5``.
        """
        min_free = 2 * self._config.max_file_size if min_free_bytes is None else min_free_bytes
        max_age = (
            2 * self._config.flush_interval + 5.0 if max_pending_age is None else max_pending_age
        )
        writable, free = await anyio.to_thread.run_sync(_probe_directory, self._metrics_dir)
        age = self._oldest_pending_age()
        reasons: list[str] = []
        if self._state is not _State.OPEN:
            reasons.append(f"the writer is {self._state.value}")
        if not writable:
            reasons.append(f"cannot create files in {self._metrics_dir}")
        if free is not None and free < min_free:
            reasons.append(f"{free:,} bytes free, below {min_free:,}")
        if self._failures:
            reasons.append(
                f"{self._failures} failed write(s) since the last success"
                f" (last: {self._last_error})"
            )
        if age is not None and age > max_age:
            reasons.append(f"the oldest pending entry has waited {age:.1f}s (limit {max_age:g}s)")
        return HealthStatus(
            healthy=not reasons,
            reasons=tuple(reasons),
            writable=writable,
            free_bytes=free,
            errors_since_success=self._failures,
            oldest_pending_age=age,
        )

    def _oldest_pending_age(self) -> float | None:
        since = [t for t in (self._oldest_at, self._inflight_since) if t is not None]
        if not since or not self.pending:
            return None
        return time.monotonic() - min(since)

    # -- lifecycle -----------------------------------------------------------------

    async def initialize(self) -> None:
        """Create the directory, repair what an earlier crash left, open the active
        file, and start the background flusher. Calling it again does nothing.

        Several tasks may call it at once: one opens, the others wait for it, and
        there is one active file and one flusher. If the awaiting task is cancelled,
        opening goes on; a later call waits for it. If opening fails, every caller
        gets the error and ``initialize()`` may be called again.

        Raises:
            WriterClosedError: the writer was closed.
            OSError: the directory cannot be created or read.
        """
        if self._state is _State.OPEN:
            return
        if self._state is _State.UNOPENED:
            loop = self._check_loop()
            self._loop = loop
            self._state = _State.OPENING
            self._open_task = loop.create_task(self._open(), name="analytics-open")
            self._open_task.add_done_callback(_retrieve_exception)
        elif self._state is not _State.OPENING:
            raise WriterClosedError("this JSONLWriter is closed; create a new one")
        else:
            self._check_loop()
        assert self._open_task is not None
        await asyncio.shield(self._open_task)

    async def _open(self) -> None:
        """The one opening: everything ``initialize()`` does, run as its own task."""
        assert self._loop is not None
        self._flush_limiter = anyio.CapacityLimiter(1)
        self._compress_limiter = anyio.CapacityLimiter(1)
        try:
            opened = await anyio.to_thread.run_sync(self._storage.open, limiter=self._flush_limiter)
        except BaseException:
            if self._state is _State.OPENING:
                self._state = _State.UNOPENED  # initialize() may be tried again
            raise
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        if self._state is _State.OPENING:  # not if close() came meanwhile
            self._state = _State.OPEN
            self._accepting = True
        if self._storage.interval_ns is not None:
            self._boundary_ns = next_boundary_ns(time.time_ns(), self._storage.interval_ns)
        if self._retention_period:
            self._retention_at = time.monotonic()  # clean up once right after start
        self._flusher = self._loop.create_task(self._run_flusher(), name="analytics-flusher")
        for job in opened.to_compress:
            self._start_compression(job)

    async def __aenter__(self) -> JSONLWriter:
        await self.initialize()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Write everything pending, wait for compressions, and release the files.

        The active file stays uncompressed; the next writer continues it. Calling
        ``close()`` again does nothing. If the task awaiting ``close()`` is cancelled,
        closing goes on in the background, and a later ``close()`` waits for it.

        If ``initialize()`` is still opening, ``close()`` waits for it, then closes
        whatever it opened.

        Raises:
            WriteError: pending entries could not be written. They are kept, the
                writer accepts no new entries, and ``close()`` may be called again.
        """
        if self._state is _State.CLOSED:
            return
        if self._state is _State.UNOPENED:
            self._state = _State.CLOSED
            return
        loop = self._check_loop()
        self._state = _State.CLOSING
        self._accepting = False
        if self._close_task is None or self._close_task.done():
            self._close_task = loop.create_task(self._close_sequence(), name="analytics-close")
            self._close_task.add_done_callback(_retrieve_exception)
        await asyncio.shield(self._close_task)

    async def _close_sequence(self) -> None:
        if self._open_task is not None and not self._open_task.done():
            await asyncio.gather(self._open_task, return_exceptions=True)
        await self._flush(explicit=True)
        self._stopping = True
        self._poke()
        if self._flusher is not None:
            await self._flusher
        for path in list(self._compress_retry):
            self._start_compression(CompressJob(path))
        self._compress_retry.clear()
        while self._compressions:
            await asyncio.gather(*self._compressions, return_exceptions=True)
        await anyio.to_thread.run_sync(self._storage.close, limiter=self._flush_limiter)
        await self._handoff.stop()
        self._state = _State.CLOSED
        self._space_available()  # writers waiting for room now see the closed state

    # -- writing -------------------------------------------------------------------

    async def write(self, entry: MetricEntry) -> None:
        """Serialize ``entry`` now and buffer it.

        A bad entry fails here, alone. I/O errors of the flush this call may trigger
        are never raised here: they are logged and retried.

        Raises:
            TypeError: ``entry`` is not a MetricEntry.
            SerializationError: the entry holds a value JSON cannot represent.
            WriterClosedError: ``close()`` was called.
            WriterStateError: not initialized, or called from another event loop.
            BufferFullError: ``max_pending`` entries wait and ``on_full="raise"``.
        """
        # The hot path: a few attribute reads, one serialization, one append.
        if not self._accepting or asyncio.get_running_loop() is not self._loop:
            self._check_open()
        if not isinstance(entry, MetricEntry):
            raise TypeError(f"write() takes a MetricEntry, not {type(entry).__name__}")
        line = entry.to_json_line()
        buffer = self._buffer
        if len(buffer) + len(self._inflight) >= self._max_pending:
            if not await self._make_room(1):
                return
            buffer = self._buffer
        if self._oldest_at is None:
            self._oldest_at = time.monotonic()
            self._poke()  # the flusher starts the flush_interval clock
        buffer.append(line)
        size = len(buffer)
        if size == self._buffer_size:
            self._poke()
            if not self._inflight:  # see _accept
                await self._flush(explicit=False)
        elif size + size == self._max_pending:
            self._poke()  # half full: flush now, whatever the pace

    async def write_batch(self, entries: Iterable[MetricEntry]) -> None:
        """Serialize every entry, then buffer the good ones, in order.

        An entry that cannot be serialized is refused alone: the others are still
        buffered, and then one SerializationError names every refused entry by its
        index in ``entries`` and its id (the first failure is its ``__cause__``).

        Raises:
            TypeError: an item is not a MetricEntry (nothing is accepted).
            SerializationError: after buffering the good entries, if some were refused.
            The other errors of :meth:`write`.
        """
        from ._exceptions import SerializationError

        self._check_open()
        lines: list[bytes] = []
        refused: list[str] = []
        first: SerializationError | None = None
        items = list(entries)
        for entry in items:
            if not isinstance(entry, MetricEntry):
                raise TypeError(
                    f"write_batch() takes MetricEntry items, not {type(entry).__name__}"
                )
        for index, entry in enumerate(items):
            try:
                lines.append(entry.to_json_line())
            except SerializationError as exc:
                refused.append(f"#{index} (id {entry.id!r})")
                first = first or exc
        await self._write_lines(lines)
        if refused:
            raise SerializationError(
                f"write_batch() refused {len(refused)} of {len(items)} entries that"
                f" cannot be serialized: {', '.join(refused)}; the other"
                f" {len(lines)} were accepted"
            ) from first

    async def _write_lines(self, lines: list[bytes]) -> None:
        """The rest of write_batch: buffer serialized lines, applying on_full."""
        limit = self._config.max_pending
        if self._config.on_full == "raise" and self.pending + len(lines) > limit:
            raise BufferFullError(
                f"{len(lines)} entries do not fit: {self.pending} of max_pending={limit}"
                " are waiting to be written"
            )
        start = 0
        filled = False
        while start < len(lines):
            room = limit - self.pending
            if room <= 0:
                if not await self._make_room(len(lines) - start):
                    return
                continue
            before = len(self._buffer)
            self._accept(lines[start : start + room])
            filled = filled or before < self._config.buffer_size <= len(self._buffer)
            start += room
        if filled and not self._inflight:
            await self._flush(explicit=False)

    def _accept(self, lines: list[bytes]) -> None:
        """Buffer serialized lines; wake the flusher when a flush is due by size.

        The write that fills the buffer to ``buffer_size`` waits for that flush, so
        on a quiet writer its entries are on disk when it returns. While a flush is
        already running, later writes do not wait: their entries form the next batch,
        written as soon as the running flush ends (and ``max_pending`` bounds how far
        producers may run ahead).
        """
        if self._oldest_at is None:
            self._oldest_at = time.monotonic()
            self._poke()  # the flusher starts the flush_interval clock
        self._buffer.extend(lines)
        if len(self._buffer) >= self._config.buffer_size:
            self._poke()

    async def _make_room(self, wanted: int) -> bool:
        """Apply ``on_full``. Returns whether the entries may be accepted now."""
        policy = self._config.on_full
        if policy == "drop_newest":
            self._dropped += wanted
            return False
        if policy == "raise":
            raise BufferFullError(
                f"max_pending={self._config.max_pending} entries are waiting to be written;"
                " flush() or slow down (or choose on_full='wait')"
            )
        assert self._space is not None
        while self.pending >= self._config.max_pending:
            self._space.clear()
            self._poke()
            await self._space.wait()
            self._check_open()
        return True

    async def flush(self) -> None:
        """Write every entry accepted so far.

        Raises:
            WriteError: the entries could not be written. They are kept and retried.
            WriterStateError: not initialized, or called from another event loop.
        """
        if self._state is _State.CLOSED:
            return
        self._check_loop()
        if self._state is _State.UNOPENED:
            raise WriterStateError("call `await writer.initialize()` (or use `async with`) first")
        await self._flush(explicit=True)

    async def _flush(self, *, explicit: bool) -> None:
        if not self._buffer and not self._inflight:
            return
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((future, explicit))
        self._poke()
        await future

    # -- the flusher task ----------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _space_available(self) -> None:
        if self._space is not None:
            self._space.set()

    def _flush_due(self, now: float) -> bool:
        if self._waiters or self._stopping:
            return True
        if not self._buffer:
            return False
        if self._retry_at is not None:
            return now >= self._retry_at
        if len(self._buffer) >= min(self._config.buffer_size, self._config.max_pending):
            return (
                now >= self._last_flush_end + FLUSH_GAP
                or 2 * len(self._buffer) >= self._config.max_pending
            )
        return self._oldest_at is not None and now >= self._oldest_at + self._config.flush_interval

    def _boundary_at(self, now: float) -> float | None:
        """Loop time at which the next ``rotate_interval`` boundary is to be handled
        (after the current backoff, if writes are failing), if one is set."""
        if self._boundary_ns is None or self._stopping:
            return None
        at = now + (self._boundary_ns - time.time_ns()) / 1e9
        if self._retry_at is not None:
            at = max(at, self._retry_at)
        return at

    def _next_deadline(self, now: float) -> float | None:
        deadlines = list(self._compress_retry.values())
        boundary = self._boundary_at(now)
        if boundary is not None:
            deadlines.append(boundary)
        if self._retention_at is not None:
            deadlines.append(self._retention_at)
        if self._buffer:
            if self._retry_at is not None:
                deadlines.append(self._retry_at)
            else:
                if self._oldest_at is not None:
                    deadlines.append(self._oldest_at + self._config.flush_interval)
                if len(self._buffer) >= min(self._config.buffer_size, self._config.max_pending):
                    deadlines.append(self._last_flush_end + FLUSH_GAP)
        return min(deadlines) if deadlines else None

    async def _run_flusher(self) -> None:
        assert self._wake is not None
        while True:
            now = time.monotonic()
            if not self._flush_due(now) and not self._boundary_due(now):
                deadline = self._next_deadline(now)
                timeout = None if deadline is None else max(0.0, deadline - now)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._wake.clear()
                now = time.monotonic()
            self._retry_compressions(now)
            try:
                if self._boundary_due(now):
                    await self._cross_boundary(now)
                elif self._flush_due(now):
                    await self._flush_once(now)
                await self._maintain(now)
            except Exception as exc:  # a bug, not a disk fault: never wedge the writer
                logger.exception("analytics flusher failed; entries are kept and retried")
                await self._report_failure(OSError(f"unexpected error: {exc!r}"))
                error = WriteError(f"could not write: {exc!r}", pending=self.pending)
                error.__cause__ = exc
                waiters, self._waiters = self._waiters, []
                _settle(waiters, error)
            if self._stopping and not self._buffer and not self._waiters:
                return

    def _boundary_due(self, now: float) -> bool:
        at = self._boundary_at(now)
        return at is not None and now >= at

    async def _cross_boundary(self, now: float) -> None:
        """Handle a ``rotate_interval`` boundary, on time even on a quiet writer.

        The entries accepted before the boundary go to the active file (however long
        ``flush_interval`` is), which is then rotated and compressed. If nothing was
        accepted since the last boundary, nothing happens: the empty active file is
        kept (marked stale, so the next entry starts a new file), and a quiet writer
        makes no files and no compressions.
        """
        assert self._boundary_ns is not None
        wall = time.time_ns()
        boundary = now - (wall - self._boundary_ns) / 1e9  # as loop time
        before = self._oldest_at is not None and self._oldest_at < boundary
        if before or self._storage.size:
            # Entries accepted since the boundary passed (the flusher was busy, or
            # backing off) go with the earlier ones: a file never holds entries
            # accepted before its creation.
            if not await self._flush_once(now, boundary_ns=self._boundary_ns, take=before):
                return  # it failed: backing off, the boundary is handled again after
        else:
            self._storage.stale = True  # no I/O: the next batch starts a new file
        assert self._storage.interval_ns is not None
        self._boundary_ns = next_boundary_ns(wall, self._storage.interval_ns)

    async def _flush_once(
        self, now: float, *, boundary_ns: int | None = None, take: bool = True
    ) -> bool:
        """Write the buffer in one thread hop (at a boundary: then rotate).

        Returns:
            whether it succeeded (or there was nothing to do).
        """
        waiters: list[tuple[asyncio.Future[None], bool]] = []
        batch: list[bytes] = []
        if take:
            waiters, self._waiters = self._waiters, []
            in_backoff = self._retry_at is not None and now < self._retry_at
            if boundary_ns is None and (
                not self._buffer or (in_backoff and not any(explicit for _, explicit in waiters))
            ):
                # Nothing to write, or only implicit callers during a backoff: let them go.
                _settle(waiters, None)
                return True
            batch, self._buffer = self._buffer, []
            self._inflight = batch
            self._inflight_since, self._oldest_at = self._oldest_at, None
        try:
            if boundary_ns is None:
                hop = anyio.to_thread.run_sync(
                    self._storage.write, batch, limiter=self._flush_limiter
                )
            else:
                hop = anyio.to_thread.run_sync(
                    self._storage.seal, batch, boundary_ns, limiter=self._flush_limiter
                )
            outcome = await self._handoff.run(hop)
        except BaseException:
            # A loop shutdown, or a bug: keep the batch, and the callers waiting for it.
            if take:
                self._buffer[:0] = batch
                self._inflight = []
                self._oldest_at = self._inflight_since
                self._inflight_since = None
                self._waiters[:0] = waiters
            raise
        self._last_flush_end = time.monotonic()
        batch_since = None
        if take:
            self._inflight = []
            batch_since, self._inflight_since = self._inflight_since, None
        # A plain write that succeeds while a timed rotation is failing does not end
        # the failure streak: the rotation is still owed.
        owed = (
            boundary_ns is None
            and self._boundary_ns is not None
            and time.time_ns() >= self._boundary_ns
        )
        self._record(outcome, recovered=not owed)
        if outcome.error is None:
            _settle(waiters, None)
            if outcome.rotate_error is not None:
                await self._report_failure(
                    outcome.rotate_error, "rotate (rotate_interval) the active file in"
                )
        else:
            if take:
                self._buffer[:0] = batch[outcome.written :]
                self._oldest_at = batch_since if batch_since is not None else now
            error = WriteError(
                f"could not write to {self._metrics_dir}: {outcome.error};"
                f" {self.pending} entries are kept and will be retried",
                pending=self.pending,
            )
            error.__cause__ = outcome.error
            _settle(waiters, error)
            await self._report_failure(outcome.error)
        for job in outcome.rotated:
            self._start_compression(job)
        self._space_available()
        return outcome.error is None and outcome.rotate_error is None

    def _record(self, outcome: WriteOutcome, *, recovered: bool = True) -> None:
        self._flushes += 1
        self._entries_written += outcome.written
        self._bytes_written += outcome.bytes_written
        self._rotations += outcome.rotations
        self._files_deleted += outcome.deleted
        ok = outcome.error is None and outcome.rotate_error is None
        if ok and recovered and self._failures:
            logger.warning(
                "writes to %s recovered after %d failed attempt(s)",
                self._metrics_dir,
                self._failures,
            )
            self._failures = 0
            self._retry_at = None

    async def _report_failure(self, exc: OSError, what: str = "write to") -> None:
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._failures += 1
        delay = _retry_delay(self._failures)
        self._retry_at = time.monotonic() + delay
        now = time.monotonic()
        if self._failures == 1 or now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            logger.error(
                "cannot %s %s (%s); %d entries kept, retrying in %.2fs"
                " (further failures are logged at most every %ds)",
                what,
                self._metrics_dir,
                exc,
                self.pending,
                delay,
                int(_LOG_EVERY),
            )
        if self._on_error is not None:
            try:
                result = self._on_error(exc)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("the on_error callback raised")

    async def _maintain(self, now: float) -> None:
        """Timer-driven retention, so a quiet service still cleans up on time."""
        if self._retention_at is not None and now >= self._retention_at:
            self._retention_at = now + self._retention_period
            deleted = await self._handoff.run(
                anyio.to_thread.run_sync(
                    self._storage.retain_quietly, limiter=self._compress_limiter
                )
            )
            self._files_deleted += deleted

    # -- compression ---------------------------------------------------------------

    def _start_compression(self, job: CompressJob) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._compress(job), name=f"analytics-gzip-{job.path.name}")
        self._compressions.add(task)
        task.add_done_callback(self._compressions.discard)

    async def _compress(self, job: CompressJob) -> None:
        try:
            done, deleted = await self._handoff.run(
                anyio.to_thread.run_sync(
                    self._storage.compress_and_retain, job, limiter=self._compress_limiter
                )
            )
        except Exception as exc:  # OSError, or a bug: the file is kept either way
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._compress_retry[job.path] = time.monotonic() + _COMPRESS_RETRY
            logger.warning("could not compress %s (%s); it is kept and retried", job.path.name, exc)
            self._poke()
            return
        finally:
            Storage.release(job)
        if done:
            self._compressed += 1
        self._files_deleted += deleted

    def _retry_compressions(self, now: float) -> None:
        for path, when in list(self._compress_retry.items()):
            if now >= when:
                del self._compress_retry[path]
                self._start_compression(CompressJob(path))

    # -- checks --------------------------------------------------------------------

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise WriterStateError("JSONLWriter must be used from inside its event loop") from None
        if self._loop is not None and loop is not self._loop:
            raise WriterStateError(
                "this JSONLWriter belongs to another event loop; create one writer per loop"
                " (for example, one per worker process or thread)"
            )
        return loop

    def _check_open(self) -> None:
        self._check_loop()
        if self._state is _State.OPEN:
            return
        if self._state in (_State.UNOPENED, _State.OPENING):
            raise WriterStateError(
                "call `await writer.initialize()` (or use `async with`) first, and wait"
                " for it to return"
            )
        raise WriterClosedError(
            "this JSONLWriter is closed (or closing): it accepts no new entries"
        )

    def __repr__(self) -> str:
        return (
            f"<JSONLWriter {str(self._metrics_dir)!r} {self._state.value} pending={self.pending}>"
        )

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        state = getattr(self, "_state", _State.CLOSED)
        if state in (_State.OPEN, _State.CLOSING):
            _warn(
                f"JSONLWriter for {str(self._metrics_dir)!r} was never closed:"
                f" {self.pending} unwritten entries are lost; use `async with` or await close()",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )


def _retry_delay(failures: int) -> float:
    """Seconds before the next retry after ``failures`` failures in a row: doubling
    from ``_RETRY_FIRST``, capped at ``_RETRY_MAX``, with up to 25% random jitter so
    writers sharing a disk do not retry in lockstep. Never overflows: the exponent
    is capped before the power is computed."""
    exponent = min(max(failures - 1, 0), 32)
    base = min(_RETRY_FIRST * 2.0**exponent, _RETRY_MAX)
    return base * (0.75 + 0.25 * random.random())


def _settle(waiters: list[tuple[asyncio.Future[None], bool]], error: WriteError | None) -> None:
    for future, explicit in waiters:
        if future.done():
            continue  # its caller was cancelled
        if error is not None and explicit:
            future.set_exception(error)
        else:
            future.set_result(None)


def _retrieve_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a close() caller that was cancelled never sees it


def _probe_directory(directory: Path) -> tuple[bool, int | None]:
    """Can a file be created in ``directory``, and how many bytes are free there?"""
    probe = directory / f".health-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.unlink(probe)
        writable = True
    except OSError:
        writable = False
    try:
        st = os.statvfs(directory)
        free: int | None = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    return writable, free
