"""The duckdb engine computes the same report as the Python engine."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from analytics import MetricType, Summary, summarize

duckdb = pytest.importorskip("duckdb")

from analytics._read.duckdb_engine import summarize_duckdb  # noqa: E402

from ..helpers import PARITY_T0, foreign_entry, generate, line_of, same, write_lines_file  # noqa: E402


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_numbers_as_the_python_engine(tmp_path: Path, seed: int) -> None:
    generate(tmp_path, seed)
    python, sql = summarize(tmp_path), summarize_duckdb(tmp_path)
    assert python.entries > 2000
    assert python.bad_lines == 3 * 3  # two bad lines and a torn tail per writer
    assert python.tools
    assert python.errors
    assert python.tokens_by_model
    for section in (python.operations, python.agents, python.commands, python.hooks):
        assert section
        assert all(run.failures for run in section.values())
        assert all(run.duration_ms_p99 is not None for run in section.values())
    assert python.checkpoints.count
    assert python.checkpoints.files_changed_max is not None
    same(python, sql)


def test_same_numbers_with_filters(tmp_path: Path) -> None:
    generate(tmp_path, 4)
    # The files span about 40 minutes: a window inside them, cutting files in two.
    since, until = PARITY_T0 + timedelta(minutes=10), PARITY_T0 + timedelta(minutes=25)
    everything = summarize(tmp_path)
    for filters in (
        {"since": since, "until": until},
        {"since": since},
        {"until": until},
        {"types": ["tool_use", "error_occurred"]},
        {"session_id": "s3"},
    ):
        python = summarize(tmp_path, **filters)
        # Each filter keeps some entries, not all: it tests something.
        assert 0 < python.entries < everything.entries, filters
        if "types" not in filters:
            assert python.sessions.duration_s_mean is not None, filters
        same(python, summarize_duckdb(tmp_path, **filters))


def test_report_engine_option(tmp_path: Path) -> None:
    generate(tmp_path, 5)
    outputs = []
    for engine in ("python", "duckdb"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "analytics",
                "report",
                str(tmp_path),
                "--format",
                "json",
                "--engine",
                engine,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(Summary.model_validate_json(done.stdout))
    same(*outputs)


def test_names_that_are_not_strings_are_named_alike(tmp_path: Path) -> None:
    """An error type or a model that is null, missing, a number or a boolean gets one
    name in both engines ("?" or its JSON text); a null message is an empty example."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    odd: list[object] = [None, 7, True, [1, "a"]]
    lines = []
    for i, value in enumerate(odd):
        moment = PARITY_T0 + timedelta(seconds=i)
        lines.append(
            line_of(
                foreign_entry(
                    type=MetricType.ERROR_OCCURRED,
                    timestamp=moment,
                    data={"error_type": value, "error_message": value},
                )
            )
        )
        lines.append(
            line_of(
                foreign_entry(
                    type=MetricType.TOKEN_USAGE,
                    timestamp=moment,
                    data={"model": value, "input_tokens": 1, "output_tokens": 2},
                )
            )
        )
    lines.append(
        line_of(foreign_entry(type=MetricType.ERROR_OCCURRED, timestamp=PARITY_T0, data={}))
    )
    write_lines_file(metrics, lines, created=PARITY_T0, pid=100, tag="00000000")
    python, sql = summarize(tmp_path), summarize_duckdb(tmp_path)
    assert set(python.errors) == set(python.tokens_by_model) == {"?", "7", "true", '[1,"a"]'}
    assert python.errors["?"].count == 2
    assert python.errors["?"].example == ""
    assert python.errors["7"].example == "7"
    same(python, sql)
