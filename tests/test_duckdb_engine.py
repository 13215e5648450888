"""The duckdb engine computes the same report as the Python engine."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import MetricEntry, MetricType, Summary, summarize
from analytics._policy import format_name

duckdb = pytest.importorskip("duckdb")

from analytics._duckdb import summarize_duckdb  # noqa: E402

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
                entry = MetricEntry(
                    type=kind,
                    timestamp=moment,
                    session_id=session if rng.random() > 0.1 else None,
                    data=data,
                )
                lines.append(entry.to_json_line())
            if number == 1:
                lines.insert(5, b'{"this is": "not an entry"}\n')
                lines.insert(9, b"garbage\n")
            blob = b"".join(lines)
            name = format_name(
                "metrics", int(created.timestamp() * 1e9), 100 + writer, f"0000000{writer}"
            )
            if number < 3:
                (metrics / (name + ".gz")).write_bytes(gzip.compress(blob))
            else:
                (metrics / name).write_bytes(blob + b'{"torn')


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
