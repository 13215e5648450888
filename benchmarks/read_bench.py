"""How fast the read side summarizes, against two floors, from one run.

    python benchmarks/read_bench.py                  # 1,000,000 entries
    python benchmarks/read_bench.py --quick          # 20,000: a smoke test
    python benchmarks/read_bench.py --out results.json

The files: N entries of a realistic mix (tool uses, performance timings, tokens,
agents, commands, hooks, errors, checkpoints, session starts and ends) in gzip files of
about 1 MiB, written by four simulated writer processes, generated once into a cache
directory (``--cache``). Two more directories hold every file twice and four times
(hard links, under the names of more writers), to show whether memory grows with the
directory.

Every measurement runs in a fresh subprocess, one after another, and reports its own
seconds and CPU seconds (start-up excluded) and peak RSS (its own, and its largest
worker's); those the ratios come from run in ``--rounds`` interleaved rounds, and the
median is kept:

- ``duckdb-raw``: DuckDB's own ``read_json`` over the files, count and quantiles of
  the durations: the floor the DuckDB engine is held to (target: >= 0.8 of it);
- ``python-floor``: gunzip and ``orjson.loads`` of every line, in one process, times
  the CPUs: the floor the Python engine with every core is held to (target: >= 0.5);
- ``python-1``, ``python-all``: ``summarize(workers=1)`` and ``summarize(workers=None)``;
- ``duckdb``: ``summarize_duckdb``.

Nothing here asserts a speed: it fails only if a reader loses an entry or the engines
disagree.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics import MetricEntry, MetricType, summarize
from analytics._policy import format_name

WRITERS = 4
FILE_BYTES = 1024 * 1024
GENERATOR = 2
"""Bumped when what :func:`generate` writes changes (the cache is keyed by it)."""

KINDS = (
    # (type, share in twentieths)
    (MetricType.TOOL_USE, 8),
    (MetricType.PERFORMANCE, 3),
    (MetricType.TOKEN_USAGE, 2),
    (MetricType.AGENT_EXECUTION, 1),
    (MetricType.COMMAND_EXECUTED, 1),
    (MetricType.HOOK_TRIGGERED, 1),
    (MetricType.ERROR_OCCURRED, 1),
    (MetricType.CHECKPOINT_CREATED, 1),
    (MetricType.SESSION_START, 1),
    (MetricType.SESSION_END, 1),
)
_CYCLE = [kind for kind, share in KINDS for _ in range(share)]


def entry(i: int, moment: datetime) -> MetricEntry:
    """The ``i``-th entry of the mix."""
    kind = _CYCLE[(i * 7) % len(_CYCLE)]
    session = f"session-{i // 500}"
    duration = (i * 37 % 10_000) * 0.25
    ok = i % 13 != 0
    data: dict[str, Any]
    if kind is MetricType.TOOL_USE:
        data = {
            "tool_name": ("read_file", "grep", "edit", "bash", "write", "glob", "task")[i % 7],
            "success": ok,
            "duration_ms": duration,
            "argument": "q" * (40 + i % 120),
        }
    elif kind is MetricType.PERFORMANCE:
        data = {"operation": f"GET /api/v{i % 3}/items", "duration_ms": duration, "success": ok}
    elif kind is MetricType.TOKEN_USAGE:
        data = {
            "model": ("opus", "sonnet", "haiku")[i % 3],
            "input_tokens": i % 5000,
            "output_tokens": i % 700,
        }
    elif kind is MetricType.AGENT_EXECUTION:
        data = {"agent_name": f"agent-{i % 5}", "duration_ms": duration * 10, "success": ok}
    elif kind is MetricType.COMMAND_EXECUTED:
        data = {"command": ("make", "pytest", "git status")[i % 3], "exit_code": i % 4 // 3}
        data["duration_ms"] = duration
    elif kind is MetricType.HOOK_TRIGGERED:
        data = {"hook_name": f"hook-{i % 4}", "duration_ms": duration / 10, "success": True}
    elif kind is MetricType.ERROR_OCCURRED:
        data = {"error_type": f"E{i % 6}", "error_message": f"failed at step {i}"}
    elif kind is MetricType.CHECKPOINT_CREATED:
        data = {"files_changed": i % 17}
    elif kind is MetricType.SESSION_START:
        data = {"cwd": "/home/user/project"}
    else:
        data = {"duration_seconds": (i % 3600) * 1.5}
    return MetricEntry(
        type=kind,
        timestamp=moment,
        session_id=session,
        user_id=f"user-{i % 11}",
        data=data,
        metadata={"host": "bench", "version": "1.0"},
    )


def generate(directory: Path, n: int) -> None:
    """``n`` entries over about a week, in ``.gz`` files of ``WRITERS`` writers."""
    metrics = directory / "metrics"
    metrics.mkdir(parents=True)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    step = timedelta(days=7) / max(n, 1)
    for w in range(WRITERS):
        lines: list[bytes] = []
        size = 0
        file_start = start
        for i in range(w, n, WRITERS):
            moment = start + step * i
            if not lines:
                file_start = moment
            line = entry(i, moment).to_json_line()
            lines.append(line)
            size += len(line)
            if size >= FILE_BYTES:
                _flush(metrics, file_start, 1000 + w, lines)
                lines, size = [], 0
        if lines:
            _flush(metrics, file_start, 1000 + w, lines)


def _flush(metrics: Path, created: datetime, pid: int, lines: list[bytes]) -> None:
    name = format_name("metrics", int(created.timestamp() * 1e9), pid, f"{pid:08x}")
    (metrics / (name + ".gz")).write_bytes(gzip.compress(b"".join(lines), 6))


def doubled(source: Path, target: Path, marker: str) -> None:
    """``target``: every file of ``source`` twice (hard links), the copies named as
    writers of other process ids (``marker`` put before each)."""
    metrics = target / "metrics"
    metrics.mkdir(parents=True)
    for path in sorted((source / "metrics").iterdir()):
        os.link(path, metrics / path.name)
        copy = path.name.replace("_p", f"_p{marker}", 1)
        if copy == path.name:
            raise SystemExit(f"unexpected file name {path.name}")
        os.link(path, metrics / copy)


def cached(cache: Path, n: int) -> list[Path]:
    """The directories of ``n``, ``2 n`` and ``4 n`` entries, made if not cached."""
    one = cache / f"g{GENERATOR}-{n}"
    if not (one / "done").exists():
        if one.exists():
            _remove(one)
        started = time.perf_counter()
        generate(one, n)
        (one / "done").write_text("")
        print(f"generated {n:,} entries in {time.perf_counter() - started:.1f}s into {one}")
    directories = [one]
    for times in (2, 4):
        bigger = cache / f"g{GENERATOR}-{n}-x{times}"
        if not (bigger / "done").exists():
            if bigger.exists():
                _remove(bigger)
            doubled(directories[-1], bigger, str(times))
            (bigger / "done").write_text("")
        directories.append(bigger)
    return directories


def _remove(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    directory.rmdir()


# -- one measurement, in its own process ------------------------------------------------


def _files(directory: Path) -> list[str]:
    return sorted(str(p) for p in (directory / "metrics").iterdir() if p.name.endswith(".gz"))


def measure(what: str, directory: Path) -> dict[str, Any]:
    """Run one reader over ``directory``; its entries, seconds and result digest."""
    before = _cpu()
    started = time.perf_counter()
    digest: Any = None
    if what == "python-floor":
        try:
            loads = importlib.import_module("orjson").loads  # the floor is defined with it
        except ModuleNotFoundError:  # a smoke test without it: json, named as such
            loads = json.loads
            digest = "json.loads (orjson is not installed: not the floor)"
        count = 0
        for name in _files(directory):
            with gzip.open(name, "rb") as f:
                for line in f:
                    loads(line)
                    count += 1
    elif what == "duckdb-raw":
        import duckdb

        con = duckdb.connect()
        row = con.execute(
            "SELECT count(*), quantile_disc(TRY_CAST(data->>'duration_ms' AS DOUBLE),"
            " [0.5, 0.95, 0.99]) FROM read_json(?, format='newline_delimited',"
            " columns={'id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'type': 'VARCHAR',"
            " 'session_id': 'VARCHAR', 'user_id': 'VARCHAR', 'data': 'JSON',"
            " 'metadata': 'JSON'})",
            [_files(directory)],
        ).fetchone()
        assert row is not None
        count, digest = row[0], row[1]
    elif what in ("python-1", "python-all"):
        summary = summarize(directory, workers=1 if what == "python-1" else None)
        count, digest = summary.entries, summary.model_dump(mode="json")
    elif what == "duckdb":
        from analytics import summarize_duckdb

        summary = summarize_duckdb(directory)
        count, digest = summary.entries, summary.model_dump(mode="json")
    else:
        raise SystemExit(f"unknown measurement {what!r}")
    seconds = time.perf_counter() - started
    cpu = _cpu() - before
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "what": what,
        "entries": count,
        "seconds": seconds,
        "entries_per_s": count / seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": own / 1024,
        "peak_rss_worker_mib": workers / 1024,
        "digest": digest,
    }


def _cpu() -> float:
    """CPU seconds of this process (every thread) and of its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run_one(what: str, directory: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", what, str(directory)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _checked(label: str, directory: Path, expected: int) -> dict[str, Any]:
    result = run_one(label.split()[0], directory)
    if result["entries"] != expected:
        raise SystemExit(f"{label}: {result['entries']:,} entries, expected {expected:,}")
    return result


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two summaries agree, but where the engines are known to differ: past
    ``EXACT_LIMIT`` values per series the Python engine's percentiles come from its 1%
    sketch while SQL's are exact, and a mean summed in another order."""
    if a["percentiles_exact"] and b["percentiles_exact"]:
        skip = {"sessions"}
    else:
        skip = {"sessions", "tools", "operations", "agents", "commands", "hooks"}
        skip.add("percentiles_exact")
    return {k: v for k, v in a.items() if k not in skip} == {
        k: v for k, v in b.items() if k not in skip
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 entries: a smoke test")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "analytics-read-bench",
    )
    parser.add_argument("--rounds", type=int, default=3, help="of the 1x measurements")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--measure", nargs=2, metavar=("WHAT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]))))
        return 0
    n = 20_000 if args.quick else args.n
    one, two, four = cached(args.cache, n)
    cpus = os.cpu_count() or 1
    results: dict[str, dict[str, Any]] = {}
    # The measurements the ratios come from run in interleaved rounds (the median is
    # kept: the machine may be shared); memory at twice the directory once.
    rounds = 1 if args.quick else args.rounds
    plan = [(label, one) for label in ("duckdb-raw", "python-floor", "python-1", "python-all")]
    plan.append(("duckdb", one))
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for label, directory in plan:
            runs.setdefault(label, []).append(_checked(label, directory, n))
    for times, directory in ((2, two), (4, four)):
        for engine in ("python-1", "python-all", "duckdb"):
            label = f"{engine} x{times}"
            runs[label] = [_checked(label, directory, times * n)]
    for label, measured in runs.items():
        measured.sort(key=lambda result: result["seconds"])
        result = results[label] = measured[len(measured) // 2]
        result["seconds_all_rounds"] = [m["seconds"] for m in measured]
        extra = ""
        if result["peak_rss_worker_mib"] > 1 and label.startswith("python-all"):
            extra = f", largest worker {result['peak_rss_worker_mib']:.0f} MiB"
        spread = ""
        if len(measured) > 1:
            spread = f" ({measured[0]['seconds']:.2f}-{measured[-1]['seconds']:.2f})"
        print(
            f"{label:14} {result['entries']:>10,} entries in {result['seconds']:6.2f}s{spread} ="
            f" {result['entries_per_s']:>10,.0f} entries/s; CPU {result['cpu_seconds']:.2f}s;"
            f" peak RSS {result['peak_rss_mib']:.0f} MiB{extra}"
        )
    python_floor = results["python-floor"]["entries_per_s"] * cpus
    duckdb_floor = results["duckdb-raw"]["entries_per_s"]
    python_ratio = results["python-all"]["entries_per_s"] / python_floor
    duckdb_ratio = results["duckdb"]["entries_per_s"] / duckdb_floor
    if results["python-floor"]["digest"]:
        print(f"Python floor measured with {results['python-floor']['digest']}")
    print(
        f"Python floor: {results['python-floor']['entries_per_s']:,.0f}/s per core x {cpus}"
        f" cores = {python_floor:,.0f}/s; python engine, every core:"
        f" {python_ratio:.2f} of it (target >= 0.50)"
    )
    print(
        f"DuckDB floor: {duckdb_floor:,.0f}/s; duckdb engine: {duckdb_ratio:.2f} of it"
        " (target >= 0.80)"
    )
    digests = {label: results[label].pop("digest") for label in results}
    same_python = digests["python-1"] == digests["python-all"]
    same_engines = _same(digests["python-1"], digests["duckdb"])
    print(f"same report: workers=1 and None: {same_python}; python and duckdb: {same_engines}")
    for label in ("python-1", "python-all", "duckdb"):
        peaks = [
            max(result["peak_rss_mib"], result["peak_rss_worker_mib"])
            for result in (results[label], results[label + " x2"], results[label + " x4"])
        ]
        print(
            f"memory, {label} (largest process): {peaks[0]:.0f} / {peaks[1]:.0f} /"
            f" {peaks[2]:.0f} MiB at 1x / 2x / 4x the directory"
        )
    if args.out:
        record: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "entries": n,
            "cpus": cpus,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "load_average": os.getloadavg(),
            "floors": {
                "python_per_core": python_floor / cpus,
                "python": python_floor,
                "duckdb": duckdb_floor,
            },
            "ratios": {"python_all_cores": python_ratio, "duckdb": duckdb_ratio},
            "same_report": {"workers": same_python, "engines": same_engines},
            "results": results,
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    if not (same_python and same_engines):
        print("the reports differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
