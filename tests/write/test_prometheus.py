"""PrometheusSink: what it counts, read back by parsing the exposition text with
prometheus_client's own parser, and by a real Prometheus scraping it."""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from analytics import (
    ConfigError,
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    MissingDependencyError,
    PrometheusSink,
)

from ..helpers import read_all
from .prom_server import PrometheusServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(sink: PrometheusSink) -> Samples:
    """Every sample of the sink's exposition, by name and labels."""
    body, content_type = sink.exposition()
    assert content_type.startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def label_values(found: Samples) -> set[str]:
    return {v for (_, labels) in found for (k, v) in labels if k != "le"}


async def record_a_session(metrics: MetricsWriter) -> None:
    await metrics.track_session_start("sess-1", user_id="user-1", model="m1")
    await metrics.track_tool_use("sess-1", "grep", True, 20.0)
    await metrics.track_tool_use("sess-1", "grep", True, 30.0)
    await metrics.track_tool_use("sess-1", "grep", False, 3000.0)
    await metrics.track_tool_use("sess-1", "edit", True)
    await metrics.track_error("sess-1", "ValueError", "secret text of user-1")
    await metrics.track_token_usage("sess-1", "m1", 100, 40, cache_read_tokens=7, cost_usd=0.25)
    await metrics.track_token_usage("sess-1", "m1", 1, 2)
    await metrics.track_performance("sess-1", "http.request", True, 120.0, path="/x")
    await metrics.track_performance("sess-1", "http.request", False, 5.0)
    await metrics.track_agent_execution("sess-1", "planner", True, 10.0)
    await metrics.track_session_end("sess-1", duration_seconds=9.0)


class TestCounting:
    async def test_each_question_has_its_metric(self) -> None:
        sink = PrometheusSink()
        await record_a_session(MetricsWriter(sink))
        found = samples(sink)
        assert value(found, "analytics_tool_calls_total", tool="grep", outcome="success") == 2
        assert value(found, "analytics_tool_calls_total", tool="grep", outcome="failure") == 1
        assert value(found, "analytics_tool_calls_total", tool="edit", outcome="success") == 1
        assert value(found, "analytics_tool_duration_seconds_count", tool="grep") == 3
        assert value(found, "analytics_tool_duration_seconds_sum", tool="grep") == pytest.approx(
            3.05
        )
        assert value(found, "analytics_tool_duration_seconds_bucket", tool="grep", le="0.025") == 1
        assert ("analytics_tool_duration_seconds_count", frozenset({("tool", "edit")})) not in found
        assert value(found, "analytics_errors_total", error_type="ValueError") == 1
        assert value(found, "analytics_tokens_total", model="m1", direction="input") == 101
        assert value(found, "analytics_tokens_total", model="m1", direction="output") == 42
        assert value(found, "analytics_tokens_total", model="m1", direction="cache_read") == 7
        assert value(found, "analytics_cost_usd_total", model="m1") == pytest.approx(0.25)
        assert value(found, "analytics_sessions_started_total") == 1
        assert value(found, "analytics_sessions_ended_total") == 1
        assert (
            value(
                found,
                "analytics_operation_duration_seconds_count",
                operation="http.request",
                outcome="success",
            )
            == 1
        )
        assert value(found, "analytics_entries_total", type="tool_use") == 4
        assert value(found, "analytics_entries_total", type="agent_execution") == 1
        assert value(found, "analytics_entries_total", type="checkpoint_created") == 0
        assert sink.stats().entries == 12

    async def test_ids_and_free_text_are_never_label_values(self) -> None:
        sink = PrometheusSink()
        await record_a_session(MetricsWriter(sink))
        values = label_values(samples(sink))
        assert {"grep", "m1", "ValueError", "http.request"} <= values
        assert not values & {"sess-1", "user-1", "secret text of user-1", "/x", "planner"}

    async def test_label_values_are_bounded_and_the_rest_counted_as_other(self) -> None:
        sink = PrometheusSink(max_label_values=3)
        metrics = MetricsWriter(sink)
        for i in range(10):
            await metrics.track_tool_use(f"s{i}", f"tool-{i}", True, 1.0)
        await metrics.track_tool_use("s", "tool-9", True, 1.0)  # overflows again
        await metrics.track_tool_use("s", "tool-0", True, 1.0)
        found = samples(sink)
        tools = {v for (name, labels) in found for (k, v) in labels if k == "tool"}
        assert tools == {"tool-0", "tool-1", "tool-2", "other"}
        assert value(found, "analytics_tool_calls_total", tool="other", outcome="success") == 8
        assert value(found, "analytics_tool_calls_total", tool="tool-0", outcome="success") == 2
        assert value(found, "analytics_label_overflow_total", label="tool") == 8
        assert sink.stats().overflowed == {"tool": 8}

    async def test_an_odd_entry_is_counted_without_raising(self) -> None:
        sink = PrometheusSink()
        odd = MetricEntry(
            type=MetricType.TOOL_USE,
            data={"tool_name": ["not", "a", "name"], "success": "yes", "duration_ms": -5},
        )
        await sink.write(odd)
        await sink.write(MetricEntry(type=MetricType.TOKEN_USAGE, data={"input_tokens": "many"}))
        found = samples(sink)
        assert value(found, "analytics_tool_calls_total", tool="unknown", outcome="unknown") == 1
        assert ("analytics_tool_duration_seconds_count", frozenset({("tool", "unknown")})) not in (
            found
        )
        assert sink.stats().errors == 0
        assert sink.stats().entries == 2


