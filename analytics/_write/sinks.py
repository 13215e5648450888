"""Sinks: where MetricsWriter sends entries. JSONLWriter is one; LoggingSink another."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from .._models import MetricEntry

__all__ = ["LoggingSink", "Sink"]


@runtime_checkable
class Sink(Protocol):
    """Anything that takes entries: three coroutines.

    ``JSONLWriter`` and ``LoggingSink`` implement it; so can any class of yours (an
    HTTP exporter, a queue producer...).
    """

    async def write(self, entry: MetricEntry) -> None:
        """Take one entry."""

    async def flush(self) -> None:
        """Push out whatever is buffered."""

    async def close(self) -> None:
        """Flush and release resources; no entries are taken afterwards."""


class LoggingSink:
    """Writes each entry as one JSON line to a stdlib logger: console output for
    development, or a bridge to whatever the logging config sends on.

    The record's message is the entry's JSON line; the entry's dict is attached as
    ``record.analytics_entry`` for structured formatters.

    Args:
        logger: the logger to write to (default: ``logging.getLogger("analytics.events")``).
        level: the level of every record (default ``logging.INFO``).
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("analytics.events")
        self.level = level

    async def write(self, entry: MetricEntry) -> None:
        if self.logger.isEnabledFor(self.level):
            line = entry.to_json_line().decode().rstrip("\n")
            self.logger.log(self.level, "%s", line, extra={"analytics_entry": entry.to_dict()})

    async def flush(self) -> None:
        """Nothing is buffered here: logging handlers do their own flushing."""

    async def close(self) -> None:
        """Nothing to release: the logger belongs to the application."""

    def __repr__(self) -> str:
        return f"<LoggingSink {self.logger.name!r} level={logging.getLevelName(self.level)}>"
