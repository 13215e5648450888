"""analytics: an asyncio-native structured analytics writer.

Record typed events as pydantic ``MetricEntry`` models through ``MetricsWriter`` into
a buffered, rotating, compressing ``JSONLWriter``.
"""

from ._config import WriterConfig
from ._exceptions import (
    AnalyticsError,
    BufferFullError,
    ConfigError,
    SerializationError,
    WriteError,
    WriterClosedError,
    WriterStateError,
)
from ._facade import EntryWriter, MetricsWriter, Timing
from ._models import MetricEntry, MetricType
from ._writer import JSONLWriter, WriterStats

__version__ = "0.1.0"

__all__ = [
    "AnalyticsError",
    "BufferFullError",
    "ConfigError",
    "EntryWriter",
    "JSONLWriter",
    "MetricEntry",
    "MetricType",
    "MetricsWriter",
    "SerializationError",
    "Timing",
    "WriteError",
    "WriterClosedError",
    "WriterConfig",
    "WriterStateError",
    "WriterStats",
    "__version__",
]
