"""PrometheusSink: live counters and histograms of the entries, for a Prometheus scrape.

Needs the ``prometheus`` extra (``pip install 'asyncio-jsonl-analytics[prometheus]'``),
that is ``prometheus_client``; without it the sink's constructor raises
:class:`MissingDependencyError`, and the rest of the package works as before.
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .._exceptions import ConfigError, MissingDependencyError
from .._models import MetricEntry, MetricType
from .labels import DURATION_BUCKETS, OTHER, LabelValues, amount, outcome, seconds, token_counts

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from .writer import JSONLWriter

__all__ = ["PrometheusSink", "PrometheusStats"]

_INFINITY = float("inf")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

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
        if not namespace or not _NAME.fullmatch(namespace):
            raise ConfigError(
                f"namespace must be a metric name prefix like 'analytics', not {namespace!r}"
            )
        self.registry: CollectorRegistry = (
            registry if registry is not None else client.CollectorRegistry(auto_describe=True)
        )
        self.namespace = namespace
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._entries = 0
        self._errors = 0
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        # The counts themselves: plain dicts and lists, updated on the event loop in
        # well under a microsecond each, and turned into metric families only when
        # Prometheus scrapes (from the server's thread, on a copy).
        self.by_type: dict[str, int] = {kind.value: 0 for kind in MetricType}
        self.tool_calls: dict[tuple[str, str], int] = {}
        self.tool_duration: dict[tuple[str], list[float]] = {}
        self.errors: dict[tuple[str], int] = {}
        self.tokens: dict[tuple[str, str], int] = {}
        self.cost: dict[tuple[str], float] = {}
        self.sessions = [0, 0]  # started, ended
        self.operation_duration: dict[tuple[str, str], list[float]] = {}
        self._tool_keys: dict[tuple[Any, Any], tuple[tuple[str, str], tuple[str]]] = {}
        self._handlers: dict[MetricType, Callable[[dict[str, Any]], None]] = {
            MetricType.TOOL_USE: self._tool_use,
            MetricType.ERROR_OCCURRED: self._error,
            MetricType.TOKEN_USAGE: self._token_usage,
            MetricType.SESSION_START: self._session_start,
            MetricType.SESSION_END: self._session_end,
            MetricType.PERFORMANCE: self._performance,
        }
        try:
            self.registry.register(_SinkCollector(self))
            if writer is not None:
                self.registry.register(_WriterCollector(namespace, writer.stats))
        except ValueError as exc:  # names already in the registry
            raise ConfigError(f"cannot register the Prometheus metrics: {exc}") from exc

    # -- the Sink protocol ---------------------------------------------------------

    async def write(self, entry: MetricEntry) -> None:
        """Count ``entry``. Never raises for an entry's content, and never waits."""
        try:
            kind = entry.type
            self.by_type[kind.value] += 1
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(entry.data)
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
        return self._labels.value(label, raw)

    def _observe(self, histograms: dict[Any, list[float]], key: Any, value: float) -> None:
        # [count per bucket..., count above the last bound, sum]
        counts = histograms.get(key)
        if counts is None:
            counts = histograms[key] = [0.0] * (len(self.buckets) + 2)
        counts[bisect_left(self.buckets, value)] += 1
        counts[-1] += value

    def _tool_use(self, data: dict[str, Any]) -> None:
        # The hottest entry type: the labels of a (tool_name, success) pair already
        # seen are looked up once, in a cache as bounded as the labels themselves.
        name, success = data.get("tool_name"), data.get("success")
        cacheable = name.__class__ is str and success.__class__ is bool
        keys = self._tool_keys.get((name, success)) if cacheable else None
        if keys is None:
            tool = self._label("tool", name)
            keys = ((tool, outcome(data)), (tool,))
            if cacheable and tool != OTHER and len(self._tool_keys) < 2 * self._labels.max_values:
                self._tool_keys[(name, success)] = keys
        calls = self.tool_calls
        calls[keys[0]] = calls.get(keys[0], 0) + 1
        duration = data.get("duration_ms")
        kind = duration.__class__
        if (kind is float or kind is int) and 0 <= duration < _INFINITY:  # type: ignore[operator]
            self._observe(self.tool_duration, keys[1], duration / 1000.0)  # type: ignore[operator]

    def _error(self, data: dict[str, Any]) -> None:
        key = (self._label("error_type", data.get("error_type")),)
        self.errors[key] = self.errors.get(key, 0) + 1

    def _token_usage(self, data: dict[str, Any]) -> None:
        model = self._label("model", data.get("model"))
        for direction, count in token_counts(data):
            key = (model, direction)
            self.tokens[key] = self.tokens.get(key, 0) + count
        cost = amount(data, "cost_usd")
        if cost is not None:
            self.cost[(model,)] = self.cost.get((model,), 0.0) + cost

    def _session_start(self, data: dict[str, Any]) -> None:
        self.sessions[0] += 1

    def _session_end(self, data: dict[str, Any]) -> None:
        self.sessions[1] += 1

    def _performance(self, data: dict[str, Any]) -> None:
        duration = seconds(data)
        if duration is not None:
            operation = self._label("operation", data.get("operation"))
            self._observe(self.operation_duration, (operation, outcome(data)), duration)


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


