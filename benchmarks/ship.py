"""Benchmark the shipper against each engine's own bulk loader, and its lag.

    python benchmarks/ship.py                 # 1,000,000 entries, 2 rounds, 30 s paced writer
    python benchmarks/ship.py --quick         # 20,000 entries, 1 round, 5 s: the smoke test
    python benchmarks/ship.py --engines postgresql --rounds 3 --cache /tmp/ship-cache

Two measurements per engine (PostgreSQL and ClickHouse, real servers started here by
the test suite's helpers, ``tests/ship/pg_server.py`` and ``tests/ship/ch_server.py``,
on 127.0.0.1, free ports, temporary directories, stopped by their pids):

1. **Throughput.** N entries of a realistic mix of types are written once through
   ``MetricsWriter``/``JSONLWriter`` (rotation at 8 MiB, gzip), then, into a fresh
   table each time: **ours** is ``python -m analytics ship DIR --to URL --once`` (a
   subprocess, timed end to end: start-up, connect, create the table, read, decode,
   insert, checkpoint); the **baseline** is the engine's own bulk loader loading the
   same rows, pre-encoded, from a local file into the same table definition
   (PostgreSQL: ``psql -c "\\copy t FROM file"`` of COPY text; ClickHouse: one HTTP
   POST of a ``JSONEachRow`` body by ``curl -T file``, the shape the shipper sends).
   Within a round the two alternate which goes first; the ratio is taken pair by pair.
   Ours must end with exactly N distinct ids, none twice after dedup.
2. **Lag.** A writer subprocess produces R entries/s (evenly paced) for S seconds with
   the writer's default flush settings, while a ``Shipper`` with its defaults runs in
   this process. The engine's ``insert`` is wrapped (the library is not changed): when
   a batch is acknowledged, each of its rows' lag is the acknowledgement time minus the
   entry's own timestamp.

Nothing here asserts a speed: the exit status is 1 only if something crashed or an
entry was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from analytics import JSONLWriter, MetricsWriter, Shipper

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("postgresql", "clickhouse")
ROTATE = 8 * 1024 * 1024
COLUMNS = (
    "id",
    "timestamp",
    "type",
    "session_id",
    "user_id",
    "data",
    "metadata",
    "source",
)
SOURCE = f"{socket.gethostname()}/bench-{'0' * 26}"
"""The baseline's ``source`` column: as long as the shipper's ``<host>/<directory id>``."""

TOOLS = (
    "read_file",
    "grep",
    "edit",
    "bash",
    "write_file",
    "glob",
    "web_fetch",
    "list_dir",
)
MODELS = ("claude-sonnet", "claude-haiku", "claude-opus")
COMMANDS = ("pytest -q", "git status", "npm run build", "make lint", "cargo check")
AGENTS = ("planner", "coder", "reviewer", "tester")
HOOKS = ("pre_commit", "post_edit", "on_error")
ERRORS = ("TimeoutError", "ValueError", "PermissionError", "ConnectionResetError")
STACK = "".join(
    f'  File "/srv/app/module_{k}.py", line {40 + k}, in handler_{k}\n    result = step_{k}(x)\n'
    for k in range(6)
)


# -- the workload -------------------------------------------------------------------


class Workload:
    """Entries of a realistic mix of types, through the public facade: sessions of
    about 200 entries with a start and an end; tool calls (40 %), token usage (15 %),
    commands, performance timings, agents, hooks, errors (some with a stack trace) and
    checkpoints. About 330 bytes per line on average."""

    def __init__(self, writer: JSONLWriter, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.metrics = [
            MetricsWriter(
                writer,
                user_id=f"user-{u:03d}",
                metadata={
                    "service": "agent-api",
                    "version": "2.14.1",
                    "host": f"web-{u % 4}",
                },
            )
            for u in range(16)
        ]

    async def emit(self, i: int) -> None:
        rng = self.rng
        session = f"session-{i // 200:06d}"
        m = self.metrics[(i // 200) % len(self.metrics)]
        step = i % 200
        if step == 0:
            await m.track_session_start(session, project_path="/srv/repo", model=MODELS[0])
            return
        if step == 199:
            await m.track_session_end(
                session,
                duration_seconds=rng.uniform(10, 900),
                token_count=rng.randint(1, 10**6),
            )
            return
        r = rng.random()
        duration = round(rng.lognormvariate(3, 1.2), 3)
        if r < 0.40:
            await m.track_tool_use(
                session,
                TOOLS[rng.randrange(len(TOOLS))],
                rng.random() > 0.05,
                duration,
                argument=f"/srv/repo/src/pkg_{rng.randrange(50)}/module_{rng.randrange(400)}.py",
            )
        elif r < 0.55:
            tokens_in, tokens_out = rng.randint(100, 20_000), rng.randint(10, 4_000)
            await m.track_token_usage(
                session,
                MODELS[rng.randrange(len(MODELS))],
                tokens_in,
                tokens_out,
                cache_read_tokens=rng.randint(0, tokens_in),
                cost_usd=round((tokens_in * 3 + tokens_out * 15) / 1e6, 6),
            )
        elif r < 0.65:
            code = 0 if rng.random() > 0.1 else rng.randint(1, 2)
            await m.track_command_executed(
                session,
                COMMANDS[rng.randrange(len(COMMANDS))],
                exit_code=code,
                duration_ms=duration,
            )
        elif r < 0.75:
            await m.track_performance(
                session_id=session,
                operation=f"db.query.{rng.randrange(20)}",
                success=True,
                duration_ms=duration,
            )
        elif r < 0.83:
            await m.track_agent_execution(
                session,
                AGENTS[rng.randrange(len(AGENTS))],
                rng.random() > 0.1,
                duration * 10,
                task=f"Refactor the handler of route /api/v1/items/{rng.randrange(1000)} to async",
            )
        elif r < 0.89:
            await m.track_hook_triggered(
                session,
                HOOKS[rng.randrange(len(HOOKS))],
                event="tool_use",
                success=True,
            )
        elif r < 0.94:
            await m.track_error(
                session,
                ERRORS[rng.randrange(len(ERRORS))],
                f"request {rng.randrange(10**9)} failed: upstream closed the connection",
                stack_trace=STACK if rng.random() < 0.3 else None,
            )
        else:
            await m.track_checkpoint_created(
                session,
                f"ckpt-{i:08d}",
                description="before edit",
                files_changed=rng.randint(1, 9),
            )


def writer_for(directory: Path, max_file_size: int, **options: Any) -> JSONLWriter:
    """Rotation at ``max_file_size`` with gzip; nothing deleted."""
    return JSONLWriter(directory, max_file_size=max_file_size, max_files=1_000_000, **options)


async def write_entries(directory: Path, n: int, max_file_size: int) -> int:
    """N entries as fast as they come (buffer 1,000: this is not what is timed)."""
    writer = writer_for(directory, max_file_size, buffer_size=1_000)
    await writer.initialize()
    workload = Workload(writer)
    for i in range(n):
        await workload.emit(i)
        if i % 200 == 199:
            await asyncio.sleep(0)
    await writer.close()
    return writer.stats().entries_written


async def write_paced(
    directory: Path, rate: float, seconds: float, max_file_size: int
) -> tuple[int, float]:
    """``rate`` entries/s, evenly paced, for ``seconds``, with the writer's default
    flush settings (buffer 100 entries, flush interval 1 s)."""
    writer = writer_for(directory, max_file_size)
    await writer.initialize()
    workload = Workload(writer, seed=11)
    total = int(rate * seconds)
    started = time.monotonic()
    i = 0
    while i < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while i < due:
            await workload.emit(i)
            i += 1
        await asyncio.sleep(0.002)
    elapsed = time.monotonic() - started
    await writer.close()
    return writer.stats().entries_written, elapsed


def data_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("metrics_*") if p.is_file())


def read_lines(directory: Path) -> Iterator[bytes]:
    import gzip

    for path in data_files(directory):
        data = (
            gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        )
        for line in data.split(b"\n"):
            if line.strip():
                yield line


def _copy_text(value: str | None) -> str:
    """A value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


