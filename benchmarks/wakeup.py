"""How long this machine takes to wake a sleeping thread: the price of every GIL handoff.

    python benchmarks/wakeup.py

The writer's GIL handoff (``analytics/_write/handoff.py``) makes the event loop wait
0.1 ms with the GIL released, so a worker thread can take it. This measures what such
a wait really costs here: on an idle machine, and with a second thread compressing on
the other core (as a gzip of a rotated file does).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import zlib

WAIT = 0.0001


def timed_waits(count: int) -> list[float]:
    gate = threading.Lock()
    gate.acquire()
    took = []
    for _ in range(count):
        started = time.perf_counter()
        gate.acquire(timeout=WAIT)
        took.append(time.perf_counter() - started)
    return took


def report(label: str, took: list[float]) -> None:
    took = sorted(took)
    n = len(took)
    print(
        f"{label:<40} p50 {took[n // 2] * 1e6:7.0f} µs   p99 {took[int(n * 0.99)] * 1e6:7.0f} µs"
        f"   max {took[-1] * 1e6:8.0f} µs   over 1 ms: {sum(t > 0.001 for t in took)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()

    report("0.1 ms timed wait, idle machine", timed_waits(args.count))

    stop = threading.Event()
    blob = b"".join(b'{"n": %d, "argument": "%s"}\n' % (i, b"x" * 120) for i in range(5000))

    def compress() -> None:
        while not stop.is_set():
            zlib.compress(blob, 6)

    worker = threading.Thread(target=compress, daemon=True)
    worker.start()
    try:
        report("0.1 ms timed wait, zlib on the other core", timed_waits(args.count))
    finally:
        stop.set()
        worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