class TestExposing:
    async def test_it_serves_metrics_on_its_own_port_until_closed(self) -> None:
        sink = PrometheusSink()
        port = sink.start_http_server(0)
        await sink.write(MetricEntry(type=MetricType.SESSION_START, session_id="s"))

        def scrape() -> str:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())

        text = await asyncio.to_thread(scrape)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["analytics_sessions_started"].samples[0].value == 1
        assert f":{port}" in repr(sink)
        await sink.close()
        await sink.close()  # idempotent
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(scrape)

    async def test_it_registers_into_an_existing_registry(self) -> None:
        registry = CollectorRegistry()
        sink = PrometheusSink(registry=registry, namespace="app")
        await sink.write(MetricEntry(type=MetricType.ERROR_OCCURRED, data={"error_type": "E"}))
        assert registry.get_sample_value("app_errors_total", {"error_type": "E"}) == 1
        with pytest.raises(ConfigError, match="register"):
            PrometheusSink(registry=registry, namespace="app")  # the same names again

    async def test_the_asgi_app_serves_the_same_text(self) -> None:
        sink = PrometheusSink()
        await sink.write(MetricEntry(type=MetricType.SESSION_END))
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
                 "headers": []}  # fmt: skip
        await sink.asgi_app()(scope, receive, send)
        assert sent[0]["status"] == 200
        assert b"analytics_sessions_ended_total 1.0" in sent[1]["body"]

    async def test_the_file_writers_counters_are_exposed_with_writer(self, tmp_path: Path) -> None:
        async with JSONLWriter(tmp_path) as writer:
            sink = PrometheusSink(writer=writer)
            metrics = MetricsWriter(writer, sink)
            for i in range(5):
                await metrics.track_tool_use(None, "t", True, float(i))
            await metrics.flush()
            found = samples(sink)
            assert value(found, "analytics_writer_entries_written_total") == 5
            assert value(found, "analytics_writer_dropped_total") == 0
            assert value(found, "analytics_writer_pending") == 0
        assert len(read_all(tmp_path / "metrics")) == 5


class TestConfiguration:
    @pytest.mark.parametrize("bad", [0, -3, 2.5])
    def test_the_label_bound_must_be_positive(self, bad: Any) -> None:
        with pytest.raises(ConfigError, match="max_values"):
            PrometheusSink(max_label_values=bad)

    def test_without_prometheus_client_it_says_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "prometheus_client", None)
        with pytest.raises(MissingDependencyError, match=r"\[prometheus\]"):
            PrometheusSink()


class TestWithARealPrometheus:
    async def test_prometheus_scrapes_it_and_answers_rate_and_quantile(
        self,
        prometheus_server: Callable[[list[str]], PrometheusServer],
        tmp_path: Path,
    ) -> None:
        sink = PrometheusSink()
        port = sink.start_http_server(0)
        server = prometheus_server([f"127.0.0.1:{port}"])
        async with JSONLWriter(tmp_path) as writer:
            metrics = MetricsWriter(writer, sink)
            up = await asyncio.to_thread(
                server.wait_until, "up", lambda r: bool(r) and r[0]["value"][1] == "1"
            )
            assert up, "prometheus never scraped the sink"
            # Three seconds of load, so rate() has several scrapes to work with.
            written = 0
            for _ in range(12):
                for _ in range(25):
                    await metrics.track_tool_use("s", "grep", True, 20.0)
                    written += 1
                await asyncio.sleep(0.25)
            total = await asyncio.to_thread(
                server.wait_until,
                'analytics_tool_calls_total{tool="grep",outcome="success"}',
                lambda r: bool(r) and float(r[0]["value"][1]) == written,
            )
            assert float(total[0]["value"][1]) == written
            rate = server.query("sum(rate(analytics_tool_calls_total[10s]))")
            assert float(rate[0]["value"][1]) > 0
            median = server.query(
                "histogram_quantile(0.5, sum by (le)"
                " (rate(analytics_tool_duration_seconds_bucket[10s])))"
            )
            # Every call took 20 ms: the median lies in the (10 ms, 25 ms] bucket.
            assert 0.01 < float(median[0]["value"][1]) <= 0.025
        await sink.close()
        assert len(read_all(tmp_path / "metrics")) == written
