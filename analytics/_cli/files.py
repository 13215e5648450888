"""``analytics files``: each data file's size, compression ratio, entries and span."""

from __future__ import annotations

import argparse
import zlib
from datetime import UTC, datetime
from pathlib import Path

from .._read.files import data_files, gunzip, resolve_metrics_dir
from .._read.reader import scan_file
from .._report import text_table
from .arguments import add_dir

HEADERS = ["file", "bytes", "ratio", "entries", "span (UTC)"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    files = commands.add_parser(
        "files",
        help="list the files, their sizes and time spans",
        description="List the data files: size, compression ratio, entries and time span.",
    )
    add_dir(files)


def run(args: argparse.Namespace) -> int:
    directory = resolve_metrics_dir(args.dir)
    rows = []
    total_size = total_raw = 0
    for path in data_files(directory, args.prefix):
        try:
            row, size, raw = file_row(path)
        except FileNotFoundError:  # compressed meanwhile: its .gz holds the same lines
            if path.name.endswith(".gz"):
                continue  # deleted by retention
            try:
                row, size, raw = file_row(path.with_name(path.name + ".gz"))
            except FileNotFoundError:
                continue
        rows.append(row)
        total_size += size
        total_raw += raw
    print("\n".join(text_table(HEADERS, rows)))
    ratio = f"{total_raw / total_size:.1f}x" if total_size else "-"
    print(
        f"{len(rows)} files, {total_size:,} bytes on disk, {total_raw:,} bytes of JSON"
        f" ({ratio} overall)"
    )
    return 0


def file_row(path: Path) -> tuple[list[str], int, int]:
    """The table row of ``path``, its size on disk and its uncompressed size."""
    size = path.stat().st_size
    raw = uncompressed_size(path)
    entries = scan_file(path).entries
    first = min((e.timestamp for e in entries), default=None)
    last = max((e.timestamp for e in entries), default=None)
    ratio = f"{raw / size:.1f}x" if path.name.endswith(".gz") and size else "-"
    return [path.name, f"{size:,}", ratio, f"{len(entries):,}", span(first, last)], size, raw


def span(first: datetime | None, last: datetime | None) -> str:
    """``first .. last`` in UTC; the date of ``last`` is shown when it differs."""
    if first is None or last is None:
        return "-"
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    end = f"{last:%H:%M:%S}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}"
    return f"{first:%Y-%m-%d %H:%M:%S} .. {end}"


def uncompressed_size(path: Path) -> int:
    """The bytes of JSON ``path`` holds; for a damaged ``.gz``, what precedes the
    damage (``scan_file`` warns about it)."""
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    total = 0
    try:
        for chunk in gunzip(path):
            total += len(chunk)
    except (EOFError, zlib.error):
        pass
    return total
