"""What a shipper and an archiver share: the directory they serve, the lock of their
sink in it, running in the background of an ``async with`` block, and how they retry
a delivery that fails."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import anyio

from .. import _checkpoint as cp
from .. import _fileops as ops
from .._exceptions import ShipError, ShipperLockedError, ShipRetryableError
from .._policy import backoff_delay
from .._read.files import resolve_metrics_dir

__all__ = ["RETRY_FIRST", "BackgroundService", "Retries", "metrics_dir_for", "take_sink_lock"]

logger = logging.getLogger("analytics")

RETRY_FIRST = 0.5
"""Seconds before the first retry of a failed delivery; the wait then doubles."""


class RetryStats(Protocol):
    """The fields of a shipper's or an archiver's stats that retries keep."""

    failures_in_a_row: int
    retries: int
    last_error: str | None


class Retries:
    """The failures in a row of one delivery (a batch, a file): counted in the stats,
    logged at the first and every tenth, spaced by a growing backoff, and given up
    once they have lasted longer than ``give_up_after`` seconds."""

    def __init__(self, stats: RetryStats, give_up_after: float | None, max_delay: float) -> None:
        self.stats = stats
        self.give_up_after = give_up_after
        self.max_delay = max_delay
        self.failures = 0
        self.failing_since = 0.0

    def failed(self, exc: ShipRetryableError, what: str) -> float:
        """Count a failure of ``what`` (``"shipping to X"``); returns the seconds to
        wait before the next try.

        Raises:
            ShipRetryableError: ``exc``, once the failures have lasted too long.
        """
        self.failures += 1
        if self.failures == 1:
            self.failing_since = time.monotonic()
        elif (
            self.give_up_after is not None
            and time.monotonic() - self.failing_since > self.give_up_after
        ):
            raise exc
        self.stats.failures_in_a_row = self.failures
        self.stats.retries += 1
        self.stats.last_error = str(exc)
        delay = backoff_delay(self.failures, RETRY_FIRST, self.max_delay, jitter=1.0)
        if self.failures == 1 or self.failures % 10 == 0:
            logger.warning("%s failed (%s); retrying (attempt %d)", what, exc, self.failures + 1)
        return delay

    def succeeded(self, what: str) -> None:
        """The delivery went through: the streak ends (and is logged, if there was one)."""
        self.stats.failures_in_a_row = 0
        if self.failures:
            logger.warning("%s works again after %d failed attempts", what, self.failures)


def metrics_dir_for(base_path: Path, prefix: str) -> Path:
    """The directory to serve (blocking). A shipper or an archiver may start before
    its writer: a base path with no ``metrics`` folder yet, and no data or checkpoint
    of its own, is the writer's base path, and its ``metrics`` folder is made for it."""
    directory = resolve_metrics_dir(base_path)
    if directory.name == "metrics" or directory != base_path:
        return directory
    names = os.listdir(directory)
    if any(n.startswith((f"{prefix}_", cp.CHECKPOINT_PREFIX)) for n in names):
        return directory  # the metrics folder itself, named otherwise
    directory = directory / "metrics"
    directory.mkdir(exist_ok=True)
    return directory


def take_sink_lock(directory: Path, sink_id: str, display: str, role: str) -> int:
    """Take the lock of ``sink_id`` in ``directory`` without waiting, and write our pid
    in it (blocking). Returns its file descriptor, to close to release it.

    Raises:
        ShipperLockedError: another process (a ``role``) holds it, named by its pid.
    """
    fd = os.open(cp.lock_path(directory, sink_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if not ops.lock_exclusive(fd, wait=False):
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ShipperLockedError(
            f"another {role} (pid {holder}) holds the lock of {directory} for {display}"
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class BackgroundService:
    """``async with`` opens, runs :meth:`run` in the background until the block ends,
    then stops and closes; a :class:`ShipError` that ended the run is raised then."""

    def __init__(self) -> None:
        self._stop = anyio.Event()
        self._task_group: Any = None
        self._failure: BaseException | None = None

    async def open(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask :meth:`run` to return after the work in flight (safe from a signal
        handler running on the loop)."""
        self._stop.set()

    async def __aenter__(self) -> Self:
        await self.open()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run_in_background)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            self._task_group = None
            await self.aclose()
        if self._failure is not None and exc is None:
            raise self._failure

    async def _run_in_background(self) -> None:
        try:
            await self.run()
        except ShipError as exc:
            self._failure = exc

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if stopped meanwhile."""
        if seconds > 0:
            with anyio.move_on_after(seconds):
                await self._stop.wait()
