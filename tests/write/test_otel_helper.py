"""The OTel sink's helper process: it builds and exports the log records, so that
the OpenTelemetry SDK's Python never competes with the service's event loop for the
GIL. Against a real collector (rotel); the service and the helper are killed for
real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from analytics import MetricEntry, MetricType, OTelSink

from ..helpers import wait_for
from .otlp_receiver import OtlpReceiver

FAST: dict[str, Any] = {"schedule_delay": 0.05, "timeout": 2.0}


SERVICE = """
import asyncio, sys
from analytics import MetricEntry, MetricType, OTelSink

async def main():
    sink = OTelSink(sys.argv[1], metrics=False, schedule_delay=0.05)
    await sink.start()
    for _ in range(3):
        await sink.write(MetricEntry(type=MetricType.SESSION_START))
    await sink.flush()
    print(sink.helper_pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # exited; waiting for init to reap it


class TestTheHelperProcess:
    """The log records are built and exported by a helper process, so that the SDK's
    Python never competes with the service's event loop for the GIL."""

    async def test_it_dies_with_the_service(self, otlp_receiver: OtlpReceiver) -> None:
        service = subprocess.Popen(
            [sys.executable, "-c", SERVICE, otlp_receiver.endpoint],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert service.stdout is not None
            line = await asyncio.to_thread(service.stdout.readline)
            helper = int(line)
            assert helper != service.pid
            assert not gone(helper)
            records = await asyncio.to_thread(otlp_receiver.wait_for, 3)
            assert len(records) == 3  # exported by the helper
            service.kill()  # SIGKILL: nothing of the service runs any more
            await asyncio.to_thread(service.wait)
            await wait_for(lambda: gone(helper), timeout=15)
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
            if service.stdout is not None:
                service.stdout.close()

    async def test_a_killed_helper_is_replaced_and_what_it_held_is_counted(
        self, otlp_receiver: OtlpReceiver
    ) -> None:
        sink = OTelSink(otlp_receiver.endpoint, metrics=False, **FAST)
        await sink.start()
        first = sink.helper_pid
        assert first is not None
        await sink.write(MetricEntry(type=MetricType.SESSION_START))
        await sink.flush()
        os.kill(first, signal.SIGKILL)
        sent: list[MetricEntry] = []

        def arrived() -> set[object]:
            return {r.attributes["analytics.id"] for r in otlp_receiver.log_records()}

        deadline = time.monotonic() + 20
        while True:  # until entries written after the kill arrive through a new helper
            entry = MetricEntry(type=MetricType.SESSION_START)
            sent.append(entry)
            await sink.write(entry)
            await asyncio.sleep(0.05)
            if entry.id in await asyncio.to_thread(arrived) or time.monotonic() > deadline:
                break
        await sink.flush()
        assert sink.helper_pid not in (None, first)
        await sink.close()
        stats = sink.stats()
        assert stats.records == len(sent) + 1
        assert stats.exported + stats.dropped == stats.records
        assert stats.in_flight == 0
        assert stats.exported == len(await asyncio.to_thread(arrived))
        assert sent[-1].id in await asyncio.to_thread(arrived)
