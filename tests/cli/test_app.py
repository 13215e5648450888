"""The parser and main(): commands run, and every failure is one line and a status."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from analytics._cli import main

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


def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--max-file-size", "10 mb"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "max-file-size" in err
    assert "Traceback" not in err


def test_the_console_script_and_python_m_run_the_same_main() -> None:
    """``analytics`` (pyproject's [project.scripts]) and ``python -m analytics`` both
    run the CLI's main; __main__ holds nothing else."""
    import analytics.__main__
    from analytics import _cli

    (script,) = metadata.entry_points(group="console_scripts", name="analytics")
    assert script.load() is _cli.main
    assert analytics.__main__.main is _cli.main
