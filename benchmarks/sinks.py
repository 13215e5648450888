"""The file path with the metrics sinks attached, against the file path alone.

    python benchmarks/sinks.py                  # 5 interleaved rounds of each load
    python benchmarks/sinks.py --quick          # a smoke test: small and short
    python benchmarks/sinks.py --out benchmarks/results/sinks-published.json

Six configurations, run in alternating order in every round, in one process:

- ``file``: ``MetricsWriter(JSONLWriter)``, the file path alone;
- ``prometheus`` and ``otel``: the file path and one of the sinks;
- ``otel-metrics``: the file path and ``OTelSink(logs=False)``, metrics only;
- ``sinks-metrics``: the file path, Prometheus and ``OTelSink(logs=False)``;
- ``sinks``: ``MetricsWriter(JSONLWriter, PrometheusSink, OTelSink)``, the OTel sink
  exporting to a real collector (rotel, from the ``rotel`` wheel) that this script
  starts on a free port and stops by its pid, and Prometheus' ``/metrics`` served
  from its own thread and scraped every second by a thread of this script (the way
  a Prometheus server would).

Two loads, each with the 1 ms lateness probe of ``benchmarks/run.py`` beside it:

- ``paced``: 4 producers offering ``--rate`` entries per second in total for
  ``--seconds``: what a service sends. Reported: the entries written per second,
  and how late the probe woke (p50, p99, max).
- ``flat-out``: 4 producers writing ``--n`` entries as fast as they can (yielding
  every 4): the ceiling, where every microsecond a sink spends on the loop shows.

Reported per load: the median over rounds of each number, and each one/file ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import ARGUMENT, PRODUCERS, TOOLS, YIELD_EVERY, Lateness, percentile

from analytics import JSONLWriter, MetricsWriter, OTelSink, PrometheusSink, Sink

CONFIGURATIONS = ("file", "prometheus", "otel", "otel-metrics", "sinks", "sinks-metrics")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Collector:
    """rotel, receiving OTLP/HTTP and dropping what it gets (the blackhole exporter)."""

    def __init__(self, base: Path) -> None:
        spec = importlib.util.find_spec("rotel")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("the benchmark needs rotel: pip install rotel")
        self.binary = Path(next(iter(spec.submodule_search_locations))) / "rotel-agent"
        self.base = base
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            str(self.binary), "start", "--exporter", "blackhole",
            "--otlp-http-endpoint", f"127.0.0.1:{self.port}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{free_port()}",
            "--pid-file", str(self.base / "rotel.pid"),
            "--log-file", str(self.base / "rotel.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("rotel did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)


class Scraper:
    """Scrapes ``url`` every second from a thread, as a Prometheus server would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scrapes = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            with urllib.request.urlopen(self.url, timeout=5) as response:
                response.read()
            self.scrapes += 1

    def __enter__(self) -> Scraper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


async def emit_all(emit: Callable[[int], Awaitable[None]], n: int) -> None:
    async def producer(k: int) -> None:
        for count, i in enumerate(range(k, n, PRODUCERS)):
            await emit(i)
            if count % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(k) for k in range(PRODUCERS)))


async def emit_paced(emit: Callable[[int], Awaitable[None]], rate: float, seconds: float) -> int:
    """Each producer sends its share in bursts every millisecond, on schedule."""
    per_producer = rate / PRODUCERS
    counts = [0] * PRODUCERS

    async def producer(k: int) -> None:
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * per_producer) + 1
            while counts[k] < due:
                await emit(counts[k] * PRODUCERS + k)
                counts[k] += 1
            await asyncio.sleep(0.001)

    await asyncio.gather(*(producer(k) for k in range(PRODUCERS)))
    return sum(counts)


