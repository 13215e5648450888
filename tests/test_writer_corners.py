"""Corner cases of the writer's failure handling."""

from __future__ import annotations

import time
from pathlib import Path

from analytics import JSONLWriter
from analytics._writer import _RETRY_MAX, _retry_delay


def test_retry_delay_never_overflows_and_is_capped() -> None:
    for failures in (1, 2, 10, 1000, 5000, 10**9):
        delay = _retry_delay(failures)
        assert 0 < delay <= _RETRY_MAX


def test_retry_delay_has_jitter() -> None:
    assert len({_retry_delay(100) for _ in range(50)}) > 1


async def test_report_failure_after_5000_failures_keeps_the_flusher(tmp_path: Path) -> None:
    async with JSONLWriter(tmp_path) as writer:
        writer._failures = 5000
        await writer._report_failure(OSError(28, "No space left on device"))
        assert writer._retry_at is not None
        assert writer._retry_at - time.monotonic() <= _RETRY_MAX
        assert writer._flusher is not None
        assert not writer._flusher.done()