_MICRO = timedelta(microseconds=1)


def _iso_micros(stamp: str) -> tuple[int, int]:
    moment = datetime.fromisoformat(stamp)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // _MICRO
    return micros // 1_000_000, micros


def encode_baselines(directory: Path, pg_file: Path, ch_file: Path) -> int:
    """The rows of ``directory`` pre-encoded for each engine's own loader: COPY text
    (the shipper's columns) and a ``JSONEachRow`` body (the shape of
    ``analytics._ship.clickhouse.encode_rows``). Returns how many rows."""
    rows = 0
    quote = json.encoder.encode_basestring
    with (
        pg_file.open("w", encoding="utf-8") as pg,
        ch_file.open("w", encoding="utf-8") as ch,
    ):
        for line in read_lines(directory):
            entry = json.loads(line)
            data = json.dumps(entry["data"], separators=(",", ":"), ensure_ascii=False)
            meta = json.dumps(entry["metadata"], separators=(",", ":"), ensure_ascii=False)
            values = [entry[c] for c in COLUMNS[:5]] + [data, meta, SOURCE]
            pg.write("\t".join(_copy_text(v) for v in values) + "\n")
            seconds, micros = _iso_micros(entry["timestamp"])
            session = "null" if entry["session_id"] is None else quote(entry["session_id"])
            user = "null" if entry["user_id"] is None else quote(entry["user_id"])
            ch.write(
                f'{{"id":{quote(entry["id"])},"timestamp":{seconds},"timestamp_us":{micros},'
                f'"type":{quote(entry["type"])},"session_id":{session},"user_id":{user},'
                f'"data":{quote(data)},"metadata":{quote(meta)},"source":{quote(SOURCE)}}}\n'
            )
            rows += 1
    return rows


