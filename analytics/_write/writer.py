"""JSONLWriter: the lifecycle (open, close, one event loop) and the public methods.

What happens to an entry after ``write()`` has serialized it (the buffer, the
background task, the one worker-thread hop per batch, backoff and failure reports)
is in :mod:`analytics._write.flusher`; the files themselves are :class:`Storage`'s.
"""

from __future__ import annotations

import asyncio
import enum
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal

import anyio
import anyio.to_thread

from .._config import WriterConfig
from .._exceptions import (
    ArgumentTypeError,
    ConfigError,
    SerializationError,
    WriterClosedError,
    WriterStateError,
)
from .._models import MetricEntry
from .flusher import ErrorCallback, Flusher
from .storage import Storage

__all__ = ["HealthStatus", "JSONLWriter", "WriterStats"]


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
        compressor: ``"zlib"`` (default) or ``"isal"`` (extra ``[isal]``: about 8x
            less CPU per file, files about 6 % larger), what makes the gzip files.
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
        compressor: Literal["zlib", "isal"] = "zlib",
        fsync: Literal["never", "rotate", "always"] = "rotate",
        max_pending: int = 10_000,
        on_full: Literal["wait", "drop_newest", "raise"] = "wait",
        filename_prefix: str = "metrics",
        rotate_interval: float | str | timedelta | None = None,
        max_age: float | str | timedelta | None = None,
        max_unshipped_bytes: int | str = 1024**3,
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
                compressor=compressor,
                fsync=fsync,
                max_pending=max_pending,
                on_full=on_full,
                filename_prefix=filename_prefix,
                rotate_interval=rotate_interval,
                max_age=max_age,
                max_unshipped_bytes=max_unshipped_bytes,
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
        if not isinstance(config, WriterConfig):
            raise ArgumentTypeError(
                "from_config(config, base_path=None) takes a WriterConfig first,"
                f" not {type(config).__name__}"
            )
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
        self._metrics_dir = Path(base_path) / "metrics"
        self._storage = Storage(self._metrics_dir, config)
        self._flusher = Flusher(self._storage, config, self._check_open, on_error)
        self._state = _State.UNOPENED
        self._accepting = False  # state is OPEN: the one check on the hot path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None  # the thread that runs self._loop
        self._open_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None

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
        return self._flusher.pending

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has finished."""
        return self._state is _State.CLOSED

    def stats(self) -> WriterStats:
        """A snapshot of the counters. Does no I/O."""
        counters = self._flusher.counters
        return WriterStats(
            entries_written=counters.entries_written,
            bytes_written=counters.bytes_written,
            flushes=counters.flushes,
            rotations=counters.rotations,
            compressions=counters.compressions,
            files_deleted=counters.files_deleted,
            pending=self.pending,
            dropped=counters.dropped,
            errors=counters.errors,
            last_error=counters.last_error,
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
        age = self._flusher.oldest_pending_age()
        failures = self._flusher.failures.count
        reasons: list[str] = []
        if self._state is not _State.OPEN:
            reasons.append(f"the writer is {self._state.value}")
        if not writable:
            reasons.append(f"cannot create files in {self._metrics_dir}")
        if free is not None and free < min_free:
            reasons.append(f"{free:,} bytes free, below {min_free:,}")
        if failures:
            reasons.append(
                f"{failures} failed write(s) since the last success"
                f" (last: {self._flusher.counters.last_error})"
            )
        if age is not None and age > max_age:
            reasons.append(f"the oldest pending entry has waited {age:.1f}s (limit {max_age:g}s)")
        return HealthStatus(
            healthy=not reasons,
            reasons=tuple(reasons),
            writable=writable,
            free_bytes=free,
            errors_since_success=failures,
            oldest_pending_age=age,
        )

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
            self._thread = threading.get_ident()
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
        try:
            opened = await self._flusher.hop(self._storage.open)
        except BaseException:
            if self._state is _State.OPENING:
                self._state = _State.UNOPENED  # initialize() may be tried again
            raise
        if self._state is _State.OPENING:  # not if close() came meanwhile
            self._state = _State.OPEN
            self._accepting = True
        self._flusher.start(opened.to_compress)

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
        await self._flusher.stop()
        self._state = _State.CLOSED
        self._flusher.space_available()  # writers waiting for room now see the state

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
        # The hot path: a few attribute reads, one serialization, one append. A thread
        # runs one loop at a time, so "our thread, and our loop is running" means the
        # running loop is ours, without asyncio.get_running_loop()'s getpid() call.
        loop = self._loop
        if (
            not self._accepting
            or threading.get_ident() != self._thread
            or loop is None
            or not loop.is_running()
        ):
            self._check_open()
        if not isinstance(entry, MetricEntry):
            raise ArgumentTypeError(f"write() takes a MetricEntry, not {type(entry).__name__}")
        moment = entry.timestamp
        await self._flusher.add([entry.to_json_line()], moment, moment)

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
        self._check_open()
        lines: list[bytes] = []
        refused: list[str] = []
        first: SerializationError | None = None
        items = list(entries)
        for entry in items:
            if not isinstance(entry, MetricEntry):
                raise ArgumentTypeError(
                    f"write_batch() takes MetricEntry items, not {type(entry).__name__}"
                )
        times = []
        for index, entry in enumerate(items):
            try:
                lines.append(entry.to_json_line())
            except SerializationError as exc:
                refused.append(f"#{index} (id {entry.id!r})")
                first = first or exc
            else:
                times.append(entry.timestamp)
        if lines:
            first_time: datetime | None
            last_time: datetime | None
            try:
                first_time, last_time = min(times), max(times)
            except TypeError:  # times that do not compare (entries built unvalidated)
                first_time = last_time = None
            await self._flusher.add(lines, first_time, last_time)
        if refused:
            raise SerializationError(
                f"write_batch() refused {len(refused)} of {len(items)} entries that"
                f" cannot be serialized: {', '.join(refused)}; the other"
                f" {len(lines)} were accepted"
            ) from first

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
        await self._flusher.flush(explicit=True)

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
