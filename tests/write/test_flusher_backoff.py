"""Corner cases of the writer's failure handling."""

from __future__ import annotations

import time
from pathlib import Path

from analytics._write.flusher import RETRY_MAX, Failures, WriteCounters, retry_delay


def test_retry_delay_never_overflows_and_is_capped() -> None:
    for failures in (1, 2, 10, 1000, 5000, 10**9):
        delay = retry_delay(failures)
        assert 0 < delay <= RETRY_MAX


def test_retry_delay_has_jitter() -> None:
    assert len({retry_delay(100) for _ in range(50)}) > 1


async def test_report_failure_after_5000_failures_keeps_the_flusher(tmp_path: Path) -> None:
    """The 5001st failure in a row still reports and backs off (at most RETRY_MAX)
    instead of overflowing in the backoff and killing the flusher that called it."""
    counters = WriteCounters()
    seen: list[BaseException] = []
    failures = Failures(tmp_path, counters, seen.append)
    failures.count = 5000  # a public counter: the streak so far
    error = OSError(28, "No space left on device")
    before = time.monotonic()
    await failures.report(error, 7)
    assert failures.count == 5001
    assert failures.retry_at is not None
    assert before < failures.retry_at <= time.monotonic() + RETRY_MAX
    assert counters.errors == 1
    assert seen == [error]


async def test_failures_count_back_off_and_recover(tmp_path: Path) -> None:
    """A failure counts, sets a retry time; a success ends both."""
    counters = WriteCounters()
    failures = Failures(tmp_path, counters, None)
    await failures.report(OSError(28, "No space left on device"), 3)
    assert (failures.count, counters.errors) == (1, 1)
    assert counters.last_error == "OSError: [Errno 28] No space left on device"
    assert failures.retry_at is not None
    failures.recovered()
    assert failures.count == 0
    assert failures.retry_at is None