@dataclass
class Dataset:
    directory: Path
    n: int
    pg_file: Path
    ch_file: Path
    files: int
    compressed_bytes: int
    raw_bytes: int
    write_s: float


def prepare(cache: Path, n: int, max_file_size: int) -> Dataset:
    """Write the entries once (kept in ``cache`` between engines and runs: the same
    ``n`` and rotation reuse them), and pre-encode the baselines' files."""
    home = cache / f"entries-{n}-{max_file_size}"
    meta = home / "dataset.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        print(f"entries: reusing {n:,} in {home}", flush=True)
    else:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        began = time.perf_counter()
        written = asyncio.run(write_entries(home / "data", n, max_file_size))
        write_s = time.perf_counter() - began
        if written != n:
            raise RuntimeError(f"the writer wrote {written} of {n} entries")
        rows = encode_baselines(home / "data", home / "rows.copy", home / "rows.jsonl")
        if rows != n:
            raise RuntimeError(f"{rows} lines in the files, {n} written")
        files = data_files(home / "data")
        info = {
            "files": len(files),
            "compressed_bytes": sum(p.stat().st_size for p in files),
            "raw_bytes": sum(len(line) + 1 for line in read_lines(home / "data")),
            "write_s": write_s,
        }
        meta.write_text(json.dumps(info))
        print(f"entries: wrote {n:,} in {write_s:.1f} s into {home}", flush=True)
    return Dataset(
        home / "data",
        n,
        home / "rows.copy",
        home / "rows.jsonl",
        int(info["files"]),
        int(info["compressed_bytes"]),
        int(info["raw_bytes"]),
        float(info["write_s"]),
    )


