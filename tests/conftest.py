"""Hypothesis profiles, and the fixtures several test folders share."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from analytics import MetricEntry, Summary, summarize

# Real servers (PostgreSQL, ClickHouse, S3) for the shipping tests and the docs' examples;
# Prometheus and an OTLP collector (rotel) for the metrics sinks.
from tests.browser import artifacts, browser, chromium  # noqa: F401
from tests.ship.central import central, crashable  # noqa: F401
from tests.ship.ch_server import clickhouse_database, clickhouse_server  # noqa: F401
from tests.ship.pg_server import pg_database, pg_private_server, pg_server  # noqa: F401
from tests.ship.s3_server import s3_bucket, s3_server  # noqa: F401
from tests.write.otlp_receiver import otlp_receiver  # noqa: F401
from tests.write.prom_server import prometheus_server  # noqa: F401

from .helpers import T0, at, record_every_kind, write_file

# Named profiles, chosen with HYPOTHESIS_PROFILE; CI keeps the suite within minutes.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def two_processes(tmp_path: Path) -> list[MetricEntry]:
    """Two writers' files, interleaved in time, compressed and not, with damage."""
    metrics_dir = tmp_path / "metrics"
    a = [
        at(
            i * 2,
            session_id="a",
            data={"tool_name": "grep", "success": True, "duration_ms": float(i)},
        )
        for i in range(50)
    ]
    b = [
        at(
            i * 2 + 1,
            session_id="b",
            data={"tool_name": "edit", "success": i % 5 != 0, "duration_ms": 10.0 + i},
        )
        for i in range(50)
    ]
    write_file(metrics_dir, T0, 1, a[:25], compressed=True)
    write_file(metrics_dir, T0 + timedelta(seconds=50), 1, a[25:], tail=b'{"torn')
    write_file(
        metrics_dir, T0, 2, b[:30], compressed=True, tag="abcdef02", tail=b"not json at all\n"
    )
    write_file(metrics_dir, T0 + timedelta(seconds=60), 2, b[30:], tag="abcdef02")
    (metrics_dir / "notes.txt").write_text("not ours\n")
    return sorted(a + b, key=lambda e: e.timestamp)


@pytest.fixture
async def every_kind(tmp_path: Path) -> Summary:
    await record_every_kind(tmp_path)
    return summarize(tmp_path)
