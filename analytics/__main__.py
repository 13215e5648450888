"""The command line: python -m analytics demo | report | tail | export | files."""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import gzip
import io
import json
import logging
import os
import random
import re
import signal
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from ._config import WriterConfig, parse_duration, parse_size
from ._exceptions import AnalyticsError
from ._facade import MetricsWriter
from ._models import MetricEntry, MetricType
from ._reader import (
    DirectoryTail,
    data_files,
    iter_entries,
    resolve_metrics_dir,
    scan_directory,
    scan_file,
)
from ._report import FORMATS, render
from ._summary import summarize
from ._writer import JSONLWriter

DISTRIBUTION = "asyncio-jsonl-analytics"

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
        fails = rng.random() < 0.02
        try:
            # A tool that fails is recorded as a failure (success false, error_type),
            # and its error once more as an error_occurred entry.
            async with metrics.time_tool(session_id, tool, argument="x" * rng.randint(10, 120)):
                await asyncio.sleep(rng.uniform(0.0, 0.004))
                if fails:
                    raise ToolTimeout(f"{tool} took too long")
        except ToolTimeout as exc:
            await metrics.track_error(session_id, "ToolTimeout", str(exc), tool_name=tool)
        if rng.random() < 0.2:
            used_in, used_out = rng.randint(200, 4000), rng.randint(50, 800)
            tokens += used_in + used_out
            await metrics.track_token_usage(session_id, rng.choice(_MODELS), used_in, used_out)
    await metrics.track_session_end(
        session_id,
        user_id=user_id,
        duration_seconds=round(time.monotonic() - started, 3),
        token_count=tokens,
    )


class ToolTimeout(Exception):
    """The demo's simulated tool failure."""


async def _simulate(
    directory: Path, seconds: float, sessions: int, max_file_size: int
) -> tuple[JSONLWriter, int]:
    """Run the simulated service; return the closed writer and how many sessions ran."""
    rng = random.Random(2026)
    until = time.monotonic() + seconds
    async with JSONLWriter(
        directory, max_file_size=max_file_size, max_files=1_000_000, flush_interval=0.25
    ) as writer:
        metrics = MetricsWriter(writer)
        await asyncio.gather(*(_session(metrics, n, until, rng) for n in range(sessions)))
    return writer, sessions


def _demo(directory: Path, seconds: float, sessions: int, max_file_size: int) -> int:
    # The demo compares what it wrote with what it reads back: files of an earlier
    # run would be counted as its own. It wants a directory without any.
    for place in (directory, directory / "metrics"):
        if place.is_dir() and data_files(place):
            raise _CliError(
                f"{place} already holds analytics files (an earlier run?): remove them,"
                " or give another --dir"
            )
    if directory.exists() and not directory.is_dir():
        raise _CliError(f"{directory} is not a directory")
    writer, sessions = asyncio.run(_simulate(directory, seconds, sessions, max_file_size))
    # The loop is done: reading the files back here blocks nobody.
    stats = writer.stats()
    scan = scan_directory(writer.metrics_dir)
    files = data_files(writer.metrics_dir)
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
    if lost == 0:
        print("  lost            : none")
        return 0
    if lost > 0:
        print(f"  lost            : {lost:,}")
    else:  # another process wrote into the directory meanwhile
        print(f"  lost            : none, but {-lost:,} entries more than written")
    return 1


_RELATIVE = re.compile(r"^\s*\d+(?:\.\d+)?\s*[A-Za-z]+\s*$")


def _when(text: str) -> datetime:
    """Parse ``--since``/``--until``: an ISO-8601 time (a naive one is taken as UTC),
    or a duration before now (``30m``, ``1h``, ``7d``)."""
    if _RELATIVE.match(text):
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time or a duration before now"
            " (for example 2026-11-23T10:00:00Z, 30m, 1h or 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _type(text: str) -> MetricType:
    try:
        return MetricType(text)
    except ValueError:
        choices = ", ".join(t.value for t in MetricType)
        raise argparse.ArgumentTypeError(f"unknown type {text!r}; use one of {choices}") from None


