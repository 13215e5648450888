"""Shared test helpers: reading a directory back strictly, and timing the loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydantic_core import from_json, to_json

import analytics
from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    SerializationError,
    Summary,
)
from analytics._bounds import TimeBounds, gzip_header, gzip_trailer
from analytics._cli import main
from analytics._models import READING
from analytics._read.figures import (
    Aggregate,
    AllOf,
    AnyOf,
    Column,
    Count,
    Figure,
    IsFalse,
    NonZero,
    NotBoolean,
    Number,
    Results,
    Text,
)
from analytics._read.sql import DUCKDB
from analytics._read.totals import Totals
from analytics.testing import MemorySink, data_file_name, foreign_line, write_data_file


def lines_of(path: Path) -> list[bytes]:
    """Every line of a .jsonl or .jsonl.gz file, newline kept; the last may be torn."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return raw.splitlines(keepends=True)


def our_files(metrics_dir: Path) -> list[Path]:
    """Data files in the directory (.jsonl and .jsonl.gz), in name order.

    A source left next to its complete .gz (a crash between the last two steps of a
    compression) is skipped: the .gz holds the same lines.
    """
    files = sorted(p for p in metrics_dir.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    names = {p.name for p in files}
    return [p for p in files if p.name + ".gz" not in names]


def read_all(metrics_dir: Path) -> list[MetricEntry]:
    """Every entry in every data file, in name order then line order.

    Strict: every line must end with a newline and parse as an entry.
    """
    entries: list[MetricEntry] = []
    for path in our_files(metrics_dir):
        for line in lines_of(path):
            assert line.endswith(b"\n"), f"torn line in {path.name}: {line[:80]!r}"
            entries.append(MetricEntry.from_json_line(line))
    return entries


def foreign_entry(**fields: Any) -> MetricEntry:
    """An entry as a reader gets it from a line another writer (or an older version)
    wrote: not held to the limits an entry is built under (``10**400``, deep values)."""
    return MetricEntry.model_validate(fields, context=READING)


def line_of(entry: MetricEntry) -> bytes:
    """``entry``'s line as this library writes it, or, for a value it refuses to write
    (a foreign entry), as another writer would have written it."""
    try:
        return entry.to_json_line()
    except SerializationError:
        return foreign_line(entry.to_dict())


def ids_of(entries: list[MetricEntry]) -> Counter[str]:
    return Counter(e.id for e in entries)


def entry(seq: int = 0, task: str = "t", size: int = 0, **data: Any) -> MetricEntry:
    """A small tool_use entry that carries its producer and sequence number."""
    payload: dict[str, Any] = {"task": task, "seq": seq, **data}
    if size:
        payload["pad"] = "x" * size
    return MetricEntry(type=MetricType.TOOL_USE, session_id=task, data=payload)


def parse_json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines_of(path)]


@dataclass
class Heartbeat:
    """A task that sleeps ``interval`` seconds in a loop and records how late it wakes."""

    interval: float = 0.001
    lateness: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lateness.append(time.perf_counter() - before - self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    @property
    def worst(self) -> float:
        return max(self.lateness, default=0.0)


class Failing:
    """Replaces the write system call; fails with ENOSPC while ``on`` is set."""

    def __init__(self) -> None:
        self.on = False
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if self.on:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, data)


async def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def active_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl"))


def gz_files(metrics_dir: Path) -> list[Path]:
    return sorted(metrics_dir.glob("metrics_*.jsonl.gz"))


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(seconds: float, type: MetricType = MetricType.TOOL_USE, **fields: object) -> MetricEntry:
    return MetricEntry(type=type, timestamp=T0 + timedelta(seconds=seconds), **fields)


