"""Keeping the writer's worker threads alive next to a busy event loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
import zlib
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["ASYNC_BACKEND", "GilHandoff", "release_gil_for"]

ASYNC_BACKEND = "anyio._backends._asyncio"
"""The module anyio imports, lazily, the first time a worker thread is asked for.

That first time is on the event loop, inside ``initialize()``, and the import costs
15-25 ms of module code during which the loop runs nothing else. It is imported here
instead, with the package (normally before any loop runs), so the loop never pays
for it; ``tests/write/test_handoff_startup.py`` keeps it that way."""

importlib.import_module(ASYNC_BACKEND)

T = TypeVar("T")

HANDOFF = 0.00015
"""Seconds the event loop lets go of the GIL for in one handoff (about)."""

HANDOFF_EVERY = 0.002
"""Seconds between handoffs while a worker thread has work."""

BUSY_SHARE = 0.9
"""A handoff is due only if the loop's thread kept its CPU for more than this share of
the period before it. A loop that went to sleep in ``select()`` meanwhile let go of
the GIL for long enough that any waiting thread took it: a service that is not
saturated never pays for handoffs."""


class GilHandoff:
    """Lets our worker threads have the GIL while they have work.

    A busy event loop starves worker threads. CPython hands the GIL to a waiting
    thread only if the holder keeps it for a whole switch interval, and a busy loop
    lets go of it for a moment at every iteration, in ``select()``: each of those
    moments restarts the waiting thread's clock, yet is too short for it to wake up
    and take the GIL. Each system call inside a hop waits again.

    So while a hop is in flight, every ``HANDOFF_EVERY`` the loop lets go of the GIL
    for about ``HANDOFF``, which is long enough for the waiting thread to take it.
    The cost is bounded (a small share of the loop's time, and only while our
    threads have work and the loop has been busy: ``BUSY_SHARE``).

    The loop stays on its CPU meanwhile (:func:`release_gil_for`) rather than
    sleeping: on a virtual machine a sleeping thread can take milliseconds to be
    woken up (``benchmarks/wakeup.py`` measures it). How the period and the length
    were chosen, and what they changed, is in docs/benchmarks.md.
    """

    def __init__(self) -> None:
        self._busy = 0
        self.handoffs = 0
        """How many times the loop let go of the GIL for our threads."""
        self._task: asyncio.Task[None] | None = None

    async def run(self, hop: Awaitable[T]) -> T:
        """Await ``hop`` (a thread hop), handing the GIL over while it is in flight."""
        self._busy += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._hand_over(), name="analytics-gil-handoff"
            )
        try:
            return await hop
        finally:
            self._busy -= 1

    async def _hand_over(self) -> None:
        try:
            since, cpu = time.perf_counter(), time.thread_time()
            while self._busy:
                await asyncio.sleep(HANDOFF_EVERY)
                now, used = time.perf_counter(), time.thread_time()
                if self._busy and used - cpu > BUSY_SHARE * (now - since):
                    # The one moment here that lets a worker thread in; about
                    # HANDOFF long, and nothing else holds up the loop.
                    release_gil_for(HANDOFF)
                    self.handoffs += 1
                    now, used = time.perf_counter(), time.thread_time()
                since, cpu = now, used
        finally:
            self._task = None

    async def stop(self) -> None:
        """Cancel the handoff task, if one runs (used at close)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_spin_buffers: dict[float, memoryview] = {}


def release_gil_for(seconds: float) -> None:
    """Keep the CPU busy for about ``seconds`` with the GIL released, never sleeping.

    zlib computes a CRC-32 without the GIL (for more than 5 KiB of input), so one
    ``crc32`` over a buffer sized to take that long lets any thread waiting for the
    GIL take it, while this thread stays on its CPU. The size is measured on first
    use, and the buffer kept.
    """
    buffer = _spin_buffers.get(seconds)
    if buffer is None:
        probe = memoryview(bytes(64 * 1024))
        fastest = min(_timed_crc32(probe) for _ in range(5))
        size = int(len(probe) * seconds / max(fastest, 1e-9))
        buffer = memoryview(bytes(min(max(size, 16 * 1024), 16 * 1024 * 1024)))
        _spin_buffers[seconds] = buffer
    zlib.crc32(buffer)


def _timed_crc32(data: memoryview) -> float:
    started = time.perf_counter()
    zlib.crc32(data)
    return time.perf_counter() - started