def fresh_copy(dataset: Dataset, into: Path) -> Path:
    """A directory of hard links to the dataset's files: no checkpoint of any shipper
    yet, and nothing copied."""
    shutil.rmtree(into, ignore_errors=True)
    for path in data_files(dataset.directory):
        target = into / path.relative_to(dataset.directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return into


# -- the engines --------------------------------------------------------------------


class Central:
    """One engine's server, a ``bench`` database in it, and what the benchmark asks."""

    name: str

    def url(self, table: str) -> str:
        raise NotImplementedError

    def clone_table(self, template: str, table: str) -> None:
        """An empty ``table`` defined as ``template`` (which the shipper created)."""
        raise NotImplementedError

    def bulk_load(self, dataset: Dataset, table: str) -> list[str]:
        """The command of the engine's own loader for the dataset's rows."""
        raise NotImplementedError

    def counts(self, table: str) -> tuple[int, int]:
        """(rows after dedup, distinct ids)."""
        raise NotImplementedError

    def drop(self, table: str) -> None:
        raise NotImplementedError

    def settle(self) -> None:
        """Let background work of the previous load finish before a timed one."""

    @property
    def pid(self) -> int | None:
        """The server's process (PostgreSQL: the postmaster)."""
        return None

    def stop(self) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class PostgreSQLCentral(Central):
    name = "postgresql"

    def __init__(self) -> None:
        from tests.ship.pg_server import SHIPPER_USER, boot

        self.server = boot()
        self.server.psql(f"CREATE DATABASE bench OWNER {SHIPPER_USER}")

    def url(self, table: str) -> str:
        return self.server.url("bench", table=table)

    def _psql(self) -> list[str]:
        s = self.server
        return [str(s.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", s.host, "-p", str(s.port), "-U", "postgres", "-d", "bench"]  # fmt: skip

    def clone_table(self, template: str, table: str) -> None:
        self.server.psql(f"CREATE TABLE {table} (LIKE {template} INCLUDING ALL)", "bench")

    def bulk_load(self, dataset: Dataset, table: str) -> list[str]:
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        return [
            *self._psql(),
            "-c",
            f"\\copy {table} ({columns}) FROM '{dataset.pg_file}'",
        ]

    def counts(self, table: str) -> tuple[int, int]:
        process = self.server.process
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the postmaster exited with status {process.returncode}")
        out = self.server.psql(f"SELECT count(*), count(DISTINCT id) FROM {table}", "bench")
        rows, ids = out.strip().split("|")
        return int(rows), int(ids)

    def drop(self, table: str) -> None:
        self.server.psql(f"DROP TABLE IF EXISTS {table}", "bench")

    def settle(self) -> None:
        self.server.psql("CHECKPOINT")

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def stop(self) -> None:
        self.server.cleanup()

    def version(self) -> str:
        return self.server.psql("SHOW server_version").strip()


class ClickHouseCentral(Central):
    name = "clickhouse"

    def __init__(self) -> None:
        from tests.ship.ch_server import ClickHouseServer, find_clickhouse

        command = find_clickhouse()
        if command is None:
            raise RuntimeError("no ClickHouse server here: apt-get install clickhouse-server")
        self.root = Path(tempfile.mkdtemp(prefix="bench-clickhouse-"))
        self.server = ClickHouseServer(command, self.root)
        self.server.start()
        self.server.query("CREATE DATABASE bench")

    def url(self, table: str) -> str:
        return self.server.url("bench", table)

    def clone_table(self, template: str, table: str) -> None:
        self.server.query(f"CREATE TABLE bench.{table} AS bench.{template}")

    def bulk_load(self, dataset: Dataset, table: str) -> list[str]:
        query = f"INSERT INTO bench.{table} FORMAT JSONEachRow"
        url = f"{self.server.http_url}?query={query.replace(' ', '%20')}"
        return ["curl", "-sS", "--fail-with-body", "-H", "Expect:", "-X", "POST",
                "-T", str(dataset.ch_file), url]  # fmt: skip

    def counts(self, table: str) -> tuple[int, int]:
        out = self.server.query(f"SELECT count(), uniqExact(id) FROM bench.{table} FINAL")
        rows, ids = out.split()
        return int(rows), int(ids)

    def drop(self, table: str) -> None:
        self.server.query(f"DROP TABLE IF EXISTS bench.{table}")

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def version(self) -> str:
        return self.server.query("SELECT version()").strip()


def start_central(engine: str) -> Central:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # tests.ship.*, when run as benchmarks/ship.py
    return PostgreSQLCentral() if engine == "postgresql" else ClickHouseCentral()


# -- the measurements ---------------------------------------------------------------


def ship_command(directory: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "analytics",
        "ship",
        str(directory),
        "--to",
        url,
        "--once",
    ]


def cpu_of(pid: int | None) -> float:
    """CPU seconds of process ``pid`` and of its children that have exited (a
    PostgreSQL backend's, once the connection closed)."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timed:
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    done: subprocess.CompletedProcess[str]


TIMEOUT = 900.0
"""Seconds one timed command may take: ``ship --once`` retries for ever while the
server is unreachable (a server that died must not hang the benchmark)."""


def timed(command: list[str], server_pid: int | None = None) -> Timed:
    """Run ``command``; its wall time, its own CPU time, and the server's CPU time
    meanwhile.

    Raises:
        subprocess.TimeoutExpired: it took more than ``TIMEOUT`` (it was killed).
    """
    client, server = children_cpu(), cpu_of(server_pid)
    began = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=TIMEOUT
    )
    wall = time.perf_counter() - began
    client = children_cpu() - client
    time.sleep(0.2)  # a PostgreSQL backend's CPU counts once the postmaster reaped it
    return Timed(wall, client, cpu_of(server_pid) - server, done)


def run_ours(central: Central, dataset: Dataset, work: Path, table: str) -> dict[str, Any]:
    """``analytics ship DIR --to URL --once`` into a fresh table, timed end to end."""
    directory = fresh_copy(dataset, work / table)
    central.drop(table)
    central.settle()
    run = timed(ship_command(directory, central.url(table)), central.pid)
    seconds, done = run.wall_s, run.done
    if done.returncode != 0:
        return {"error": f"ship exited {done.returncode}: {done.stderr.strip()[-2000:]}"}
    rows, ids = central.counts(table)
    central.drop(table)
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "wall_s": seconds,
        "entries_per_s": dataset.n / seconds,
        "rows": rows,
        "distinct_ids": ids,
        "lost": dataset.n - ids,
        "duplicates": rows - ids,
        "client_cpu_s": run.client_cpu_s,
        "server_cpu_s": run.server_cpu_s,
        "summary": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
    }


def run_baseline(central: Central, dataset: Dataset, table: str) -> dict[str, Any]:
    """The engine's own loader, the same rows from a local file, the same table."""
    central.drop(table)
    central.clone_table("template", table)
    central.settle()
    run = timed(central.bulk_load(dataset, table), central.pid)
    seconds, done = run.wall_s, run.done
    if done.returncode != 0:
        return {"error": f"loader exited {done.returncode}: {(done.stderr + done.stdout)[-2000:]}"}
    rows, ids = central.counts(table)
    central.drop(table)
    return {
        "wall_s": seconds,
        "entries_per_s": dataset.n / seconds,
        "rows": rows,
        "distinct_ids": ids,
        "lost": dataset.n - ids,
        "client_cpu_s": run.client_cpu_s,
        "server_cpu_s": run.server_cpu_s,
    }


@dataclass
class LagProbe:
    """Wraps an engine's ``insert``: each row's lag when its batch is acknowledged."""

    lags: list[float] = field(default_factory=list)
    acks: list[tuple[float, int]] = field(default_factory=list)

    def wrap(self, engine: Any) -> None:
        insert: Callable[[Any], Any] = engine.insert

        async def probed(batch: Any) -> None:
            await insert(batch)
            acked = time.time()
            self.acks.append((acked, len(batch.rows)))
            self.lags.extend(acked - row.timestamp.timestamp() for row in batch.rows)

        engine.insert = probed


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the ``ceil(q * n)``-th smallest."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def measure_lag(
    central: Central,
    work: Path,
    table: str,
    rate: float,
    seconds: float,
    max_file_size: int,
) -> dict[str, Any]:
    directory = work / table
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    central.drop(table)
    probe = LagProbe()
    shipper = Shipper(directory, to=central.url(table))  # every default
    probe.wrap(shipper.engine)
    command = [sys.executable, __file__, "--paced-writer", str(directory),
               "--rate", str(rate), "--seconds", str(seconds),
               "--max-file-size", str(max_file_size)]  # fmt: skip
    async with shipper:
        began = time.time()
        done = await anyio.run_process(command, check=False, cwd=ROOT)
        writer_done = time.time()
        if done.returncode != 0:
            return {
                "error": f"paced writer exited {done.returncode}: {done.stderr.decode()[-2000:]}"
            }
        report = json.loads(done.stdout.decode().strip().splitlines()[-1])
        written, writing = int(report["written"]), float(report["seconds"])
        deadline = time.monotonic() + 60
        while shipper.stats().entries_shipped < written and time.monotonic() < deadline:
            await anyio.sleep(0.05)
        drained = time.time()
        stats = shipper.stats()
    rows, ids = await anyio.to_thread.run_sync(central.counts, table)
    await anyio.to_thread.run_sync(central.drop, table)
    shutil.rmtree(directory, ignore_errors=True)
    per_insert = [n for _, n in probe.acks]
    return {
        "written": written,
        "writer_rate": written / writing,
        "lag_p50_s": percentile(probe.lags, 0.50),
        "lag_p99_s": percentile(probe.lags, 0.99),
        "lag_max_s": max(probe.lags, default=math.nan),
        "inserts": len(probe.acks),
        "inserts_per_s": len([a for a, _ in probe.acks if began <= a <= writer_done])
        / (writer_done - began),
        "rows_per_insert": statistics.median(per_insert) if per_insert else 0,
        "drain_after_writer_s": drained - writer_done,
        "shipped": stats.entries_shipped,
        "retries": stats.retries,
        "lost": written - ids,
        "duplicates": rows - ids,
    }


# -- the profile --------------------------------------------------------------------


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_ours(
    central: Central, dataset: Dataset, work: Path, out: Path, rate: int = 250
) -> dict[str, Any]:
    """``ship --once`` once more, sampled by py-spy (every thread, not only the event
    loop's: the shipper reads and decodes in worker threads), and the top costs."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    table = "profiled"
    directory = fresh_copy(dataset, work / table)
    central.drop(table)
    central.settle()
    raw = out / f"ship-profile-{central.name}.txt"
    command = [spy, "record", "--format", "raw", "--threads", "--nonblocking",
               "--rate", str(rate), "--output", str(raw), "--",
               *ship_command(directory, central.url(table))]  # fmt: skip
    run = timed(command, central.pid)
    central.drop(table)
    shutil.rmtree(directory, ignore_errors=True)
    if run.done.returncode != 0:
        return {"error": f"py-spy exited {run.done.returncode}: {run.done.stderr[-2000:]}"}
    return {"wall_s": run.wall_s, "raw": str(raw), **read_profile(raw)}


def _frame(frame: str) -> str:
    """``function (dir/file.py)``: no line number, the path's last two parts."""
    match = re.fullmatch(r"(.*) \((.*?)(?::\d+)?\)", frame)
    if match is None:
        return frame
    function, path = match.groups()
    return f"{function} ({'/'.join(Path(path).parts[-2:])})"


OURS = frozenset({"analytics", "asyncpg", "httpx", "httpcore", "json", "gzip.py"})
"""The frames worth an inclusive share: ours, the engines' clients, gzip and json."""


def _ours(frame: str) -> bool:
    match = re.fullmatch(r".* \((.*?)(?::\d+)?\)", frame)
    return match is not None and not OURS.isdisjoint(Path(match.group(1)).parts)


def read_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Shares of the samples: per thread, per function (self: the sampled frame;
    inclusive: anywhere on the stack, for functions of ``OURS``)."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")  # "thread (id): name", then the calls, outermost first
        worker = len(frames) > 1 and frames[1].startswith("Thread._bootstrap ")
        threads["worker threads" if worker else "event loop"] += n
        calls = [_frame(f) for f in frames[1:]]
        if not calls:
            continue
        total += n
        own[calls[-1]] += n
        for call in {_frame(f) for f in frames[1:] if _ours(f)}:
            inclusive[call] += n

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "threads": {
            k: round(100 * v / max(1, sum(threads.values())), 1) for k, v in threads.items()
        },
        "self": shares(own),
        "inclusive": shares(inclusive),
    }