def write_file(
    metrics_dir: Path,
    created: datetime,
    pid: int,
    entries: list[MetricEntry],
    compressed: bool = False,
    tag: str = "abcdef01",
    tail: bytes = b"",
) -> Path:
    """``entries`` in a data file of writer ``pid``, named for ``created``; ``tail``
    (a torn or foreign line) appended."""
    return write_data_file(
        metrics_dir,
        entries,
        created=created,
        pid=pid,
        tag=tag,
        compressed=compressed,
        torn_tail=tail,
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def number(e: MetricEntry) -> int:
    value = e.data["number"]
    assert isinstance(value, int)
    return value


def tool(moment: datetime, n: int = 0) -> MetricEntry:
    """The ``n``-th of a stream of tool calls, at ``moment``."""
    return MetricEntry(
        type=MetricType.TOOL_USE,
        timestamp=moment,
        session_id=f"s{n % 5}",
        data={"tool_name": f"t{n % 3}", "success": n % 7 != 0, "duration_ms": float(n % 100)},
    )


def times(entries: list[MetricEntry]) -> list[datetime]:
    return [e.timestamp for e in entries]


def write_entries_file(
    metrics: Path,
    created: datetime,
    entries: list[MetricEntry],
    *,
    kind: str = "bounds",  # "bounds" (.gz with header bounds), "legacy" (.gz), "plain"
    pid: int = 1,
    tag: str = "abcdef01",
    tail: bytes = b"",
) -> Path:
    """A data file named for ``created``, holding ``entries`` in the given order: plain,
    gzipped as another tool would ("legacy"), or gzipped with the entry-time bounds in
    its header, as the writer compresses ("bounds")."""
    if kind != "bounds":
        return write_data_file(
            metrics,
            entries,
            created=created,
            pid=pid,
            tag=tag,
            compressed=kind == "legacy",
            torn_tail=tail,
        )
    metrics.mkdir(parents=True, exist_ok=True)
    data = b"".join(e.to_json_line() for e in entries) + tail
    path = metrics / data_file_name(created, pid=pid, tag=tag, compressed=True)
    bounds = (
        TimeBounds.of(min(e.timestamp for e in entries), max(e.timestamp for e in entries))
        if entries
        else None
    )
    return write_gz_with_bounds(path, data, bounds)


def write_gz_with_bounds(
    path: Path, data: bytes, bounds: TimeBounds | None, level: int = 6
) -> Path:
    """``data`` gzipped as the writer compresses it: a header holding ``bounds`` (or
    none), raw deflate, the trailer."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    path.write_bytes(
        gzip_header(bounds, level=level) + body + gzip_trailer(zlib.crc32(data), len(data))
    )
    assert gzip.decompress(path.read_bytes()) == data  # a valid gzip file
    return path


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in this process: the exit status (SystemExit's too), stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def write_tools_at(metrics: Path, times: list[datetime], prefix: str = "metrics") -> None:
    """grep calls at ``times``, in one data file of writer 7 with ``prefix``."""
    entries = [
        MetricEntry(
            type=MetricType.TOOL_USE,
            timestamp=t,
            session_id="s",
            data={"tool_name": "grep", "success": True, "duration_ms": 1.0},
        )
        for t in times
    ]
    metrics.mkdir(parents=True, exist_ok=True)
    write_data_file(metrics, entries, prefix=prefix, pid=7, tag="cafe0001")


def report_entries(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    code, out, err = run_main([*argv, "--format", "json"], capsys)
    assert code == 0, err
    entries = json.loads(out)["entries"]
    assert isinstance(entries, int)
    return entries


def call_track(method: str, **kwargs: Any) -> Any:
    """``MetricsWriter(MemorySink()).<method>(**kwargs)``."""
    metrics = MetricsWriter(MemorySink())
    return getattr(metrics, method)(**kwargs)


GOOD_TRACK_ARGUMENTS: dict[str, dict[str, Any]] = {
    # Valid arguments for each track_* method, by name.
    "track_tool_use": {"session_id": "s", "tool_name": "t", "success": True, "duration_ms": 1},
    "track_agent_execution": {
        "session_id": "s",
        "agent_name": "a",
        "success": False,
        "duration_ms": 2.5,
        "task": "x",
    },
    "track_performance": {
        "session_id": "s",
        "operation": "op",
        "success": True,
        "duration_ms": 3,
    },
    "track_hook_triggered": {
        "session_id": "s",
        "hook_name": "h",
        "event": "e",
        "success": True,
        "duration_ms": 1.0,
    },
    "track_command_executed": {
        "session_id": "s",
        "command": "ls",
        "exit_code": 0,
        "success": True,
        "duration_ms": 1.0,
    },
    "track_token_usage": {
        "session_id": "s",
        "model": "m",
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_read_tokens": 3,
        "cache_write_tokens": 4,
        "cost_usd": 1,
    },
    "track_checkpoint_created": {
        "session_id": "s",
        "checkpoint_id": "c",
        "description": "d",
        "files_changed": 2,
    },
    "track_error": {
        "session_id": "s",
        "error_type": "E",
        "error_message": "m",
        "stack_trace": "st",
    },
    "track_session_start": {"session_id": "s", "project_path": "/p", "model": "m"},
    "track_session_end": {"session_id": "s", "duration_seconds": 1, "token_count": 5},
}


def foreign_at(
    seconds: float, kind: MetricType, data: dict[str, Any], sid: str | None = "s1"
) -> MetricEntry:
    # As read from a file: some tests put in numbers only another writer could have.
    return foreign_entry(
        type=kind, timestamp=T0 + timedelta(seconds=seconds), session_id=sid, data=data
    )


async def record_every_kind(base: Path) -> None:
    """What the track_* helpers write, through a real writer."""
    async with JSONLWriter(base) as writer:
        m = MetricsWriter(writer)
        for ms, ok in ((0.42, True), (0.42, True), (0.5, False), (0.31, True)):
            await m.track_performance(None, "http.request", ok, ms, method="GET", status=200)
        await m.track_performance(None, "db.query", True, 12.0)
        await m.track_agent_execution("s1", "planner", True, 40.0, task="plan")
        await m.track_agent_execution("s1", "planner", False, 60.0)
        await m.track_agent_execution("s2", "coder", True)  # no duration
        await m.track_command_executed("s1", "pytest -q", exit_code=0, duration_ms=900.0)
        await m.track_command_executed("s1", "pytest -q", exit_code=1, duration_ms=1100.0)
        await m.track_command_executed("s2", "make", success=False)
        await m.track_hook_triggered("s1", "pre-commit", event="commit", success=True)
        await m.track_hook_triggered("s1", "pre-commit", duration_ms=3.0)  # success unknown
        await m.track_checkpoint_created("s1", "c1", files_changed=3)
        await m.track_checkpoint_created("s2", "c2", files_changed=7)
        await m.track_checkpoint_created("s2", "c3")  # files_changed unknown


PUBLIC = [name for name in analytics.__all__ if not name.startswith("__")]


ROOT = Path(__file__).resolve().parent.parent


# The Python blocks of README.md and docs/*.md (run by test_docs_examples).
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRAGMENT = "<!-- fragment -->"

FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    code: str
    fragment: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path``, with the 1-based line of each opening fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, lang = i, match.group(1)
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        if lang == "python":
            before = [line for line in lines[:start] if line.strip()]
            fragment = bool(before) and before[-1].strip() == FRAGMENT
            blocks.append(Block(path, start + 1, "\n".join(body) + "\n", fragment))
    return blocks


BLOCKS = [block for path in DOCS for block in python_blocks(path)]


TIMESTAMP, HOUR, KIND, SESSION = (
    Column("timestamp"),
    Column("hour"),
    Column("type"),
    Column("session_id"),
)

FIGURES_T0 = datetime(2026, 11, 1, tzinfo=UTC)


FAILED = AnyOf((IsFalse("ok"), AllOf((NotBoolean("ok"), NonZero(Number("code"))))))


EVERY_AGGREGATE = {
    "count": Aggregate("count"),
    "failed": Aggregate("count_if", FAILED),
    "with_n": Aggregate("count_of", Count("n")),
    "n_total": Aggregate("sum", Count("n")),
    "n_min": Aggregate("min", Count("n")),
    "d_max": Aggregate("max", Number("d")),
    "first": Aggregate("min", TIMESTAMP),
    "last": Aggregate("max", TIMESTAMP),
    "sessions": Aggregate("distinct", SESSION),
    "names": Aggregate("distinct", Text("name")),
    "first_note": Aggregate("earliest", Text("note", "")),
    "last_d": Aggregate("latest", Number("d")),
    "d": Aggregate("quantiles", Number("d")),
}


TEST_FIGURES = (
    Figure("all", None, None, EVERY_AGGREGATE),
    Figure("per_name", ("a", "b"), Text("name"), EVERY_AGGREGATE),
    Figure("per_session", ("b",), SESSION, EVERY_AGGREGATE),
    Figure("per_hour", None, HOUR, {"count": Aggregate("count")}),
    Figure("per_kind", ("c",), KIND, {"count": Aggregate("count")}),
)


Row = tuple[int, str, str | None, dict[str, Any]]


def python_results(rows: list[Row], figures: tuple[Figure, ...] = TEST_FIGURES) -> Results:
    totals = Totals(figures)
    for row in rows:
        add(totals, row)
    return totals.results()


def add(totals: Totals, row: Row) -> None:
    seconds, kind, sid, data = row
    moment = FIGURES_T0 + timedelta(seconds=seconds)
    # As the Python engine gets data: parsed from the line's JSON.
    totals.add(kind, moment, moment.isoformat()[:13], sid, from_json(to_json(data)))


def sql_results(rows: list[Row], figures: tuple[Figure, ...] = TEST_FIGURES) -> Results:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    try:
        con.execute(
            "CREATE TABLE e (timestamp TIMESTAMPTZ, type VARCHAR, session_id VARCHAR, data JSON)"
        )
        if rows:
            con.executemany(
                "INSERT INTO e VALUES (make_timestamptz(?::BIGINT), ?, ?, ?)",
                [
                    [
                        int(FIGURES_T0.timestamp() + seconds) * 10**6,
                        kind,
                        sid,
                        to_json(data).decode(),
                    ]
                    for seconds, kind, sid, data in rows
                ],
            )
        return {
            figure.name: DUCKDB.results(figure, con.execute(DUCKDB.query(figure, "e")).fetchall())
            for figure in figures
        }
    finally:
        con.close()


def aged_name(age_s: float, *, pid: int, tag: str, compressed: bool = True) -> str:
    """The name a writer gave a file ``age_s`` seconds ago."""
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    return data_file_name(created, pid=pid, tag=tag, compressed=compressed)


def write_aged_file(
    metrics_dir: Path,
    age_s: float,
    entries: list[MetricEntry],
    *,
    pid: int,
    tag: str,
    prefix: str = "metrics",
) -> Path:
    """A compressed data file a writer made ``age_s`` seconds ago (by its name)."""
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    return write_data_file(
        metrics_dir, entries, created=created, prefix=prefix, pid=pid, tag=tag, compressed=True
    )


def write_lines_file(
    metrics_dir: Path,
    lines: list[bytes],
    *,
    created: datetime,
    pid: int,
    tag: str,
    compressed: bool = False,
    tail: bytes = b"",
) -> Path:
    """A data file holding ``lines`` exactly (each ends with a newline): lines of
    entries another writer wrote, or no entries at all; then ``tail``."""
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    return write_data_file(
        metrics_dir,
        [],
        created=created,
        pid=pid,
        tag=tag,
        compressed=compressed,
        garbage=lines,
        torn_tail=tail,
    )


# -- Directories for engine parity (Python, DuckDB, ClickHouse, PostgreSQL) ---------

PARITY_T0 = datetime(2026, 11, 1, tzinfo=UTC)
"""The start of :func:`generate`'s entries."""


def generate(base: Path, seed: int, count: int = 3000) -> None:
    """Several writers' files, compressed and not, with every event type and damage."""
    rng = random.Random(seed)
    metrics = base / "metrics"
    metrics.mkdir(parents=True)
    for writer in range(3):
        # Distinct microseconds per writer: no two entries share a timestamp, so "the
        # first error of a kind" means the same entry to both engines.
        moment = PARITY_T0 + timedelta(seconds=writer, microseconds=writer)
        for number in range(4):
            lines = []
            created = moment  # files are named when created, before their entries
            for _ in range(count // 12):
                moment += timedelta(milliseconds=rng.randint(1, 5000))
                session = f"s{rng.randint(0, 30)}"
                kind = rng.choice(list(MetricType))
                data: dict[str, object] = {}
                if kind is MetricType.TOOL_USE:
                    data = {
                        "tool_name": rng.choice(["grep", "edit", "bash"]),
                        "success": rng.random() > 0.1,
                    }
                    if rng.random() > 0.05:
                        data["duration_ms"] = round(rng.lognormvariate(2, 1), 3)
                elif kind is MetricType.TOKEN_USAGE:
                    data = {
                        "model": rng.choice(["a", "b"]),
                        "input_tokens": rng.randint(1, 5000),
                        "output_tokens": rng.randint(1, 900),
                    }
                elif kind is MetricType.ERROR_OCCURRED:
                    data = {
                        "error_type": rng.choice(["Timeout", "KeyError"]),
                        "error_message": f"message {rng.randint(0, 99)}",
                    }
                elif kind is MetricType.SESSION_END and rng.random() > 0.5:
                    data = {"duration_seconds": round(rng.uniform(1, 600), 2)}
                else:
                    data = other_kinds(rng, kind)
                entry = foreign_entry(  # now and then a number only another writer writes
                    type=kind,
                    timestamp=moment,
                    session_id=session if rng.random() > 0.1 else None,
                    data=data,
                )
                lines.append(line_of(entry))
            if number == 1:
                lines.insert(5, b'{"this is": "not an entry"}\n')
                lines.insert(9, b"garbage\n")
            write_lines_file(
                metrics,
                lines,
                created=created,
                pid=100 + writer,
                tag=f"0000000{writer}",
                compressed=number < 3,
                tail=b"" if number < 3 else b'{"torn',
            )


def other_kinds(rng: random.Random, kind: MetricType) -> dict[str, object]:
    """``data`` as the track_* helpers write it for the kinds beyond tools, sessions,
    errors and tokens, with sub-millisecond, integer and missing durations, and now and
    then a value the summary must skip (an integer too large for a float)."""
    duration: object = rng.choice(
        [round(rng.lognormvariate(0, 2), 4), rng.randint(0, 900), round(rng.random(), 5)]
    )
    if rng.random() < 0.02:
        duration = 10**400
    timed: dict[str, object] = {} if rng.random() < 0.05 else {"duration_ms": duration}
    if kind is MetricType.PERFORMANCE:
        return {
            "operation": rng.choice(["http.request", "db.query", "render"]),
            "success": rng.random() > 0.1,
            "method": "GET",
            "path": "/items",
            "status": rng.choice([200, 404, 500]),
            **timed,
        }
    if kind is MetricType.AGENT_EXECUTION:
        return {
            "agent_name": rng.choice(["planner", "coder"]),
            "success": rng.random() > 0.2,
            "task": "t",
            **timed,
        }
    if kind is MetricType.COMMAND_EXECUTED:
        data: dict[str, object] = {"command": rng.choice(["make", "pytest", "ls"]), **timed}
        exit_code = rng.choice([0, 0, 0, 1, 2, None])
        if exit_code is not None:
            data["exit_code"] = exit_code
        if rng.random() < 0.7:  # as track_command_executed writes it; else only the code
            data["success"] = exit_code in (0, None)
        return data
    if kind is MetricType.HOOK_TRIGGERED:
        data = {"hook_name": rng.choice(["pre-commit", "post-tool"]), **timed}
        if rng.random() < 0.5:
            data["event"] = "e"
        if rng.random() < 0.8:
            data["success"] = rng.random() > 0.1
        return data
    if kind is MetricType.CHECKPOINT_CREATED:
        data = {"checkpoint_id": f"c{rng.randint(0, 10**6)}"}
        if rng.random() < 0.8:
            data["files_changed"] = rng.choice([rng.randint(0, 40), 10**400])
        return data
    return {}


def same(a: Summary, b: Summary) -> None:
    assert a.model_dump(exclude={"sessions"}) == b.model_dump(exclude={"sessions"})
    sa, sb = a.sessions.model_dump(), b.sessions.model_dump()
    # A mean may differ in the last bit: the engines add in different orders.
    mean_a, mean_b = sa.pop("duration_s_mean"), sb.pop("duration_s_mean")
    if mean_a is None or mean_b is None:  # no session with a duration
        assert mean_a is mean_b
    else:
        assert mean_a == pytest.approx(mean_b, rel=1e-12)
    assert sa == sb


def signal_and_reap(process: subprocess.Popen[Any] | None, signum: int, timeout: float) -> None:
    """Send ``signum`` to a server process the tests started (by its pid, never by
    name) and reap it; SIGKILL if it has not exited within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def require_servers() -> bool:
    """Whether a missing real server (or its client) is a failure, as in CI, rather
    than a skip: ``ANALYTICS_REQUIRE_SERVERS=1``."""
    return os.environ.get("ANALYTICS_REQUIRE_SERVERS") == "1"


def server_unavailable(reason: str) -> NoReturn:
    """A real server, a browser or their client library is missing here: skip, or
    fail when :func:`require_servers`."""
    if require_servers():
        pytest.fail(f"{reason} (ANALYTICS_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(reason)


class _LogOnFailure:
    """Puts a server's log tail into the report of a failed test that used it."""

    def __init__(self, fixture: str, title: str, log_tail: Callable[[], str]) -> None:
        self.fixture, self.title, self.log_tail = fixture, title, log_tail

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed and self.fixture in getattr(item, "fixturenames", ()):
            report.sections.append((self.title, self.log_tail()))
        return report


@contextlib.contextmanager
def log_on_failure(
    request: pytest.FixtureRequest, fixture: str, title: str, log_tail: Callable[[], str]
) -> Iterator[None]:
    """While inside: a failed test that uses ``fixture`` reports ``log_tail()`` under
    ``title`` (a server fixture's log, where the cause of a failure usually is)."""
    plugin = _LogOnFailure(fixture, title, log_tail)
    request.config.pluginmanager.register(plugin, f"{fixture}-log")
    try:
        yield
    finally:
        request.config.pluginmanager.unregister(plugin)
