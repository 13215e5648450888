"""What shippers and archivers share: the directory they serve, their sink's lock, and
how a failing delivery is retried."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from analytics import ShipperLockedError, ShipRetryableError
from analytics._ship.running import Retries, metrics_dir_for, take_sink_lock


def test_a_base_path_without_a_metrics_folder_gets_one(tmp_path: Path) -> None:
    assert metrics_dir_for(tmp_path, "metrics") == tmp_path / "metrics"
    assert (tmp_path / "metrics").is_dir()


def test_a_folder_with_data_of_its_own_is_served_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "metrics_20260101_000000_000000_1_abcdef01.jsonl").write_bytes(b"")
    assert metrics_dir_for(tmp_path, "metrics") == tmp_path
    assert not (tmp_path / "metrics").exists()


def test_the_lock_is_refused_to_a_second_taker_naming_the_holder(tmp_path: Path) -> None:
    fd = take_sink_lock(tmp_path, "sink1", "clickhouse://x", "shipper")
    try:
        with pytest.raises(ShipperLockedError, match=rf"another archiver \(pid {os.getpid()}\)"):
            take_sink_lock(tmp_path, "sink1", "clickhouse://x", "archiver")
        other = take_sink_lock(tmp_path, "sink2", "clickhouse://y", "shipper")  # its own
        os.close(other)
    finally:
        os.close(fd)
    os.close(take_sink_lock(tmp_path, "sink1", "clickhouse://x", "shipper"))  # released


@dataclass
class Stats:
    failures_in_a_row: int = 0
    retries: int = 0
    last_error: str | None = None


class TestRetries:
    def test_failures_are_counted_logged_sparingly_and_spaced_by_a_capped_backoff(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        stats = Stats()
        retries = Retries(stats, give_up_after=None, max_delay=2.0)
        with caplog.at_level("WARNING", logger="analytics"):
            delays = [
                retries.failed(ShipRetryableError(f"down {n}"), "shipping to X") for n in range(12)
            ]
        assert (stats.failures_in_a_row, stats.retries, stats.last_error) == (12, 12, "down 11")
        assert all(0 <= delay <= 2.0 for delay in delays)
        logged = [r.getMessage() for r in caplog.records]
        assert logged == [
            "shipping to X failed (down 0); retrying (attempt 2)",
            "shipping to X failed (down 9); retrying (attempt 11)",
        ]
        caplog.clear()
        with caplog.at_level("WARNING", logger="analytics"):
            retries.succeeded("shipping to X")
        assert stats.failures_in_a_row == 0
        assert [r.getMessage() for r in caplog.records] == [
            "shipping to X works again after 12 failed attempts"
        ]

    def test_a_success_without_failures_logs_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level("WARNING", logger="analytics"):
            Retries(Stats(), give_up_after=None, max_delay=2.0).succeeded("shipping to X")
        assert caplog.records == []

    def test_failures_lasting_longer_than_give_up_after_raise(self) -> None:
        retries = Retries(Stats(), give_up_after=0.01, max_delay=2.0)
        retries.failed(ShipRetryableError("down"), "archiving f")  # the first never raises
        time.sleep(0.02)
        last = ShipRetryableError("still down")
        with pytest.raises(ShipRetryableError) as info:
            retries.failed(last, "archiving f")
        assert info.value is last