# -- the driver ---------------------------------------------------------------------


def stats_of(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s: dict[str, float] | None, digits: int = 0) -> str:
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return f"{s['median']:,.{digits}f}"
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}-{s['max']:,.{digits}f})"


def summarize(rounds: list[dict[str, dict[str, Any]]], engine: str) -> dict[str, Any]:
    def pick(kind: str, key: str) -> dict[str, float] | None:
        values = [
            float(r[engine][kind][key])
            for r in rounds
            if engine in r and kind in r[engine] and key in r[engine][kind]
        ]
        return stats_of(values) if values else None

    ratios = [
        r[engine]["ours"]["wall_s"] / r[engine]["baseline"]["wall_s"]
        for r in rounds
        if engine in r
        and "wall_s" in r[engine].get("ours", {})
        and "wall_s" in r[engine].get("baseline", {})
    ]
    return {
        "ours_entries_per_s": pick("ours", "entries_per_s"),
        "baseline_entries_per_s": pick("baseline", "entries_per_s"),
        "ours_wall_s": pick("ours", "wall_s"),
        "baseline_wall_s": pick("baseline", "wall_s"),
        "ours_client_cpu_s": pick("ours", "client_cpu_s"),
        "ours_server_cpu_s": pick("ours", "server_cpu_s"),
        "baseline_client_cpu_s": pick("baseline", "client_cpu_s"),
        "baseline_server_cpu_s": pick("baseline", "server_cpu_s"),
        "ratio": stats_of(ratios) if ratios else None,
        "lost": pick("ours", "lost"),
        "duplicates": pick("ours", "duplicates"),
        **{
            key if key.startswith("lag_") else f"lag_{key}": pick("lag", key)
            for key in (
                "lag_p50_s",
                "lag_p99_s",
                "lag_max_s",
                "inserts_per_s",
                "rows_per_insert",
                "writer_rate",
                "lost",
                "duplicates",
                "retries",
            )
        },
    }


