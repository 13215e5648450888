"""The duckdb engine computes the same report as the Python engine."""

from __future__ import annotations

import json
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


def test_values_of_disjoint_kinds_share_a_column() -> None:
    """The scanned table stays narrow: the names of tools, operations and models (read
    by figures of different kinds) are one column; the error's type and message (read
    for the same kind) are two."""
    from analytics._read.duckdb_engine import _LOADED, _load_query

    _load_query()
    slots = _LOADED.slots
    assert slots is not None
    assert slots["s", "tool_name"] == slots["s", "operation"] == slots["s", "model"]
    assert slots["s", "error_type"] != slots["s", "error_message"]
    assert slots["n", "input_tokens"] != slots["n", "output_tokens"]
    assert len(set(slots.values())) < len(slots) / 2


def test_one_scan_counts_every_kind_of_bad_line(tmp_path: Path) -> None:
    """Invalid JSON, JSON that is not an entry (no id, a type that is not one, a time
    that is not one) and a torn tail are bad lines in both engines."""
    good = line_of(foreign_entry(type=MetricType.TOOL_USE, timestamp=PARITY_T0, data={}))
    bad = [
        b"garbage\n",
        b"[1, 2]\n",
        _with(good, id=5),
        _with(good, id=""),
        good.replace(b'"tool_use"', b'"no_such_type"'),
        good.replace(b"2026-11-01T", b"2026-13-01T"),
    ]
    write_lines_file(
        tmp_path / "metrics", [good, *bad, good], created=PARITY_T0, pid=1, tag="0000000a",
        compressed=True, tail=b'{"torn',
    )  # fmt: skip
    no_id = json.loads(good)
    del no_id["id"]  # an entry read without an id gets one
    write_lines_file(tmp_path / "metrics", [_with(no_id)], created=PARITY_T0, pid=2, tag="0000000b")
    python, sql = summarize(tmp_path), summarize_duckdb(tmp_path)
    assert python.entries == 3
    assert python.bad_lines == len(bad) + 1
    same(python, sql)


def _with(line: bytes | dict[str, object], **fields: object) -> bytes:
    """``line`` (or a parsed one) with ``fields`` set."""
    entry = json.loads(line) if isinstance(line, bytes) else line
    return json.dumps({**entry, **fields}).encode() + b"\n"
