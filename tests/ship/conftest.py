"""Fixtures of the shipping tests: real servers, started by the tests themselves."""

from .ch_server import clickhouse_database, clickhouse_server  # noqa: F401
from .pg_server import pg_database, pg_private_server, pg_server  # noqa: F401
