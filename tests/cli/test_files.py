"""``analytics files``: each data file's size, compression ratio, entries and span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import (
    MetricEntry,
)

from ..helpers import run_cli, run_main, write_tools_at


class TestCommands:
    def test_files_lists_sizes_ratios_and_spans(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        done = run_cli("files", str(tmp_path))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split()[:3] == ["file", "bytes", "ratio"]
        assert len([line for line in lines if line.startswith("metrics_")]) == 4
        assert "4 files" in lines[-1]
        assert "x overall" in lines[-1]


def test_files_shows_both_dates_of_a_span_across_midnight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    write_tools_at(
        tmp_path / "metrics", [midnight - timedelta(seconds=2), midnight + timedelta(seconds=3)]
    )
    write_tools_at(
        tmp_path / "metrics", [midnight + timedelta(hours=1), midnight + timedelta(hours=2)]
    )
    code, out, _ = run_main(["files", str(tmp_path)], capsys)
    assert code == 0
    rows = out.splitlines()[2:-1]  # after the header and its rule
    assert rows[0].endswith("2026-11-22 23:59:58 .. 2026-11-23 00:00:03")
    assert rows[1].endswith("2026-11-23 01:00:00 .. 02:00:00")