def _size(text: str) -> int:
    """A positive size, parsed (and refused) as the library does."""
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a size must be positive")
    return size


def _seconds(text: str) -> float:
    """A positive duration, parsed (and refused) as the library does."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be positive")
    return seconds


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return number


def _positive_count(text: str) -> int:
    number = _count(text)
    if number == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return number


def _prefix(text: str) -> str:
    """A file name prefix, checked as ``WriterConfig.filename_prefix`` is."""
    try:
        WriterConfig(filename_prefix=text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name prefix: letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        ) from None
    return text


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="the writer's base path, or its metrics directory")
    parser.add_argument(
        "--prefix",
        type=_prefix,
        default="metrics",
        help="the writer's filename_prefix (default: metrics)",
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=_when,
        help="only entries at or after this time: ISO-8601 (UTC if no offset)"
        " or a duration before now such as 30m, 1h, 7d",
    )
    parser.add_argument(
        "--until", type=_when, help="only entries before this time (same forms as --since)"
    )
    _add_types(parser)
    parser.add_argument("--session", help="only entries of this session id")


def _add_types(parser: argparse.ArgumentParser) -> None:
    choices = ", ".join(t.value for t in MetricType)
    parser.add_argument(
        "--type",
        type=_type,
        action="append",
        dest="types",
        metavar="TYPE",
        help=f"only entries of this type (repeatable): {choices}",
    )


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "since": args.since,
        "until": args.until,
        "types": args.types,
        "session_id": args.session,
        "prefix": args.prefix,
    }


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (exit status 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


_DESCRIPTION = (
    "Summarize, follow, export and list the JSON Lines files that asyncio-jsonl-analytics"
    " writes, or run a demo that writes some."
)


def _version() -> str:
    try:
        return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return f"{DISTRIBUTION} (version unknown: not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The parser of :func:`main`: every argument has plain-text help."""
    parser = _Parser(prog="analytics", description=_DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=_version(), help="print the version and exit"
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (analytics COMMAND --help tells more)",
    )
    demo = commands.add_parser(
        "demo",
        help="simulate a busy asyncio service writing analytics, then summarize",
        description="Simulate a busy asyncio service writing analytics into a new"
        " directory, read it back and summarize.",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("analytics-demo"),
        help="where to write; must not hold analytics files yet (default: ./analytics-demo)",
    )
    demo.add_argument(
        "--seconds",
        type=_seconds,
        default=3.0,
        help="how long to run: seconds, or a duration such as 500ms or 1m (default: 3)",
    )
    demo.add_argument(
        "--sessions", type=_positive_count, default=50, help="concurrent sessions (default: 50)"
    )
    demo.add_argument(
        "--max-file-size",
        type=_size,
        default="256 KiB",
        help="rotate at this size, such as 64 KiB or 1 MB (default: 256 KiB)",
    )

    report = commands.add_parser(
        "report",
        help="summarize a directory",
        description="Summarize the entries of a directory: counts, tools, sessions,"
        " errors, tokens and a timeline.",
    )
    _add_dir(report)
    _add_filters(report)
    report.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    report.add_argument(
        "--engine",
        choices=("python", "duckdb"),
        default="python",
        help="duckdb: compute the report in SQL (pip install 'asyncio-jsonl-analytics[duckdb]')",
    )
    report.add_argument("--output", type=Path, help="write here instead of stdout")

    tail = commands.add_parser(
        "tail",
        help="print the last entries, and with --follow the new ones as they are written",
        description="Print the last entries as JSON lines; with --follow, keep printing"
        " new entries as they are written, each exactly once, across rotations and"
        " compressions, until interrupted (Ctrl-C or SIGTERM, exit status 0).",
    )
    _add_dir(tail)
    tail.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new entries until stopped"
    )
    _add_types(tail)
    tail.add_argument(
        "--lines",
        "-n",
        type=_count,
        default=10,
        help="how many existing entries to print first (default: 10)",
    )
    tail.add_argument(
        "--interval",
        type=_seconds,
        default=0.25,
        help="with --follow, how often to look for new entries (default: 0.25s)",
    )
    tail.add_argument(
        "--max-seconds",
        type=_seconds,
        default=None,
        help="with --follow, stop after this long (default: never)",
    )

    export = commands.add_parser(
        "export",
        help="write a filtered, merged, chronological copy",
        description="Write a filtered, merged, chronological copy of the entries. The"
        " format comes from the extension of OUT (.jsonl, .ndjson, .json, .csv,"
        " .parquet) or from --format.",
    )
    _add_dir(export)
    export.add_argument("out", type=Path, help="the file to write (.jsonl, .json, .csv, .parquet)")
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default=None,
        help="the output format (default: from the extension of OUT); parquet needs"
        " DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'",
    )
    _add_filters(export)

    files = commands.add_parser(
        "files",
        help="list the files, their sizes and time spans",
        description="List the data files: size, compression ratio, entries and time span.",
    )
    _add_dir(files)
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

        summary = summarize_duckdb(args.dir, **_filters(args))
    else:
        progress = _Progress()
        summary = summarize(args.dir, progress=progress.show, workers=None, **_filters(args))
        progress.done()
    text = render(summary, args.format)  # no entries: an empty report, not an error
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


