"""OTelSink: entries as OpenTelemetry log records (and metrics), exported over OTLP/HTTP.

Needs the ``otel`` extra (``pip install 'asyncio-jsonl-analytics[otel]'``): the
OpenTelemetry SDK and its OTLP/HTTP exporter. Without them the sink's constructor
raises :class:`MissingDependencyError`, and the rest of the package works as before.

The SDK's batch processor and periodic metric reader export from threads of their
own; ``write()`` only builds a record and appends it to the processor's queue. What
the receiver did not take (it was down, it refused, the queue was full) is counted
in :meth:`OTelSink.stats`, never waited for.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._exceptions import ConfigError, MissingDependencyError
from .._models import MetricEntry, MetricType
from .labels import DURATION_BUCKETS, LabelValues, amount, outcome, seconds, token_counts
from .otel_helper import HelperConfig, HelperProcess, log_record

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider

__all__ = ["OTelSink", "OTelStats"]

logger = logging.getLogger("analytics")

_FEED_EVERY = 0.01
"""Seconds between two rounds of the feeder thread."""
_GIL_PAUSE = 0.0002
"""How long the sink's threads sleep to let the event loop have the GIL:
``time.sleep(0)`` lets go of it and takes it back before a waiting loop has woken up
to take it."""
_RESTART_EVERY = 1.0
"""Seconds at least between two starts of the helper process, if it keeps dying."""
_LINES_PER_SEND = 64
"""The feeder thread pauses after serializing and sending this many entries."""
_DURATIONS_PER_PAUSE = 32
"""The metric reader's thread pauses after recording this many durations into the
histograms (up to ``max_durations`` at each collection)."""


@dataclass(frozen=True)
class OTelStats:
    """A snapshot of what an :class:`OTelSink` has done (see :meth:`OTelSink.stats`)."""

    records: int
    """Entries turned into log records and queued for export."""
    exported: int
    """Records the receiver accepted."""
    dropped: int
    """Records lost: refused, undeliverable (the receiver was down for longer than
    the exporter's timeout), not queued because the queue was full, or still queued
    when :meth:`OTelSink.close` gave up waiting."""
    queue_full: int
    """Of ``dropped``: records not queued because ``max_queue_size`` were waiting."""
    in_flight: int
    """Records queued or being exported."""
    metric_exports: int
    """Metric exports the receiver accepted."""
    metric_exports_failed: int
    """Metric exports that failed (their data points are sent again, cumulatively,
    by the next export)."""
    durations_dropped: int
    """Durations left out of the histograms: more than 10,000 arrived between two
    metric collections."""


def import_sdk() -> SimpleNamespace:
    try:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.metrics import Observation
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            MetricExportResult,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
    except ImportError as exc:
        raise MissingDependencyError(
            "OTelSink needs the OpenTelemetry SDK and its OTLP/HTTP exporter:"
            " pip install 'asyncio-jsonl-analytics[otel]'",
            name=exc.name,
        ) from exc
    return SimpleNamespace(
        LogRecord=LogRecord,
        SeverityNumber=SeverityNumber,
        OTLPLogExporter=OTLPLogExporter,
        OTLPMetricExporter=OTLPMetricExporter,
        LoggerProvider=LoggerProvider,
        BatchLogRecordProcessor=BatchLogRecordProcessor,
        LogRecordExportResult=LogRecordExportResult,
        MeterProvider=MeterProvider,
        MetricExportResult=MetricExportResult,
        PeriodicExportingMetricReader=PeriodicExportingMetricReader,
        Resource=Resource,
        Observation=Observation,
    )


class OTelSink:
    """Sends each entry to an OpenTelemetry collector as a log record, over OTLP/HTTP,
    and keeps OTel metrics of the numeric fields.

    A :class:`Sink`: give it to :class:`MetricsWriter` after the :class:`JSONLWriter`
    (``MetricsWriter(writer, OTelSink())``). ``write()`` only queues the entry (and
    counts it, in plain dicts); a thread of the sink's writes the queued entries'
    lines to a helper process (:mod:`analytics._write.otel_helper`), which builds the
    log records and hands them to the SDK's ``BatchLogRecordProcessor``: the SDK's
    Python never shares the service's GIL. A slow or dead receiver costs the writer
    nothing, and what it misses is counted in :meth:`stats`.

    Each log record has the entry's timestamp, ``event_name`` ``analytics.<type>``,
    severity ``ERROR`` for ``error_occurred`` and ``INFO`` otherwise, the entry's JSON
    line as its body, and as attributes: ``analytics.type``, ``analytics.id``,
    ``session.id``, ``user.id`` (when set), every ``data`` field under its own name and
    every ``metadata`` field as ``metadata.<key>`` (lists and dicts as JSON text).

    The metrics (``metrics=True``) mirror :class:`PrometheusSink`'s, with the same
    bounded labels: ``analytics.entries``, ``analytics.tool.calls``,
    ``analytics.tool.duration`` (s), ``analytics.errors``, ``analytics.tokens``,
    ``analytics.cost``, ``analytics.sessions.started``, ``analytics.sessions.ended``
    and ``analytics.operation.duration`` (s).

    The resource (who sends) comes from the standard variables: ``OTEL_SERVICE_NAME``
    and ``OTEL_RESOURCE_ATTRIBUTES``, over a ``host.name`` of this machine's name; the
    endpoints, headers and timeout of the exporter from ``OTEL_EXPORTER_OTLP_*`` when
    not given here.

    Args:
        endpoint: the collector's OTLP/HTTP base URL (``http://host:4318``); the
            ``/v1/logs`` and ``/v1/metrics`` paths are added. Default: the
            ``OTEL_EXPORTER_OTLP_*`` variables, else ``http://localhost:4318``.
        resource_attributes: resource attributes that override the environment's.
        headers: HTTP headers of every export (an API key...).
        timeout: seconds one export may take, retries included.
        max_queue_size: records waiting for export at most; more are dropped.
        max_export_batch_size: records per export request at most.
        schedule_delay: seconds between two exports of the log records.
        logs: send each entry as a log record. ``False`` sends only the metrics,
            which cost the event loop a few dict updates per entry: the log records
            cost the OpenTelemetry SDK about 75 µs of Python per entry in its threads,
            and the loop waits for the GIL meanwhile (see docs/sinks.md).
        metrics: also record and export metrics.
        metrics_interval: seconds between two metric exports.
        max_label_values: distinct values kept per metric label (then ``other``).
        close_timeout: seconds :meth:`close` waits for the last exports.

    Raises:
        MissingDependencyError: the OpenTelemetry SDK or exporter is not installed.
        ConfigError: an option has a value the sink cannot use.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        resource_attributes: Mapping[str, str | bool | int | float] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 64,
        schedule_delay: float = 1.0,
        logs: bool = True,
        metrics: bool = True,
        metrics_interval: float = 10.0,
        max_label_values: int = 100,
        close_timeout: float = 10.0,
    ) -> None:
        sdk = import_sdk()
        for name, count in (
            ("max_queue_size", max_queue_size),
            ("max_export_batch_size", max_export_batch_size),
        ):
            if count.__class__ is not int or count < 1:
                raise ConfigError(f"{name} must be a positive int, not {count!r}")
        for name, value in (
            ("schedule_delay", schedule_delay),
            ("metrics_interval", metrics_interval),
            ("close_timeout", close_timeout),
            ("timeout", 1.0 if timeout is None else timeout),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        if not (logs or metrics):
            raise ConfigError("OTelSink with logs=False and metrics=False sends nothing")
        try:
            self._labels = LabelValues(max_label_values)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.close_timeout = float(close_timeout)
        self.max_queue_size = max_queue_size
        self.logs = bool(logs)
        self._sdk = sdk
        self._records = 0
        self._queue_full = 0
        self._abandoned = 0
        self._metric_exports = 0
        self._metric_failures = 0
        self._closed = False

        resource = sdk.Resource({"host.name": socket.gethostname()}).merge(
            sdk.Resource.create(dict(resource_attributes or {}))
        )
        self.resource_attributes: dict[str, Any] = dict(resource.attributes)
        """The resource every record and metric is sent with."""
        export: dict[str, Any] = {"headers": dict(headers) if headers else None}
        if timeout is not None:
            export["timeout"] = float(timeout)
        sink = self

        metric_exporter: Any = sdk.OTLPMetricExporter

        class CountedMetricExporter(metric_exporter):  # type: ignore[misc]
            def export(self, metrics_data: Any, *args: Any, **kwargs: Any) -> Any:
                result = super().export(metrics_data, *args, **kwargs)
                if result is sdk.MetricExportResult.SUCCESS:
                    sink._metric_exports += 1
                else:
                    sink._metric_failures += 1
                return result

        def url(path: str) -> str | None:
            return None if self.endpoint is None else f"{self.endpoint}{path}"

        self._helper = HelperProcess(
            HelperConfig(
                endpoint=url("/v1/logs"),
                headers=dict(headers) if headers else None,
                timeout=None if timeout is None else float(timeout),
                max_queue_size=max_queue_size,
                max_export_batch_size=max_export_batch_size,
                schedule_delay=float(schedule_delay),
                resource=self.resource_attributes,
            )
        )
        self._pending: deque[MetricEntry] = deque()
        self._draining = threading.Lock()
        self._wanted = threading.Event()  # set by start() or the first entry
        self._stopping = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="analytics-otel", daemon=True)
        self._feeder.start()
        self._meter_provider: MeterProvider | None = None
        self._handlers: dict[MetricType, Callable[[dict[str, Any]], None]] = {}
        self.max_durations = 10_000
        self._durations_dropped = 0
        self._observation = sdk.Observation
        if metrics:
            reader = sdk.PeriodicExportingMetricReader(
                CountedMetricExporter(endpoint=url("/v1/metrics"), **export),
                export_interval_millis=metrics_interval * 1000,
            )
            self._meter_provider = sdk.MeterProvider(resource=resource, metric_readers=[reader])
            self._instruments(self._meter_provider)

    def _instruments(self, provider: MeterProvider) -> None:
        # The counts are kept in plain dicts on the loop (well under a microsecond an
        # entry) and observed by the SDK's reader thread at each collection; the
        # durations wait in a bounded list that the same thread records into the
        # histograms. The SDK's own per-measurement path costs tens of microseconds.
        meter = provider.get_meter("analytics")
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

        def observe(name: str) -> Callable[[Any], Iterable[Any]]:
            def callback(options: Any) -> Iterable[Any]:
                if name == "analytics.entries":
                    self._record_durations()  # once per collection, before it is read
                return [
                    self._observation(value, dict(attributes))
                    for (metric, attributes), value in dict(self._counts).items()
                    if metric == name
                ]

            return callback

        for name, unit, doc in (
            ("analytics.entries", "{entry}", "Entries seen."),
            ("analytics.tool.calls", "{call}", "Tool calls."),
            ("analytics.errors", "{error}", "Errors recorded."),
            ("analytics.tokens", "{token}", "Model tokens."),
            ("analytics.cost", "USD", "Model cost."),
            ("analytics.sessions.started", "{session}", "Sessions started."),
            ("analytics.sessions.ended", "{session}", "Sessions ended."),
        ):
            meter.create_observable_counter(name, [observe(name)], unit, doc)
        self._tool_duration = meter.create_histogram(
            "analytics.tool.duration",
            "s",
            "How long tool calls took.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._operation_duration = meter.create_histogram(
            "analytics.operation.duration",
            "s",
            "How long operations (requests) took.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._durations: list[tuple[Any, float, dict[str, str]]] = []
        self._handlers = {
            MetricType.TOOL_USE: self._tool_use,
            MetricType.ERROR_OCCURRED: self._error_metric,
            MetricType.TOKEN_USAGE: self._token_usage,
            MetricType.SESSION_START: lambda data: self._count("analytics.sessions.started"),
            MetricType.SESSION_END: lambda data: self._count("analytics.sessions.ended"),
            MetricType.PERFORMANCE: self._performance,
        }

    def _count(self, name: str, amount: float = 1, *attributes: tuple[str, str]) -> None:
        key = (name, attributes)
        counts = self._counts
        counts[key] = counts.get(key, 0) + amount

    def _duration(self, histogram: Any, value: float, attributes: dict[str, str]) -> None:
        if len(self._durations) < self.max_durations:
            self._durations.append((histogram, value, attributes))
        else:
            self._durations_dropped += 1

    def _record_durations(self) -> None:
        """In the reader's thread: record the durations gathered since the last time."""
        durations, self._durations = self._durations, []
        for number, (histogram, value, attributes) in enumerate(durations, 1):
            histogram.record(value, attributes)  # the SDK's Python: several µs each
            if number % _DURATIONS_PER_PAUSE == 0:
                time.sleep(_GIL_PAUSE)

    # -- the Sink protocol ---------------------------------------------------------

    async def start(self) -> None:
        """Start the helper process that exports the log records, and wait (in a
        worker thread) until it is ready, at most ``close_timeout`` seconds. Optional:
        the first entry starts it too, but entries that arrive while it starts (about
        half a second) wait in the queue, and past ``max_queue_size`` are dropped."""
        if self._closed or not self.logs:
            return
        self._wanted.set()
        await anyio.to_thread.run_sync(
            self._helper_ready, self.close_timeout, abandon_on_cancel=True
        )

    async def write(self, entry: MetricEntry) -> None:
        """Queue ``entry`` for export as a log record (and count it in the metrics).

        Never waits: with ``max_queue_size`` records already waiting (the receiver is
        slow or down), the record is dropped and counted in :meth:`stats`.
        """
        if self._closed:
            return
        if not self.logs:
            pass
        elif self._in_flight() >= self.max_queue_size:
            self._queue_full += 1
        else:
            self._records += 1
            self._pending.append(entry)  # sent to the helper by the feeder thread
            if self._records == 1:
                self._wanted.set()
        if self._handlers:
            self._count("analytics.entries", 1, ("type", entry.type.value))
            handler = self._handlers.get(entry.type)
            if handler is not None:
                handler(entry.data)

    async def flush(self) -> None:
        """Export what is queued, waiting at most ``close_timeout`` seconds (in a
        worker thread: the loop goes on meanwhile)."""
        if self._closed:
            return
        with anyio.move_on_after(self.close_timeout + 1):
            await anyio.to_thread.run_sync(self._force_flush, abandon_on_cancel=True)

    async def close(self) -> None:
        """Export what is queued (at most ``close_timeout`` seconds), stop the helper
        process and the SDK's threads. Idempotent; later entries are ignored."""
        if self._closed:
            return
        self._closed = True
        with anyio.move_on_after(self.close_timeout + 5):
            await anyio.to_thread.run_sync(self._shutdown, abandon_on_cancel=True)
        left = self._in_flight()
        if left:
            self._abandoned += left
            logger.warning(
                "OTelSink gave up after %gs with %d record(s) not exported",
                self.close_timeout,
                left,
            )

    def stats(self) -> OTelStats:
        """A snapshot of the counters. Does no I/O."""
        helper = self._helper
        exported = helper.exported
        failed = helper.failed + helper.unbuilt + helper.lost
        return OTelStats(
            records=self._records,
            exported=exported,
            dropped=failed + self._queue_full + self._abandoned,
            queue_full=self._queue_full,
            in_flight=self._in_flight(),
            metric_exports=self._metric_exports,
            metric_exports_failed=self._metric_failures,
            durations_dropped=self._durations_dropped,
        )

    @property
    def helper_pid(self) -> int | None:
        """The pid of the helper process that exports the log records, once started."""
        return self._helper.pid

    def __repr__(self) -> str:
        return f"<OTelSink endpoint={self.endpoint or '(from OTEL_EXPORTER_OTLP_*)'}>"

    def _in_flight(self) -> int:
        helper = self._helper
        done = helper.exported + helper.failed + helper.unbuilt + helper.lost
        return max(0, self._records - done - self._abandoned)

    # -- records -------------------------------------------------------------------

    def record(self, entry: MetricEntry) -> Any:
        """The OpenTelemetry log record of ``entry`` (as the helper process builds it)."""
        return log_record(entry, self._sdk)

    # -- metrics -------------------------------------------------------------------

    def _tool_use(self, data: dict[str, Any]) -> None:
        tool = self._labels.value("tool", data.get("tool_name"))
        self._count("analytics.tool.calls", 1, ("tool", tool), ("outcome", outcome(data)))
        duration = seconds(data)
        if duration is not None:
            self._duration(self._tool_duration, duration, {"tool": tool})

    def _error_metric(self, data: dict[str, Any]) -> None:
        error_type = self._labels.value("error_type", data.get("error_type"))
        self._count("analytics.errors", 1, ("error_type", error_type))

    def _token_usage(self, data: dict[str, Any]) -> None:
        model = self._labels.value("model", data.get("model"))
        for direction, count in token_counts(data):
            self._count("analytics.tokens", count, ("model", model), ("direction", direction))
        cost = amount(data, "cost_usd")
        if cost is not None:
            self._count("analytics.cost", cost, ("model", model))

    def _performance(self, data: dict[str, Any]) -> None:
        duration = seconds(data)
        if duration is not None:
            operation = self._labels.value("operation", data.get("operation"))
            self._duration(
                self._operation_duration,
                duration,
                {"operation": operation, "outcome": outcome(data)},
            )

    # -- in a worker thread --------------------------------------------------------

    def _feed(self) -> None:
        """The feeder thread: starts the helper when it is first wanted, then sends it
        the queued entries' lines every ``_FEED_EVERY``."""
        while not self._wanted.wait(_FEED_EVERY):
            if self._stopping.is_set():
                return
        if self._stopping.is_set() and not self._pending:
            return
        try:
            self._helper.start()
        except Exception:
            logger.exception("OTelSink could not start its helper process")
            return
        started = time.monotonic()
        while not self._stopping.wait(_FEED_EVERY):
            if not self._helper.alive:
                if time.monotonic() - started >= _RESTART_EVERY:
                    logger.warning(
                        "OTelSink's helper process (pid %s) ended: starting another",
                        self._helper.pid,
                    )
                    started = time.monotonic()
                    try:
                        self._helper.restart()
                    except Exception:
                        logger.exception("OTelSink could not restart its helper process")
            elif self._helper.wait_ready(0):
                self._drain()

    def _helper_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._helper.pid is None:  # the feeder thread starts it
            if time.monotonic() > deadline or not self._feeder.is_alive():
                return False
            time.sleep(0.005)
        return self._helper.wait_ready(max(0.0, deadline - time.monotonic()))

    def _drain(self) -> None:
        # Serializing holds the GIL (a few µs an entry): a batch at a time, with the GIL
        # handed back in between so the loop never waits long. The helper does the rest.
        pending = self._pending
        with self._draining:
            while pending:
                lines: list[bytes] = []
                while pending and len(lines) < _LINES_PER_SEND:
                    try:
                        lines.append(pending.popleft().to_json_line())
                    except IndexError:
                        break
                if lines:
                    self._helper.send(lines)  # GIL released while the pipe takes them
                    time.sleep(_GIL_PAUSE)

    def _force_flush(self) -> None:
        if self._records and self._helper_ready(self.close_timeout):
            self._drain()
            self._helper.flush(self.close_timeout)
        if self._meter_provider is not None:
            self._meter_provider.force_flush()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.close_timeout
        self._stopping.set()
        self._feeder.join()
        if self._helper.pid is not None and self._helper.wait_ready(
            max(0.0, deadline - time.monotonic())
        ):
            self._drain()
        self._helper.stop(max(0.0, deadline - time.monotonic()))
        if self._meter_provider is not None:
            self._meter_provider.shutdown()
