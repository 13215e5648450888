"""What the shipper needs from a central engine, and the rows it hands over.

The shipper (``analytics._ship.shipper``) owns files, offsets, checkpoints, batching,
backoff and bisection; an engine owns only its wire: connect, create the table if
absent, insert one batch idempotently, and run the report's queries. A new engine is
one module with one class that satisfies :class:`Engine`, plus a ``Dialect``.

Errors an engine raises (from ``analytics._exceptions``):

- ``ShipRetryableError``: try the same batch again later (connection refused or
  reset, timeout, 5xx, "too many parts", the server restarting);
- ``ShipRejectedError``: the engine refused the content for good; the shipper
  bisects the batch down to the lines it refuses;
- ``ShipFatalError``: authentication failed, the role or database does not exist;
  the shipper stops and says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._exceptions import MissingDependencyError
from .target import Target

if TYPE_CHECKING:
    from .._read.sql import Dialect

__all__ = ["Batch", "Engine", "Row", "open_engine"]


class Row(NamedTuple):
    """One entry as it goes into the central table (a tuple: cheap to make by the
    million, and an engine may pass it on as a record)."""

    id: str
    timestamp: datetime
    """Aware, UTC, microsecond resolution."""
    type: str
    session_id: str | None
    user_id: str | None
    data: str
    """JSON text of the entry's ``data`` object."""
    metadata: str
    """JSON text of the entry's ``metadata`` object."""
    source: str
    """Which directory it came from: ``<host>/<directory id>``."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows to insert at once, and the token that names them: the same token always
    names the same rows (source, file stem and line range), so an engine that knows
    dedup tokens drops a retried batch."""

    rows: Sequence[Row]
    token: str


class Engine(Protocol):
    """A central engine's client. One per shipper; one batch in flight at a time."""

    target: Target

    async def open(self) -> None:
        """Connect, and create the table if it is absent.

        Raises:
            ShipRetryableError: the server cannot be reached (yet).
            ShipFatalError: authentication failed, the database or role is missing.
        """

    async def insert(self, batch: Batch) -> None:
        """Insert every row of ``batch``; a row already in the table (same ``id``)
        must not end up twice after dedup.

        Raises:
            ShipRetryableError, ShipRejectedError, ShipFatalError: see the module.
        """

    async def aclose(self) -> None:
        """Close the connection; never raises."""

    def ddl(self) -> str:
        """The exact statements :meth:`open` runs to create the table."""
        ...

    @property
    def dialect(self) -> Dialect:
        """How this engine spells the report's figures."""
        ...

    def entries(self, where: Sequence[str]) -> str:
        """A ``FROM`` expression (a table or a subquery, aliased ``e``) of the
        deduplicated entries that satisfy every SQL condition in ``where`` (columns
        ``timestamp``, ``type``, ``session_id``, ``user_id``, ``data``, ``source``),
        with the columns the dialect reads."""
        ...

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one ``SELECT`` and return its rows, values as Python objects."""
        ...


def open_engine(target: Target) -> Engine:
    """The engine client for ``target`` (not connected yet: ``await engine.open()``).

    Raises:
        MissingDependencyError: the engine's client library is not installed; the
            message names the extra to install.
    """
    module, name, client = {
        "clickhouse": ("clickhouse", "ClickHouse", "httpx"),
        "postgresql": ("postgresql", "PostgreSQL", "asyncpg"),
    }[target.engine]
    try:
        engine_module = importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != client:
            raise
        raise MissingDependencyError(
            f"shipping to {name} needs {client}: pip install 'asyncio-jsonl-analytics[{module}]'",
            name=client,
        ) from exc
    engine: Engine = getattr(engine_module, name)(target)
    return engine
