"""``analytics demo``: writes, rotates, compresses, summarizes, and refuses a used
directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import read_all, run_main


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


class TestDemo:
    def test_twice_into_one_directory_is_refused_clearly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        argv = ["demo", "--dir", str(tmp_path / "d"), "--seconds", "0.3", "--sessions", "4"]
        code, out, err = run_main(argv, capsys)
        assert code == 0, err
        assert "lost            : none" in out
        before = sorted(p.name for p in (tmp_path / "d" / "metrics").iterdir())
        code, out, err = run_main(argv, capsys)
        assert code == 1
        assert out == ""
        assert "already holds analytics files" in err
        assert len(err.splitlines()) == 1
        assert sorted(p.name for p in (tmp_path / "d" / "metrics").iterdir()) == before
