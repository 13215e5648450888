"""``analytics demo``: run the simulated service, read its files back, compare."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .._read.files import data_files
from .._read.reader import scan_directory
from .arguments import CliError, positive_count, seconds, size
from .simulator import simulate


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=seconds,
        default=3.0,
        help="how long to run: seconds, or a duration such as 500ms or 1m (default: 3)",
    )
    demo.add_argument(
        "--sessions", type=positive_count, default=50, help="concurrent sessions (default: 50)"
    )
    demo.add_argument(
        "--max-file-size",
        type=size,
        default="256 KiB",
        help="rotate at this size, such as 64 KiB or 1 MB (default: 256 KiB)",
    )


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    # The demo compares what it wrote with what it reads back: files of an earlier
    # run would be counted as its own. It wants a directory without any.
    for place in (directory, directory / "metrics"):
        if place.is_dir() and data_files(place):
            raise CliError(
                f"{place} already holds analytics files (an earlier run?): remove them,"
                " or give another --dir"
            )
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} is not a directory")
    writer = asyncio.run(simulate(directory, args.seconds, args.sessions, args.max_file_size))
    # The loop is done: reading the files back here blocks nobody.
    stats = writer.stats()
    scan = scan_directory(writer.metrics_dir)
    files = data_files(writer.metrics_dir)
    compressed = [p for p in files if p.name.endswith(".jsonl.gz")]
    plain = [p for p in files if p.name.endswith(".jsonl")]
    total_bytes = sum(p.stat().st_size for p in files)
    print(
        f"Simulated {args.sessions} concurrent sessions for {args.seconds:g}s"
        f" into {writer.metrics_dir}"
    )
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