async def one_run(
    configuration: str, load: str, args: argparse.Namespace, collector: Collector
) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="bench-sinks-"))
    try:
        async with JSONLWriter(directory, max_file_size=8 * 1024 * 1024) as writer:
            extra: list[Sink] = []
            prometheus: PrometheusSink | None = None
            otel: OTelSink | None = None
            if configuration in ("prometheus", "sinks", "sinks-metrics"):
                prometheus = PrometheusSink(writer=writer)
                extra.append(prometheus)
            if configuration.startswith(("otel", "sinks")):
                otel = OTelSink(
                    f"http://127.0.0.1:{collector.port}",
                    metrics_interval=5.0,
                    max_export_batch_size=args.otel_batch,
                    logs=not configuration.endswith("-metrics"),
                )
                await otel.start()  # its helper process, before the clock starts
                extra.append(otel)
            metrics = MetricsWriter(writer, *extra)

            async def emit(i: int) -> None:
                await metrics.track_tool_use(
                    session_id=f"session-{i % PRODUCERS}",
                    tool_name=TOOLS[i % 4],
                    success=i % 17 != 0,
                    duration_ms=(i % 1000) * 0.731,
                    argument=ARGUMENT,
                )

            probe = Lateness()
            probe.start()
            await asyncio.sleep(0.01)
            scraper = None
            if prometheus is not None:
                port = prometheus.start_http_server(0)
                scraper = Scraper(f"http://127.0.0.1:{port}/metrics").__enter__()
            started = time.perf_counter()
            if load == "paced":
                sent = await emit_paced(emit, args.rate, args.seconds)
            else:
                sent = args.n
                await emit_all(emit, sent)
            await writer.flush()
            ended = time.perf_counter()
            await probe.stop()
            if scraper is not None:
                scraper.__exit__()
            written = writer.stats().entries_written
            await metrics.close()
            otel_stats = otel.stats() if otel is not None else None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    lateness = [late for at, late in probe.marks if started <= at <= ended]
    result: dict[str, Any] = {
        "configuration": configuration,
        "load": load,
        "sent": sent,
        "written": written,
        "seconds": ended - started,
        "per_second": written / (ended - started),
        "lateness_ms": {
            "p50": percentile(lateness, 0.5) * 1000,
            "p99": percentile(lateness, 0.99) * 1000,
            "max": max(lateness, default=0.0) * 1000,
        },
    }
    if otel_stats is not None:
        result["otel"] = {
            "records": otel_stats.records,
            "exported": otel_stats.exported,
            "dropped": otel_stats.dropped,
        }
    if scraper is not None:
        result["scrapes"] = scraper.scrapes
    if written != sent:
        raise SystemExit(f"{configuration}/{load}: {sent} sent, {written} written")
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for load in ("paced", "flat-out"):
        by: dict[str, dict[str, float]] = {}
        for configuration in CONFIGURATIONS:
            mine = [r for r in runs if r["load"] == load and r["configuration"] == configuration]
            if not mine:
                continue
            by[configuration] = {
                "per_second": statistics.median(r["per_second"] for r in mine),
                "lateness_p50_ms": statistics.median(r["lateness_ms"]["p50"] for r in mine),
                "lateness_p99_ms": statistics.median(r["lateness_ms"]["p99"] for r in mine),
                "lateness_max_ms": statistics.median(r["lateness_ms"]["max"] for r in mine),
            }
        if "file" in by:
            for configuration in CONFIGURATIONS[1:]:
                if configuration in by:
                    by[f"{configuration}/file"] = {
                        key: by[configuration][key] / by["file"][key] if by["file"][key] else 0.0
                        for key in by["file"]
                    }
        summary[load] = by
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20_000.0, help="paced entries/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="paced duration")
    parser.add_argument("--n", type=int, default=100_000, help="flat-out entries")
    parser.add_argument("--quick", action="store_true", help="1 round, small loads")
    parser.add_argument("--otel-batch", type=int, default=64, help="max_export_batch_size")
    parser.add_argument("--loads", type=lambda text: text.split(","), default=["paced", "flat-out"])
    parser.add_argument(
        "--configurations",
        type=lambda text: text.split(","),
        default=list(CONFIGURATIONS),
        help=f"a comma-separated subset of {','.join(CONFIGURATIONS)}",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.n = 1, 1.0, 10_000
    base = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    collector = Collector(base)
    collector.start()
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.rounds):
            order = [c for c in CONFIGURATIONS if c in args.configurations]
            if round_ % 2:
                order.reverse()
            for load in args.loads:
                for configuration in order:
                    run = asyncio.run(one_run(configuration, load, args, collector))
                    run["round"] = round_ + 1
                    runs.append(run)
                    print(
                        f"round {round_ + 1} {load:<8} {configuration:<10}"
                        f" {run['per_second']:>9,.0f}/s  lateness p50"
                        f" {run['lateness_ms']['p50']:.2f} p99 {run['lateness_ms']['p99']:.2f}"
                        f" max {run['lateness_ms']['max']:.2f} ms"
                        + (f"  otel {run['otel']}" if "otel" in run else ""),
                        flush=True,
                    )
    finally:
        collector.stop()
        shutil.rmtree(base, ignore_errors=True)
    summary = summarize(runs)
    for load, by in summary.items():
        for configuration in CONFIGURATIONS:
            if configuration in by:
                mine = by[configuration]
                ratio = by.get(f"{configuration}/file", {}).get("per_second", 1.0)
                print(
                    f"{load:<8} {configuration:<10} {mine['per_second']:>9,.0f}/s"
                    f" (x{ratio:.3f})  lateness p50 {mine['lateness_p50_ms']:.2f}"
                    f" p99 {mine['lateness_p99_ms']:.2f} max {mine['lateness_max_ms']:.2f} ms"
                )
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {
                    "when": datetime.now(UTC).isoformat(),
                    "machine": {
                        "python": platform.python_version(),
                        "platform": platform.platform(),
                        "cpus": __import__("os").cpu_count(),
                    },
                    "command": " ".join(["python", *sys.argv]),
                    "rate": args.rate,
                    "seconds": args.seconds,
                    "n": args.n,
                    "summary": summary,
                    "runs": runs,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
