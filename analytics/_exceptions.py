"""The exceptions raised by ``analytics``.

The tree::

    AnalyticsError                  the root: catch this to catch everything below
    ├── ConfigError                 a bad option value (also a ValueError)
    ├── SerializationError          an entry that cannot be turned into one JSON line
    ├── WriterStateError            the writer is not in a state to accept the call
    │   └── WriterClosedError       write()/flush() after close()
    ├── BufferFullError             max_pending reached with on_full="raise"
    └── WriteError                  an explicit flush()/close() could not write;
                                    the entries are kept for a later retry

Invalid *entries* raise pydantic's own ``ValidationError``, which already names
the offending field path.
"""

from __future__ import annotations

__all__ = [
    "AnalyticsError",
    "BufferFullError",
    "ConfigError",
    "SerializationError",
    "WriteError",
    "WriterClosedError",
    "WriterStateError",
]


class AnalyticsError(Exception):
    """The root of every error this library raises on purpose."""


class ConfigError(AnalyticsError, ValueError):
    """An option was given a value the writer cannot use."""


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
