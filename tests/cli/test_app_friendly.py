"""The command line is friendly: empty results, one-line errors, --version and plain
help, and nothing it does to the process outlives main()."""

from __future__ import annotations

import argparse
import csv
import gc
import logging
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from analytics._cli import build_parser

from ..helpers import report_entries, run_main, write_tools_at


class TestEmptyResults:
    def test_report_of_an_empty_directory_is_an_empty_report(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "metrics").mkdir()
        code, out, err = run_main(["report", str(tmp_path)], capsys)
        assert (code, err) == (0, "")
        assert "No entries." in out
        assert report_entries(["report", str(tmp_path)], capsys) == 0

    def test_a_filter_that_matches_nothing_is_an_empty_report(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write_tools_at(tmp_path / "metrics", [datetime.now(UTC)])
        assert report_entries(["report", str(tmp_path), "--session", "nobody"], capsys) == 0

    @pytest.mark.parametrize(("name", "content"), [("o.jsonl", ""), ("o.json", "[]\n")])
    def test_export_of_nothing_writes_an_empty_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str
    ) -> None:
        (tmp_path / "metrics").mkdir()
        code, _, err = run_main(["export", str(tmp_path), str(tmp_path / name)], capsys)
        assert code == 0, err
        assert (tmp_path / name).read_text() == content

    def test_export_csv_of_nothing_has_the_header(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "metrics").mkdir()
        assert run_main(["export", str(tmp_path), str(tmp_path / "o.csv")], capsys)[0] == 0
        with (tmp_path / "o.csv").open() as f:
            rows = list(csv.reader(f))
        assert rows == [["id", "timestamp", "type", "session_id", "user_id", "data", "metadata"]]

    def test_files_and_tail_of_an_empty_directory(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run_main(["files", str(tmp_path)], capsys)
        assert (code, err) == (0, "")
        assert out.splitlines()[-1].startswith("0 files")
        assert run_main(["tail", str(tmp_path)], capsys) == (0, "", "")

    @pytest.mark.parametrize("command", ["report", "files", "tail", "export"])
    def test_a_missing_directory_stays_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        argv = [command, str(tmp_path / "missing")]
        if command == "export":
            argv.append(str(tmp_path / "out.jsonl"))
        code, _, err = run_main(argv, capsys)
        assert code == 1
        assert err == f"analytics: error: no such directory: {tmp_path / 'missing'}\n"
        assert not (tmp_path / "out.jsonl").exists()


class TestErrors:
    @pytest.fixture
    def places(self, tmp_path: Path) -> dict[str, str]:
        write_tools_at(tmp_path / "data" / "metrics", [datetime.now(UTC)])
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
        code, out, err = run_main([a.format(**places) for a in argv], capsys)
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


def parsers() -> list[argparse.ArgumentParser]:
    top = build_parser()
    found = [top]
    for action in top._actions:  # argparse has no public way to list subparsers
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices.values())
    return found


class TestHelp:
    def test_version_names_the_distribution(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_main(["--version"], capsys)
        assert code == 0
        assert out == f"asyncio-jsonl-analytics {metadata.version('asyncio-jsonl-analytics')}\n"

    def test_every_argument_has_plain_text_help(self) -> None:
        all_parsers = parsers()
        assert {p.prog for p in all_parsers} == {
            "analytics",
            *(
                f"analytics {c}"
                for c in ("demo", "report", "tail", "export", "files", "ship", "serve", "archive")
            ),
        }
        for parser in all_parsers:
            text = parser.format_help()
            for markup in ("``", ":func:", ":class:", ":meth:", "**"):
                assert markup not in text, (parser.prog, markup)
            for action in parser._actions:
                assert action.help, (parser.prog, action.dest)
                assert action.help != argparse.SUPPRESS, (parser.prog, action.dest)

    @pytest.mark.parametrize(
        "command", ["demo", "report", "tail", "export", "files", "ship", "serve", "archive"]
    )
    def test_help_of_each_command(self, command: str, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_main([command, "--help"], capsys)
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
        write_tools_at(tmp_path / "metrics", [datetime.now(UTC)])
        logger = logging.getLogger("analytics")
        handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
        assert gc.isenabled()
        run_main([a.format(d=tmp_path) for a in argv], capsys)
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
            run_main(["files", str(tmp_path)], capsys)
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_warnings_while_reading_are_one_line_each(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write_tools_at(tmp_path / "metrics", [datetime.now(UTC)])
        [path] = (tmp_path / "metrics").iterdir()
        with path.open("ab") as f:
            f.write(b"not json\n")
        code, _, err = run_main(["report", str(tmp_path), "--format", "json"], capsys)
        assert code == 0
        assert err.startswith("analytics: WARNING: ")
        assert "skipped a line" in err
        assert len(err.splitlines()) == 1
