"""The exceptions raised by ``analytics``.

The tree::

    AnalyticsError                  the root: catch this to catch everything below
    ├── ConfigError                 a bad option value (also a ValueError)
    ├── ArgumentTypeError           a call was given a value of the wrong type (also a TypeError)
    ├── SerializationError          an entry that cannot be turned into one JSON line
    ├── WriterStateError            the writer is not in a state to accept the call
    │   └── WriterClosedError       write()/flush() after close()
    ├── BufferFullError             max_pending reached with on_full="raise"
    ├── WriteError                  an explicit flush()/close() could not write;
    │                               the entries are kept for a later retry
    ├── ReadError                   a directory to read is not there (also an OSError)
    │   ├── MetricsDirNotFoundError     no such directory (also a FileNotFoundError)
    │   └── NotAMetricsDirError         a file where a directory was expected
    │                                   (also a NotADirectoryError)
    ├── FilterError                 a bad filter argument, such as a naive datetime
    │                               (also a ValueError)
    ├── ReportFormatError           an unknown report format (also a ValueError)
    └── MissingDependencyError      an optional dependency (DuckDB) is not installed
                                    (also a ModuleNotFoundError)

Every error keeps its builtin base, so ``except ValueError`` or ``except OSError``
written before a class joined the tree still catches it.

Invalid *entries* raise pydantic's own ``ValidationError``, which already names
the offending field path.
"""

from __future__ import annotations

__all__ = [
    "AnalyticsError",
    "ArgumentTypeError",
    "BufferFullError",
    "ConfigError",
    "FilterError",
    "MetricsDirNotFoundError",
    "MissingDependencyError",
    "NotAMetricsDirError",
    "ReadError",
    "ReportFormatError",
    "SerializationError",
    "ShipError",
    "ShipFatalError",
    "ShipRejectedError",
    "ShipRetryableError",
    "ShipperLockedError",
    "TargetError",
    "WriteError",
    "WriterClosedError",
    "WriterStateError",
]


class AnalyticsError(Exception):
    """The root of every error this library raises on purpose."""


class ConfigError(AnalyticsError, ValueError):
    """An option was given a value the writer cannot use."""


class ArgumentTypeError(AnalyticsError, TypeError):
    """A call was given a value of the wrong type (``write()`` of something that is
    not a ``MetricEntry``, a ``str`` where a ``bool`` belongs...)."""


class SerializationError(AnalyticsError, ValueError):
    """An entry could not be serialized to a JSON line (for example, it was mutated
    after validation to hold a value JSON cannot represent)."""


class WriterStateError(AnalyticsError, RuntimeError):
    """The writer cannot take this call in its current state (not initialized yet,
    or used from an event loop other than the one it was opened on)."""


class WriterClosedError(WriterStateError):
    """The writer is closed: it accepts no more entries."""


class BufferFullError(AnalyticsError):
    """``max_pending`` entries are already waiting and ``on_full="raise"`` was chosen."""


class WriteError(AnalyticsError, OSError):
    """An explicit ``flush()`` or ``close()`` could not write to disk.

    Nothing is lost: the entries stay pending and are retried later.

    Attributes:
        pending: the number of entries accepted but not yet written.
    """

    def __init__(self, message: str, *, pending: int) -> None:
        super().__init__(message)
        self.pending = pending


class ReadError(AnalyticsError, OSError):
    """A directory or file to read cannot be used. Built like an ``OSError``:
    ``ReadError(errno, strerror, filename)``. Damaged *lines* are never raised:
    they are skipped and counted."""


class MetricsDirNotFoundError(ReadError, FileNotFoundError):
    """Neither ``<base_path>/metrics`` nor ``base_path`` is a directory."""


class NotAMetricsDirError(ReadError, NotADirectoryError):
    """``base_path`` is a file, not a directory."""


class FilterError(AnalyticsError, ValueError):
    """A filter argument cannot be used (``since``/``until`` without a time zone, an
    unknown entry type)."""


class ReportFormatError(AnalyticsError, ValueError):
    """``render()`` was asked for a format it does not know."""


class MissingDependencyError(AnalyticsError, ModuleNotFoundError):
    """An optional dependency is not installed; the message says which extra to
    install (``pip install 'asyncio-jsonl-analytics[duckdb]'``)."""


class TargetError(AnalyticsError, ValueError):
    """A shipping URL cannot be used: unknown scheme, missing database or table, a bad
    port. The message names the part that is wrong."""


class ShipError(AnalyticsError):
    """A central engine (ClickHouse, PostgreSQL) did not take a batch."""


class ShipRetryableError(ShipError, ConnectionError):
    """Worth trying again later: the server is unreachable, timed out, restarting,
    overloaded ("too many parts") or answered with a 5xx."""


class ShipRejectedError(ShipError, ValueError):
    """The engine refused the batch's content for good (a line it cannot take); the
    shipper bisects the batch to find the lines, and writes them to its rejects file."""


class ShipFatalError(ShipError, PermissionError):
    """Trying again cannot help: authentication failed, or the role or database does
    not exist. The shipper reports it and stops."""


class ShipperLockedError(ShipError, BlockingIOError):
    """Another shipper already ships this directory to this sink (the message names
    its pid)."""
