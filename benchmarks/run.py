"""Benchmark `analytics` against the alternatives on the same workload.

    python benchmarks/run.py             # 100,000 events, 5 interleaved rounds
    python benchmarks/run.py --quick     # 2,000 events, 1 round: the CI smoke test

Each contender runs in its own subprocess, in the order A B C ... A B C ..., and the
report gives medians with min-max. Ratios are taken pair by pair within a round, so
the noise of a shared machine cancels out as far as it can. Nothing here asserts a
speed: ``--quick`` fails only if a contender crashes or `analytics` loses an entry.

The workload: N ``tool_use`` events, each a ``MetricEntry`` whose ``data`` holds
``tool_name``, ``success``, ``duration_ms`` and a 120-character argument (about 390
bytes per line), produced by a few coroutines that yield to the loop every few
events. Rotation at 1 MiB, gzip level 6 for every contender, nothing deleted, so every
line can be counted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import importlib.util
import json
import logging
import logging.handlers
import os
import platform
import queue
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from analytics import JSONLWriter, MetricEntry, MetricsWriter, MetricType

GZIP_LEVEL = 6
PRODUCERS = 4
YIELD_EVERY = 4
ARGUMENT = "q" * 120
TOOLS = ("read_file", "grep", "edit", "bash")

CONTENDERS = (
    "analytics",
    "analytics-nosync",
    "analytics-isal",
    "perline",
    "stdlib",
    "loguru",
    "floor",
    "null",
)


# -- the workload -------------------------------------------------------------------


def build_entry(i: int) -> MetricEntry:
    """One event, built the way every contender builds it."""
    return MetricEntry(
        type=MetricType.TOOL_USE,
        session_id=f"session-{i % PRODUCERS}",
        data={
            "tool_name": TOOLS[i % 4],
            "success": i % 17 != 0,
            "duration_ms": (i % 1000) * 0.731,
            "argument": ARGUMENT,
        },
    )


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def count_lines(directory: Path) -> int:
    """Lines (entries) recoverable from every file in ``directory``, .gz included."""
    total = 0
    for path in directory.rglob("*"):
        if not path.is_file() or path.name.endswith((".tmp", ".new")):
            continue
        if path.name.endswith(".gz"):
            try:
                data = gzip.decompress(path.read_bytes())
            except (OSError, EOFError, zlib.error):
                continue
        else:
            data = path.read_bytes()
        total += sum(1 for line in data.split(b"\n") if line.strip())
    return total


class Lateness:
    """A task that sleeps 1 ms in a loop and records how late it wakes."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.marks: list[tuple[float, float]] = []  # (woke at, lateness)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            late = now - before - 0.001
            self.samples.append(late)
            self.marks.append((now, late))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def worst_between(self, start: float, end: float) -> float:
        return max((late for at, late in self.marks if start <= at <= end + 0.001), default=0.0)


async def produce(n: int, emit: Callable[[int], Awaitable[None]]) -> None:
    """Run ``PRODUCERS`` coroutines that emit events ``0..n-1`` between them."""

    async def producer(k: int) -> None:
        for count, i in enumerate(range(k, n, PRODUCERS)):
            await emit(i)
            if count % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(k) for k in range(PRODUCERS)))


