"""The writer's threads under load: GIL handoffs to a waiting worker thread."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import pytest

from analytics._write.handoff import HANDOFF, HANDOFF_EVERY, GilHandoff, release_gil_for


async def _busy(stop: asyncio.Event) -> None:
    """A producer that never waits: it only yields to the loop."""
    while not stop.is_set():
        sum(range(3000))  # about 100 µs of Python holding the GIL
        await asyncio.sleep(0)


def handoff_tasks() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name() == "analytics-gil-handoff" and not t.done()
    ]


async def handoff_task_ended(timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while handoff_tasks():
        assert time.monotonic() < deadline, "the handoff task still runs"
        await asyncio.sleep(0.005)


class TestGilHandoff:
    async def test_hands_over_only_while_hops_are_in_flight(self) -> None:
        handoff = GilHandoff()
        assert await handoff.run(asyncio.to_thread(lambda: 7)) == 7
        await handoff_task_ended()  # the handoff task ends once nothing is in flight
        before = handoff.handoffs
        await asyncio.sleep(0.05)
        assert handoff.handoffs == before  # idle: the loop is never held up
        await handoff.stop()

    async def test_a_busy_loop_still_lets_a_thread_hop_through(self) -> None:
        """Four producers that only ever yield keep a worker thread waiting for the
        GIL; with handoffs, a hop with a few system calls in it gets through."""
        stop = asyncio.Event()
        producers = [asyncio.create_task(_busy(stop)) for _ in range(4)]
        handoff = GilHandoff()

        def hop() -> int:
            # In flight for longer than HANDOFF_EVERY, so a handoff is always due...
            time.sleep(0.005)
            for _ in range(5):
                os.stat(".")  # ...and each call gives up the GIL and must win it back
            return 1

        try:
            done = 0
            for _ in range(10):
                done += await asyncio.wait_for(handoff.run(asyncio.to_thread(hop)), 30)
        finally:
            stop.set()
            await asyncio.gather(*producers)
            await handoff.stop()
        assert done == 10
        assert handoff.handoffs > 0  # the loop did let go of the GIL for the hops

    async def test_a_loop_that_sleeps_meanwhile_is_never_held_up(self) -> None:
        """A loop that is not busy lets go of the GIL in select() anyway: a hop in
        flight for many periods costs it no handoff."""
        handoff = GilHandoff()
        await handoff.run(asyncio.to_thread(time.sleep, 50 * HANDOFF_EVERY))
        assert handoff.handoffs == 0
        await handoff.stop()

    async def test_a_failing_hop_raises_and_the_handoff_winds_down(self) -> None:
        handoff = GilHandoff()

        def hop() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await handoff.run(asyncio.to_thread(hop))
        await handoff_task_ended()  # the failed hop no longer counts as in flight
        before = handoff.handoffs
        await asyncio.sleep(0.05)
        assert handoff.handoffs == before
        await handoff.stop()

    def test_a_handoff_lets_a_waiting_thread_take_the_gil(self) -> None:
        """With forced switches all but turned off, a thread waiting for the GIL can
        only get it when this thread lets go: release_gil_for must do so."""
        release_gil_for(HANDOFF)  # the first call measures the machine: not the test
        ran = threading.Event()
        woken = threading.Event()

        def waiter() -> None:
            woken.wait()
            ran.set()  # needs the GIL

        thread = threading.Thread(target=waiter)
        thread.start()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(100.0)
        try:
            woken.set()
            spins = 0
            while not ran.is_set() and spins < 20_000:
                release_gil_for(HANDOFF)  # the only moment the GIL is free
                spins += 1
        finally:
            sys.setswitchinterval(interval)
            thread.join()
        assert ran.is_set()
        assert spins < 20_000
