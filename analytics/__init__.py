"""analytics: an asyncio-native structured analytics writer.

Record typed events as pydantic ``MetricEntry`` models through ``MetricsWriter`` into
a buffered, rotating, compressing ``JSONLWriter``.
"""

from importlib import metadata as _metadata

from ._config import WriterConfig
from ._exceptions import (
    AnalyticsError,
    ArgumentTypeError,
    BufferFullError,
    ConfigError,
    FilterError,
    MetricsDirNotFoundError,
    MissingDependencyError,
    NotAMetricsDirError,
    ReadError,
    ReportFormatError,
    SerializationError,
    ShipError,
    ShipFatalError,
    ShipperLockedError,
    ShipRejectedError,
    ShipRetryableError,
    TargetError,
    WriteError,
    WriterClosedError,
    WriterStateError,
)
from ._models import MetricEntry, MetricType
from ._read.duckdb_engine import summarize_duckdb
from ._read.files import ReadStats
from ._read.reader import iter_entries, read_entries
from ._read.summary import (
    CheckpointStats,
    ErrorStats,
    ModelTokens,
    RunStats,
    SessionStats,
    Summary,
    ToolStats,
    summarize,
)
from ._ship.archive import Archiver, ArchiverStats, summarize_archive
from ._ship.report import summarize_central
from ._ship.shipper import Shipper, ShipperHealth, ShipperStats
from ._write.asgi import RequestTimingMiddleware
from ._write.facade import MetricsWriter, Timing
from ._write.otel import OTelSink, OTelStats
from ._write.prometheus import PrometheusSink, PrometheusStats
from ._write.sinks import LoggingSink, Sink
from ._write.writer import HealthStatus, JSONLWriter, WriterStats

try:
    __version__ = _metadata.version("asyncio-jsonl-analytics")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"

__all__ = [
    "AnalyticsError",
    "Archiver",
    "ArchiverStats",
    "ArgumentTypeError",
    "BufferFullError",
    "CheckpointStats",
    "ConfigError",
    "ErrorStats",
    "FilterError",
    "HealthStatus",
    "JSONLWriter",
    "LoggingSink",
    "MetricEntry",
    "MetricType",
    "MetricsDirNotFoundError",
    "MetricsWriter",
    "MissingDependencyError",
    "ModelTokens",
    "NotAMetricsDirError",
    "OTelSink",
    "OTelStats",
    "PrometheusSink",
    "PrometheusStats",
    "ReadError",
    "ReadStats",
    "ReportFormatError",
    "RequestTimingMiddleware",
    "RunStats",
    "SerializationError",
    "SessionStats",
    "ShipError",
    "ShipFatalError",
    "ShipRejectedError",
    "ShipRetryableError",
    "Shipper",
    "ShipperHealth",
    "ShipperLockedError",
    "ShipperStats",
    "Sink",
    "Summary",
    "TargetError",
    "Timing",
    "ToolStats",
    "WriteError",
    "WriterClosedError",
    "WriterConfig",
    "WriterStateError",
    "WriterStats",
    "__version__",
    "iter_entries",
    "read_entries",
    "summarize",
    "summarize_archive",
    "summarize_central",
    "summarize_duckdb",
]

# Reprs and tracebacks name the public door (analytics.WriteError), not the room a
# class happens to live in (analytics._exceptions.WriteError).
_locals = locals()
for _name in __all__:
    if not _name.startswith("__"):
        _locals[_name].__module__ = "analytics"
del _locals, _name
