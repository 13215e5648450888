"""The command line: ``python -m analytics demo | report | tail | export | files``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import gzip
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._config import parse_size
from ._facade import MetricsWriter
from ._models import MetricEntry, MetricType
from ._reader import (
    data_files,
    iter_entries,
    resolve_metrics_dir,
    scan_directory,
    scan_file,
)
from ._report import FORMATS, render
from ._summary import summarize
from ._writer import JSONLWriter

_TOOLS = ("read_file", "grep", "edit", "bash", "web_search", "list_dir")
_MODELS = ("small-model", "large-model")


async def _session(metrics: MetricsWriter, number: int, until: float, rng: random.Random) -> None:
    session_id = f"demo-session-{number:04d}"
    user_id = f"user-{number % 7}"
    started = time.monotonic()
    await metrics.track_session_start(session_id, user_id=user_id, model=rng.choice(_MODELS))
    tokens = 0
    while time.monotonic() < until:
        tool = rng.choice(_TOOLS)
        async with metrics.time_tool(session_id, tool, argument="x" * rng.randint(10, 120)):
            await asyncio.sleep(rng.uniform(0.0, 0.004))
        if rng.random() < 0.2:
            used_in, used_out = rng.randint(200, 4000), rng.randint(50, 800)
            tokens += used_in + used_out
            await metrics.track_token_usage(session_id, rng.choice(_MODELS), used_in, used_out)
        if rng.random() < 0.02:
            await metrics.track_error(session_id, "ToolTimeout", f"{tool} took too long")
    await metrics.track_session_end(
        session_id,
        user_id=user_id,
        duration_seconds=round(time.monotonic() - started, 3),
        token_count=tokens,
    )


async def _simulate(
    directory: Path, seconds: float, sessions: int, max_file_size: int
) -> tuple[JSONLWriter, int]:
    """Run the simulated service; return the closed writer and how many sessions ran."""
    rng = random.Random(2026)
    until = time.monotonic() + seconds
    async with JSONLWriter(
        directory, max_file_size=max_file_size, max_files=1000, flush_interval=0.25
    ) as writer:
        metrics = MetricsWriter(writer)
        await asyncio.gather(*(_session(metrics, n, until, rng) for n in range(sessions)))
    return writer, sessions


def _demo(directory: Path, seconds: float, sessions: int, max_file_size: int) -> int:
    writer, sessions = asyncio.run(_simulate(directory, seconds, sessions, max_file_size))
    # The loop is done: reading the files back here blocks nobody.
    stats = writer.stats()
    scan = scan_directory(writer.metrics_dir)
    files = sorted(p for p in writer.metrics_dir.iterdir() if p.is_file())
    compressed = [p for p in files if p.name.endswith(".jsonl.gz")]
    plain = [p for p in files if p.name.endswith(".jsonl")]
    total_bytes = sum(p.stat().st_size for p in files)
    print(f"Simulated {sessions} concurrent sessions for {seconds:g}s into {writer.metrics_dir}")
    print(f"  entries written : {stats.entries_written:,}")
    print(f"  entries on disk : {len(scan.entries):,} (read back, {scan.bad_lines} bad lines)")
    print(f"  bytes written   : {stats.bytes_written:,} uncompressed")
    print(
        f"  files           : {len(files)} ({len(compressed)} compressed .jsonl.gz,"
        f" {len(plain)} .jsonl)"
    )
    print(f"  bytes on disk   : {total_bytes:,}")
    print(f"  rotations       : {stats.rotations}, compressions: {stats.compressions}")
    lost = stats.entries_written - len(scan.entries)
    print("  lost            : none" if lost == 0 else f"  lost            : {lost}")
    return 0 if lost == 0 else 1


def _when(text: str) -> datetime:
    """Parse ``--since``/``--until``: ISO-8601; a naive time is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time (for example 2026-11-23T10:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _type(text: str) -> MetricType:
    try:
        return MetricType(text)
    except ValueError:
        choices = ", ".join(t.value for t in MetricType)
        raise argparse.ArgumentTypeError(f"unknown type {text!r}; use one of {choices}") from None


def _add_filters(parser: argparse.ArgumentParser, *, session: bool = True) -> None:
    parser.add_argument("--since", type=_when, help="only entries at or after this time")
    parser.add_argument("--until", type=_when, help="only entries before this time")
    parser.add_argument(
        "--type", type=_type, action="append", dest="types", help="only this type (repeatable)"
    )
    if session:
        parser.add_argument("--session", help="only this session id")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "since": args.since,
        "until": args.until,
        "types": args.types,
        "session_id": getattr(args, "session", None),
    }


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="simulate a busy asyncio service writing analytics, then summarize"
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("analytics-demo"),
        help="where to write (default: ./analytics-demo)",
    )
    demo.add_argument("--seconds", type=float, default=3.0, help="how long to run (default: 3)")
    demo.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default: 50)")
    demo.add_argument(
        "--max-file-size",
        type=parse_size,
        default="256 KiB",
        help="rotate at this size (default: 256 KiB)",
    )

    report = commands.add_parser("report", help="summarize a directory")
    report.add_argument("dir", type=Path)
    _add_filters(report)
    report.add_argument("--format", choices=FORMATS, default="text")
    report.add_argument(
        "--engine",
        choices=("python", "duckdb"),
        default="python",
        help="duckdb: compute the report in SQL (pip install 'asyncio-jsonl-analytics[duckdb]')",
    )
    report.add_argument("--output", type=Path, help="write here instead of stdout")

    tail = commands.add_parser("tail", help="print entries as they are written")
    tail.add_argument("dir", type=Path)
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new entries")
    tail.add_argument("--type", type=_type, action="append", dest="types")
    tail.add_argument(
        "--lines",
        "-n",
        type=int,
        default=10,
        help="how many existing entries to print first (default: 10)",
    )
    tail.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    tail.add_argument("--max-seconds", type=float, default=None, help=argparse.SUPPRESS)

    export = commands.add_parser("export", help="write a filtered, merged copy")
    export.add_argument("dir", type=Path)
    export.add_argument("out", type=Path)
    export.add_argument(
        "--format",
        choices=("jsonl", "csv", "parquet"),
        default="jsonl",
        help="parquet needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'",
    )
    _add_filters(export)

    files = commands.add_parser("files", help="list the files, their sizes and time spans")
    files.add_argument("dir", type=Path)
    return parser