EXPORT_FORMATS = ("jsonl", "json", "csv", "parquet")
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
_CSV_COLUMNS = ["id", "timestamp", "type", "session_id", "user_id", "data", "metadata"]


def _export_format(out: Path, given: str | None) -> str:
    """The format of ``out``: from its extension, which must agree with ``given``."""
    implied = _EXTENSIONS.get(out.suffix.lower())
    if given is None:
        if implied is None:
            known = ", ".join(_EXTENSIONS)
            raise _CliError(
                f"cannot tell the format of {out} from its extension: use one of {known},"
                " or give --format"
            )
        return implied
    if implied is not None and implied != given:
        raise _CliError(f"{out} looks like {implied}, but --format is {given}")
    return given


def _export(args: argparse.Namespace) -> int:
    fmt = _export_format(args.out, args.format)
    resolve_metrics_dir(args.dir)  # a missing directory is an error before any output
    if fmt == "parquet":
        return _export_parquet(args)
    count = 0
    try:
        with open(args.out, "w", encoding="utf-8", newline="") as out:
            entries = _Progress().tick(iter_entries(args.dir, **_filters(args)))
            if fmt == "csv":
                writer = csv.writer(out)
                writer.writerow(_CSV_COLUMNS)
                for e in entries:
                    row = e.to_dict()
                    row["data"] = json.dumps(row["data"])
                    row["metadata"] = json.dumps(row["metadata"])
                    writer.writerow([row[c] for c in _CSV_COLUMNS])
                    count += 1
            elif fmt == "json":
                out.write("[")
                for e in entries:
                    out.write(",\n" if count else "\n")
                    out.write(e.to_json_line().decode().rstrip("\n"))
                    count += 1
                out.write("\n]\n" if count else "]\n")
            else:
                for e in entries:
                    out.write(e.to_json_line().decode())
                    count += 1
    except BaseException:
        if args.out.is_file():
            args.out.unlink()
        raise
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
            "parquet export needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'"
        ) from None
    staging = args.out.with_name(args.out.name + ".jsonl.tmp")
    count = 0
    try:
        with open(staging, "wb") as out:
            for e in _Progress().tick(iter_entries(args.dir, **_filters(args))):
                out.write(e.to_json_line())
                count += 1
        write_parquet(staging, args.out)
    finally:
        staging.unlink(missing_ok=True)
    print(f"exported {count:,} entries to {args.out}", file=sys.stderr)
    return 0


