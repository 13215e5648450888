"""What shippers and archivers share: the directory they serve and their sink's lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analytics import ShipperLockedError
from analytics._ship.running import metrics_dir_for, take_sink_lock


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
