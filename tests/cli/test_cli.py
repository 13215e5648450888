"""The command line: ``python -m analytics demo``."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from analytics._cli import main

from ..helpers import read_all


def test_demo_writes_rotates_compresses_and_summarizes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analytics",
            "demo",
            "--dir",
            str(out),
            "--seconds",
            "0.7",
            "--sessions",
            "8",
            "--max-file-size",
            "16 KiB",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = result.stdout
    for label in ("entries written", "files", "compressed", "bytes on disk", "lost"):
        assert label in text
    assert "lost            : none" in text
    entries = read_all(out / "metrics")
    assert f"entries on disk : {len(entries):,}" in text
    assert len(list((out / "metrics").glob("metrics_*.jsonl.gz"))) >= 1
    assert len({e.session_id for e in entries}) == 8


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