def _files(args: argparse.Namespace) -> int:
    directory = resolve_metrics_dir(args.dir)
    rows = []
    total_size = total_raw = 0
    for path in data_files(directory, args.prefix):
        try:
            row, size, raw = _file_row(path)
        except FileNotFoundError:  # compressed meanwhile: its .gz holds the same lines
            if path.name.endswith(".gz"):
                continue  # deleted by retention
            try:
                row, size, raw = _file_row(path.with_name(path.name + ".gz"))
            except FileNotFoundError:
                continue
        rows.append(row)
        total_size += size
        total_raw += raw
    heads = ("file", "bytes", "ratio", "entries", "span (UTC)")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    ratio = f"{total_raw / total_size:.1f}x" if total_size else "-"
    print(
        f"{len(rows)} files, {total_size:,} bytes on disk, {total_raw:,} bytes of JSON"
        f" ({ratio} overall)"
    )
    return 0


def _file_row(path: Path) -> tuple[tuple[str, str, str, str, str], int, int]:
    size = path.stat().st_size
    raw = _uncompressed_size(path)
    entries = scan_file(path).entries
    first = min((e.timestamp for e in entries), default=None)
    last = max((e.timestamp for e in entries), default=None)
    ratio = f"{raw / size:.1f}x" if path.name.endswith(".gz") and size else "-"
    return (path.name, f"{size:,}", ratio, f"{len(entries):,}", _span(first, last)), size, raw


def _span(first: datetime | None, last: datetime | None) -> str:
    """``first .. last`` in UTC; the date of ``last`` is shown when it differs."""
    if first is None or last is None:
        return "-"
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    end = f"{last:%H:%M:%S}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}"
    return f"{first:%Y-%m-%d %H:%M:%S} .. {end}"


def _uncompressed_size(path: Path) -> int:
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                total += len(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        pass  # damaged: what was read counts (scan_file warns about it)
    return total


def _tail(args: argparse.Namespace) -> int:
    with _StopSignals(args.follow) as stop:  # from the start: a stop while reading is kept too
        tail = DirectoryTail(args.dir, prefix=args.prefix, types=args.types)
        _show(tail.last(args.lines))
        if not args.follow:
            return 0
        deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
        while not stop.requested:
            _show(tail.poll())
            pause = args.interval
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if pause <= 0:
                    break
            stop.sleep(pause)
        _show(tail.poll())  # what was written until the stop
    return 0


def _show(entries: Iterable[MetricEntry]) -> None:
    sys.stdout.writelines(e.to_json_line().decode() for e in entries)
    sys.stdout.flush()


class _StopSignals:
    """While following: SIGINT and SIGTERM ask for a clean stop (a last poll, then
    exit status 0) instead of killing the process between a read and its printing.
    The previous handlers come back on exit."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for number in self._SIGNALS:
                self._previous[number] = signal.signal(number, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _request(self, number: int, frame: object) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.requested and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))


class _CliError(Exception):
    """A problem to report in one line, with exit status 1."""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or type(exc).__name__
        return f"{reason}: {exc.filename}"
    if isinstance(exc, (_CliError, ValueError, ImportError, AnalyticsError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad arguments raise ``SystemExit(2)`` after one line on stderr, as argparse does.
    Nothing the command changes in the process (the garbage collector, logging)
    outlives the call.
    """
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("analytics: %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("analytics")
    logger.addHandler(handler)
    collecting = gc.isenabled()
    try:
        if args.command == "demo":
            return _demo(args.dir, args.seconds, args.sessions, args.max_file_size)
        handlers = {"report": _report, "export": _export, "files": _files, "tail": _tail}
        # A short-lived process that builds millions of small acyclic objects: the
        # cyclic collector would only walk them over and over (it costs a third of the
        # reading time). Reference counting still frees every entry.
        gc.disable()
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()  # the reader went away (| head): nothing more to say
        return 141
    except Exception as exc:  # anything else: one line, never a traceback
        text = " ".join(_one_line(exc).split())
        print(f"analytics: error: {text}", file=sys.stderr)
        return 1
    finally:
        if collecting:
            gc.enable()
        logger.removeHandler(handler)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


if __name__ == "__main__":
    sys.exit(main())
