"""analytics: an asyncio-native structured analytics writer.

Record typed events as pydantic ``MetricEntry`` models through ``MetricsWriter`` into
a buffered, rotating, compressing ``JSONLWriter``.
"""

from ._asgi import RequestTimingMiddleware
from ._config import WriterConfig
from ._duckdb import summarize_duckdb
from ._exceptions import (
    AnalyticsError,
    BufferFullError,
    ConfigError,
    SerializationError,
    WriteError,
    WriterClosedError,
    WriterStateError,
)
from ._facade import MetricsWriter, Timing
from ._models import MetricEntry, MetricType
from ._reader import ReadStats, iter_entries, read_entries
from ._sinks import LoggingSink, Sink
from ._summary import Summary, summarize
from ._writer import HealthStatus, JSONLWriter, WriterStats

__version__ = "0.1.0"

__all__ = [
    "AnalyticsError",
    "BufferFullError",
    "ConfigError",
    "HealthStatus",
    "JSONLWriter",
    "LoggingSink",
    "MetricEntry",
    "MetricType",
    "MetricsWriter",
    "ReadStats",
    "RequestTimingMiddleware",
    "SerializationError",
    "Sink",
    "Summary",
    "Timing",
    "WriteError",
    "WriterClosedError",
    "WriterConfig",
    "WriterStateError",
    "WriterStats",
    "__version__",
    "iter_entries",
    "read_entries",
    "summarize",
    "summarize_duckdb",
]
