"""The parser and main(): commands run, and every failure is one line and a status."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import run_cli


class TestCommands:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["report", "{missing}"], "no such directory"),
            (["report", "{empty}", "--since", "yesterday"], "not an ISO-8601 time"),
            (["report", "{empty}", "--type", "nope"], "unknown type"),
        ],
    )
    def test_errors_are_one_line_without_a_traceback(
        self, tmp_path: Path, args: list[str], message: str
    ) -> None:
        (tmp_path / "empty").mkdir()
        argv = [a.format(missing=tmp_path / "missing", empty=tmp_path / "empty") for a in args]
        done = run_cli(*argv)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("analytics")
        assert message in line