async def measure_async(
    n: int,
    emit: Callable[[int], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    start: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Time opening (``start``), producing and closing on the loop, with the lateness
    probe running from before the first line of opening to after the end of closing."""
    probe = Lateness()
    probe.start()
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    if start is not None:
        await start()
    await produce(n, emit)
    close_started = time.perf_counter()
    await close()
    finished = time.perf_counter()
    await asyncio.sleep(0.005)
    await probe.stop()
    during = [late for at, late in probe.marks if started <= at <= finished]
    return {
        "wall_s": finished - started,
        "close_s": finished - close_started,
        "close_stall_ms": probe.worst_between(close_started, finished) * 1000,
        "late_p50_ms": percentile(during, 0.50) * 1000,
        "late_p99_ms": percentile(during, 0.99) * 1000,
        "late_max_ms": max(during, default=0.0) * 1000,
    }


# -- contenders ----------------------------------------------------------------------


def run_analytics(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """analytics as shipped, with ``fsync="rotate"`` (the default)."""
    return _run_analytics(n, directory, max_file_size, fsync="rotate")


def run_analytics_nosync(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """analytics with ``fsync="never"``: like for like with the other contenders,
    none of which syncs to disk."""
    return _run_analytics(n, directory, max_file_size, fsync="never")


def run_analytics_isal(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """analytics with ``compressor="isal"`` (extra ``[isal]``): the same level, gzip
    by ISA-L instead of zlib."""
    return _run_analytics(n, directory, max_file_size, fsync="rotate", compressor="isal")


def _run_analytics(
    n: int,
    directory: Path,
    max_file_size: int,
    fsync: Literal["never", "rotate"],
    compressor: Literal["zlib", "isal"] = "zlib",
) -> dict[str, Any]:
    latencies: list[int] = []

    async def main() -> dict[str, Any]:
        writer = JSONLWriter(
            directory,
            max_file_size=max_file_size,
            max_files=1_000_000,
            compress_level=GZIP_LEVEL,
            compressor=compressor,
            fsync=fsync,
        )
        metrics = MetricsWriter(writer)
        clock = time.perf_counter_ns

        async def emit(i: int) -> None:
            t0 = clock()
            await metrics.track_tool_use(
                session_id=f"session-{i % PRODUCERS}",
                tool_name=TOOLS[i % 4],
                success=i % 17 != 0,
                duration_ms=(i % 1000) * 0.731,
                argument=ARGUMENT,
            )
            latencies.append(clock() - t0)

        # The window opens before initialize(): what a service's loop sees from the
        # first line of ``async with JSONLWriter(...)`` to the end of ``close()``.
        result = await measure_async(n, emit, writer.close, start=writer.initialize)
        result["written"] = writer.stats().entries_written
        return result

    result = asyncio.run(main())
    result["call_p50_us"] = percentile([float(x) for x in latencies], 0.50) / 1000
    result["call_p99_us"] = percentile([float(x) for x in latencies], 0.99) / 1000
    result["call_max_us"] = max(latencies, default=0) / 1000
    return result


def run_null(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """The same loop and entries, serialized and thrown away: the machine's own noise."""

    async def main() -> dict[str, Any]:
        async def emit(i: int) -> None:
            build_entry(i).model_dump_json()

        async def close() -> None:
            return None

        return await measure_async(n, emit, close)

    return asyncio.run(main())


def run_perline(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """The common naive design: one awaited write per line, gzip on the loop at
    rotation, file names to the second."""
    import aiofiles

    directory.mkdir(parents=True, exist_ok=True)

    def name_now() -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        return directory / f"metrics_{stamp}.jsonl"

    async def main() -> dict[str, Any]:
        state: dict[str, Any] = {"path": name_now(), "size": 0}
        state["file"] = await aiofiles.open(state["path"], "a")
        lock = asyncio.Lock()

        async def rotate() -> None:
            await state["file"].close()
            path: Path = state["path"]
            data = path.read_bytes()
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, GZIP_LEVEL))
            path.unlink()
            state["path"] = name_now()
            state["size"] = 0
            state["file"] = await aiofiles.open(state["path"], "a")

        async def emit(i: int) -> None:
            line = build_entry(i).model_dump_json() + "\n"
            async with lock:
                await state["file"].write(line)
                await state["file"].flush()
                state["size"] += len(line)
                if state["size"] >= max_file_size:
                    await rotate()

        async def close() -> None:
            await state["file"].close()

        return await measure_async(n, emit, close)

    return asyncio.run(main())


def _gzip_rotator(source: str, dest: str) -> None:
    with open(source, "rb") as src, gzip.open(dest, "wb", compresslevel=GZIP_LEVEL) as out:
        shutil.copyfileobj(src, out, 1024 * 1024)
    os.remove(source)


def run_stdlib(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """QueueHandler + QueueListener + RotatingFileHandler with a gzip rotator."""
    directory.mkdir(parents=True, exist_ok=True)
    # Enough backups that nothing is deleted, but no more: the handler checks every
    # backup name at each rotation.
    backups = n * 500 // max_file_size + 10
    handler = logging.handlers.RotatingFileHandler(
        directory / "metrics.jsonl", maxBytes=max_file_size, backupCount=backups
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.namer = lambda name: name + ".gz"
    handler.rotator = _gzip_rotator
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, handler)
    logger = logging.getLogger("bench.stdlib")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.handlers.QueueHandler(q))
    listener.start()

    async def main() -> dict[str, Any]:
        async def emit(i: int) -> None:
            logger.info(build_entry(i).model_dump_json())

        async def close() -> None:
            listener.stop()  # blocks the loop until the queue is drained
            handler.close()

        return await measure_async(n, emit, close)

    return asyncio.run(main())


def run_loguru(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """loguru with enqueue=True, rotation by size, gzip (at the same level)."""
    from loguru import logger

    def gz(path: str) -> None:
        _gzip_rotator(path, path + ".gz")

    logger.remove()
    logger.add(
        directory / "metrics.jsonl",
        format="{message}",
        rotation=max_file_size,
        compression=gz,
        enqueue=True,
    )

    async def main() -> dict[str, Any]:
        async def emit(i: int) -> None:
            logger.info(build_entry(i).model_dump_json())

        async def close() -> None:
            logger.remove()  # blocks until the queue is drained and files closed

        return await measure_async(n, emit, close)

    return asyncio.run(main())


def run_floor(n: int, directory: Path, max_file_size: int) -> dict[str, Any]:
    """The cost of the work itself: build, serialize, write in large chunks, rotate
    and gzip, in one thread, no asyncio."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    number = 0
    path = directory / f"floor_{number:06d}.jsonl"
    out = open(path, "wb")  # noqa: SIM115 - rotated by hand below
    size = 0
    chunk: list[bytes] = []
    chunk_bytes = 0

    def compress(src: Path) -> None:
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        with open(src, "rb") as f, open(str(src) + ".gz", "wb") as g:
            while block := f.read(1024 * 1024):
                g.write(deflate.compress(block))
            g.write(deflate.flush())
        src.unlink()

    for i in range(n):
        line = build_entry(i).model_dump_json().encode() + b"\n"
        if size + chunk_bytes + len(line) > max_file_size and size + chunk_bytes > 0:
            out.write(b"".join(chunk))
            out.close()
            compress(path)
            number += 1
            path = directory / f"floor_{number:06d}.jsonl"
            out = open(path, "wb")  # noqa: SIM115
            size, chunk, chunk_bytes = 0, [], 0
        chunk.append(line)
        chunk_bytes += len(line)
        if chunk_bytes >= 64 * 1024:
            out.write(b"".join(chunk))
            size += chunk_bytes
            chunk, chunk_bytes = [], 0
    out.write(b"".join(chunk))
    out.close()
    return {"wall_s": time.perf_counter() - started, "close_s": 0.0}


RUNNERS: dict[str, Callable[[int, Path, int], dict[str, Any]]] = {
    "analytics": run_analytics,
    "analytics-nosync": run_analytics_nosync,
    "analytics-isal": run_analytics_isal,
    "perline": run_perline,
    "stdlib": run_stdlib,
    "loguru": run_loguru,
    "floor": run_floor,
    "null": run_null,
}


class GcWatch:
    """Counts the cyclic garbage collector's runs per generation, and times them."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.longest_ms = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        pause = (time.perf_counter() - self._started) * 1000
        self.counts[generation] += 1
        self.longest_ms[generation] = max(self.longest_ms[generation], pause)

    def results(self) -> dict[str, float]:
        return {
            **{f"gc{g}_runs": float(self.counts[g]) for g in range(3)},
            **{f"gc{g}_longest_ms": self.longest_ms[g] for g in range(3)},
        }


def worker(name: str, n: int, max_file_size: int) -> dict[str, Any]:
    """Run one contender in this process and measure it."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        directory = Path(tmp)
        build_entry(0).model_dump_json()  # warm up pydantic before the clock starts
        rss_start = rss_bytes()
        watch = GcWatch()
        gc.callbacks.append(watch)
        result = RUNNERS[name](n, directory, max_file_size)
        gc.callbacks.remove(watch)
        result.update(watch.results())
        result["rss_peak_mib"] = peak_rss_bytes() / 2**20
        result["rss_growth_mib"] = (peak_rss_bytes() - rss_start) / 2**20
        result["recovered"] = n if name == "null" else count_lines(directory)
        result["lost"] = n - result["recovered"]
        result["events_per_s"] = n / result["wall_s"]
        return result


# -- the driver ----------------------------------------------------------------------


def run_contender(name: str, n: int, max_file_size: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--n",
        str(n),
        "--max-file-size",
        str(max_file_size),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {
            "error": done.stderr.strip().splitlines()[-1] if done.stderr else "crashed",
            "stderr": done.stderr[-4000:],
        }
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def available(name: str) -> bool:
    """Whether the optional library a contender needs is installed."""
    needs = {"loguru": "loguru", "analytics-isal": "isal"}.get(name)
    return needs is None or importlib.util.find_spec(needs) is not None


def summarize(rounds: list[dict[str, dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    summary: dict[str, Any] = {}
    for name in names:
        runs = [r[name] for r in rounds if "error" not in r[name]]
        if not runs:
            continue
        summary[name] = {
            key: stats([float(run[key]) for run in runs])
            for key in runs[0]
            if isinstance(runs[0][key], (int, float))
        }
    ratios: dict[str, dict[str, float]] = {}
    pairs = {
        "analytics_vs_floor": ("analytics", "floor"),  # wall time ratio: lower is better
        "perline_vs_analytics": ("perline", "analytics"),  # speed-up of analytics
        "stdlib_vs_analytics": ("stdlib", "analytics"),
        "loguru_vs_analytics": ("loguru", "analytics"),
    }
    pairs["analytics_vs_null"] = ("analytics", "null")  # wall time ratio: lower is better
    pairs["analytics-isal_vs_null"] = ("analytics-isal", "null")
    pairs["stdlib_vs_analytics-isal"] = ("stdlib", "analytics-isal")

    def paired(a: str, b: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (r[a], r[b])
            for r in rounds
            if a in r and b in r and "error" not in r[a] and "error" not in r[b]
        ]

    for label, (a, b) in pairs.items():
        values = [x["wall_s"] / y["wall_s"] for x, y in paired(a, b)]
        if values:
            ratios[label] = stats(values)
    # Loop lateness against the null reference in the same round: what we add.
    for key in ("late_p99_ms", "late_max_ms"):
        values = [x[key] - y[key] for x, y in paired("analytics", "null")]
        if values:
            ratios[f"analytics_minus_null_{key}"] = stats(values)
    summary["ratios"] = ratios
    return summary


def fmt(s: dict[str, float], digits: int = 1) -> str:
    if s["min"] == s["max"]:
        return f"{s['median']:,.{digits}f}"
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"


def markdown(summary: dict[str, Any], names: list[str], n: int, rounds: int) -> str:
    rows = [
        f"N = {n:,} events, {rounds} round(s); medians with (min-max).",
        "",
        "| contender | events/s | wall s | lost | loop late p50 / p99 / max ms"
        " | close stall ms | peak RSS MiB (growth) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        s = summary.get(name)
        if s is None:
            rows.append(f"| {name} | crashed or unavailable | | | | | |")
            continue
        late = "-"
        if "late_p99_ms" in s:
            late = (
                f"{s['late_p50_ms']['median']:.2f} / {s['late_p99_ms']['median']:.2f} / "
                f"{s['late_max_ms']['median']:.1f}"
            )
        stall = f"{s['close_stall_ms']['median']:.1f}" if "close_stall_ms" in s else "-"
        rows.append(
            f"| {name} | {fmt(s['events_per_s'], 0)} | {fmt(s['wall_s'], 2)} | "
            f"{fmt(s['lost'], 0)} | {late} | {stall} | "
            f"{s['rss_peak_mib']['median']:.0f} ({s['rss_growth_mib']['median']:.1f}) |"
        )
    ratios = summary["ratios"]
    rows += ["", "| ratio (pair by pair within a round) | median (min-max) |", "|---|---|"]
    labels = {
        "analytics_vs_null": "analytics wall time ÷ null reference wall time (target ≤ 1.15)",
        "analytics_minus_null_late_p99_ms": "loop lateness p99, analytics minus null, ms"
        " (target ≤ 0.5)",
        "analytics_minus_null_late_max_ms": "loop lateness max, analytics minus null, ms"
        " (target ≤ 3)",
        "analytics_vs_floor": "analytics wall time ÷ floor wall time (target ≤ 1.3)",
        "perline_vs_analytics": "analytics speed-up over the per-line baseline (target ≥ 10)",
        "stdlib_vs_analytics": "analytics speed-up over stdlib queue logging (target ≥ 3)",
        "loguru_vs_analytics": "analytics speed-up over loguru enqueue=True (target ≥ 5)",
        "analytics-isal_vs_null": 'with compressor="isal": wall time ÷ null reference',
        "stdlib_vs_analytics-isal": 'with compressor="isal": speed-up over stdlib queue logging',
    }
    for key, label in labels.items():
        if key in ratios:
            rows.append(f"| {label} | {fmt(ratios[key], 2)} |")
    rows += [
        "",
        "| contender | gc runs gen 0 / 1 / 2 | longest gc pause gen 0 / 1 / 2, ms |",
        "|---|---|---|",
    ]
    for name in names:
        s = summary.get(name)
        if s is None or "gc2_runs" not in s:
            continue
        runs = " / ".join(f"{s[f'gc{g}_runs']['median']:.0f}" for g in range(3))
        longest = " / ".join(f"{s[f'gc{g}_longest_ms']['median']:.2f}" for g in range(3))
        rows.append(f"| {name} | {runs} | {longest} |")
    a = summary.get("analytics")
    if a and "call_p50_us" in a:
        rows += [
            "",
            "`await metrics.track_tool_use(...)` latency, µs: "
            f"p50 {a['call_p50_us']['median']:.1f}, p99 {a['call_p99_us']['median']:.1f}, "
            f"max {a['call_max_us']['median']:.0f}",
        ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="N=2,000, 1 round (CI smoke)")
    parser.add_argument("--max-file-size", type=int, default=1024 * 1024)
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, help="run only these")
    parser.add_argument(
        "--rss-check",
        action="store_true",
        help="also run analytics with 64 MiB files to show RSS does not grow",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.max_file_size)))
        return 0
    if args.quick:
        args.n, args.rounds = 2_000, 1
    names = [c for c in (args.only or CONTENDERS) if available(c)]
    skipped = [c for c in (args.only or CONTENDERS) if not available(c)]
    if skipped:
        print(f"skipping (not installed; pip install '.[bench]'): {', '.join(skipped)}")

    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(args.rounds):
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            results[name] = run_contender(name, args.n, args.max_file_size)
            r = results[name]
            shown = r.get("error") or f"{r['events_per_s']:,.0f} events/s, lost {r['lost']}"
            print(f"round {number + 1}/{args.rounds} {name:<10} {shown}", flush=True)
        rounds.append(results)

    extra: dict[str, Any] = {}
    if args.rss_check:
        for size in (1024 * 1024, 64 * 1024 * 1024):
            r = run_contender("analytics", args.n, size)
            extra[f"analytics_rss_growth_mib_at_{size // 2**20}MiB_files"] = r.get("rss_growth_mib")
            print(
                f"analytics with {size // 2**20} MiB files: RSS growth"
                f" {r.get('rss_growth_mib', float('nan')):.1f} MiB, lost {r.get('lost')}"
            )

    summary = summarize(rounds, names)
    table = markdown(summary, names, args.n, args.rounds)
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    raw = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "n": args.n,
        "rounds": rounds,
        "summary": summary,
        **extra,
    }
    out_file = args.out / ("quick.json" if args.quick else "latest.json")
    out_file.write_text(json.dumps(raw, indent=2))
    print(f"\nraw results: {out_file}")

    failures = [
        f"{name} crashed: {r['error']}" for rnd in rounds for name, r in rnd.items() if "error" in r
    ]
    failures += [
        f"analytics lost {r['analytics']['lost']} entries"
        for r in rounds
        if "analytics" in r and "error" not in r["analytics"] and r["analytics"]["lost"] != 0
    ]
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