def markdown(summary: dict[str, Any], args: argparse.Namespace, dataset: Dataset) -> str:
    lines = [
        f"N = {dataset.n:,} entries ({dataset.raw_bytes / 2**20:,.0f} MiB of lines in"
        f" {dataset.files} files, {dataset.compressed_bytes / 2**20:,.0f} MiB gzipped),"
        f" {args.rounds} round(s); medians with (min-max).",
        "",
        "| engine | ours entries/s | baseline entries/s | ours ÷ baseline time (target ≤ 2)"
        " | lost / extra |",
        "|---|---|---|---|---|",
    ]
    for engine, s in summary.items():
        lost = "-"
        if s["lost"] is not None:
            lost = f"{s['lost']['max']:.0f} / {s['duplicates']['max']:.0f}"
        lines.append(
            f"| {engine} | {fmt(s['ours_entries_per_s'])} | {fmt(s['baseline_entries_per_s'])}"
            f" | {fmt(s['ratio'], 2)} | {lost} |"
        )
    lines += [
        "",
        "| engine | ours wall s | ours CPU s, client / server | baseline wall s"
        " | baseline CPU s, client / server |",
        "|---|---|---|---|---|",
    ]
    for engine, s in summary.items():
        if s["ours_wall_s"] is None or s["baseline_wall_s"] is None:
            continue
        lines.append(
            f"| {engine} | {fmt(s['ours_wall_s'], 1)}"
            f" | {fmt(s['ours_client_cpu_s'], 1)} / {fmt(s['ours_server_cpu_s'], 1)}"
            f" | {fmt(s['baseline_wall_s'], 1)}"
            f" | {fmt(s['baseline_client_cpu_s'], 1)} / {fmt(s['baseline_server_cpu_s'], 1)} |"
        )
    lines += [
        "",
        f"Lag, a writer at {args.rate:,.0f} entries/s for {args.seconds:g} s (defaults"
        " everywhere):",
        "",
        "| engine | lag p50 s | lag p99 s (target < 2) | lag max s | inserts/s | rows/insert"
        " | retries | lost / extra |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine, s in summary.items():
        if s["lag_p50_s"] is None:
            continue
        lost = f"{s['lag_lost']['max']:.0f} / {s['lag_duplicates']['max']:.0f}"
        lines.append(
            f"| {engine} | {fmt(s['lag_p50_s'], 2)} | {fmt(s['lag_p99_s'], 2)}"
            f" | {fmt(s['lag_max_s'], 2)} | {fmt(s['lag_inserts_per_s'], 2)}"
            f" | {fmt(s['lag_rows_per_insert'])} | {fmt(s['lag_retries'])} | {lost} |"
        )
    return "\n".join(lines)


def run_engine_round(
    central: Central,
    dataset: Dataset,
    work: Path,
    number: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    order = ("ours", "baseline") if number % 2 == 0 else ("baseline", "ours")
    for kind in order:
        table = f"{kind}_{number}"
        try:
            if kind == "ours":
                result[kind] = run_ours(central, dataset, work, table)
            else:
                result[kind] = run_baseline(central, dataset, table)
        except Exception as exc:  # a crash is reported, and the others still run
            result[kind] = {"error": f"{type(exc).__name__}: {exc}"}
        r = result[kind]
        shown = r.get("error") or (
            f"{r['entries_per_s']:,.0f} entries/s ({r['wall_s']:.1f} s), lost {r['lost']}"
        )
        print(f"round {number + 1} {central.name:<10} {kind:<8} {shown}", flush=True)
    if not args.no_lag:
        try:
            result["lag"] = anyio.run(
                measure_lag,
                central,
                work,
                f"lag_{number}",
                args.rate,
                args.seconds,
                args.rotate,
            )
        except Exception as exc:
            result["lag"] = {"error": f"{type(exc).__name__}: {exc}"}
        r = result["lag"]
        shown = r.get("error") or (
            f"p50 {r['lag_p50_s']:.2f} s, p99 {r['lag_p99_s']:.2f} s, max {r['lag_max_s']:.2f} s,"
            f" {r['inserts_per_s']:.2f} inserts/s, writer {r['writer_rate']:,.0f}/s,"
            f" lost {r['lost']}"
        )
        print(f"round {number + 1} {central.name:<10} lag      {shown}", flush=True)
    return result


def print_profile(engine: str, profile: dict[str, Any], top: int = 15) -> None:
    if "error" in profile:
        print(f"profile {engine}: {profile['error']}", flush=True)
        return
    print(
        f"profile {engine}: {profile['samples']:,} samples in {profile['wall_s']:.1f} s;"
        f" threads {profile['threads']}",
        flush=True,
    )
    for kind in ("self", "inclusive"):
        print(f"  top {kind}:")
        for name, share in profile[kind][:top]:
            print(f"    {share:5.1f} %  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries shipped")
    parser.add_argument("--rounds", type=int, default=2, help="0: only --profile")
    parser.add_argument("--rate", type=float, default=5_000.0, help="paced writer, entries/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="paced writer, seconds")
    parser.add_argument("--rotate", type=int, default=ROTATE, help="max_file_size, bytes")
    parser.add_argument("--quick", action="store_true", help="20,000 entries, 1 round, 5 s")
    parser.add_argument("--engines", nargs="*", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--no-lag", action="store_true", help="throughput only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then ship once more under py-spy per engine, and print the top costs",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the written entries here between runs (default: a temp dir)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="print the tables of saved results (and measure nothing)",
    )
    parser.add_argument("--paced-writer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-file-size", type=int, default=ROTATE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.paced_writer:
        written, elapsed = asyncio.run(
            write_paced(args.paced_writer, args.rate, args.seconds, args.max_file_size)
        )
        print(json.dumps({"written": written, "seconds": elapsed}))
        return 0
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        args.rounds, args.rate, args.seconds = (
            len(raw["rounds"]),
            raw["rate"],
            raw["seconds"],
        )
        info = raw["dataset"]
        dataset = Dataset(
            Path(), raw["n"], Path(), Path(), info["files"], info["compressed_bytes"],
            info["raw_bytes"], info["write_s"],
        )  # fmt: skip
        engines = list(raw["summary"])
        print(markdown({e: summarize(raw["rounds"], e) for e in engines}, args, dataset))
        for engine, profile in raw.get("profiles", {}).items():
            print_profile(engine, profile)
        return 0
    if args.quick:
        args.n, args.rounds, args.rate, args.seconds = 20_000, 1, 1_000.0, 5.0
        args.rotate = min(args.rotate, 1024 * 1024)

    with tempfile.TemporaryDirectory(prefix="bench-ship-") as tmp:
        work = Path(tmp)
        dataset = prepare(args.cache or work / "cache", args.n, args.rotate)
        rounds: list[dict[str, dict[str, Any]]] = [{} for _ in range(args.rounds)]
        versions: dict[str, str] = {}
        profiles: dict[str, dict[str, Any]] = {}
        for engine in args.engines:
            central = start_central(engine)
            try:
                versions[engine] = central.version()
                # The shipper creates the table: the baseline's tables are made like it.
                empty = work / f"empty-{engine}"
                empty.mkdir()
                done = timed(ship_command(empty, central.url("template"))).done
                if done.returncode != 0:
                    raise RuntimeError(f"creating the template table: {done.stderr}")
                for number in range(args.rounds):
                    rounds[number][engine] = run_engine_round(central, dataset, work, number, args)
                if args.profile:
                    args.out.mkdir(parents=True, exist_ok=True)
                    try:
                        profiles[engine] = profile_ours(central, dataset, work, args.out)
                    except Exception as exc:  # the measurements above are kept
                        profiles[engine] = {"error": f"{type(exc).__name__}: {exc}"}
                    print_profile(engine, profiles[engine])
            finally:
                central.stop()

    summary = {engine: summarize(rounds, engine) for engine in args.engines}
    table = markdown(summary, args, dataset)
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
        "versions": versions,
        "command": " ".join([Path(sys.executable).name, *(argv or sys.argv)]),
        "n": args.n,
        "rate": args.rate,
        "seconds": args.seconds,
        "rotate": args.rotate,
        "dataset": {
            "files": dataset.files,
            "compressed_bytes": dataset.compressed_bytes,
            "raw_bytes": dataset.raw_bytes,
            "write_s": dataset.write_s,
        },
        "rounds": rounds,
        "summary": summary,
        "profiles": profiles,
    }
    out_file = args.out / ("ship-quick.json" if args.quick else "ship-latest.json")
    out_file.write_text(json.dumps(raw, indent=2))
    print(f"\nraw results: {out_file}")

    failures = [
        f"{engine} {kind} (round {number + 1}): {r['error']}"
        for number, rnd in enumerate(rounds)
        for engine, kinds in rnd.items()
        for kind, r in kinds.items()
        if "error" in r
    ]
    failures += [
        f"{engine} {kind} (round {number + 1}): lost {r['lost']}, extra {r.get('duplicates', 0)}"
        for number, rnd in enumerate(rounds)
        for engine, kinds in rnd.items()
        for kind, r in kinds.items()
        if "error" not in r and (r["lost"] != 0 or r.get("duplicates", 0) != 0)
    ]
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
