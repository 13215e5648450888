"""PrometheusSink: live counters and histograms of the entries, for a Prometheus scrape.

Needs the ``prometheus`` extra (``pip install 'asyncio-jsonl-analytics[prometheus]'``),
that is ``prometheus_client``; without it the sink's constructor raises
:class:`MissingDependencyError`, and the rest of the package works as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .._exceptions import ConfigError, MissingDependencyError
from .._models import MetricEntry, MetricType
from .labels import DURATION_BUCKETS, LabelValues, amount, outcome, seconds, token_counts

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric

    from .writer import JSONLWriter

__all__ = ["PrometheusSink", "PrometheusStats"]

logger = logging.getLogger("analytics")


def _import_prometheus_client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise MissingDependencyError(
            "PrometheusSink needs prometheus_client:"
            " pip install 'asyncio-jsonl-analytics[prometheus]'",
            name="prometheus_client",
        ) from exc
    return prometheus_client


class PrometheusStats:
    """What a :class:`PrometheusSink` has seen (a snapshot, see :meth:`PrometheusSink.stats`)."""

    __slots__ = ("entries", "errors", "overflowed")

    def __init__(self, entries: int, errors: int, overflowed: dict[str, int]) -> None:
        self.entries = entries
        """Entries counted."""
        self.errors = errors
        """Entries the sink could not count (a bug of ours; logged)."""
        self.overflowed = overflowed
        """Per label, how many values were counted under ``"other"``."""

    def __repr__(self) -> str:
        return (
            f"PrometheusStats(entries={self.entries}, errors={self.errors},"
            f" overflowed={self.overflowed!r})"
        )


class PrometheusSink:
    """Counts the entries it is given into Prometheus counters and histograms.

    A :class:`Sink`: give it to :class:`MetricsWriter` beside the :class:`JSONLWriter`
    (``MetricsWriter(writer, PrometheusSink())``). ``write()`` only increments
    in-memory metrics (thread-safe, a few microseconds); nothing it does waits on the
    network: Prometheus pulls the numbers, from :meth:`start_http_server`'s port or
    from the application's own ``/metrics`` route (:meth:`asgi_app`,
    :meth:`exposition`).

    Metrics (with the default ``namespace="analytics"``):

    - ``analytics_entries_total{type}``: entries seen, by entry type;
    - ``analytics_tool_calls_total{tool,outcome}`` and
      ``analytics_tool_duration_seconds{tool}`` (a histogram);
    - ``analytics_errors_total{error_type}``;
    - ``analytics_tokens_total{model,direction}`` (``input``, ``output``,
      ``cache_read``, ``cache_write``) and ``analytics_cost_usd_total{model}``;
    - ``analytics_sessions_started_total``, ``analytics_sessions_ended_total``;
    - ``analytics_operation_duration_seconds{operation,outcome}`` (a histogram);
    - ``analytics_label_overflow_total{label}``: values counted under ``other``;
    - with ``writer=``, the file writer's own counters, read at scrape time:
      ``analytics_writer_entries_written_total``, ``analytics_writer_dropped_total``,
      ``analytics_writer_errors_total`` and ``analytics_writer_pending``.

    Session and user ids, messages and other free text are never labels. Each label
    keeps its first ``max_label_values`` distinct values; later ones are counted
    under ``other``, so the number of series stays bounded.

    Args:
        registry: the ``prometheus_client.CollectorRegistry`` to register into
            (``prometheus_client.REGISTRY`` for the process-wide one an app may
            already serve); default: a registry of this sink's own.
        namespace: the prefix of every metric name.
        max_label_values: distinct values kept per label.
        buckets: the duration histograms' bucket bounds, in seconds.
        writer: a :class:`JSONLWriter` whose stats to expose too.

    Raises:
        MissingDependencyError: ``prometheus_client`` is not installed.
        ConfigError: ``max_label_values`` is not a positive int, or ``namespace`` is
            not a valid metric name prefix.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "analytics",
        max_label_values: int = 100,
        buckets: tuple[float, ...] = DURATION_BUCKETS,
        writer: JSONLWriter | None = None,
    ) -> None:
        client = _import_prometheus_client()
        try:
            self._labels = LabelValues(max_label_values)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self.registry: CollectorRegistry = (
            registry if registry is not None else client.CollectorRegistry(auto_describe=True)
        )
        self.namespace = namespace
        self._entries = 0
        self._errors = 0
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            made: Counter = client.Counter(
                name, doc, labels, namespace=namespace, registry=self.registry
            )
            return made

        def histogram(name: str, doc: str, labels: tuple[str, ...]) -> Histogram:
            made: Histogram = client.Histogram(
                name, doc, labels, namespace=namespace, registry=self.registry, buckets=buckets
            )
            return made

        try:
            self.entries = counter("entries", "Entries seen, by type.", ("type",))
            self.tool_calls = counter("tool_calls", "Tool calls, by outcome.", ("tool", "outcome"))
            self.tool_duration = histogram(
                "tool_duration_seconds", "How long tool calls took.", ("tool",)
            )
            self.errors = counter("errors", "Errors recorded, by type.", ("error_type",))
            self.tokens = counter(
                "tokens", "Model tokens, by model and direction.", ("model", "direction")
            )
            self.cost = counter("cost_usd", "Model cost in US dollars.", ("model",))
            self.sessions_started = counter("sessions_started", "Sessions started.")
            self.sessions_ended = counter("sessions_ended", "Sessions ended.")
            self.operation_duration = histogram(
                "operation_duration_seconds",
                "How long operations (requests) took.",
                ("operation", "outcome"),
            )
            self.overflow = counter(
                "label_overflow", "Label values counted under 'other'.", ("label",)
            )
            if writer is not None:
                self.registry.register(_WriterCollector(namespace, writer.stats))
        except ValueError as exc:  # a bad namespace, or names already in the registry
            raise ConfigError(f"cannot register the Prometheus metrics: {exc}") from exc
        # Children by label values: ``labels()`` checks and locks on every call.
        self._children: dict[tuple[Any, ...], Any] = {}
        self._handlers: dict[MetricType, Callable[[MetricEntry], None]] = {
            MetricType.TOOL_USE: self._tool_use,
            MetricType.ERROR_OCCURRED: self._error,
            MetricType.TOKEN_USAGE: self._token_usage,
            MetricType.SESSION_START: self._session_start,
            MetricType.SESSION_END: self._session_end,
            MetricType.PERFORMANCE: self._performance,
        }
        self._by_type = {kind: self.entries.labels(kind.value) for kind in MetricType}

    # -- the Sink protocol ---------------------------------------------------------

    async def write(self, entry: MetricEntry) -> None:
        """Count ``entry``. Never raises for an entry's content, and never waits."""
        try:
            self._by_type[entry.type].inc()
            handler = self._handlers.get(entry.type)
            if handler is not None:
                handler(entry)
            self._entries += 1
        except Exception:
            self._errors += 1
            if self._errors == 1:
                logger.exception("PrometheusSink could not count entry %s", entry.id)

    async def flush(self) -> None:
        """Nothing to flush: Prometheus reads the current values when it scrapes."""

    async def close(self) -> None:
        """Stop the server of :meth:`start_http_server`, if any (idempotent). The
        metrics stay registered, and readable, in ``registry``."""
        server, self._server = self._server, None
        if server is not None:
            await anyio.to_thread.run_sync(_stop_server, server, self._thread)

    # -- exposing ------------------------------------------------------------------

    def start_http_server(self, port: int = 9464, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``addr:port`` from a thread (``prometheus_client``'s
        own server) until :meth:`close`.

        Args:
            port: the TCP port; ``0`` picks a free one.
            addr: the address to listen on (``"0.0.0.0"`` for every interface).

        Returns:
            The port it listens on.
        """
        client = _import_prometheus_client()
        if self._server is not None:
            raise ConfigError("this PrometheusSink already serves /metrics")
        server, thread = client.start_http_server(port, addr=addr, registry=self.registry)
        self._server, self._thread = server, thread
        bound: int = server.server_port
        logger.info("serving Prometheus metrics on http://%s:%d/metrics", addr, bound)
        return bound

    def asgi_app(self) -> Callable[..., Any]:
        """An ASGI app that serves this sink's registry: mount it at ``/metrics``."""
        app: Callable[..., Any] = _import_prometheus_client().make_asgi_app(self.registry)
        return app

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type: what a
        ``/metrics`` handler of any framework returns."""
        client = _import_prometheus_client()
        body: bytes = client.generate_latest(self.registry)
        return body, str(client.CONTENT_TYPE_LATEST)

    def stats(self) -> PrometheusStats:
        """A snapshot of what the sink has counted."""
        return PrometheusStats(self._entries, self._errors, dict(self._labels.overflowed))

    def __repr__(self) -> str:
        where = "" if self._server is None else f" serving :{self._server.server_port}"
        return f"<PrometheusSink namespace={self.namespace!r}{where}>"

    # -- one handler per entry type that has more than a count ---------------------

    def _label(self, label: str, raw: object) -> str:
        if raw.__class__ is str:
            seen = self._labels.seen.get(label)
            if seen is not None and raw in seen:
                return raw
        value = self._labels.value(label, raw)
        if value != raw and raw.__class__ is str:
            self._child(self.overflow, label).inc()
        return value

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _tool_use(self, entry: MetricEntry) -> None:
        data = entry.data
        tool = self._label("tool", data.get("tool_name"))
        self._child(self.tool_calls, tool, outcome(data)).inc()
        duration = seconds(data)
        if duration is not None:
            self._child(self.tool_duration, tool).observe(duration)

    def _error(self, entry: MetricEntry) -> None:
        self._child(self.errors, self._label("error_type", entry.data.get("error_type"))).inc()

    def _token_usage(self, entry: MetricEntry) -> None:
        data = entry.data
        model = self._label("model", data.get("model"))
        for direction, count in token_counts(data):
            self._child(self.tokens, model, direction).inc(count)
        cost = amount(data, "cost_usd")
        if cost is not None:
            self._child(self.cost, model).inc(cost)

    def _session_start(self, entry: MetricEntry) -> None:
        self.sessions_started.inc()

    def _session_end(self, entry: MetricEntry) -> None:
        self.sessions_ended.inc()

    def _performance(self, entry: MetricEntry) -> None:
        data = entry.data
        duration = seconds(data)
        if duration is not None:
            operation = self._label("operation", data.get("operation"))
            self._child(self.operation_duration, operation, outcome(data)).observe(duration)


def _stop_server(server: WSGIServer, thread: threading.Thread | None) -> None:
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(5.0)


class _WriterCollector:
    """Reads a writer's stats at scrape time (from the scraping thread: the stats are
    a snapshot of plain counters, no I/O)."""

    def __init__(self, namespace: str, stats: Callable[[], Any]) -> None:
        self.prefix = f"{namespace}_writer_" if namespace else "writer_"
        self.stats = stats

    def describe(self) -> list[Metric]:
        return []  # collected only when scraped: the writer may not be open yet

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        from prometheus_client.metrics_core import CounterMetricFamily as counter
        from prometheus_client.metrics_core import GaugeMetricFamily as gauge

        yield counter(
            f"{self.prefix}entries_written", "Entries the file writer wrote.",
            value=stats.entries_written,
        )  # fmt: skip
        yield counter(
            f"{self.prefix}dropped", "Entries the file writer dropped (on_full).",
            value=stats.dropped,
        )  # fmt: skip
        yield counter(
            f"{self.prefix}errors", "Failed file write and compression attempts.",
            value=stats.errors,
        )  # fmt: skip
        yield gauge(
            f"{self.prefix}pending", "Entries accepted but not yet written.", value=stats.pending
        )
