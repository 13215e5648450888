"""The command line is friendly: relative times, empty results, --prefix, export
formats from the extension, one-line errors, --version and plain help, and nothing
it does to the process outlives main()."""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import io
import json
import logging
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest

import analytics._cli.arguments as cli_arguments
from analytics import JSONLWriter, MetricEntry, MetricsWriter, MetricType
from analytics._cli import build_parser, main
from analytics._config import parse_duration, parse_size
from analytics.testing import write_data_file

from ..helpers import read_all


def write(metrics: Path, times: list[datetime], prefix: str = "metrics") -> None:
    entries = [
        MetricEntry(
            type=MetricType.TOOL_USE,
            timestamp=t,
            session_id="s",
            data={"tool_name": "grep", "success": True, "duration_ms": 1.0},
        )
        for t in times
    ]
    metrics.mkdir(parents=True, exist_ok=True)
    write_data_file(metrics, entries, prefix=prefix, pid=7, tag="cafe0001")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in this process: the exit status (SystemExit's too), stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def report_entries(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    code, out, err = run([*argv, "--format", "json"], capsys)
    assert code == 0, err
    entries = json.loads(out)["entries"]
    assert isinstance(entries, int)
    return entries


class TestRelativeTimes:
    def test_since_and_until_take_a_duration_before_now(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        now = datetime.now(UTC)
        write(tmp_path / "metrics", [now - timedelta(days=2), now - timedelta(hours=2), now])
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
        code, _, err = run(["report", str(tmp_path), "--since", "3 hours"], capsys)
        assert code == 2
        with pytest.raises(ValueError, match="unit") as library:
            parse_duration("3 hours")
        assert str(library.value) in err


class TestEmptyResults:
    def test_report_of_an_empty_directory_is_an_empty_report(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "metrics").mkdir()
        code, out, err = run(["report", str(tmp_path)], capsys)
        assert (code, err) == (0, "")
        assert "No entries." in out
        assert report_entries(["report", str(tmp_path)], capsys) == 0

    def test_a_filter_that_matches_nothing_is_an_empty_report(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write(tmp_path / "metrics", [datetime.now(UTC)])
        assert report_entries(["report", str(tmp_path), "--session", "nobody"], capsys) == 0

    @pytest.mark.parametrize(("name", "content"), [("o.jsonl", ""), ("o.json", "[]\n")])
    def test_export_of_nothing_writes_an_empty_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
    ) -> None:
        (tmp_path / "metrics").mkdir()
        code, _, err = run(["export", str(tmp_path), str(tmp_path / name)], capsys)
        assert code == 0, err
        assert (tmp_path / name).read_text() == content

    def test_export_csv_of_nothing_has_the_header(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "metrics").mkdir()
        assert run(["export", str(tmp_path), str(tmp_path / "o.csv")], capsys)[0] == 0
        with (tmp_path / "o.csv").open() as f:
            rows = list(csv.reader(f))
        assert rows == [["id", "timestamp", "type", "session_id", "user_id", "data", "metadata"]]

    def test_files_and_tail_of_an_empty_directory(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run(["files", str(tmp_path)], capsys)
        assert (code, err) == (0, "")
        assert out.splitlines()[-1].startswith("0 files")
        assert run(["tail", str(tmp_path)], capsys) == (0, "", "")

    @pytest.mark.parametrize("command", ["report", "files", "tail", "export"])
    def test_a_missing_directory_stays_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        argv = [command, str(tmp_path / "missing")]
        if command == "export":
            argv.append(str(tmp_path / "out.jsonl"))
        code, _, err = run(argv, capsys)
        assert code == 1
        assert err == f"analytics: error: no such directory: {tmp_path / 'missing'}\n"
        assert not (tmp_path / "out.jsonl").exists()


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
        code, out, _ = run(["files", d, "--prefix", "app"], capsys)
        assert code == 0
        assert "app_" in out
        # a header, a rule, a row per file, the totals
        assert out.splitlines()[-1].startswith(f"{len(out.splitlines()) - 3} files")
        assert set(out.splitlines()[1]) == {"-", " "}
        code, out, _ = run(["tail", d, "--prefix", "app", "-n", "4"], capsys)
        assert [MetricEntry.from_json_line(x).data["duration_ms"] for x in out.splitlines()] == [
            2.0,
            3.0,
            4.0,
            5.0,
        ]
        target = tmp_path / "out.jsonl"
        assert run(["export", d, str(target), "--prefix", "app"], capsys)[0] == 0
        assert len(target.read_text().splitlines()) == 6

    def test_a_prefix_that_cannot_be_a_file_name_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(["report", str(tmp_path), "--prefix", "../x"], capsys)
        assert code == 2
        assert len(err.splitlines()) == 1
        assert "prefix" in err


class TestExportFormats:
    @pytest.fixture
    def data(self, tmp_path: Path) -> Path:
        now = datetime.now(UTC)
        write(tmp_path / "metrics", [now - timedelta(seconds=s) for s in range(3)])
        return tmp_path

    def test_the_format_comes_from_the_extension(
        self, data: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for name in ("a.csv", "a.jsonl", "a.json", "a.ndjson", "A.CSV"):
            assert run(["export", str(data), str(data / name)], capsys)[0] == 0
        with (data / "a.csv").open() as f:
            assert len(list(csv.DictReader(f))) == 3
        assert (data / "A.CSV").read_text() == (data / "a.csv").read_text()
        lines = (data / "a.jsonl").read_bytes().splitlines()
        assert [MetricEntry.from_json_line(x) for x in lines] == [
            MetricEntry.model_validate(x) for x in json.loads((data / "a.json").read_text())
        ]
        assert (data / "a.ndjson").read_bytes() == (data / "a.jsonl").read_bytes()

    @pytest.mark.parametrize(
        ("name", "given", "message"),
        [
            ("out.txt", None, "cannot tell the format of"),
            ("out", None, "cannot tell the format of"),
            ("out.csv", "jsonl", "looks like csv"),
            ("out.jsonl", "csv", "looks like jsonl"),
        ],
    )
    def test_an_unknown_or_contradicted_extension_is_refused(
        self,
        data: Path,
        capsys: pytest.CaptureFixture[str],
        name: str,
        given: str | None,
        message: str,
    ) -> None:
        argv = ["export", str(data), str(data / name)]
        code, _, err = run([*argv, "--format", given] if given else argv, capsys)
        assert code == 1
        assert message in err
        assert len(err.splitlines()) == 1
        assert not (data / name).exists()

    def test_an_explicit_format_for_an_unknown_extension(
        self, data: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert run(["export", str(data), str(data / "o.txt"), "--format", "csv"], capsys)[0] == 0
        assert (data / "o.txt").read_text().startswith("id,timestamp,type")


def test_files_shows_both_dates_of_a_span_across_midnight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    write(tmp_path / "metrics", [midnight - timedelta(seconds=2), midnight + timedelta(seconds=3)])
    write(tmp_path / "metrics", [midnight + timedelta(hours=1), midnight + timedelta(hours=2)])
    code, out, _ = run(["files", str(tmp_path)], capsys)
    assert code == 0
    rows = out.splitlines()[2:-1]  # after the header and its rule
    assert rows[0].endswith("2026-11-22 23:59:58 .. 2026-11-23 00:00:03")
    assert rows[1].endswith("2026-11-23 01:00:00 .. 02:00:00")


class TestErrors:
    @pytest.fixture
    def places(self, tmp_path: Path) -> dict[str, str]:
        write(tmp_path / "data" / "metrics", [datetime.now(UTC)])
        (tmp_path / "a-file").write_text("x")
        (tmp_path / "a-dir.csv").mkdir()
        return {
            "data": str(tmp_path / "data"),
            "missing": str(tmp_path / "missing"),
            "file": str(tmp_path / "a-file"),
            "nodir": str(tmp_path / "no" / "such" / "out.csv"),
            "dirout": str(tmp_path / "a-dir.csv"),
        }

    @pytest.mark.parametrize(
        "argv",
        [
            [],
            ["bogus"],
            ["report"],
            ["export", "{data}"],
            ["report", "{data}", "--since", "yesterday"],
            ["report", "{data}", "--until", "5 parsecs"],
            ["report", "{data}", "--type", "nope"],
            ["report", "{data}", "--format", "pdf"],
            ["report", "{data}", "--engine", "spark"],
            ["report", "{data}", "--no-such-option"],
            ["report", "{missing}"],
            ["report", "{file}"],
            ["files", "{file}"],
            ["tail", "{missing}", "-f"],
            ["tail", "{data}", "-n", "many"],
            ["tail", "{data}", "-n", "-3"],
            ["tail", "{data}", "--interval", "0"],
            ["export", "{data}", "{nodir}"],
            ["export", "{data}", "{dirout}"],
            ["export", "{data}", "x.csv", "--format", "xml"],
            ["report", "{data}", "--output", "{nodir}"],
            ["report", "{data}", "--output", "{dirout}"],
            ["demo", "--max-file-size", "10 mb"],
            ["demo", "--max-file-size", "0"],
            ["demo", "--seconds", "soon"],
            ["demo", "--seconds", "0"],
            ["demo", "--sessions", "0"],
            ["demo", "--dir", "{file}", "--seconds", "0.1"],
            ["demo", "--dir", "{data}", "--seconds", "0.1"],
        ],
    )
    def test_every_error_is_one_line_and_a_nonzero_status(
        self, argv: list[str], places: dict[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run([a.format(**places) for a in argv], capsys)
        assert code != 0
        assert out == ""
        assert len(err.splitlines()) == 1, err
        assert err.startswith("analytics")
        assert "Traceback" not in err

    def test_a_usage_error_is_one_line_in_a_real_process(self, tmp_path: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "analytics", "report"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr == (
            "analytics report: error: the following arguments are required: dir"
            " (see analytics report --help)\n"
        )

    def test_size_errors_are_the_library_messages(self, capsys: pytest.CaptureFixture[str]) -> None:
        for bad in ("10 mb", "1.5 B", "lots"):
            code, _, err = run(["demo", "--max-file-size", bad], capsys)
            assert code == 2
            with pytest.raises(ValueError, match=r"\b") as library:
                parse_size(bad)
            assert str(library.value) in err
        code, _, err = run(["demo", "--seconds", "3 fortnights"], capsys)
        with pytest.raises(ValueError, match="unit") as library:
            parse_duration("3 fortnights")
        assert str(library.value) in err


def parsers() -> list[argparse.ArgumentParser]:
    top = build_parser()
    found = [top]
    for action in top._actions:  # argparse has no public way to list subparsers
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices.values())
    return found


class TestHelp:
    def test_version_names_the_distribution(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run(["--version"], capsys)
        assert code == 0
        assert out == f"asyncio-jsonl-analytics {metadata.version('asyncio-jsonl-analytics')}\n"

    def test_every_argument_has_plain_text_help(self) -> None:
        all_parsers = parsers()
        assert {p.prog for p in all_parsers} == {
            "analytics",
            *(f"analytics {c}" for c in ("demo", "report", "tail", "export", "files", "ship")),
        }
        for parser in all_parsers:
            text = parser.format_help()
            for markup in ("``", ":func:", ":class:", ":meth:", "**"):
                assert markup not in text, (parser.prog, markup)
            for action in parser._actions:
                assert action.help, (parser.prog, action.dest)
                assert action.help != argparse.SUPPRESS, (parser.prog, action.dest)

    @pytest.mark.parametrize("command", ["demo", "report", "tail", "export", "files", "ship"])
    def test_help_of_each_command(self, command: str, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0
        assert out.startswith(f"usage: analytics {command}")
        assert "``" not in out


class TestNothingLeaks:
    @pytest.mark.parametrize(
        "argv",
        [
            ["report", "{d}"],
            ["files", "{d}"],
            ["tail", "{d}"],
            ["export", "{d}", "{d}/out.jsonl"],
            ["report", "{d}/missing"],
            ["export", "{d}", "{d}/out.txt"],
            ["report", "{d}", "--since", "yesterday"],
            ["--version"],
        ],
    )
    def test_gc_and_logging_are_as_they_were(
        self, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        write(tmp_path / "metrics", [datetime.now(UTC)])
        logger = logging.getLogger("analytics")
        handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
        assert gc.isenabled()
        run([a.format(d=tmp_path) for a in argv], capsys)
        assert gc.isenabled()
        assert (list(logger.handlers), logger.level, logger.propagate) == (
            handlers,
            level,
            propagate,
        )

    def test_a_disabled_gc_stays_disabled(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        gc.disable()
        try:
            run(["files", str(tmp_path)], capsys)
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_warnings_while_reading_are_one_line_each(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write(tmp_path / "metrics", [datetime.now(UTC)])
        [path] = (tmp_path / "metrics").iterdir()
        with path.open("ab") as f:
            f.write(b"not json\n")
        code, _, err = run(["report", str(tmp_path), "--format", "json"], capsys)
        assert code == 0
        assert err.startswith("analytics: WARNING: ")
        assert "skipped a line" in err
        assert len(err.splitlines()) == 1


class TestDemo:
    def test_twice_into_one_directory_is_refused_clearly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        argv = ["demo", "--dir", str(tmp_path / "d"), "--seconds", "0.3", "--sessions", "4"]
        code, out, err = run(argv, capsys)
        assert code == 0, err
        assert "lost            : none" in out
        before = sorted(p.name for p in (tmp_path / "d" / "metrics").iterdir())
        code, out, err = run(argv, capsys)
        assert code == 1
        assert out == ""
        assert "already holds analytics files" in err
        assert len(err.splitlines()) == 1
        assert sorted(p.name for p in (tmp_path / "d" / "metrics").iterdir()) == before

    def test_its_data_is_consistent(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tool whose error is recorded failed; session tokens add up."""
        argv = ["demo", "--dir", str(tmp_path), "--seconds", "1", "--sessions", "20"]
        assert run(argv, capsys)[0] == 0
        entries = read_all(tmp_path / "metrics")
        failed: Counter[str | None] = Counter()
        errors: Counter[str | None] = Counter()
        tokens: defaultdict[str | None, int] = defaultdict(int)
        ends = {}
        for e in entries:
            if e.type is MetricType.TOOL_USE and not e.data["success"]:
                failed[e.session_id] += 1
                assert e.data["error_type"] == "ToolTimeout"
            elif e.type is MetricType.ERROR_OCCURRED:
                errors[e.session_id] += 1
            elif e.type is MetricType.TOKEN_USAGE:
                total = e.data["total_tokens"]
                assert isinstance(total, int)
                tokens[e.session_id] += total
            elif e.type is MetricType.SESSION_END:
                ends[e.session_id] = e.data["token_count"]
        assert sum(errors.values()) > 0
        assert failed == errors
        assert ends == {sid: tokens[sid] for sid in ends}
        assert len(ends) == 20


class TerminalStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("argv", [["report", "{d}"], ["export", "{d}", "{d}/o.jsonl"]])
def test_long_work_shows_progress_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    now = datetime.now(UTC)
    write(tmp_path / "metrics", [now - timedelta(seconds=s) for s in range(30)])
    monkeypatch.setattr(cli_arguments.Progress, "EVERY", 10)
    stderr = TerminalStderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main([a.format(d=tmp_path) for a in argv]) == 0
    assert "entries read" in stderr.getvalue()
