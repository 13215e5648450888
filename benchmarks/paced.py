"""A realistic paced load: what the writer costs a service that is not saturated.

    python benchmarks/paced.py                  # 60 s per run: ours, null, serialize
    python benchmarks/paced.py --quick          # 3 s per run: the smoke test
    python benchmarks/paced.py --rounds 3 --seconds 30 --out benchmarks/results

50 producer tasks emit 5,000 events/s between them for ``--seconds``, with Poisson
arrivals (each task sleeps an exponential time of mean 10 ms between events), a mix
of all ten entry types whose sizes vary as a real service's do (most lines a few
hundred bytes, a few with kilobytes of arguments or stack traces). A 1 ms ticker on
the same loop records how late it wakes up.

Contenders, each in a fresh subprocess (so peak RSS, GC state and imports are per run),
interleaved round by round (ours, null, serialize, ours, null, serialize...):

- ``ours``: ``MetricsWriter(JSONLWriter(...))`` as shipped (default buffer, flush
  interval and fsync), ``max_file_size`` chosen so that a rotation happens every
  ``--rotate-every`` seconds, gzip on, ``max_files`` small enough that retention
  deletes files during the run.
- ``null``: the same producers and the same ``MetricsWriter`` building the same
  entries, into a sink whose ``write()`` does nothing. The reference of the targets.
- ``serialize``: as ``null``, but the sink serializes each entry to its JSON line and
  throws it away: ``ours`` minus ``serialize`` is what buffering, the thread hops,
  writing, rotation and gzip cost; ``serialize`` minus ``null`` is serialization.

Reported per run: loop lateness p50/p99/max (and per 10 s window, to tell a start-up
stall from a steady cost), CPU per event (process user+sys from ``getrusage``, and the
loop thread's own ``time.thread_time``), peak RSS (``ru_maxrss``) and RSS sampled every
second (first-10 s mean vs last-10 s mean, and the slope), garbage collections per
generation with their longest pause, and, for every wake-up later than
``--threshold`` ms, what overlapped it: a GC (on the loop thread or in a worker
thread), a flush hop, a gzip-and-retention hop, a GIL handoff of the writer.

The targets (issue 16): p99 lateness within 0.2 ms of null's, CPU per event within
1.3x null's, RSS flat over the run. They are reported, never enforced: the script
fails (exit 1) only if a run crashes or ``ours`` loses an entry. Retention deletes the
oldest files on purpose, so the check is: every event carries a sequence number, the
entries read back (``analytics.iter_entries``, ``.gz`` included) are exactly the
events from some number k to the last, each once, and the writer's own count of
entries written equals the number emitted; k entries went with the deleted files.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics import JSONLWriter, MetricEntry, MetricsWriter, ReadStats, iter_entries

CONTENDERS = ("ours", "null", "serialize")
TASKS = 50
RATE = 5_000.0  # events per second, all tasks together
TICK = 0.001  # the lateness ticker's sleep
SEED = 16
TARGET_P99_DIFF_MS = 0.2
TARGET_CPU_RATIO = 1.3
RSS_FLAT_MIB = 2.0  # "flat": last-window mean at most this much above the first's...
RSS_FLAT_SHARE = 0.05  # ...or this share of it, whichever is larger

# -- the workload ---------------------------------------------------------------------

_words = random.Random(SEED)
_VOCAB = [
    "".join(_words.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_words.randint(2, 9)))
    for _ in range(400)
] + ['"quoted"', "back\\slash", "tab\there", "naïve", "café", "→", "\n"]
TEXT = " ".join(_words.choice(_VOCAB) for _ in range(40_000))
"""A pool of text (with characters JSON must escape) to cut payloads from."""

TOOLS = ("read_file", "grep", "edit", "bash", "web_fetch", "glob", "write_file", "todo")
MODELS = ("claude-sonnet", "claude-haiku", "claude-opus", "gpt-4o")
OPERATIONS = ("http.request", "db.query", "cache.get", "render", "embed")
HOOKS = ("pre_tool_use", "post_tool_use", "on_stop", "on_prompt")
AGENTS = ("planner", "coder", "reviewer", "searcher")
ERRORS = ("TimeoutError", "ValueError", "KeyError", "ConnectionResetError")

# (method, weight in %): tool calls and token counts dominate, as in an agent service.
MIX = (
    ("track_tool_use", 38),
    ("track_token_usage", 15),
    ("track_performance", 12),
    ("track_command_executed", 8),
    ("track_hook_triggered", 8),
    ("track_agent_execution", 6),
    ("track_error", 4),
    ("track_checkpoint_created", 3),
    ("track_session_start", 3),
    ("track_session_end", 3),
)
_KINDS = [name for name, _ in MIX]
_CUMULATIVE = [sum(weight for _, weight in MIX[: i + 1]) for i in range(len(MIX))]
WRITER_METADATA = {"service": "paced-bench", "region": "eu-west-1", "version": "2.4.1"}

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


def text(rng: random.Random, size: int) -> str:
    start = rng.randrange(0, len(TEXT) - size)
    return TEXT[start : start + size]


def size(rng: random.Random) -> int:
    """Most payloads are short; about 3% carry one to four kilobytes."""
    if rng.random() < 0.03:
        return rng.randint(1000, 4000)
    return min(4000, int(rng.lognormvariate(4.0, 1.0)))


def make_call(rng: random.Random, task: int, count: int) -> Call:
    """One event: the ``MetricsWriter`` method to call and its arguments."""
    kind = rng.choices(_KINDS, cum_weights=_CUMULATIVE)[0]
    session = f"s{task:02d}-{count // 250}"  # a session lasts about 2.5 s here
    ms = round(rng.expovariate(1 / 40), 3)
    ok = rng.random() > 0.05
    if kind == "track_tool_use":
        extra: dict[str, Any] = {"argument": text(rng, size(rng))}
        if rng.random() < 0.2:
            extra["file_path"] = f"/srv/app/src/{text(rng, 12).strip()}.py"
            extra["lines"] = rng.randint(1, 5000)
        return kind, (session, rng.choice(TOOLS), ok, ms), extra
    if kind == "track_token_usage":
        i, o = rng.randint(50, 200_000), rng.randint(10, 8000)
        extra = {"cache_read_tokens": rng.randint(0, i), "cost_usd": round(i * 3e-6, 6)}
        return kind, (session, rng.choice(MODELS), i, o), extra
    if kind == "track_performance":
        extra = {"route": f"/api/v1/{rng.choice(TOOLS)}", "status": rng.choice((200, 200, 404))}
        return kind, (session, rng.choice(OPERATIONS), ok, ms), extra
    if kind == "track_command_executed":
        extra = {"exit_code": rng.choice((0, 0, 0, 1, 2)), "duration_ms": ms}
        if rng.random() < 0.3:
            extra["stdout_tail"] = text(rng, size(rng))
        return kind, (session, "pytest -q " + text(rng, 30)), extra
    if kind == "track_hook_triggered":
        extra = {"event": "tool_call", "success": ok, "duration_ms": ms}
        return kind, (session, rng.choice(HOOKS)), extra
    if kind == "track_agent_execution":
        extra = {"duration_ms": ms * 20, "task": text(rng, size(rng))}
        return kind, (session, rng.choice(AGENTS), ok), extra
    if kind == "track_error":
        extra = {"stack_trace": text(rng, rng.randint(600, 4000)), "retryable": ok}
        return kind, (session, rng.choice(ERRORS), text(rng, rng.randint(40, 200))), extra
    if kind == "track_checkpoint_created":
        files = [f"src/{text(rng, 10).strip()}.py" for _ in range(rng.randint(1, 40))]
        extra = {"description": text(rng, 80), "files_changed": len(files), "files": files}
        return kind, (session, f"ckpt-{task}-{count}"), extra
    if kind == "track_session_start":
        extra = {"user_id": f"user-{task % 7}", "project_path": "/srv/app", "model": MODELS[0]}
        extra["env"] = {"os": "linux", "python": "3.11", "term": "xterm-256color"}
        return kind, (session,), extra
    extra = {"user_id": f"user-{task % 7}", "duration_seconds": ms * 60}
    extra["token_count"] = rng.randint(100, 500_000)
    return kind, (session,), extra


class NullSink:
    """The null reference: takes entries, does nothing."""

    async def write(self, entry: MetricEntry) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


class SerializeSink(NullSink):
    """Serializes each entry as ``JSONLWriter.write`` does, and throws the line away."""

    async def write(self, entry: MetricEntry) -> None:
        entry.to_json_line()


class SampleSink(NullSink):
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.kinds: Counter[str] = Counter()

    async def write(self, entry: MetricEntry) -> None:
        self.sizes.append(len(entry.to_json_line()))
        self.kinds[entry.type.value] += 1


def sample_lines(n: int = 20_000) -> dict[str, Any]:
    """Line sizes of the workload (another seed than the runs'), to size the files."""

    async def main() -> SampleSink:
        sink = SampleSink()
        metrics = MetricsWriter(sink, metadata=WRITER_METADATA)
        rng = random.Random(SEED + 1)
        for count in range(n):
            name, args, kwargs = make_call(rng, count % TASKS, count)
            await getattr(metrics, name)(*args, seq=count, **kwargs)
        return sink

    sink = asyncio.run(main())
    sizes = sorted(sink.sizes)
    return {
        "mean_bytes": statistics.fmean(sizes),
        "p50_bytes": sizes[len(sizes) // 2],
        "p99_bytes": sizes[int(len(sizes) * 0.99)],
        "max_bytes": sizes[-1],
        "types": dict(sink.kinds.most_common()),
    }


# -- instruments ----------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def context_switches() -> tuple[int, int]:
    """(voluntary, involuntary): many involuntary ones mean the machine was busy
    and took the CPU away from us (noise no writer can help)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Spans:
    """Time spans of things that may hold the loop up, kept in preallocated arrays
    (a growing list would itself make RSS grow)."""

    def __init__(self, capacity: int) -> None:
        self.start = array("d", bytes(8 * capacity))
        self.end = array("d", bytes(8 * capacity))
        self.label = array("b", bytes(capacity))
        self.labels: list[str] = []
        self.n = 0
        self.overflow = 0

    def add(self, start: float, end: float, label: str) -> None:
        if self.n >= len(self.start):
            self.overflow += 1
            return
        try:
            code = self.labels.index(label)
        except ValueError:
            code = len(self.labels)
            self.labels.append(label)
        self.start[self.n], self.end[self.n], self.label[self.n] = start, end, code
        self.n += 1

    def index(self) -> dict[str, tuple[list[float], list[float], float]]:
        """Per label: starts (sorted), ends in the same order, the longest span."""
        grouped: dict[str, list[tuple[float, float]]] = {}
        for i in range(self.n):
            grouped.setdefault(self.labels[self.label[i]], []).append((self.start[i], self.end[i]))
        out = {}
        for label, spans in grouped.items():
            spans.sort()
            out[label] = (
                [s for s, _ in spans],
                [e for _, e in spans],
                max(e - s for s, e in spans),
            )
        return out


def overlapping(
    index: dict[str, tuple[list[float], list[float], float]], a: float, b: float
) -> list[str]:
    """The labels of the spans that overlap [a, b]."""
    found = []
    for label, (starts, ends, longest) in index.items():
        lo = bisect.bisect_left(starts, a - longest)
        hi = bisect.bisect_right(starts, b)
        if any(ends[i] > a for i in range(lo, hi)):
            found.append(label)
    return sorted(found)


class GcWatch:
    """Counts collections per generation and records each one as a span."""

    def __init__(self, spans: Spans, loop_thread: int) -> None:
        self.spans = spans
        self.loop_thread = loop_thread
        self.started = 0.0
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.in_worker = [0, 0, 0]
        self.active = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.started = now
            return
        if not self.active:
            return
        gen = info["generation"]
        took = now - self.started
        self.count[gen] += 1
        self.total[gen] += took
        self.longest[gen] = max(self.longest[gen], took)
        where = ""
        if threading.get_ident() != self.loop_thread:
            self.in_worker[gen] += 1
            where = " (worker thread)"
        self.spans.add(self.started, now, f"gc gen {gen}{where}")

    def result(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "collections": self.count[g],
                "total_ms": self.total[g] * 1000,
                "longest_ms": self.longest[g] * 1000,
                "in_worker_threads": self.in_worker[g],
            }
            for g in range(3)
        }


@contextmanager
def traced_writer(spans: Spans) -> Iterator[list[str]]:
    """Record when the writer's blocking work and its GIL handoffs ran, by wrapping
    them (private names: if the writer changed, the trace says what it misses)."""
    undo: list[Callable[[], None]] = []
    missing: list[str] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spans.add(started, time.perf_counter(), label)

        setattr(owner, name, timed)
        undo.append(lambda: setattr(owner, name, original))

    try:
        from analytics._write import handoff, storage
    except ImportError as exc:
        missing.append(f"the writer's modules ({exc})")
    else:
        cls = storage.Storage
        wrap(cls, "write", "flush hop (worker thread)")
        wrap(cls, "seal", "flush hop (worker thread)")
        wrap(cls, "compress_and_retain", "gzip + retention hop (worker thread)")
        wrap(cls, "retain_quietly", "retention hop (worker thread)")
        wrap(cls, "open", "open hop (worker thread)")
        wrap(cls, "close", "close hop (worker thread)")
        wrap(handoff, "release_gil_for", "GIL handoff (on the loop)")
    try:
        yield missing
    finally:
        for action in undo:
            action()


# -- one run (in a subprocess) --------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"paced-{args.worker}-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


async def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    name: str = args.worker
    seconds: float = args.seconds
    loop = asyncio.get_running_loop()
    ticks_capacity = int(seconds / TICK * 1.2) + 10_000
    tick_at = array("d", bytes(8 * ticks_capacity))
    tick_late = array("d", bytes(8 * ticks_capacity))
    expected_events = int(RATE * seconds * 1.2) + 1000
    lags = array("d", bytes(8 * expected_events))
    call_us = array("d", bytes(8 * expected_events))  # how long each await track_*() took
    spans = Spans(400_000)
    gc_watch = GcWatch(spans, threading.get_ident())
    gc.callbacks.append(gc_watch)
    rss_samples: list[tuple[float, int, int, int]] = [(0.0, 0, 0, 0)] * (int(seconds) + 30)
    state = {"ticks": 0, "events": 0, "lags": 0, "rss": 0, "calls": 0}

    tick_preempted = array("b", bytes(ticks_capacity))

    async def ticker() -> None:
        next_rss = 0.0
        clock = time.perf_counter
        usage = resource.getrusage
        thread = resource.RUSAGE_THREAD
        switches = usage(thread).ru_nivcsw
        while True:
            before = clock()
            await asyncio.sleep(TICK)
            now = clock()
            # Did the OS take the CPU from the loop thread meanwhile? (Waiting for the
            # GIL is a voluntary switch: it does not count here.)
            was, switches = switches, usage(thread).ru_nivcsw
            i = state["ticks"]
            if i < ticks_capacity:
                tick_at[i] = now
                tick_late[i] = now - before - TICK
                tick_preempted[i] = switches > was
                state["ticks"] = i + 1
            if now >= next_rss and state["rss"] < len(rss_samples):
                # RSS, and what Python itself holds (allocated blocks) and how many
                # threads run: growth in RSS alone is native memory (zlib, stacks).
                rss_samples[state["rss"]] = (
                    now,
                    rss_bytes(),
                    sys.getallocatedblocks(),
                    threading.active_count(),
                )
                state["rss"] += 1
                next_rss = now + 1.0

    # Warm up what both contenders use (pydantic's validators, the serializer).
    sample = MetricsWriter(SerializeSink(), metadata=WRITER_METADATA)
    warm = random.Random(0)
    for count in range(50):
        kind, call_args, kwargs = make_call(warm, 0, count)
        await getattr(sample, kind)(*call_args, seq=-1, **kwargs)

    options: dict[str, Any] = {
        "max_file_size": args.max_file_size,
        "max_files": args.max_files,
        "compress_old": True,
        **dict(args.opt),
    }
    writer: JSONLWriter | None = None
    if name == "ours":
        writer = JSONLWriter(base, **options)
        sink: Any = writer
    elif name == "serialize":
        sink = SerializeSink()
    else:
        sink = NullSink()
    metrics = MetricsWriter(sink, metadata=WRITER_METADATA)

    with traced_writer(spans) as trace_missing:
        gc.collect()
        tick_task = loop.create_task(ticker())
        await asyncio.sleep(0.2)  # the ticker settles
        gc_watch.active = True
        opened_at = time.perf_counter()
        if writer is not None:
            await writer.initialize()
        open_s = time.perf_counter() - opened_at

        load0, switches0 = os.getloadavg()[0], context_switches()
        cpu0, thread0, wall0 = cpu_seconds(), time.thread_time(), time.perf_counter()
        start = loop.time() + 0.01
        end = start + seconds
        per_task = RATE / TASKS

        async def producer(task: int) -> None:
            rng = random.Random(SEED * 1000 + task)
            due = start
            count = 0
            while True:
                due += rng.expovariate(per_task)
                if due >= end:
                    return
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                j = state["lags"]
                if j < expected_events:
                    lags[j] = loop.time() - due
                    state["lags"] = j + 1
                seq = state["events"]
                state["events"] = seq + 1
                kind, call_args, kwargs = make_call(rng, task, count)
                count += 1
                called = loop.time()
                await getattr(metrics, kind)(*call_args, seq=seq, **kwargs)
                j = state["calls"]
                if j < expected_events:
                    call_us[j] = (loop.time() - called) * 1e6
                    state["calls"] = j + 1

        await asyncio.gather(*(producer(k) for k in range(TASKS)))
        produced_at = time.perf_counter()
        await metrics.close()
        closed_at = time.perf_counter()
        cpu1, thread1 = cpu_seconds(), time.thread_time()
        load1, switches1 = os.getloadavg()[0], context_switches()
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        gc_watch.active = False
        await asyncio.sleep(0.05)
        tick_task.cancel()
        try:
            await tick_task
        except asyncio.CancelledError:
            pass
    gc.callbacks.remove(gc_watch)

    events = state["events"]
    result: dict[str, Any] = {
        "contender": name,
        "seconds": seconds,
        "events": events,
        "events_per_s": events / (produced_at - wall0),
        "open_ms": open_s * 1000,
        "close_ms": (closed_at - produced_at) * 1000,
    }
    late_all = [(tick_at[i], tick_late[i], tick_preempted[i]) for i in range(state["ticks"])]
    result["lateness"] = lateness_report(
        late_all, wall0, closed_at, produced_at, spans.index(), args.threshold / 1000
    )
    result["lateness"]["during_open_max_ms"] = 1000 * max(
        (late for at, late, _ in late_all if opened_at <= at <= wall0 + TICK), default=0.0
    )
    ordered_lags = sorted(lags[i] for i in range(state["lags"]))
    result["emit_lag"] = {
        "p50_ms": percentile(ordered_lags, 0.5) * 1000,
        "p99_ms": percentile(ordered_lags, 0.99) * 1000,
        "max_ms": (ordered_lags[-1] if ordered_lags else 0.0) * 1000,
    }
    ordered_calls = sorted(call_us[i] for i in range(state["calls"]))
    result["call"] = {
        "p50_us": percentile(ordered_calls, 0.5),
        "p99_us": percentile(ordered_calls, 0.99),
        "p999_us": percentile(ordered_calls, 0.999),
        "max_us": ordered_calls[-1] if ordered_calls else 0.0,
    }
    process_cpu = cpu1 - cpu0
    loop_cpu = thread1 - thread0
    result["cpu"] = {
        "process_s": process_cpu,
        "loop_thread_s": loop_cpu,
        "other_threads_s": max(0.0, process_cpu - loop_cpu),
        "per_event_us": process_cpu / max(events, 1) * 1e6,
        "loop_per_event_us": loop_cpu / max(events, 1) * 1e6,
        "utilization": process_cpu / (closed_at - wall0),
        "voluntary_switches": switches1[0] - switches0[0],
        "involuntary_switches": switches1[1] - switches0[1],
    }
    result["machine_load"] = {"before": load0, "after": load1, "cpus": os.cpu_count()}
    result["rss"] = rss_report(rss_samples[: state["rss"]], wall0, closed_at, peak_rss)
    result["gc"] = gc_watch.result()
    result["trace"] = {
        "missing": trace_missing,
        "spans_overflow": spans.overflow,
        "ticks_overflow": state["ticks"] >= ticks_capacity,
    }
    if writer is not None:
        stats = writer.stats()
        result["writer"] = {
            "options": {k: v for k, v in options.items()},
            "entries_written": stats.entries_written,
            "bytes_written": stats.bytes_written,
            "flushes": stats.flushes,
            "rotations": stats.rotations,
            "compressions": stats.compressions,
            "files_deleted": stats.files_deleted,
            "errors": stats.errors,
            "dropped": stats.dropped,
        }
        flusher = getattr(writer, "_flusher", None)
        handoffs = getattr(getattr(flusher, "handoff", None), "handoffs", None)
        if isinstance(handoffs, int):
            result["writer"]["gil_handoffs"] = handoffs
        result["verify"] = await asyncio.to_thread(verify, base, events, stats.entries_written)
        result["lost"] = result["verify"]["lost"]
    else:
        result["lost"] = 0
    return result


def lateness_report(
    marks: list[tuple[float, float, int]],
    start: float,
    end: float,
    produced: float,
    index: dict[str, tuple[list[float], list[float], float]],
    threshold: float,
) -> dict[str, Any]:
    during = [(at, late) for at, late, _ in marks if start <= at <= end]
    preempted = {at for at, _, flag in marks if flag and start <= at <= end}
    ordered = sorted(late for _, late in during)
    calm = sorted(late for at, late in during if at not in preempted)
    report: dict[str, Any] = {
        "ticks": len(ordered),
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "p999_ms": percentile(ordered, 0.999) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
        "during_close_max_ms": 1000
        * max((late for at, late in during if at >= produced), default=0.0),
        # The same without the ticks during which the OS preempted the loop thread:
        # what the run would have shown on an idle machine (about).
        "preempted_ticks": len(preempted),
        "not_preempted": {
            "p99_ms": percentile(calm, 0.99) * 1000,
            "max_ms": (calm[-1] if calm else 0.0) * 1000,
        },
    }
    windows = []
    width = 10.0 if end - start >= 20 else max(1.0, (end - start) / 3)
    w = start
    while w < end - 1e-9:
        chunk = sorted(late for at, late in during if w <= at < w + width)
        if chunk:
            windows.append(
                {
                    "from_s": round(w - start, 1),
                    "p99_ms": percentile(chunk, 0.99) * 1000,
                    "max_ms": chunk[-1] * 1000,
                }
            )
        w += width
    report["windows"] = windows
    overlaps: Counter[str] = Counter()
    late_ones = []
    by_label: dict[str, list[float]] = {}
    for at, late in during:
        labels = overlapping(index, at - late - TICK, at)
        if at in preempted:
            labels.append("preempted by the OS")
        # Each tick under every label it overlapped; "nothing traced" alone.
        for label in labels or ["nothing traced"]:
            by_label.setdefault(label, []).append(late)
        if late >= threshold:
            late_ones.append((late, at, labels))
            overlaps.update(labels or ["nothing traced"])
    # Lateness of the ticks that overlapped each activity: machine noise hits every
    # row alike, so a row whose p99 stands out from "nothing traced" is a real cost.
    report["by_activity"] = {
        label: {
            "ticks": len(values),
            "p50_ms": percentile(ordered_values, 0.5) * 1000,
            "p99_ms": percentile(ordered_values, 0.99) * 1000,
            "max_ms": ordered_values[-1] * 1000,
        }
        for label, values in sorted(by_label.items(), key=lambda kv: -len(kv[1]))
        for ordered_values in [sorted(values)]
    }
    report["over_threshold"] = {
        "threshold_ms": threshold * 1000,
        "count": len(late_ones),
        "overlapping": dict(overlaps.most_common()),
    }
    late_ones.sort(reverse=True)
    report["worst"] = [
        {"at_s": round(at - start, 3), "late_ms": round(late * 1000, 3), "during": labels}
        for late, at, labels in late_ones[:12]
    ]
    return report


def rss_report(
    samples: list[tuple[float, int, int, int]], start: float, end: float, peak: int
) -> dict[str, Any]:
    inside = [(at - start, rss / 2**20) for at, rss, _, _ in samples if start <= at <= end]
    blocks = [b for at, _, b, _ in samples if start <= at <= end]
    threads = [n for at, _, _, n in samples if start <= at <= end]
    mib = [v for _, v in inside]
    window = 10.0 if end - start >= 30 else max(1.0, (end - start) / 3)
    first = [v for t, v in inside if t < window]
    last = [v for t, v in inside if t >= (end - start) - window]
    first_mean = statistics.fmean(first) if first else 0.0
    last_mean = statistics.fmean(last) if last else 0.0
    slope = second_half_slope = 0.0
    if len(inside) >= 3:
        slope = statistics.linear_regression([t for t, _ in inside], mib).slope * 60
    half = inside[len(inside) // 2 :]
    if len(half) >= 3:
        # One-time steps (the first rotation starts the gzip thread and its buffers)
        # land early; a leak keeps climbing in the second half too.
        fit = statistics.linear_regression([t for t, _ in half], [v for _, v in half])
        second_half_slope = fit.slope * 60
    growth = last_mean - first_mean
    step = max(1, len(inside) // 6)
    return {
        "peak_mib": peak / 2**20,
        "first_window_mean_mib": first_mean,
        "last_window_mean_mib": last_mean,
        "window_s": window,
        "growth_mib": growth,
        "slope_mib_per_min": slope,
        "second_half_slope_mib_per_min": second_half_slope,
        "flat": growth <= max(RSS_FLAT_MIB, RSS_FLAT_SHARE * first_mean),
        "samples_mib": [round(v, 2) for v in mib],
        "python_blocks": blocks,
        "threads": threads,
        "every_10s": [
            {"at_s": round(t), "rss_mib": round(v, 2), "python_blocks": b, "threads": n}
            for (t, v), b, n in list(zip(inside, blocks, threads, strict=True))[::step]
        ],
    }


def verify(base: Path, emitted: int, written: int) -> dict[str, Any]:
    """Read everything back; see the module docstring for what "nothing lost" means
    when retention deletes the oldest files on purpose."""
    stats = ReadStats()
    seen = bytearray(emitted)
    duplicates = 0
    strangers = 0
    kinds: Counter[str] = Counter()
    for entry in iter_entries(base, stats=stats):
        seq = entry.data.get("seq")
        if not isinstance(seq, int) or not 0 <= seq < emitted:
            strangers += 1
            continue
        if seen[seq]:
            duplicates += 1
        seen[seq] = 1
        kinds[entry.type.value] += 1
    read = sum(seen)
    first = seen.find(1)
    first = emitted if first < 0 else first
    lost = (emitted - first) - read  # holes after the oldest entry kept
    files = sorted(p.name for p in (base / "metrics").iterdir())
    return {
        "read_back": read,
        "deleted_by_retention": first,
        "lost": lost + (emitted - written if written < emitted else 0),
        "duplicates": duplicates,
        "not_ours": strangers,
        "bad_lines": stats.bad_lines,
        "entries_written": written,
        "files_left": len(files),
        "gz_files_left": sum(name.endswith(".gz") for name in files),
        "types_read_back": len(kinds),
    }


# -- the driver -----------------------------------------------------------------------


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--seconds",
        str(args.seconds),
        "--max-file-size",
        str(args.max_file_size),
        "--max-files",
        str(args.max_files),
        "--threshold",
        str(args.threshold),
    ]
    for key, value in args.opt:
        command += ["--opt", f"{key}={value}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()
        print(done.stderr[-2000:], file=sys.stderr)
        return {"error": tail[-1] if tail else "crashed", "stderr": done.stderr[-4000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(rounds: list[dict[str, dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    def pick(name: str, *path: str) -> list[float]:
        out = []
        for r in rounds:
            run = r.get(name, {})
            if "error" in run or not run:
                continue
            value: Any = run
            for key in path:
                value = value[key]
            out.append(float(value))
        return out

    metrics = {
        "late_p50_ms": ("lateness", "p50_ms"),
        "late_p99_ms": ("lateness", "p99_ms"),
        "late_p999_ms": ("lateness", "p999_ms"),
        "late_max_ms": ("lateness", "max_ms"),
        "late_p99_calm_ms": ("lateness", "not_preempted", "p99_ms"),
        "late_max_calm_ms": ("lateness", "not_preempted", "max_ms"),
        "preempted_ticks": ("lateness", "preempted_ticks"),
        "cpu_per_event_us": ("cpu", "per_event_us"),
        "loop_cpu_per_event_us": ("cpu", "loop_per_event_us"),
        "peak_rss_mib": ("rss", "peak_mib"),
        "rss_growth_mib": ("rss", "growth_mib"),
        "rss_slope_mib_per_min": ("rss", "slope_mib_per_min"),
        "rss_late_slope_mib_per_min": ("rss", "second_half_slope_mib_per_min"),
        "emit_lag_p99_ms": ("emit_lag", "p99_ms"),
        "call_p99_us": ("call", "p99_us"),
        "call_max_us": ("call", "max_us"),
        "events_per_s": ("events_per_s",),
        "gc2_collections": ("gc", "gen2", "collections"),
        "gc_longest_ms": ("gc", "gen2", "longest_ms"),
    }
    summary: dict[str, Any] = {
        name: {label: median(pick(name, *path)) for label, path in metrics.items()}
        for name in names
    }
    p99_diffs, calm_diffs, cpu_ratios, flat = [], [], [], []
    for r in rounds:
        ours, null = r.get("ours"), r.get("null")
        if ours and "error" not in ours:
            flat.append(bool(ours["rss"]["flat"]))
        if not ours or not null or "error" in ours or "error" in null:
            continue
        p99_diffs.append(ours["lateness"]["p99_ms"] - null["lateness"]["p99_ms"])
        calm_diffs.append(
            ours["lateness"]["not_preempted"]["p99_ms"]
            - null["lateness"]["not_preempted"]["p99_ms"]
        )
        cpu_ratios.append(ours["cpu"]["per_event_us"] / null["cpu"]["per_event_us"])
    own = [
        r["ours"]["cpu"]["per_event_us"] - r["serialize"]["cpu"]["per_event_us"]
        for r in rounds
        if all(n in r and "error" not in r[n] for n in ("ours", "serialize"))
    ]
    summary["ours_minus_serialize_cpu_us"] = median(own)
    serial = [
        r["serialize"]["cpu"]["per_event_us"] - r["null"]["cpu"]["per_event_us"]
        for r in rounds
        if all(n in r and "error" not in r[n] for n in ("null", "serialize"))
    ]
    summary["serialize_minus_null_cpu_us"] = median(serial)
    summary["targets"] = {
        "p99_diff_ms": median(p99_diffs),
        "p99_diff_ok": bool(p99_diffs) and median(p99_diffs) <= TARGET_P99_DIFF_MS,
        "p99_diff_not_preempted_ms": median(calm_diffs),
        "cpu_ratio": median(cpu_ratios),
        "cpu_ratio_ok": bool(cpu_ratios) and median(cpu_ratios) <= TARGET_CPU_RATIO,
        "rss_flat_ok": bool(flat) and all(flat),
        "per_round": {
            "p99_diff_ms": p99_diffs,
            "p99_diff_not_preempted_ms": calm_diffs,
            "cpu_ratio": cpu_ratios,
            "rss_flat": flat,
        },
    }
    return summary


def table(summary: dict[str, Any], names: list[str], rounds: list[dict[str, Any]]) -> str:
    rows = [
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    labels = [
        ("loop lateness p50 ms", "late_p50_ms", 3),
        ("loop lateness p99 ms", "late_p99_ms", 3),
        ("loop lateness p99.9 ms", "late_p999_ms", 2),
        ("loop lateness max ms", "late_max_ms", 1),
        ("ticks preempted by the OS", "preempted_ticks", 0),
        ("p99 / max without those, ms", "late_p99_calm_ms", 3),
        ("CPU per event µs (process)", "cpu_per_event_us", 1),
        ("CPU per event µs (loop thread)", "loop_cpu_per_event_us", 1),
        ("peak RSS MiB", "peak_rss_mib", 1),
        ("RSS last 10 s - first 10 s, MiB", "rss_growth_mib", 2),
        ("RSS slope MiB/min (second half)", "rss_slope_mib_per_min", 2),
        ("gen-2 GCs (longest ms)", "gc2_collections", 0),
        ("await track_*() p99 µs (max)", "call_p99_us", 0),
        ("producer lag behind schedule p99 ms", "emit_lag_p99_ms", 2),
        ("events/s achieved", "events_per_s", 0),
    ]
    for label, key, digits in labels:
        cells = []
        for name in names:
            s = summary.get(name, {})
            value = s.get(key, float("nan"))
            cell = f"{value:,.{digits}f}"
            if key == "late_p99_calm_ms":
                cell += f" / {s.get('late_max_calm_ms', float('nan')):.1f}"
            if key == "rss_slope_mib_per_min":
                cell += f" ({s.get('rss_late_slope_mib_per_min', float('nan')):.2f})"
            if key == "call_p99_us":
                cell += f" ({s.get('call_max_us', float('nan')):,.0f})"
            if key == "gc2_collections":
                cell += f" ({s.get('gc_longest_ms', float('nan')):.1f})"
            cells.append(cell)
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    t = summary["targets"]

    def verdict(ok: bool, value: float) -> str:
        if math.isnan(value):
            return "n/a (needs ours and null in a round)"
        return "met" if ok else "NOT met"

    rows += [
        "",
        "| target (ours vs null, same round) | measured | |",
        "|---|---|---|",
        f"| p99 lateness within {TARGET_P99_DIFF_MS} ms of null | "
        f"{t['p99_diff_ms']:+.3f} ms ({t['p99_diff_not_preempted_ms']:+.3f} without preempted"
        f" ticks) | {verdict(t['p99_diff_ok'], t['p99_diff_ms'])} |",
        f"| CPU per event within {TARGET_CPU_RATIO}x null's | "
        f"{t['cpu_ratio']:.2f}x | {verdict(t['cpu_ratio_ok'], t['cpu_ratio'])} |",
        f"| RSS flat (growth ≤ max({RSS_FLAT_MIB:g} MiB, {RSS_FLAT_SHARE:.0%})) | "
        f"{summary.get('ours', {}).get('rss_growth_mib', float('nan')):+.2f} MiB | "
        f"{verdict(t['rss_flat_ok'], 0.0 if t['per_round']['rss_flat'] else math.nan)} |",
    ]
    if not math.isnan(summary["serialize_minus_null_cpu_us"]):
        rows += [
            "",
            "CPU per event, where ours spends more than null (µs):"
            f" serializing {summary['serialize_minus_null_cpu_us']:.1f} (serialize - null),"
            f" the writer itself {summary['ours_minus_serialize_cpu_us']:.1f}"
            " (ours - serialize: buffering and hops on the loop, write, gzip, retention).",
        ]
    return "\n".join(rows)


def gc_line(gen: dict[str, Any], number: int) -> str:
    workers = gen["in_worker_threads"]
    return f"gen{number} {gen['collections']} (longest {gen['longest_ms']:.2f} ms" + (
        f", {workers} in worker threads)" if workers else ")"
    )


def explain(rounds: list[dict[str, Any]]) -> str:
    """What the late wake-ups of the last round overlapped, per contender."""
    lines = []
    for name, run in rounds[-1].items():
        if "error" in run:
            continue
        late = run["lateness"]
        over = late["over_threshold"]
        gcs = ", ".join(gc_line(run["gc"][f"gen{g}"], g) for g in range(3))
        cpu = run["cpu"]
        load = run["machine_load"]
        lines.append(
            f"{name}: CPU {cpu['per_event_us']:.1f} µs/event ({cpu['loop_per_event_us']:.1f} on"
            f" the loop thread, {cpu['other_threads_s'] / max(run['events'], 1) * 1e6:.1f} in"
            f" other threads); machine load {load['before']:.1f} → {load['after']:.1f} on"
            f" {load['cpus']} CPUs, {cpu['involuntary_switches']:,} involuntary context switches"
        )
        lines.append(f"  GC {gcs}")
        lines.append(
            "  RSS MiB / Python blocks / threads: "
            + ", ".join(
                f"{p['at_s']}s {p['rss_mib']:.1f}/{p['python_blocks']:,}/{p['threads']}"
                for p in run["rss"]["every_10s"]
            )
        )
        windows = ", ".join(f"{w['from_s']:g}s: {w['max_ms']:.1f}" for w in late["windows"])
        lines.append(f"  max lateness per window (ms): {windows}")
        lines.append(
            f"  during open: {late.get('during_open_max_ms', 0):.1f} ms max;"
            f" during close: {late['during_close_max_ms']:.1f} ms max"
        )
        lines.append(
            f"  {over['count']} wake-ups later than {over['threshold_ms']:g} ms overlapped: "
            + (", ".join(f"{k} {v}" for k, v in over["overlapping"].items()) or "-")
        )
        lines.append(
            "  lateness of the ticks overlapping each activity (ticks: p50 / p99 / max ms):"
        )
        for label, row in late["by_activity"].items():
            lines.append(
                f"    {label:<40} {row['ticks']:>6}: {row['p50_ms']:.2f} / {row['p99_ms']:.2f}"
                f" / {row['max_ms']:.1f}"
            )
        for worst in late["worst"][:5]:
            lines.append(
                f"    at {worst['at_s']:7.3f} s late {worst['late_ms']:6.2f} ms: "
                + (", ".join(worst["during"]) or "nothing traced")
            )
        if "writer" in run:
            w = run["writer"]
            v = run["verify"]
            lines.append(
                f"  writer: {w['flushes']} flushes, {w['rotations']} rotations,"
                f" {w['compressions']} gzips, {w['files_deleted']} files deleted,"
                f" {w.get('gil_handoffs', '?')} GIL handoffs, {w['errors']} errors"
            )
            lines.append(
                f"  verify: emitted {run['events']:,}, written {v['entries_written']:,},"
                f" read back {v['read_back']:,} + {v['deleted_by_retention']:,} deleted by"
                f" retention, lost {v['lost']}, duplicates {v['duplicates']},"
                f" {v['files_left']} files left ({v['gz_files_left']} .gz),"
                f" {v['types_read_back']} entry types"
            )
        if run["trace"]["missing"]:
            lines.append(f"  not traced (the writer changed?): {run['trace']['missing']}")
    return "\n".join(lines)


def parse_opt(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--opt takes key=value, not {text!r}")
    value: Any = raw
    for kind in (int, float):
        try:
            value = kind(raw)
            break
        except ValueError:
            continue
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="per run (default 60)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 s per run: a smoke test")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated, run in this order"
    )
    parser.add_argument(
        "--rotate-every", type=float, default=4.0, help="seconds between rotations (about)"
    )
    parser.add_argument("--max-file-size", type=int, help="bytes (default: from --rotate-every)")
    parser.add_argument(
        "--max-files", type=int, help="retention (default: about half the run's files)"
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="ms: explain wake-ups later than this"
    )
    parser.add_argument(
        "--opt",
        type=parse_opt,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another JSONLWriter option for ours, e.g. --opt buffer_size=500",
    )
    parser.add_argument("--out", type=Path, help="write the raw results JSON in this directory")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    if args.quick:
        args.seconds = 3.0
        args.rotate_every = min(args.rotate_every, 0.5)
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {CONTENDERS}")
    lines = sample_lines()
    if args.max_file_size is None:
        args.max_file_size = int(lines["mean_bytes"] * RATE * args.rotate_every)
    if args.max_files is None:
        rotations = args.seconds * RATE * lines["mean_bytes"] / args.max_file_size
        args.max_files = max(2, int(rotations // 2))
    print(
        f"{TASKS} tasks, {RATE:,.0f} events/s (Poisson), {args.seconds:g} s per run,"
        f" {args.rounds} round(s): {', '.join(names)}\n"
        f"lines: mean {lines['mean_bytes']:.0f} B, p50 {lines['p50_bytes']} B,"
        f" p99 {lines['p99_bytes']} B, max {lines['max_bytes']} B;"
        f" {len(lines['types'])} entry types\n"
        f"ours: max_file_size={args.max_file_size:,} (a rotation every"
        f" ~{args.max_file_size / (lines['mean_bytes'] * RATE):.1f} s),"
        f" max_files={args.max_files}, gzip on, the other options as shipped"
        + (f"; overridden: {dict(args.opt)}" if args.opt else "")
        + "\n",
        flush=True,
    )

    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(args.rounds):
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            r = results[name] = run_one(name, args)
            if "error" in r:
                shown = f"CRASHED: {r['error']}"
            else:
                shown = (
                    f"{r['events']:,} events, late p99 {r['lateness']['p99_ms']:.3f} ms"
                    f" max {r['lateness']['max_ms']:.1f} ms,"
                    f" CPU {r['cpu']['per_event_us']:.1f} µs/event,"
                    f" peak RSS {r['rss']['peak_mib']:.0f} MiB, lost {r['lost']}"
                )
            print(f"round {number + 1}/{args.rounds} {name:<9} {shown}", flush=True)
        rounds.append(results)

    summary = summarize(rounds, names)
    print()
    print(table(summary, names, rounds))
    print()
    print(explain(rounds))

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        raw = {
            "when": datetime.now(UTC).isoformat(),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "workload": {
                "tasks": TASKS,
                "rate": RATE,
                "seconds": args.seconds,
                "lines": lines,
                "max_file_size": args.max_file_size,
                "max_files": args.max_files,
                "writer_options": dict(args.opt),
            },
            "targets": {
                "p99_diff_ms": TARGET_P99_DIFF_MS,
                "cpu_ratio": TARGET_CPU_RATIO,
                "rss_flat_mib": RSS_FLAT_MIB,
                "rss_flat_share": RSS_FLAT_SHARE,
            },
            "rounds": rounds,
            "summary": summary,
        }
        out_file = args.out / ("paced-quick.json" if args.quick else "paced.json")
        out_file.write_text(json.dumps(raw, indent=2))
        print(f"\nraw results: {out_file}")

    failures = [
        f"{name} crashed: {r['error']}" for rnd in rounds for name, r in rnd.items() if "error" in r
    ]
    failures += [
        f"ours lost {rnd['ours']['lost']} entries ({rnd['ours'].get('verify')})"
        for rnd in rounds
        if "ours" in rnd and "error" not in rnd["ours"] and rnd["ours"]["lost"] != 0
    ]
    failures += [
        f"ours wrote {rnd['ours']['verify']['duplicates']} entries twice"
        for rnd in rounds
        if "verify" in rnd.get("ours", {}) and rnd["ours"]["verify"]["duplicates"]
    ]
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
