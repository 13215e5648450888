"""How fast the Python engine reads entries back.

    python benchmarks/read_bench.py            # 1,000,000 entries
    python benchmarks/read_bench.py --n 200000

Writes N tool_use entries into gzip-compressed 1 MiB files of four simulated writer
processes (so the k-way merge has work to do), then times ``iter_entries`` (every
entry parsed, validated and merged in timestamp order) and ``summarize``.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics import MetricEntry, MetricType, iter_entries, summarize
from analytics._policy import format_name

WRITERS = 4
PER_FILE = 2700  # about 1 MiB of ~390-byte lines


def generate(directory: Path, n: int) -> None:
    metrics = directory / "metrics"
    metrics.mkdir(parents=True)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for w in range(WRITERS):
        lines: list[bytes] = []
        file_start = start
        for i in range(w, n, WRITERS):
            moment = start + timedelta(milliseconds=i)
            if not lines:
                file_start = moment
            lines.append(
                MetricEntry(
                    type=MetricType.TOOL_USE,
                    timestamp=moment,
                    session_id=f"session-{i % 97}",
                    data={
                        "tool_name": f"tool-{i % 7}",
                        "success": i % 13 != 0,
                        "duration_ms": (i % 1000) * 0.5,
                        "argument": "q" * 120,
                    },
                ).to_json_line()
            )
            if len(lines) == PER_FILE:
                _flush(metrics, file_start, w, lines)
                lines = []
        if lines:
            _flush(metrics, file_start, w, lines)


def _flush(metrics: Path, created: datetime, writer: int, lines: list[bytes]) -> None:
    name = format_name("metrics", int(created.timestamp() * 1e9), 1000 + writer, f"0000000{writer}")
    (metrics / (name + ".gz")).write_bytes(gzip.compress(b"".join(lines), 6))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        generate(base, args.n)
        print(f"generated {args.n:,} entries in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        count = sum(1 for _ in iter_entries(base))
        read_s = time.perf_counter() - started
        assert count == args.n, count
        print(f"iter_entries: {count:,} entries in {read_s:.2f}s = {count / read_s:,.0f} entries/s")
        started = time.perf_counter()
        summary = summarize(base)
        summary_s = time.perf_counter() - started
        assert summary.entries == args.n
        print(
            f"summarize:    {args.n:,} entries in {summary_s:.2f}s ="
            f" {args.n / summary_s:,.0f} entries/s (python engine)"
        )
        started = time.perf_counter()
        in_processes = summarize(base, workers=None)
        parallel_s = time.perf_counter() - started
        assert in_processes.entries == args.n
        print(
            f"summarize:    {args.n:,} entries in {parallel_s:.2f}s ="
            f" {args.n / parallel_s:,.0f} entries/s (python engine, workers=None:"
            f" one process per CPU; same report: {in_processes == summary})"
        )
        for engine in ("python", "duckdb"):
            command = [sys.executable, "-m", "analytics", "report", str(base)]
            command += ["--engine", engine, "--format", "json"]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            cli_s = time.perf_counter() - started
            if done.returncode != 0:
                print(f"report --engine {engine}: failed: {done.stderr.strip()[-200:]}")
                continue
            print(
                f"report:       {args.n:,} entries in {cli_s:.2f}s ="
                f" {args.n / cli_s:,.0f} entries/s (`python -m analytics report"
                f" --engine {engine}`, start-up included)"
            )
        try:
            from analytics._read.duckdb_engine import summarize_duckdb
        except ImportError:  # pragma: no cover
            print("duckdb engine: not installed (pip install 'analytics[duckdb]')")
            return 0
        started = time.perf_counter()
        in_sql = summarize_duckdb(base)
        sql_s = time.perf_counter() - started
        assert in_sql.entries == args.n
        # Sessions hold a mean (summed in a different order) and, past 100,000 values
        # per tool, the Python engine's percentiles are sketched (within 1%).
        skip = (
            {"sessions"}
            if summary.percentiles_exact
            else {"sessions", "tools", "percentiles_exact"}
        )
        same = in_sql.model_dump(exclude=skip) == summary.model_dump(exclude=skip)
        print(
            f"summarize:    {args.n:,} entries in {sql_s:.2f}s ="
            f" {args.n / sql_s:,.0f} entries/s (duckdb engine; same report: {same})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
