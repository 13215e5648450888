"""Argument types and shared options: relative times, sizes with the library's
messages, --prefix on every reading command, and progress on a terminal."""

from __future__ import annotations

import asyncio
import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import analytics._cli.arguments as cli_arguments
from analytics import JSONLWriter, MetricEntry, MetricsWriter
from analytics._cli import main
from analytics._config import parse_duration, parse_size

from ..helpers import report_entries, run_main, write_tools_at


class TestRelativeTimes:
    def test_since_and_until_take_a_duration_before_now(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        now = datetime.now(UTC)
        write_tools_at(
            tmp_path / "metrics", [now - timedelta(days=2), now - timedelta(hours=2), now]
        )
        base = ["report", str(tmp_path)]
        assert report_entries([*base, "--since", "1h"], capsys) == 1
        assert report_entries([*base, "--since", "30m"], capsys) == 1
        assert report_entries([*base, "--since", "3h"], capsys) == 2
        assert report_entries([*base, "--since", "7d"], capsys) == 3
        assert report_entries([*base, "--until", "1h"], capsys) == 2
        assert report_entries([*base, "--since", "3d", "--until", "1d"], capsys) == 1
        assert report_entries([*base, "--since", "2000-01-01T00:00:00Z"], capsys) == 3

    def test_a_bad_duration_unit_gets_the_library_message(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_main(["report", str(tmp_path), "--since", "3 hours"], capsys)
        assert code == 2
        with pytest.raises(ValueError, match="unit") as library:
            parse_duration("3 hours")
        assert str(library.value) in err


class TestPrefix:
    def test_every_reading_command_reads_another_prefix(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async def produce() -> None:
            async with JSONLWriter(tmp_path, filename_prefix="app", max_file_size=600) as w:
                metrics = MetricsWriter(w)
                for i in range(6):
                    await metrics.track_tool_use("s", "grep", True, float(i))

        asyncio.run(produce())
        assert list((tmp_path / "metrics").glob("app_*.gz"))
        d = str(tmp_path)
        assert report_entries(["report", d, "--prefix", "app"], capsys) == 6
        assert report_entries(["report", d], capsys) == 0  # not the default prefix
        code, out, _ = run_main(["files", d, "--prefix", "app"], capsys)
        assert code == 0
        assert "app_" in out
        # a header, a rule, a row per file, the totals
        assert out.splitlines()[-1].startswith(f"{len(out.splitlines()) - 3} files")
        assert set(out.splitlines()[1]) == {"-", " "}
        code, out, _ = run_main(["tail", d, "--prefix", "app", "-n", "4"], capsys)
        assert [MetricEntry.from_json_line(x).data["duration_ms"] for x in out.splitlines()] == [
            2.0,
            3.0,
            4.0,
            5.0,
        ]
        target = tmp_path / "out.jsonl"
        assert run_main(["export", d, str(target), "--prefix", "app"], capsys)[0] == 0
        assert len(target.read_text().splitlines()) == 6

    def test_a_prefix_that_cannot_be_a_file_name_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_main(["report", str(tmp_path), "--prefix", "../x"], capsys)
        assert code == 2
        assert len(err.splitlines()) == 1
        assert "prefix" in err


@pytest.mark.parametrize("argv", [["report", "{d}"], ["export", "{d}", "{d}/o.jsonl"]])
def test_long_work_shows_progress_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    now = datetime.now(UTC)
    write_tools_at(tmp_path / "metrics", [now - timedelta(seconds=s) for s in range(30)])
    monkeypatch.setattr(cli_arguments.Progress, "EVERY", 10)
    stderr = TerminalStderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main([a.format(d=tmp_path) for a in argv]) == 0
    assert "entries read" in stderr.getvalue()


class TerminalStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestErrors:
    def test_size_errors_are_the_library_messages(self, capsys: pytest.CaptureFixture[str]) -> None:
        for bad in ("10 mb", "1.5 B", "lots"):
            code, _, err = run_main(["demo", "--max-file-size", bad], capsys)
            assert code == 2
            with pytest.raises(ValueError, match=r"\b") as library:
                parse_size(bad)
            assert str(library.value) in err
        code, _, err = run_main(["demo", "--seconds", "3 fortnights"], capsys)
        with pytest.raises(ValueError, match="unit") as library:
            parse_duration("3 fortnights")
        assert str(library.value) in err
