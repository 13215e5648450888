"""The duckdb engine computes the same report as the Python engine."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import MetricType, Summary, summarize

duckdb = pytest.importorskip("duckdb")

from analytics._read.duckdb_engine import summarize_duckdb  # noqa: E402

from ..helpers import foreign_entry, line_of, write_lines_file  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def generate(base: Path, seed: int, count: int = 3000) -> None:
    """Several writers' files, compressed and not, with every event type and damage."""
    rng = random.Random(seed)
    metrics = base / "metrics"
    metrics.mkdir(parents=True)
    for writer in range(3):
        # Distinct microseconds per writer: no two entries share a timestamp, so "the
        # first error of a kind" means the same entry to both engines.
        moment = T0 + timedelta(seconds=writer, microseconds=writer)
        for number in range(4):
            lines = []
            created = moment  # files are named when created, before their entries
            for _ in range(count // 12):
                moment += timedelta(milliseconds=rng.randint(1, 5000))
                session = f"s{rng.randint(0, 30)}"
                kind = rng.choice(list(MetricType))
                data: dict[str, object] = {}
                if kind is MetricType.TOOL_USE:
                    data = {
                        "tool_name": rng.choice(["grep", "edit", "bash"]),
                        "success": rng.random() > 0.1,
                    }
                    if rng.random() > 0.05:
                        data["duration_ms"] = round(rng.lognormvariate(2, 1), 3)
                elif kind is MetricType.TOKEN_USAGE:
                    data = {
                        "model": rng.choice(["a", "b"]),
                        "input_tokens": rng.randint(1, 5000),
                        "output_tokens": rng.randint(1, 900),
                    }
                elif kind is MetricType.ERROR_OCCURRED:
                    data = {
                        "error_type": rng.choice(["Timeout", "KeyError"]),
                        "error_message": f"message {rng.randint(0, 99)}",
                    }
                elif kind is MetricType.SESSION_END and rng.random() > 0.5:
                    data = {"duration_seconds": round(rng.uniform(1, 600), 2)}
                else:
                    data = other_kinds(rng, kind)
                entry = foreign_entry(  # now and then a number only another writer writes
                    type=kind,
                    timestamp=moment,
                    session_id=session if rng.random() > 0.1 else None,
                    data=data,
                )
                lines.append(line_of(entry))
            if number == 1:
                lines.insert(5, b'{"this is": "not an entry"}\n')
                lines.insert(9, b"garbage\n")
            write_lines_file(
                metrics,
                lines,
                created=created,
                pid=100 + writer,
                tag=f"0000000{writer}",
                compressed=number < 3,
                tail=b"" if number < 3 else b'{"torn',
            )


def other_kinds(rng: random.Random, kind: MetricType) -> dict[str, object]:
    """``data`` as the track_* helpers write it for the kinds beyond tools, sessions,
    errors and tokens, with sub-millisecond, integer and missing durations, and now and
    then a value the summary must skip (an integer too large for a float)."""
    duration: object = rng.choice(
        [round(rng.lognormvariate(0, 2), 4), rng.randint(0, 900), round(rng.random(), 5)]
    )
    if rng.random() < 0.02:
        duration = 10**400
    timed: dict[str, object] = {} if rng.random() < 0.05 else {"duration_ms": duration}
    if kind is MetricType.PERFORMANCE:
        return {
            "operation": rng.choice(["http.request", "db.query", "render"]),
            "success": rng.random() > 0.1,
            "method": "GET",
            "path": "/items",
            "status": rng.choice([200, 404, 500]),
            **timed,
        }
    if kind is MetricType.AGENT_EXECUTION:
        return {
            "agent_name": rng.choice(["planner", "coder"]),
            "success": rng.random() > 0.2,
            "task": "t",
            **timed,
        }
    if kind is MetricType.COMMAND_EXECUTED:
        data: dict[str, object] = {"command": rng.choice(["make", "pytest", "ls"]), **timed}
        exit_code = rng.choice([0, 0, 0, 1, 2, None])
        if exit_code is not None:
            data["exit_code"] = exit_code
        if rng.random() < 0.7:  # as track_command_executed writes it; else only the code
            data["success"] = exit_code in (0, None)
        return data
    if kind is MetricType.HOOK_TRIGGERED:
        data = {"hook_name": rng.choice(["pre-commit", "post-tool"]), **timed}
        if rng.random() < 0.5:
            data["event"] = "e"
        if rng.random() < 0.8:
            data["success"] = rng.random() > 0.1
        return data
    if kind is MetricType.CHECKPOINT_CREATED:
        data = {"checkpoint_id": f"c{rng.randint(0, 10**6)}"}
        if rng.random() < 0.8:
            data["files_changed"] = rng.choice([rng.randint(0, 40), 10**400])
        return data
    return {}


def same(a: Summary, b: Summary) -> None:
    assert a.model_dump(exclude={"sessions"}) == b.model_dump(exclude={"sessions"})
    sa, sb = a.sessions.model_dump(), b.sessions.model_dump()
    # A mean may differ in the last bit: the engines add in different orders.
    mean_a, mean_b = sa.pop("duration_s_mean"), sb.pop("duration_s_mean")
    if mean_a is None or mean_b is None:  # no session with a duration
        assert mean_a is mean_b
    else:
        assert mean_a == pytest.approx(mean_b, rel=1e-12)
    assert sa == sb


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
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=25)
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
        moment = T0 + timedelta(seconds=i)
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
    lines.append(line_of(foreign_entry(type=MetricType.ERROR_OCCURRED, timestamp=T0, data={})))
    write_lines_file(metrics, lines, created=T0, pid=100, tag="00000000")
    python, sql = summarize(tmp_path), summarize_duckdb(tmp_path)
    assert set(python.errors) == set(python.tokens_by_model) == {"?", "7", "true", '[1,"a"]'}
    assert python.errors["?"].count == 2
    assert python.errors["?"].example == ""
    assert python.errors["7"].example == "7"
    same(python, sql)
