from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.ship.central import central, crashable  # noqa: F401

# Real servers (PostgreSQL, ClickHouse) for the shipping tests and the docs' examples.
from tests.ship.ch_server import clickhouse_database, clickhouse_server  # noqa: F401
from tests.ship.pg_server import pg_database, pg_private_server, pg_server  # noqa: F401

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
