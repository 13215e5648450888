"""The background half of the writer: when batches are written, and what a failure does.

The path an entry takes, once ``JSONLWriter.write`` has serialized it to one line:

1. **Buffer.** :meth:`Flusher.add` appends the line to :attr:`Flusher.buffer`,
   applying the full-buffer rule (``max_pending`` / ``on_full``) on the way; this is
   the one place that rule is written. The write that fills the buffer to
   ``buffer_size`` waits for the flush it starts; other writes return at once.
2. **Background task.** :meth:`Flusher.run` sleeps until something is due: a full
   buffer (paced by :data:`FLUSH_GAP` under sustained load), the ``flush_interval``
   of the oldest entry, an explicit ``flush()`` or ``close()``, a
   ``rotate_interval`` boundary (:meth:`Flusher.next_deadline` gathers them all).
3. **One worker-thread hop per batch.** It takes the whole buffer as one batch and
   hands it to :meth:`Storage.write <analytics._write.storage.Storage.write>` (or
   ``seal`` at a boundary) in one ``anyio.to_thread`` hop, through
   :class:`GilHandoff` so a busy loop does not starve the thread.
4. **File.** The outcome comes back to the loop: the counters (:class:`WriteCounters`)
   are updated, callers waiting for the batch are settled, rotated files go to the
   :class:`Housekeeper` (gzip and retention, each in a hop of its own). A failed
   batch is put back at the front of the buffer and :class:`Failures` takes over:
   backoff with jitter, one log line per :data:`LOG_EVERY` seconds, ``on_error``.

Everything here runs on the writer's event loop; only ``Storage`` methods run in
worker threads.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._bounds import Span, is_aware, widen
from .._config import WriterConfig
from .._exceptions import BufferFullError, WriteError
from .._policy import backoff_delay, next_boundary_ns
from .handoff import GilHandoff
from .storage import CompressJob, Storage, WriteOutcome

__all__ = [
    "COMPRESS_RETRY",
    "FLUSH_GAP",
    "LOG_EVERY",
    "RETRY_FIRST",
    "RETRY_MAX",
    "ErrorCallback",
    "Failures",
    "Flusher",
    "Housekeeper",
    "WriteCounters",
    "retry_delay",
]

logger = logging.getLogger("analytics")

T = TypeVar("T")

ErrorCallback = Callable[[BaseException], Any]
Waiter = tuple["asyncio.Future[None]", bool]  # (future, explicit flush)

RETRY_FIRST = 0.05
"""Seconds before the first retry of a failed implicit flush; doubles per failure."""
RETRY_MAX = 5.0
"""The longest wait between retries, so recovery is noticed within seconds."""
LOG_EVERY = 30.0
"""While writes keep failing, log at most one line per this many seconds."""
COMPRESS_RETRY = 5.0
"""Seconds before a failed compression is tried again."""
FLUSH_GAP = 0.01
"""Under sustained load, the least time between the end of one flush and the start
of the next (unless someone waits for it, or half of ``max_pending`` is waiting).
Each thread hop costs the event loop the same whatever the batch size, so while
entries keep arriving, fewer and larger batches cost less (see docs/benchmarks.md)."""


def retry_delay(failures: int) -> float:
    """Seconds before the next retry after ``failures`` failures in a row: doubling
    from :data:`RETRY_FIRST`, capped at :data:`RETRY_MAX`, with up to 25% random
    jitter so writers sharing a disk do not retry in lockstep. Never overflows: the
    exponent is capped before the power is computed."""
    return backoff_delay(failures, RETRY_FIRST, RETRY_MAX, jitter=0.25)


@dataclass(slots=True)
class WriteCounters:
    """What the writer has done so far; the source of ``JSONLWriter.stats()``."""

    entries_written: int = 0
    bytes_written: int = 0
    flushes: int = 0
    rotations: int = 0
    compressions: int = 0
    files_deleted: int = 0
    dropped: int = 0
    """Entries discarded by ``on_full="drop_newest"``."""
    errors: int = 0
    """Failed write and compression attempts."""
    last_error: str | None = None

    def error(self, exc: BaseException) -> None:
        """Count a failed attempt."""
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def record(self, outcome: WriteOutcome) -> None:
        """Count what one flush (a ``Storage.write`` or ``seal``) did."""
        self.flushes += 1
        self.entries_written += outcome.written
        self.bytes_written += outcome.bytes_written
        self.rotations += outcome.rotations
        self.files_deleted += outcome.deleted


class Failures:
    """Owns backoff and failure reporting for writes: how many attempts failed in a
    row, when the next may be made, the rate-limited log, and ``on_error``."""

    def __init__(
        self, directory: Path, counters: WriteCounters, on_error: ErrorCallback | None
    ) -> None:
        self.directory = directory
        self.counters = counters
        self.on_error = on_error
        self.count = 0
        """Consecutive failed attempts; 0 once one succeeds."""
        self.retry_at: float | None = None
        """Loop time before which implicit flushes are not retried (the backoff)."""
        self.last_log = -LOG_EVERY

    async def report(self, exc: OSError, pending: int, what: str = "write to") -> None:
        """A write (or timed rotation) failed: count, back off, log, call on_error."""
        self.counters.error(exc)
        self.count += 1
        delay = retry_delay(self.count)
        now = time.monotonic()
        self.retry_at = now + delay
        if self.count == 1 or now - self.last_log >= LOG_EVERY:
            self.last_log = now
            logger.error(
                "cannot %s %s (%s); %d entries kept, retrying in %.2fs"
                " (further failures are logged at most every %ds)",
                what,
                self.directory,
                exc,
                pending,
                delay,
                int(LOG_EVERY),
            )
        if self.on_error is not None:
            try:
                result = self.on_error(exc)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("the on_error callback raised")

    def recovered(self) -> None:
        """An attempt succeeded: end the streak (logged once) and the backoff."""
        if self.count:
            logger.warning(
                "writes to %s recovered after %d failed attempt(s)", self.directory, self.count
            )
            self.count = 0
            self.retry_at = None


class Housekeeper:
    """Owns the work on closed files: one gzip task per rotated file (retried after
    :data:`COMPRESS_RETRY` if it fails) and the retention timer (a quarter of
    ``max_age``, at most a minute), each a thread hop of its own, one at a time."""

    def __init__(
        self,
        storage: Storage,
        config: WriterConfig,
        counters: WriteCounters,
        handoff: GilHandoff,
        wake: Callable[[], None],
    ) -> None:
        self.storage = storage
        self.counters = counters
        self.handoff = handoff
        self.wake = wake
        self.limiter: anyio.CapacityLimiter | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        """Compressions running now."""
        self.retry: dict[Path, float] = {}
        """Files whose compression failed, and when to try again (loop time)."""
        self.retention_period = min(config.max_age / 4, 60.0) if config.max_age else 0.0
        self.retention_at: float | None = None

    def start(self, to_compress: list[CompressJob]) -> None:
        """Called on the loop once the files are open."""
        self.limiter = anyio.CapacityLimiter(1)
        if self.retention_period:
            self.retention_at = time.monotonic()  # clean up once right after start
        for job in to_compress:
            self.compress(job)

    def compress(self, job: CompressJob) -> None:
        """Compress ``job`` in the background (then apply retention)."""
        task = asyncio.get_running_loop().create_task(
            self._compress(job), name=f"analytics-gzip-{job.path.name}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _compress(self, job: CompressJob) -> None:
        try:
            done, deleted = await self.handoff.run(
                anyio.to_thread.run_sync(
                    self.storage.compress_and_retain, job, limiter=self.limiter
                )
            )
        except Exception as exc:  # OSError, or a bug: the file is kept either way
            self.counters.error(exc)
            self.retry[job.path] = time.monotonic() + COMPRESS_RETRY
            logger.warning("could not compress %s (%s); it is kept and retried", job.path.name, exc)
            self.wake()
            return
        finally:
            Storage.release(job)
        if done:
            self.counters.compressions += 1
        self.counters.files_deleted += deleted

    def deadlines(self) -> list[float]:
        """Loop times at which something here is due."""
        due = list(self.retry.values())
        if self.retention_at is not None:
            due.append(self.retention_at)
        return due

    def retry_due(self, now: float) -> None:
        """Start the compressions due for a retry."""
        for path, when in list(self.retry.items()):
            if now >= when:
                del self.retry[path]
                self.compress(CompressJob(path))

    async def maintain(self, now: float) -> None:
        """Timer-driven retention, so a quiet service still cleans up on time."""
        if self.retention_at is not None and now >= self.retention_at:
            self.retention_at = now + self.retention_period
            deleted = await self.handoff.run(
                anyio.to_thread.run_sync(self.storage.retain_quietly, limiter=self.limiter)
            )
            self.counters.files_deleted += deleted

    async def drain(self) -> None:
        """At close: retry every failed compression now, and wait for them all."""
        for path in list(self.retry):
            self.compress(CompressJob(path))
        self.retry.clear()
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


class Flusher:
    """Owns the buffer and the background task that writes it: the full-buffer rule,
    when a batch is due (size, ``flush_interval``, :data:`FLUSH_GAP`, explicit
    flushes, ``rotate_interval`` boundaries, the backoff), the one thread hop per
    batch, and settling the callers that wait for it. See the module docstring."""

    def __init__(
        self,
        storage: Storage,
        config: WriterConfig,
        check_open: Callable[[], None],
        on_error: ErrorCallback | None,
    ) -> None:
        self.storage = storage
        self.config = config
        self.check_open = check_open
        """Raises if the writer no longer accepts entries (after waiting for room)."""
        self.buffer_size = config.buffer_size
        self.max_pending = config.max_pending
        self.counters = WriteCounters()
        self.failures = Failures(storage.directory, self.counters, on_error)
        self.handoff = GilHandoff()
        self.housekeeper = Housekeeper(storage, config, self.counters, self.handoff, self.poke)

        self.buffer: list[bytes] = []  # accepted, waiting for the next flush
        self.inflight: list[bytes] = []  # handed to the worker thread right now
        self.first: datetime | None = None  # earliest entry time in the buffer
        self.last: datetime | None = None  # latest entry time in the buffer
        self.times_known = True  # False once a buffered entry's time could not be taken
        self.oldest_at: float | None = None  # loop time the oldest buffered entry came
        self.inflight_since: float | None = None  # the same, for the batch in flight
        self.last_flush_end = -math.inf  # loop time when the last flush ended
        self.waiters: list[Waiter] = []
        self.boundary_ns: int | None = None  # the next rotate_interval boundary (epoch ns)
        self.stopping = False
        self.limiter: anyio.CapacityLimiter | None = None
        self.wake: asyncio.Event | None = None
        self.space: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Entries accepted but not yet written."""
        return len(self.buffer) + len(self.inflight)

    def oldest_pending_age(self) -> float | None:
        """Seconds the oldest unwritten entry has waited; ``None`` if nothing waits."""
        since = [t for t in (self.oldest_at, self.inflight_since) if t is not None]
        if not since or not self.pending:
            return None
        return time.monotonic() - min(since)

    # -- start and stop ------------------------------------------------------------

    async def hop(self, func: Callable[[], T]) -> T:
        """Run a blocking ``Storage`` call in a worker thread, never beside a flush."""
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(func, limiter=self.limiter)

    def start(self, to_compress: list[CompressJob]) -> None:
        """The files are open: start the background task (and the housekeeping)."""
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.space = asyncio.Event()
        if self.storage.interval_ns is not None:
            self.boundary_ns = next_boundary_ns(time.time_ns(), self.storage.interval_ns)
        self.task = loop.create_task(self.run(), name="analytics-flusher")
        self.housekeeper.start(to_compress)

    async def stop(self) -> None:
        """Write everything, end the task, finish the compressions, release the file.

        Raises:
            WriteError: the pending entries could not be written (nothing stopped).
        """
        await self.flush(explicit=True)
        self.stopping = True
        self.poke()
        if self.task is not None:
            await self.task
        await self.housekeeper.drain()
        await self.hop(self.storage.close)
        await self.handoff.stop()

    # -- the buffer ----------------------------------------------------------------

    async def add(self, lines: list[bytes], first: datetime | None, last: datetime | None) -> None:
        """Buffer serialized lines, in order, whose entry times lie in ``[first, last]``
        (``None``: unknown).
        The full-buffer rule lives here (and in :meth:`_add_when_full`), for
        ``write`` and ``write_batch`` alike.

        The write that fills the buffer to ``buffer_size`` waits for that flush, so
        on a quiet writer its entries are on disk when it returns. While a flush is
        already running, later writes do not wait: their entries form the next batch,
        written as soon as the running flush ends (and ``max_pending`` bounds how far
        producers may run ahead).

        Raises:
            BufferFullError: they do not fit and ``on_full="raise"`` (none accepted).
            WriterClosedError: the writer closed while waiting for room.
        """
        if len(self.buffer) + len(self.inflight) + len(lines) <= self.max_pending:
            filled = self._take(lines, first, last)
        else:
            filled = await self._add_when_full(lines, first, last)
        if filled and not self.inflight:
            await self.flush(explicit=False)

    def _take(self, lines: list[bytes], first: datetime | None, last: datetime | None) -> bool:
        """Append lines that fit; wake the task when a flush falls due by size.
        Returns whether they filled the buffer to ``buffer_size``."""
        if not lines:
            return False
        if first is None or last is None:
            self.times_known = False
        else:
            try:
                if self.first is None or first < self.first:
                    self.first = first
                if self.last is None or last > self.last:
                    self.last = last
            except TypeError:  # a time that does not compare (an entry built unvalidated)
                self.times_known = False
        buffer = self.buffer
        before = len(buffer)
        if self.oldest_at is None:
            self.oldest_at = time.monotonic()
            self.poke()  # the task starts the flush_interval clock
        buffer.extend(lines)
        after = len(buffer)
        if before < self.buffer_size <= after:
            self.poke()
            return True
        if before + before < self.max_pending <= after + after:
            self.poke()  # half full: flush now, whatever the pace
        return False

    def _take_span(self) -> Span | None:
        """The span of the buffer's entry times, handed over with the buffer: ``None``
        if one of them was unknown, or is not a timezone-aware datetime."""
        first, last, known = self.first, self.last, self.times_known
        self.first = self.last = None
        self.times_known = True
        if known and is_aware(first) and is_aware(last):
            return (first, last)
        return None

    def _give_back_span(self, span: Span | None) -> None:
        """Lines of a batch went back to the buffer: so does (all of) its span."""
        if span is None:
            self.times_known = False
            return
        current = None if self.first is None or self.last is None else (self.first, self.last)
        try:
            self.first, self.last = widen(current, span)
        except TypeError:  # the buffer meanwhile took a time that does not compare
            self.times_known = False

    async def _add_when_full(
        self, lines: list[bytes], first: datetime | None, last: datetime | None
    ) -> bool:
        """``on_full``: lines that do not all fit in ``max_pending``."""
        policy = self.config.on_full
        if policy == "raise":
            raise BufferFullError(
                f"{len(lines)} entr{'y does' if len(lines) == 1 else 'ies do'} not fit:"
                f" {self.pending} of max_pending={self.max_pending} are waiting to be"
                " written; flush() or slow down (or choose on_full='wait')"
            )
        filled = False
        start = 0
        while start < len(lines):
            room = self.max_pending - self.pending
            if room > 0:
                filled = self._take(lines[start : start + room], first, last) or filled
                start += room
            elif policy == "drop_newest":
                self.counters.dropped += len(lines) - start
                break
            else:  # "wait"
                assert self.space is not None
                while self.pending >= self.max_pending:
                    self.space.clear()
                    self.poke()
                    await self.space.wait()
                    self.check_open()
        return filled

    async def flush(self, *, explicit: bool) -> None:
        """Wait until everything accepted so far is written (or, if ``explicit``,
        raise WriteError when it cannot be)."""
        if not self.buffer and not self.inflight:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((future, explicit))
        self.poke()
        await future

    def poke(self) -> None:
        """Wake the task: something may be due."""
        if self.wake is not None:
            self.wake.set()

    def space_available(self) -> None:
        """Wake the writers waiting for room (they check again)."""
        if self.space is not None:
            self.space.set()

    # -- deadlines -----------------------------------------------------------------

    def flush_due(self, now: float) -> bool:
        if self.waiters or self.stopping:
            return True
        if not self.buffer:
            return False
        if self.failures.retry_at is not None:
            return now >= self.failures.retry_at
        if len(self.buffer) >= min(self.buffer_size, self.max_pending):
            return (
                now >= self.last_flush_end + FLUSH_GAP or 2 * len(self.buffer) >= self.max_pending
            )
        return self.oldest_at is not None and now >= self.oldest_at + self.config.flush_interval

    def boundary_at(self, now: float) -> float | None:
        """Loop time at which the next ``rotate_interval`` boundary is to be handled
        (after the current backoff, if writes are failing), if one is set."""
        if self.boundary_ns is None or self.stopping:
            return None
        at = now + (self.boundary_ns - time.time_ns()) / 1e9
        if self.failures.retry_at is not None:
            at = max(at, self.failures.retry_at)
        return at

    def boundary_due(self, now: float) -> bool:
        at = self.boundary_at(now)
        return at is not None and now >= at

    def next_deadline(self, now: float) -> float | None:
        """The soonest loop time at which something is due, if anything is."""
        deadlines = self.housekeeper.deadlines()
        boundary = self.boundary_at(now)
        if boundary is not None:
            deadlines.append(boundary)
        if self.buffer:
            if self.failures.retry_at is not None:
                deadlines.append(self.failures.retry_at)
            else:
                if self.oldest_at is not None:
                    deadlines.append(self.oldest_at + self.config.flush_interval)
                if len(self.buffer) >= min(self.buffer_size, self.max_pending):
                    deadlines.append(self.last_flush_end + FLUSH_GAP)
        return min(deadlines) if deadlines else None

    # -- the task ------------------------------------------------------------------

    async def run(self) -> None:
        """The background task: sleep until something is due, do it, repeat."""
        assert self.wake is not None
        while True:
            now = time.monotonic()
            if not self.flush_due(now) and not self.boundary_due(now):
                deadline = self.next_deadline(now)
                timeout = None if deadline is None else max(0.0, deadline - now)
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    pass
                self.wake.clear()
                now = time.monotonic()
            self.housekeeper.retry_due(now)
            try:
                if self.boundary_due(now):
                    await self.cross_boundary(now)
                elif self.flush_due(now):
                    await self.flush_once(now)
                await self.housekeeper.maintain(now)
            except Exception as exc:  # a bug, not a disk fault: never wedge the writer
                logger.exception("analytics flusher failed; entries are kept and retried")
                await self.failures.report(OSError(f"unexpected error: {exc!r}"), self.pending)
                error = WriteError(f"could not write: {exc!r}", pending=self.pending)
                error.__cause__ = exc
                waiters, self.waiters = self.waiters, []
                settle(waiters, error)
            if self.stopping and not self.buffer and not self.waiters:
                return

    async def cross_boundary(self, now: float) -> None:
        """Handle a ``rotate_interval`` boundary, on time even on a quiet writer.

        The entries accepted before the boundary go to the active file (however long
        ``flush_interval`` is), which is then rotated and compressed. If nothing was
        accepted since the last boundary, nothing happens: the empty active file is
        kept (marked stale, so the next entry starts a new file), and a quiet writer
        makes no files and no compressions.
        """
        assert self.boundary_ns is not None
        wall = time.time_ns()
        boundary = now - (wall - self.boundary_ns) / 1e9  # as loop time
        before = self.oldest_at is not None and self.oldest_at < boundary
        if before or self.storage.size:
            # Entries accepted since the boundary passed (the flusher was busy, or
            # backing off) go with the earlier ones: a file never holds entries
            # accepted before its creation.
            if not await self.flush_once(now, boundary_ns=self.boundary_ns, take=before):
                return  # it failed: backing off, the boundary is handled again after
        else:
            self.storage.stale = True  # no I/O: the next batch starts a new file
        assert self.storage.interval_ns is not None
        self.boundary_ns = next_boundary_ns(wall, self.storage.interval_ns)

    async def flush_once(
        self, now: float, *, boundary_ns: int | None = None, take: bool = True
    ) -> bool:
        """Write the buffer in one thread hop (at a boundary: then rotate).

        Returns:
            whether it succeeded (or there was nothing to do).
        """
        waiters: list[Waiter] = []
        batch: list[bytes] = []
        span: Span | None = None
        if take:
            waiters, self.waiters = self.waiters, []
            retry_at = self.failures.retry_at
            in_backoff = retry_at is not None and now < retry_at
            if boundary_ns is None and (
                not self.buffer or (in_backoff and not any(explicit for _, explicit in waiters))
            ):
                # Nothing to write, or only implicit callers during a backoff: let them go.
                settle(waiters, None)
                return True
            batch, self.buffer = self.buffer, []
            span = self._take_span()
            self.inflight = batch
            self.inflight_since, self.oldest_at = self.oldest_at, None
        try:
            if boundary_ns is None:
                hop = anyio.to_thread.run_sync(
                    self.storage.write, batch, span, limiter=self.limiter
                )
            else:
                hop = anyio.to_thread.run_sync(
                    self.storage.seal, batch, boundary_ns, span, limiter=self.limiter
                )
            outcome = await self.handoff.run(hop)
        except BaseException:
            # A loop shutdown, or a bug: keep the batch, and the callers waiting for it.
            if take:
                self.buffer[:0] = batch
                self._give_back_span(span)
                self.inflight = []
                self.oldest_at = self.inflight_since
                self.inflight_since = None
                self.waiters[:0] = waiters
            raise
        self.last_flush_end = time.monotonic()
        batch_since = None
        if take:
            self.inflight = []
            batch_since, self.inflight_since = self.inflight_since, None
        self.counters.record(outcome)
        # A plain write that succeeds while a timed rotation is failing does not end
        # the failure streak: the rotation is still owed.
        owed = (
            boundary_ns is None
            and self.boundary_ns is not None
            and time.time_ns() >= self.boundary_ns
        )
        if outcome.error is None and outcome.rotate_error is None and not owed:
            self.failures.recovered()
        if outcome.error is None:
            settle(waiters, None)
            if outcome.rotate_error is not None:
                what = "rotate (rotate_interval) the active file in"
                await self.failures.report(outcome.rotate_error, self.pending, what)
        else:
            if take:
                self.buffer[:0] = batch[outcome.written :]
                if outcome.written < len(batch):
                    self._give_back_span(span)
                self.oldest_at = batch_since if batch_since is not None else now
            error = WriteError(
                f"could not write to {self.storage.directory}: {outcome.error};"
                f" {self.pending} entries are kept and will be retried",
                pending=self.pending,
            )
            error.__cause__ = outcome.error
            settle(waiters, error)
            await self.failures.report(outcome.error, self.pending)
        for job in outcome.rotated:
            self.housekeeper.compress(job)
        self.space_available()
        return outcome.error is None and outcome.rotate_error is None


def settle(waiters: list[Waiter], error: WriteError | None) -> None:
    """Wake the callers waiting for a flush: ``error`` reaches the explicit ones."""
    for future, explicit in waiters:
        if future.done():
            continue  # its caller was cancelled
        if error is not None and explicit:
            future.set_exception(error)
        else:
            future.set_result(None)