class _Progress:
    """Counts entries on stderr, only when stderr is a terminal."""

    EVERY = 50_000

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self._shown = 0

    def tick(self, entries: Iterable[MetricEntry]) -> Iterator[MetricEntry]:
        for e in entries:
            self.count += 1
            if self.count % self.EVERY == 0:
                self.show(self.count)
            yield e
        self.done()

    def show(self, count: int) -> None:
        self.count = count
        if self.enabled and count - self._shown >= self.EVERY:
            self._shown = count
            print(f"\r{count:,} entries read", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled and self._shown:
            print(file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    if args.engine == "duckdb":
        from ._duckdb import summarize_duckdb

        try:
            summary = summarize_duckdb(args.dir, **_filters(args))
        except ModuleNotFoundError as exc:
            raise _CliError(str(exc)) from None
    else:
        progress = _Progress()
        summary = summarize(args.dir, progress=progress.show, workers=None, **_filters(args))
        progress.done()
    if summary.entries == 0:
        raise _CliError(f"no entries found in {args.dir}")
    text = render(summary, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.format == "parquet":
        return _export_parquet(args)
    count = 0
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        writer = None
        for e in _Progress().tick(iter_entries(args.dir, **_filters(args))):
            if args.format == "jsonl":
                out.write(e.to_json_line().decode())
            else:
                row = e.to_dict()
                if writer is None:
                    writer = csv.writer(out)
                    writer.writerow(
                        ["id", "timestamp", "type", "session_id", "user_id", "data", "metadata"]
                    )
                writer.writerow(
                    [
                        row["id"],
                        row["timestamp"],
                        row["type"],
                        row["session_id"],
                        row["user_id"],
                        json.dumps(row["data"]),
                        json.dumps(row["metadata"]),
                    ]
                )
            count += 1
    if count == 0:
        args.out.unlink()
        raise _CliError(f"no entries found in {args.dir}")
    print(f"exported {count:,} entries to {args.out}", file=sys.stderr)
    return 0


def _export_parquet(args: argparse.Namespace) -> int:
    """The merged, filtered entries go to a JSON Lines file next to the output, which
    DuckDB then turns into Parquet."""
    try:
        import duckdb  # noqa: F401 - fail before reading anything

        from ._duckdb import write_parquet
    except ModuleNotFoundError:
        raise _CliError(
            "--format parquet needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'"
        ) from None
    staging = args.out.with_name(args.out.name + ".jsonl.tmp")
    count = 0
    try:
        with open(staging, "wb") as out:
            for e in _Progress().tick(iter_entries(args.dir, **_filters(args))):
                out.write(e.to_json_line())
                count += 1
        if count == 0:
            raise _CliError(f"no entries found in {args.dir}")
        write_parquet(staging, args.out)
    finally:
        staging.unlink(missing_ok=True)
    print(f"exported {count:,} entries to {args.out}", file=sys.stderr)
    return 0


def _files(args: argparse.Namespace) -> int:
    directory = resolve_metrics_dir(args.dir)
    rows = []
    total_size = total_raw = 0
    for path in data_files(directory):
        size = path.stat().st_size
        raw = _uncompressed_size(path)
        entries = scan_file(path).entries
        first = min((e.timestamp for e in entries), default=None)
        last = max((e.timestamp for e in entries), default=None)
        ratio = f"{raw / size:.1f}x" if path.name.endswith(".gz") and size else "-"
        span = f"{first:%Y-%m-%d %H:%M:%S} .. {last:%H:%M:%S}" if first and last else "-"
        rows.append((path.name, f"{size:,}", ratio, f"{len(entries):,}", span))
        total_size += size
        total_raw += raw
    if not rows:
        raise _CliError(f"no analytics files in {directory}")
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    heads = ("file", "bytes", "ratio", "entries", "span (UTC)")
    widths = [max(w, len(h)) for w, h in zip(widths, heads, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    ratio = f"{total_raw / total_size:.1f}x" if total_size else "-"
    print(
        f"{len(rows)} files, {total_size:,} bytes on disk, {total_raw:,} bytes of JSON"
        f" ({ratio} overall)"
    )
    return 0


def _uncompressed_size(path: Path) -> int:
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    total = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            total += len(chunk)
    return total


def _tail(args: argparse.Namespace) -> int:
    directory = resolve_metrics_dir(args.dir)
    wanted = set(args.types) if args.types else None

    def show(e: MetricEntry) -> None:
        if wanted is None or e.type in wanted:
            sys.stdout.write(e.to_json_line().decode())

    existing = [e for e in iter_entries(directory) if wanted is None or e.type in wanted]
    for e in existing[-args.lines :] if args.lines > 0 else []:
        show(e)
    sys.stdout.flush()
    if not args.follow:
        return 0
    seen = {e.id for e in existing}
    follower = _Follower(directory, seen)
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    while deadline is None or time.monotonic() < deadline:
        for e in follower.poll():
            show(e)
        sys.stdout.flush()
        time.sleep(args.interval)
    return 0


class _Follower:
    """Finds entries written since the last poll, across rotations and compressions.

    Active files are read from the offset reached last time; a file that was rotated
    and compressed meanwhile is finished from its ``.gz``, skipping what was read.
    """

    def __init__(self, directory: Path, seen: set[str]) -> None:
        self.directory = directory
        self.offsets: dict[str, int] = {}
        for path in data_files(directory):
            if path.name.endswith(".jsonl"):
                self.offsets[path.name] = path.stat().st_size
            else:
                self.offsets[path.name[: -len(".gz")]] = -1  # done
        self.seen = seen

    def poll(self) -> list[MetricEntry]:
        found: list[MetricEntry] = []
        for path in data_files(self.directory):
            stem = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
            offset = self.offsets.get(stem, 0)
            if offset < 0:
                continue
            try:
                data = (
                    gzip.decompress(path.read_bytes())
                    if path.name.endswith(".gz")
                    else (path.read_bytes())
                )
            except (OSError, EOFError):
                continue  # mid-compression or gone: next poll
            end = data.rfind(b"\n") + 1
            for line in data[offset:end].splitlines():
                try:
                    e = MetricEntry.from_json_line(line)
                except ValueError:
                    continue
                if e.id not in self.seen:
                    self.seen.add(e.id)
                    found.append(e)
            self.offsets[stem] = -1 if path.name.endswith(".gz") else end
        found.sort(key=lambda e: e.timestamp)
        return found


class _CliError(Exception):
    """A problem to report in one line, with exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            if args.seconds <= 0 or args.sessions <= 0:
                parser.error("--seconds and --sessions must be positive")
            return _demo(args.dir, args.seconds, args.sessions, args.max_file_size)
        handlers = {"report": _report, "export": _export, "files": _files, "tail": _tail}
        # A short-lived process that builds millions of small acyclic objects: the
        # cyclic collector would only walk them over and over (it costs a third of the
        # reading time). Reference counting still frees every entry.
        gc.disable()
        return handlers[args.command](args)
    except _CliError as exc:
        print(f"analytics: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"analytics: {exc.strerror or 'not found'}: {exc.filename or exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"analytics: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
