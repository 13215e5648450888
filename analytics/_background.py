"""Keeping the writer's worker threads alive next to a busy event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["GilHandoff"]

T = TypeVar("T")

HANDOFF = 0.0001
"""Seconds the event loop lets go of the GIL for, at most, in one handoff."""

HANDOFF_EVERY = 0.003
"""Seconds between handoffs while a worker thread has work."""


class GilHandoff:
    """Lets our worker threads have the GIL while they have work.

    A busy event loop starves worker threads. CPython hands the GIL to a waiting
    thread only if the holder keeps it for a whole switch interval (5 ms), and a
    busy loop lets go of it for a moment at every iteration, in ``select()``: each
    of those moments restarts the waiting thread's clock, yet is too short for it to
    wake up and take the GIL. Measured on 2 cores with four busy producers, a thread
    hop took a median 2 ms to complete and up to 570 ms; with a gzip running beside
    it, a median 81 ms. Each system call inside the hop waits again.

    So while a hop is in flight, every 3 ms the loop lets go of the GIL for at most
    0.1 ms, which is long enough for the waiting thread to take it. The cost is
    bounded (at most 1/30 of the loop's time, and only while our threads have work).
    With a handoff every millisecond, the same hops took a median 2.6 ms (4.6 ms
    beside a gzip) and at most 33 ms; every 3 ms cost the writer's benchmark less
    loop time for the same effect (rotated files compressed as fast as they appear,
    no producer waiting for room).
    """

    def __init__(self) -> None:
        self._busy = 0
        self.handoffs = 0
        """How many times the loop let go of the GIL for our threads."""
        self._task: asyncio.Task[None] | None = None
        self._gate = threading.Lock()
        self._gate.acquire()  # never released: acquiring it again just waits

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
            while self._busy:
                await asyncio.sleep(HANDOFF_EVERY)
                if self._busy:
                    # Waits with the GIL released: the one moment here that lets a
                    # worker thread in. Bounded by HANDOFF; nothing else blocks.
                    self._gate.acquire(timeout=HANDOFF)
                    self.handoffs += 1
        finally:
            self._task = None

    async def stop(self) -> None:
        """Cancel the handoff task, if one runs (used at close)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
