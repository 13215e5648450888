"""``analytics files``: each data file's size, compression ratio, entries and span."""

from __future__ import annotations

from pathlib import Path

from analytics import (
    MetricEntry,
)

from ..helpers import run_cli


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