class _SinkCollector:
    """Turns a sink's counts into metric families when Prometheus scrapes (in the
    scraping thread: each dict is copied first, a copy the GIL makes atomic)."""

    def __init__(self, sink: PrometheusSink) -> None:
        self.sink = sink
        self.prefix = f"{sink.namespace}_"

    def describe(self) -> Iterator[Metric]:
        return self.families(empty=True)

    def collect(self) -> Iterator[Metric]:
        return self.families(empty=False)

    def families(self, empty: bool) -> Iterator[Metric]:
        from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        go_string: Callable[[float], str] = floatToGoString  # "1.0", "0.005", "+Inf"

        sink, prefix = self.sink, self.prefix

        def counter(name: str, doc: str, labels: tuple[str, ...], values: dict[Any, Any]) -> Metric:
            family = CounterMetricFamily(f"{prefix}{name}", doc, labels=labels)
            if not empty:
                for key, value in dict(values).items():
                    family.add_metric(key, value)
            return family

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], values: dict[Any, list[float]]
        ) -> Metric:
            family = HistogramMetricFamily(f"{prefix}{name}", doc, labels=labels)
            if not empty:
                bounds = [*(go_string(b) for b in sink.buckets), "+Inf"]
                for key, counts in dict(values).items():
                    snapshot = list(counts)
                    cumulative, total = [], 0.0
                    for bound, count in zip(bounds, snapshot[:-1], strict=True):
                        total += count
                        cumulative.append((bound, total))
                    family.add_metric(list(key), cumulative, snapshot[-1])
            return family

        yield counter("entries", "Entries seen, by type.", ("type",),
                      {(k,): v for k, v in dict(sink.by_type).items()})  # fmt: skip
        yield counter("tool_calls", "Tool calls, by outcome.", ("tool", "outcome"),
                      sink.tool_calls)  # fmt: skip
        yield histogram("tool_duration_seconds", "How long tool calls took.", ("tool",),
                        sink.tool_duration)  # fmt: skip
        yield counter("errors", "Errors recorded, by type.", ("error_type",), sink.errors)
        yield counter("tokens", "Model tokens, by model and direction.", ("model", "direction"),
                      sink.tokens)  # fmt: skip
        yield counter("cost_usd", "Model cost in US dollars.", ("model",), sink.cost)
        started, ended = sink.sessions
        yield counter("sessions_started", "Sessions started.", (), {(): started})
        yield counter("sessions_ended", "Sessions ended.", (), {(): ended})
        yield histogram("operation_duration_seconds", "How long operations (requests) took.",
                        ("operation", "outcome"), sink.operation_duration)  # fmt: skip
        yield counter("label_overflow", "Label values counted under 'other'.", ("label",),
                      {(k,): v for k, v in dict(sink._labels.overflowed).items()})  # fmt: skip
