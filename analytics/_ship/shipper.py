"""The shipper: a directory's entries into a central engine, at least once, so that
the engine's dedup (by entry ``id``) makes it exactly once.

The directory is the durable buffer; the shipper only reads it. One loop per sink:

    read (worker thread: list, read past each file's offset, decode whole lines)
      -> insert one batch (the engine; retried with capped, fully jittered backoff;
         a refused batch is bisected down to the lines the engine refuses)
      -> checkpoint (worker thread: rejects written, offsets advanced, replaced
         atomically) -- only after the engine acknowledged the batch.

A crash anywhere re-sends at most the batch in flight, which the engine drops as
duplicates (a dedup token where the engine knows them, the ``id`` key always).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
from pydantic_core import to_json

from .. import _checkpoint as cp
from .._exceptions import (
    ShipError,
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
)
from .._read.rows import fields_from_line
from .archive import Archiver
from .engine import Batch, Engine, Row, open_engine
from .pending import PendingReader, Snapshot
from .running import BackgroundService, Retries, metrics_dir_for, take_sink_lock
from .target import Target, parse_target

__all__ = ["Shipper", "ShipperHealth", "ShipperStats"]

logger = logging.getLogger("analytics")

MIB = 1024 * 1024


@dataclass
class ShipperStats:
    """What a shipper has done, and how far behind it is."""

    entries_shipped: int = 0
    bytes_shipped: int = 0
    """Bytes of the lines shipped, as they are in the files."""
    batches: int = 0
    retries: int = 0
    rejected_lines: int = 0
    """Lines written to the rejects file: not entries, or refused by the engine."""
    lag_bytes: int = 0
    """Uncompressed bytes in the directory not shipped yet (at the last read)."""
    lag_files: int = 0
    oldest_unshipped_age: float | None = None
    """Seconds since the oldest entry not shipped yet was written (by its timestamp);
    ``None`` when everything is shipped."""
    lost_files: int = 0
    """Files deleted (by retention) before they were shipped: see the checkpoint."""
    lost_lines: int = 0
    running: bool = False
    failures_in_a_row: int = 0
    """Failed attempts at the batch in flight (0 once it is in)."""
    last_error: str | None = None


@dataclass(frozen=True)
class ShipperHealth:
    """The answer of :meth:`Shipper.health`."""

    healthy: bool
    reasons: tuple[str, ...]
    """Why it is unhealthy; empty when healthy."""


class _Item(NamedTuple):
    row: Row
    stem: str
    start: int
    end: int
    line: bytes


@dataclass
class _Work:
    """One read: what to insert, and what to record once it is in."""

    snapshot: Snapshot
    items: list[_Item] = field(default_factory=list)
    refused: list[tuple[_Item | None, str, int, bytes, str]] = field(default_factory=list)
    """(item, stem, offset, line, reason) of lines to write to the rejects file."""
    oldest: datetime | None = None

    @property
    def changes(self) -> bool:
        return bool(self.snapshot.segments)


class Shipper(BackgroundService):
    """Ship the entries of ``base_path`` (the writer's directory) to ``to``.

    ::

        async with Shipper("./data", to="clickhouse://127.0.0.1:8123/db?table=entries"):
            ...  # ships in the background until the block ends

    Args:
        base_path: the directory given to ``JSONLWriter`` (or its ``metrics`` folder).
        to: ``clickhouse://HOST:8123/DB?table=NAME`` or
            ``postgresql://USER@HOST:5432/DB?table=NAME``.
        source: what the ``source`` column says for this directory; by default
            ``<host name>/<directory id>`` (the id is kept in the directory).
        prefix: the writer's ``filename_prefix``.
        batch_lines, batch_bytes: the most lines and (about) bytes per insert.
        min_insert_interval: under load, at most one insert per this many seconds
            (what ClickHouse and PostgreSQL advise: few, large inserts).
        poll_interval: how often a caught-up shipper looks for new lines.
        max_retry_delay: the longest wait between retries of a failing batch.
        archive: also archive the directory's completed files to S3 while shipping:
            ``s3://BUCKET/PREFIX`` or an :class:`Archiver` (for its options). It runs
            beside the shipper (``run``, ``ship_once``, ``async with``); a fatal
            archive error stops both.

    Raises:
        TargetError: ``to`` cannot be used.
        MissingDependencyError: the engine's client is not installed.
    """

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        to: str | Target,
        *,
        source: str | None = None,
        prefix: str = "metrics",
        batch_lines: int = 20_000,
        batch_bytes: int = 16 * MIB,
        min_insert_interval: float = 1.0,
        poll_interval: float = 0.5,
        max_retry_delay: float = 30.0,
        sync: bool = True,
        archive: str | Archiver | None = None,
    ) -> None:
        self.target = to if isinstance(to, Target) else parse_target(to)
        self.archiver: Archiver | None = (
            Archiver(base_path, archive, prefix=prefix, sync=sync)
            if isinstance(archive, str)
            else archive
        )
        """The archiver that runs beside this shipper, if any (its ``stats()``)."""
        self.engine: Engine = open_engine(self.target)
        for name, value in (("batch_lines", batch_lines), ("batch_bytes", batch_bytes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, number in (
            ("min_insert_interval", min_insert_interval),
            ("poll_interval", poll_interval),
            ("max_retry_delay", max_retry_delay),
        ):
            if not (isinstance(number, int | float) and math.isfinite(number) and number >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {number!r}")
        self._base_path = Path(base_path)
        self._source = source
        self._prefix = prefix
        self._batch_lines = batch_lines
        self._batch_bytes = batch_bytes
        self._min_interval = float(min_insert_interval)
        self._poll = float(poll_interval)
        self._max_retry = float(max_retry_delay)
        self._sync = sync
        self._stats = ShipperStats()
        self._checkpoint: cp.Checkpoint | None = None
        self._directory: Path | None = None
        self._reader: PendingReader | None = None
        self._lock_fd: int | None = None
        super().__init__()  # _stop, the background task group, _failure
        self._one_batch = anyio.Lock()
        self._next: _Work | None = None  # read ahead while the previous batch was sent
        self._give_up_after: float | None = None
        self._stopped = anyio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Take the sink's lock, load the checkpoint and connect (creating the table
        if it is absent). Does not start shipping: see :meth:`run`, :meth:`ship_once`,
        or use the shipper as an async context manager.

        Raises:
            MetricsDirNotFoundError: the directory does not exist.
            ShipperLockedError: another shipper holds this sink's lock.
            ShipRetryableError: the engine cannot be reached.
            ShipFatalError: authentication failed, or the database does not exist.
        """
        await anyio.to_thread.run_sync(self._open_files)
        try:
            await self.engine.open()
            if self.archiver is not None:
                await self.archiver.open()
        except BaseException:
            await self.engine.aclose()
            await self._close_files()
            raise

    async def aclose(self) -> None:
        """Close the connection and release the lock (the checkpoint is already saved
        after every batch)."""
        await self.engine.aclose()
        await self._close_files()
        if self.archiver is not None:
            await self.archiver.aclose()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the batch in flight (safe from a signal
        handler running on the loop)."""
        super().stop()
        if self.archiver is not None:
            self.archiver.stop()

    def stats(self) -> ShipperStats:
        """A copy of the counters."""
        return ShipperStats(**self._stats.__dict__)

    def health(self, *, max_lag: float = 60.0) -> ShipperHealth:
        """Unhealthy while the engine refuses us (stopped for good, or the batch in
        flight failing), or when the oldest entry not shipped yet is older than
        ``max_lag`` seconds."""
        stats, reasons = self._stats, []
        if self._failure is not None:
            reasons.append(f"stopped: {self._failure}")
        if stats.failures_in_a_row:
            reasons.append(
                f"{stats.failures_in_a_row} failed attempts in a row: {stats.last_error}"
            )
        age = stats.oldest_unshipped_age
        if age is not None and age > max_lag:
            reasons.append(f"the oldest entry not shipped is {age:.0f}s old (limit {max_lag:g}s)")
        return ShipperHealth(not reasons, tuple(reasons))

    @property
    def source(self) -> str:
        """The ``source`` column of this directory's rows (after :meth:`open`)."""
        assert self._checkpoint is not None, "open() first"
        return self._checkpoint.source

    @property
    def checkpoint_file(self) -> Path:
        """Where this sink's checkpoint is (after :meth:`open`)."""
        assert self._directory is not None, "open() first"
        return cp.checkpoint_path(self._directory, self.target.sink_id)

    @property
    def rejects_file(self) -> Path:
        """Where the lines refused for good are written (after :meth:`open`)."""
        assert self._directory is not None, "open() first"
        return cp.rejects_path(self._directory, self.target.sink_id)

    # -- shipping --------------------------------------------------------------------

    async def ship_once(self, *, give_up_after: float | None = None) -> int:
        """Ship everything in the directory now, then return how many entries were
        shipped. (What a writer adds meanwhile may be shipped too.)

        Args:
            give_up_after: when the engine has failed for this many seconds in a row
                on one batch, raise its last error instead of retrying on (``None``:
                retry until :meth:`stop`). What was shipped before stays recorded.

        Raises:
            ShipFatalError: the engine refuses us for good.
            ShipRetryableError: with ``give_up_after``, the engine kept failing.
        """
        before = self._stats.entries_shipped
        self._give_up_after = give_up_after
        try:
            while not self._stop.is_set():
                shipped, work = await self._cycle()
                if not shipped:
                    break
                if not work.snapshot.full and not work.items:
                    break
        finally:
            self._give_up_after = None
        if self.archiver is not None and not self._stop.is_set():
            await self.archiver.archive_once(give_up_after=give_up_after)
        return self._stats.entries_shipped - before

    async def run(self) -> None:
        """Ship until :meth:`stop` is called: new lines within about ``poll_interval``
        of their flush, at most one insert per ``min_insert_interval`` under load.

        Raises:
            ShipFatalError: the engine (or the archive's S3) refuses us for good
                (logged first).
        """
        archiver = self.archiver
        if archiver is None:
            await self._ship_until_stopped()
            return
        failure: ShipError | None = None

        async def archive() -> None:
            nonlocal failure
            try:
                await archiver.run()
            except ShipError as exc:  # raised below, outside the task group
                failure = exc
                self.stop()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(archive)
            try:
                await self._ship_until_stopped()
            except ShipError as exc:
                failure = exc
            finally:
                archiver.stop()
        if failure is not None:
            raise failure

    async def _ship_until_stopped(self) -> None:
        self._stats.running = True
        last_insert = -math.inf
        previous_full = False
        try:
            while not self._stop.is_set():
                if not previous_full:
                    await self._sleep(last_insert + self._min_interval - time.monotonic())
                if self._stop.is_set():
                    break
                started = time.monotonic()
                shipped, work = await self._cycle()
                if work.items:
                    last_insert = started
                if not shipped:
                    break
                previous_full = work.snapshot.full
                if not work.items and not work.snapshot.full:
                    await self._sleep(self._poll)
        except ShipFatalError as exc:
            self._stats.last_error = str(exc)
            logger.error("shipping to %s stopped: %s", self.target.display(), exc)
            raise
        finally:
            self._stats.running = False
            self._stopped.set()

    async def _cycle(self) -> tuple[bool, _Work]:
        """Read, insert, record: one batch. One at a time per shipper (``run`` in the
        background and a ``ship_once`` call take turns): one batch in flight.

        With a backlog, the next batch is read and decoded in a worker thread while
        this one is on the wire (the engine's time and ours overlap); it starts where
        this one ends, and is dropped if this one is not recorded."""
        async with self._one_batch:
            work, self._next = self._next, None
            if work is None:
                work = await anyio.to_thread.run_sync(self._read_blocking, None)
            if not (work.items and work.snapshot.full):
                return await self._ship(work), work
            ahead = dict(self._files())
            for segment in work.snapshot.segments:
                ahead[segment.stem] = cp.FileProgress(segment.end, segment.complete)
            following: list[_Work] = []

            async def read_ahead() -> None:
                following.append(await anyio.to_thread.run_sync(self._read_blocking, ahead))

            failure: Exception | None = None
            shipped = False
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read_ahead)
                try:
                    shipped = await self._ship(work)
                except Exception as exc:  # raised as itself, not in an exception group
                    failure = exc
            if failure is not None:
                raise failure
            if shipped and following:
                self._next = following[0]
            return shipped, work

    def _files(self) -> dict[str, cp.FileProgress]:
        assert self._checkpoint is not None
        return self._checkpoint.files

    async def _ship(self, work: _Work) -> bool:
        """Insert the work's rows, then record it. ``False`` if stopped before the
        engine took them (nothing recorded: they are read again next time)."""
        if work.items:
            self._stats.oldest_unshipped_age = (
                (datetime.now(UTC) - work.oldest).total_seconds() if work.oldest else None
            )
            delivered = await self._deliver(work.items, work)
            if not delivered:
                return False
        if work.changes or work.refused:
            await anyio.to_thread.run_sync(self._record, work)
        if work.items:
            self._stats.batches += 1
            self._stats.entries_shipped += len(work.items) - sum(
                1 for item, *_ in work.refused if item is not None
            )
            self._stats.bytes_shipped += sum(len(item.line) + 1 for item in work.items)
            logger.info(
                "shipped %d entries to %s; lag %d bytes in %d files",
                len(work.items),
                self.target.display(),
                work.snapshot.lag_bytes,
                work.snapshot.lag_files,
                extra={
                    "entries": len(work.items),
                    "lag_bytes": work.snapshot.lag_bytes,
                    "lag_files": work.snapshot.lag_files,
                },
            )
        if not work.snapshot.full and not work.snapshot.lag_bytes:
            self._stats.oldest_unshipped_age = None
        return True

    async def _deliver(self, items: Sequence[_Item], work: _Work) -> bool:
        """Insert ``items`` until the engine has them all (retrying, and bisecting a
        refused batch). ``False`` if stopped while waiting to retry."""
        retries = Retries(self._stats, self._give_up_after, self._max_retry)
        while True:
            try:
                await self.engine.insert(Batch([i.row for i in items], self._token(items)))
                retries.succeeded(f"shipping to {self.target.display()}")
                return True
            except ShipRetryableError as exc:
                await self._sleep(retries.failed(exc, f"shipping to {self.target.display()}"))
                if self._stop.is_set():
                    return False
            except ShipRejectedError as exc:
                if len(items) == 1:
                    item = items[0]
                    work.refused.append((item, item.stem, item.start, item.line, str(exc)))
                    return True
                middle = len(items) // 2
                for half in (items[:middle], items[middle:]):
                    if not await self._deliver(half, work):
                        return False
                return True

    def _token(self, items: Sequence[_Item]) -> str:
        """The same rows always get the same token: source, then each file's range."""
        ranges: list[str] = []
        stem, start, end = items[0].stem, items[0].start, items[0].end
        for item in items[1:]:
            if item.stem == stem and item.start == end:
                end = item.end
                continue
            ranges.append(f"{stem}:{start}-{end}")
            stem, start, end = item.stem, item.start, item.end
        ranges.append(f"{stem}:{start}-{end}")
        assert self._checkpoint is not None
        text = "|".join([self._checkpoint.source, *ranges])
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    # -- blocking parts (worker threads) ---------------------------------------------

    def _open_files(self) -> None:
        directory = metrics_dir_for(self._base_path, self._prefix)
        sink = self.target.sink_id
        fd = take_sink_lock(directory, sink, self.target.display(), "shipper")
        try:
            checkpoint = cp.load_checkpoint(cp.checkpoint_path(directory, sink))
            if checkpoint is None:
                source = self._source or cp.default_source(directory)
                checkpoint = cp.Checkpoint(sink=self.target.display(), source=source)
            elif self._source is not None and self._source != checkpoint.source:
                raise ValueError(
                    f"{cp.checkpoint_path(directory, sink)} ships as source"
                    f" {checkpoint.source!r}, not {self._source!r}"
                )
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd, self._directory, self._checkpoint = fd, directory, checkpoint
        self._reader = PendingReader(directory, self._prefix)
        self._stats.lost_files = len(checkpoint.lost)
        self._stats.lost_lines = sum(max(loss.lines, 0) for loss in checkpoint.lost)

    async def _close_files(self) -> None:
        def close() -> None:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

        await anyio.to_thread.run_sync(close)

    def _read_blocking(self, progress: dict[str, cp.FileProgress] | None) -> _Work:
        """The next batch past ``progress`` (default: the checkpoint), decoded."""
        assert self._reader is not None
        assert self._checkpoint is not None
        if progress is None:
            progress = self._checkpoint.files
        snapshot = self._reader.read(progress, self._batch_lines, self._batch_bytes)
        work = _Work(snapshot)
        source = self._checkpoint.source
        oldest: datetime | None = None
        items = work.items
        for segment in snapshot.segments:
            stem, position = segment.stem, segment.start
            for line in segment.lines:  # the hot loop: one pass per line shipped
                start, position = position, position + len(line) + 1
                if not line:
                    continue  # as every reader does
                try:
                    kind, moment, _, ident, sid, uid, data, meta = fields_from_line(line)
                    row = Row(
                        ident,
                        moment,
                        kind,
                        sid,
                        uid,
                        _json_text(data),
                        _json_text(meta) if meta else "{}",
                        source,
                    )
                except ValueError as exc:  # pydantic's ValidationError included
                    reason = f"not a valid entry: {str(exc).splitlines()[0]}"
                    work.refused.append((None, stem, start, line, reason))
                    continue
                if oldest is None or moment < oldest:
                    oldest = moment
                items.append(_Item(row, stem, start, position, line))
        work.oldest = oldest
        self._stats.lag_bytes = snapshot.lag_bytes
        self._stats.lag_files = snapshot.lag_files
        return work

    def _record(self, work: _Work) -> None:
        """After the engine has the batch: rejects, then the checkpoint."""
        assert self._directory is not None
        assert self._checkpoint is not None
        checkpoint, sink = self._checkpoint, self.target.sink_id
        for _item, stem, offset, line, reason in work.refused:
            cp.append_record(
                cp.rejects_path(self._directory, sink),
                {
                    "at": cp.now_iso(),
                    "stem": stem,
                    "offset": offset,
                    "error": reason,
                    "line": line.decode("utf-8", errors="replace"),
                },
            )
            logger.error("%s at byte %d: line rejected (%s)", stem, offset, reason)
        for segment in work.snapshot.segments:
            checkpoint.files[segment.stem] = cp.FileProgress(segment.end, segment.complete)
        shipped = len(work.items) - sum(1 for item, *_ in work.refused if item is not None)
        checkpoint.shipped += shipped
        checkpoint.rejected += len(work.refused)
        self._stats.rejected_lines += len(work.refused)
        self._fold_losses(work.snapshot.stems)
        cp.save_checkpoint(cp.checkpoint_path(self._directory, sink), checkpoint, sync=self._sync)

    def _fold_losses(self, present: set[str]) -> None:
        """Fold in the losses the writer's retention guard recorded, and prune the
        files that are gone: shipped ones silently, others as losses."""
        assert self._directory is not None
        assert self._checkpoint is not None
        checkpoint = self._checkpoint
        known = {loss.stem for loss in checkpoint.lost}
        for loss in cp.read_losses(cp.losses_path(self._directory, self.target.sink_id)):
            if loss.stem not in known:
                known.add(loss.stem)
                self._lose(loss)
        for stem in [stem for stem in checkpoint.files if stem not in present]:
            progress = checkpoint.files.pop(stem)
            if progress.complete or stem in known:
                continue
            logger.error(
                "%s was deleted before it was all shipped (by hand, or by a writer"
                " without the retention guard): its lines past byte %d are lost",
                stem,
                progress.offset,
            )
            self._lose(cp.Loss(stem, -1, cp.now_iso()))

    def _lose(self, loss: cp.Loss) -> None:
        assert self._checkpoint is not None
        self._checkpoint.lost.append(loss)
        self._stats.lost_files += 1
        self._stats.lost_lines += max(loss.lines, 0)


def _json_text(value: dict[str, Any]) -> str:
    """``value`` as JSON text for the engine.

    Raises:
        ValueError: it holds a number no engine's JSON takes (a literal such as
            ``1e999`` reads back as infinity); the line is rejected, not altered.
    """
    text = to_json(value)
    if (b"Infinity" in text or b"NaN" in text) and _holds_non_finite(value):
        raise ValueError("it holds a number beyond what JSON can carry (such as 1e999)")
    return text.decode()


def _holds_non_finite(value: Any) -> bool:
    """Whether a parsed JSON value holds infinity or NaN anywhere (looked for only
    when its text shows one might be there: a rare line)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_holds_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_non_finite(v) for v in value)
    return False
